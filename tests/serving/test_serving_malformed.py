"""The model server under hand-written bad input: oversized bodies (declared and chunked),
invalid JSON, NaN and infinity literals, wrong top-level types, empty inputs, wrong types per
column, deep nesting, malformed v2 tensors, content types and CSV; and 10,000 rows, which work.

Never a 5xx; every error is a JSON body naming the problem, and input that breaks the signature
gets ``problems`` (column, expected, got). The tests at the end reproduce bugs this file found
(each with a curl line); they pass since the fixes.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from serving_clients_fixtures import (
    FEATURE_NAMES_WARNING,
    PROTOCOLS,
    SMALL_LIMIT,
    Servers,
    assert_error,
    error_message,
    post_to,
    serving,
    shared_models,
    signature_problems,
    v2_tensor,
)

pytestmark = pytest.mark.filterwarnings(FEATURE_NAMES_WARNING)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with serving(shared_models(tmp_path_factory)) as running_servers:
        yield running_servers


@pytest.fixture(scope="module")
def http(servers: Servers) -> Iterator[dict[str, httpx.Client]]:
    clients = {n: httpx.Client(base_url=servers.url(n), timeout=30) for n in ("bc", "mixed")}
    yield clients
    for c in clients.values():
        c.close()


# --- oversized bodies ----------------------------------------------------------------------------


def _rawpost_to(
    address: tuple[str, int], path: str, headers: dict[str, str], chunks: Iterable[bytes]
) -> tuple[int, bytes, float, int]:
    """POST over a raw socket, sending ``chunks`` only while the server has not answered.

    Returns the status, the response body, the seconds until the answer, and the bytes of body
    sent by then."""
    head = f"POST {path} HTTP/1.1\r\nHost: {address[0]}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    start = time.perf_counter()
    sent = 0
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before taking the whole body
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            data += sock.recv(65536)
        elapsed = time.perf_counter() - start
        header, _, body = data.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        while len(body) < length and time.monotonic() < deadline:
            more = sock.recv(65536)
            if not more:
                break
            body += more
    return int(lines[0].split()[1]), body, elapsed, sent


def _as_response(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": "application/json"})


_POSTS = [
    ("/predict", {"content-type": "application/json"}),
    ("/invocations", {"content-type": "application/json"}),
    ("/invocations", {"content-type": "text/csv"}),
    ("/v2/models/bc/infer", {"content-type": "application/json"}),
]


@pytest.mark.parametrize(("path", "headers"), _POSTS, ids=[f"{p} {h}" for p, h in _POSTS])
def test_declared_content_length_over_the_limit_is_a_quick_413(
    servers: Servers, path: str, headers: dict[str, str]
) -> None:
    declared = 2 * 2**30  # 2 GB, none of it sent: the answer must not wait for the body
    status, body, elapsed, _ = _rawpost_to(
        servers.small, path, {**headers, "Content-Length": str(declared)}, []
    )
    assert_error(_as_response(status, body), 413, "limit", f"{declared:,}")
    assert elapsed < 1.0


@pytest.mark.parametrize(("path", "headers"), _POSTS, ids=[f"{p} {h}" for p, h in _POSTS])
def test_chunked_body_over_the_limit_is_a_413(
    servers: Servers, path: str, headers: dict[str, str]
) -> None:
    piece = b"[" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    pieces = 16 * SMALL_LIMIT // len(piece)  # 16 times the limit
    status, body, elapsed, sent = _rawpost_to(
        servers.small, path, {**headers, "Transfer-Encoding": "chunked"}, [chunk] * pieces
    )
    assert_error(_as_response(status, body), 413, "limit")
    assert sent < pieces * len(chunk)  # refused while the body was still coming
    assert elapsed < 2.0


def test_a_body_under_the_limit_still_works(servers: Servers) -> None:
    X = servers.models.X.head(3)
    response = httpx.post(f"{servers.url('small')}/predict", json={"inputs": X.values.tolist()})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == servers.models.bc.predict(X).tolist()


def test_ten_thousand_rows_work(servers: Servers, http: dict[str, httpx.Client]) -> None:
    X = servers.models.X
    big = X.sample(10_000, replace=True, random_state=3)
    expected = servers.models.bc.predict(big).tolist()
    rows = big.to_numpy().tolist()
    split = {"dataframe_split": {"columns": list(big.columns), "data": rows}}
    response = http["bc"].post("/invocations", json=split)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["predictions"] == expected
    tensor = {"name": "x", "shape": [10_000, 30], "datatype": "FP64", "data": rows}
    response = http["bc"].post("/v2/models/bc/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["outputs"][0]["data"] == expected
    response = http["bc"].post("/predict", json={"inputs": rows})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["predictions"] == expected
    assert len(response.json()["prediction_ids"]) == 10_000


# --- malformed bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"rows": [{"mean radius": 1',
        b'{"inputs": [[1.0, 2.0]',
        b"{'rows': []}",
        b'{"rows": [1,]}',
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"rows": []}',
        b"<xml/>",
    ],
    ids=[
        "empty",
        "brace",
        "truncated",
        "truncated-array",
        "single-quotes",
        "trailing-comma",
        "utf16-bom",
        "utf8-bom",
        "xml",
    ],
)
def test_invalid_json_is_a_400(http: dict[str, httpx.Client], protocol: str, body: bytes) -> None:
    assert_error(post_to(http, protocol, body), 400, "not valid JSON")


def _raw_bodies(rows: str, data: str, shape: list[int]) -> dict[str, bytes]:
    """Bodies written by hand (JSON that ``json.dumps`` would not write): ``rows`` as the
    native ``inputs`` and MLflow's ``instances``, ``data`` as a v2 tensor's data."""
    tensor = f'{{"name": "x", "shape": {shape}, "datatype": "FP64", "data": {data}}}'
    return {
        "native": f'{{"inputs": {rows}}}'.encode(),
        "mlflow": f'{{"instances": {rows}}}'.encode(),
        "v2": f'{{"inputs": [{tensor}]}}'.encode(),
    }


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "nan", "1e999"])
def test_nan_and_infinity_literals_are_a_400(
    http: dict[str, httpx.Client], protocol: str, literal: str
) -> None:
    """JSON has no NaN or infinity; a body that writes them is refused, not half-read."""
    row = "[" + ", ".join([literal] + ["1.0"] * 29) + "]"
    body = _raw_bodies(f"[{row}]", row, [1, 30])[protocol]
    assert_error(post_to(http, protocol, body), 400, "not valid JSON")


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"rows"', "42", "null", "true", "[{}]"])
def test_wrong_top_level_type_is_a_400(
    http: dict[str, httpx.Client], protocol: str, body: str
) -> None:
    assert_error(post_to(http, protocol, body.encode()), 400)


@pytest.mark.parametrize(
    ("protocol", "body", "needle"),
    [
        ("native", {"rows": []}, "non-empty"),
        ("native", {"columns": {}}, "non-empty"),
        ("native", {"inputs": []}, "non-empty"),
        ("native", {}, "exactly one"),
        ("mlflow", {"dataframe_records": []}, "non-empty"),
        ("mlflow", {"instances": []}, "non-empty"),
        ("mlflow", {"inputs": []}, "inputs"),
        ("mlflow", {"inputs": {}}, "inputs"),
        ("mlflow", {"dataframe_split": {"columns": [], "data": []}}, "no rows"),
        ("mlflow", {}, "exactly one"),
        ("v2", {"inputs": []}, "non-empty"),
        ("v2", {}, "inputs"),
    ],
)
def test_empty_inputs_are_a_400(
    http: dict[str, httpx.Client], protocol: str, body: Any, needle: str
) -> None:
    assert_error(post_to(http, protocol, json.dumps(body).encode()), 400, needle)


def _bc_row(servers: Servers, **changes: Any) -> dict[str, Any]:
    row = {k: float(v) for k, v in servers.models.X.iloc[0].items()}
    row.update(changes)
    return row


def _mixed_row(**changes: Any) -> dict[str, Any]:
    return {"age": 41, "income": 52_000.5, "plan": "pro", "active": True, **changes}


def _column_bodies(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One row through /predict (rows and columns) and /invocations (records and split)."""
    return {
        "native rows": {"rows": [row]},
        "native columns": {"columns": {k: [v] for k, v in row.items()}},
        "mlflow records": {"dataframe_records": [row]},
        "mlflow split": {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}},
    }


_FORMS = ["native rows", "native columns", "mlflow records", "mlflow split"]


def _send(http: dict[str, httpx.Client], model: str, form: str, body: Any) -> Any:
    path = "/predict" if form.startswith("native") else "/invocations"
    headers = {"content-type": "application/json"}
    return http[model].post(path, content=json.dumps(body).encode(), headers=headers)


def _assert_problem(response: Any, column: str, expected: str, got: str) -> None:
    assert response.status_code == 400, response.text[:500]
    error_message(response)
    problems = {p["column"]: p for p in signature_problems(response)}
    assert column in problems, problems
    assert expected in problems[column]["expected"], problems[column]
    assert got in str(problems[column]["got"]), problems[column]


@pytest.mark.parametrize("form", _FORMS)
@pytest.mark.parametrize(
    ("model", "column", "value", "expected", "got"),
    [
        ("bc", "mean radius", None, "without nulls", "null"),
        ("bc", "mean radius", "12.5", "float", "str"),
        ("bc", "mean radius", True, "float", "bool"),
        ("bc", "mean radius", [1.0], "float", "object"),
        ("mixed", "income", None, "without nulls", "null"),
        ("mixed", "income", "wide", "float", "str"),
        ("mixed", "income", False, "float", "bool"),
        ("mixed", "income", {"a": 1}, "float", "object"),
        ("mixed", "age", 2**64, "integer", "int64 range"),
        ("mixed", "age", 2**70, "integer", "int64 range"),
        ("mixed", "age", 3.5, "integer", "fractional"),
        ("mixed", "age", True, "integer", "bool"),
        ("mixed", "age", "3", "integer", "str"),
        ("mixed", "active", 1, "boolean", "int"),
        ("mixed", "active", "yes", "boolean", "str"),
        ("mixed", "plan", None, "without nulls", "null"),
    ],
)
def test_wrong_types_name_the_column(
    servers: Servers,
    http: dict[str, httpx.Client],
    form: str,
    model: str,
    column: str,
    value: Any,
    expected: str,
    got: str,
) -> None:
    row = _bc_row(servers) if model == "bc" else _mixed_row()
    row[column] = value
    response = _send(http, model, form, _column_bodies(row)[form])
    _assert_problem(response, column, expected, got)


def test_a_missing_and_an_extra_column(servers: Servers, http: dict[str, httpx.Client]) -> None:
    row = _mixed_row(extra=1)
    del row["plan"]
    response = _send(http, "mixed", "native rows", {"rows": [row]})
    problems = {p["column"]: p for p in signature_problems(response)}
    assert problems["plan"]["got"] == "missing" and "extra" in problems
    # MLflow's protocol drops unknown columns, as MLflow does
    response = _send(http, "mixed", "mlflow records", {"dataframe_records": [row]})
    assert [p["column"] for p in signature_problems(response)] == ["plan"]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_deeply_nested_arrays_are_a_400(http: dict[str, httpx.Client], protocol: str) -> None:
    for depth in (100_000, 200):
        nested = "[" * depth + "1.0" + "]" * depth
        body = _raw_bodies(nested, nested, [1])[protocol]
        assert_error(post_to(http, protocol, body), 400)


@pytest.mark.parametrize(
    ("tensor", "needle"),
    [
        (v2_tensor(shape=[2, 30]), "holds 30 values but shape [2, 30] needs 60"),
        (v2_tensor(data=[1.0] * 31), "holds 31 values"),
        (v2_tensor(shape=[1, 31], data=[1.0] * 31), "shape [1, 31]"),
        (v2_tensor(shape=[1, 1, 30]), "shape [1, 1, 30]"),
        (v2_tensor(shape=[-1, 30]), "'shape'"),
        (v2_tensor(shape=[10**12, 10**12]), "needs"),
        (v2_tensor(datatype="FP128"), "'datatype'"),
        (v2_tensor(datatype="fp64"), "'datatype'"),
        (v2_tensor(datatype=None), "'datatype'"),
        (v2_tensor(data=["a"] * 30), "not FP64"),
        (v2_tensor(data=[[1.0] * 30, [1.0] * 5]), "not FP64"),
        (v2_tensor(name=""), "'name'"),
        ({"name": "x", "shape": [1, 30], "datatype": "FP64"}, "'data'"),
        (v2_tensor(datatype="INT8", data=[300] * 30), "not INT8"),
        (v2_tensor(datatype="UINT8", data=[-1] * 30), "not UINT8"),
        (v2_tensor(datatype="BYTES", data=[1] * 30), "BYTES data must be strings"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_v2_tensors_are_a_400(
    http: dict[str, httpx.Client], tensor: dict[str, Any], needle: str
) -> None:
    response = post_to(http, "v2", json.dumps({"inputs": [tensor]}).encode())
    assert_error(response, 400, needle)


def test_v2_refusals(servers: Servers, http: dict[str, httpx.Client]) -> None:
    row = list(_bc_row(servers).values())
    good = json.dumps({"inputs": [v2_tensor(data=row)]}).encode()
    client = http["bc"]
    response = client.post(
        "/v2/models/bc/infer",
        content=good,
        headers={"content-type": "application/json", "Inference-Header-Content-Length": "10"},
    )
    assert_error(response, 400, "binary tensor data", "binary_data=False")
    body = {"inputs": [v2_tensor(data=row)], "outputs": [{"name": "explanation"}]}
    assert_error(client.post("/v2/models/bc/infer", json=body), 400, "unknown outputs")
    assert_error(client.post("/v2/models/bc/infer", json={**body, "outputs": 3}), 400, "outputs")
    body = {"inputs": [v2_tensor(data=row)], "id": 7}
    assert_error(client.post("/v2/models/bc/infer", json=body), 400, '"id"')
    assert_error(client.post("/v2/models/nope/infer", content=good), 404, "nope")
    assert_error(client.post("/v2/models/bc/versions/9/infer", content=good), 404, "version 9")
    assert_error(client.post("/v2/models/bc/a/b/infer", content=good), 400, "/infer")
    # a signature problem through v2: one tensor per column, one of them text
    tensors = [
        {"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
        for k, v in _bc_row(servers).items()
    ]
    tensors[0] = {"name": "mean radius", "shape": [1], "datatype": "BYTES", "data": ["wide"]}
    response = client.post("/v2/models/bc/infer", json={"inputs": tensors})
    _assert_problem(response, "mean radius", "float", "str")
    # and it still answers a good request with the model's prediction
    response = client.post("/v2/models/bc/infer", content=good)
    assert response.status_code == 200, response.text
    expected = servers.models.bc.predict(servers.models.X.head(1)).tolist()
    assert response.json()["outputs"][0]["data"] == expected


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/xml", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/x-pickle", 415),
        ("application/octet-stream", 415),
        ("", 415),
        ("application/json; something=x", 415),
        ("application/json; charset=latin-1", 415),
        ("application/json; charset=utf-8", 200),
        ("application/json; charset=UTF-8", 200),
        ("APPLICATION/JSON", 200),
    ],
)
def test_invocations_content_types(
    servers: Servers, http: dict[str, httpx.Client], content_type: str, status: int
) -> None:
    body = json.dumps({"instances": [list(_bc_row(servers).values())]}).encode()
    headers = {"content-type": content_type} if content_type else {}
    response = http["bc"].post("/invocations", content=body, headers=headers)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, status, "content type")


def test_csv_with_a_bad_header(servers: Servers, http: dict[str, httpx.Client]) -> None:
    X = servers.models.X.head(2)
    csv = X.rename(columns={"mean radius": "mean_radius"}).to_csv(index=False)
    response = http["bc"].post("/invocations", content=csv, headers={"content-type": "text/csv"})
    problems = {p["column"]: p for p in signature_problems(response)}
    assert problems["mean radius"]["got"] == "missing"
    # no header row at all: the first row is read as the header
    csv = X.to_csv(index=False, header=False)
    response = http["bc"].post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 400 and len(signature_problems(response)) == 30
    for body in (b"", b'"unclosed\n1,2', b"\x00\x01\x02"):
        response = http["bc"].post(
            "/invocations", content=body, headers={"content-type": "text/csv"}
        )
        assert_error(response, 400)
    response = http["mixed"].post(
        "/invocations",
        content=b"age,income,plan,active\n1,2.0,pro,maybe\n",
        headers={"content-type": "text/csv"},
    )
    _assert_problem(response, "active", "boolean", "str")
    response = http["bc"].post(
        "/invocations",
        content=b"PAR1 not parquet",
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert_error(response, 400, "Parquet")


def test_wrong_methods_and_routes_are_json(http: dict[str, httpx.Client]) -> None:
    client = http["bc"]
    assert_error(client.get("/predict"), 405, "GET")
    assert_error(client.put("/invocations"), 405, "PUT")
    assert_error(client.delete("/v2/models/bc/infer"), 405, "DELETE")
    assert_error(client.get("/nowhere"), 404, "/openapi.json")
    assert_error(client.get("/v2/models/nope"), 404, "nope")
    assert_error(client.get("/v2/models/bc/versions/1/x"), 404)


# --- bugs this file found (fixed): each test is a reproducer ----------------------------------


@pytest.mark.parametrize(
    ("column", "datatype", "value"),
    [
        ("age", "INT64", 1.5),
        ("active", "BOOL", "no"),
        ("active", "BOOL", 2),
        ("income", "FP64", "1.5"),
    ],
)
def test_v2_data_of_another_type_than_its_datatype(
    http: dict[str, httpx.Client], column: str, datatype: str, value: Any
) -> None:
    # curl -X POST localhost:8080/v2/models/mixed/infer -H 'content-type: application/json' -d
    #   '{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [1.5]},
    #    {"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]},
    #    {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
    #    {"name": "active", "shape": [1], "datatype": "BOOL", "data": [true]}]}'  -> 200
    types = {"age": "INT64", "income": "FP64", "plan": "BYTES", "active": "BOOL"}
    tensors = [
        {"name": k, "shape": [1], "datatype": types[k], "data": [v]}
        for k, v in _mixed_row(**{column: value}).items()
    ]
    response = post_to(http, "v2", json.dumps({"inputs": tensors}).encode(), model="mixed")
    assert_error(response, 400, column)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63) - 1])
@pytest.mark.parametrize("form", ["native rows", "mlflow records"])
def test_integers_just_beyond_int64(http: dict[str, httpx.Client], form: str, value: int) -> None:
    # curl -X POST localhost:8080/predict -H 'content-type: application/json' \
    #   -d '{"rows": [{"age": 9223372036854775808, "income": 1.5, "plan": "pro",
    #        "active": true}]}'  -> 200
    body = _column_bodies(_mixed_row(age=value))[form]
    _assert_problem(_send(http, "mixed", form, body), "age", "integer", "int64")


@pytest.mark.parametrize("form", _FORMS)
def test_a_number_in_a_text_column(http: dict[str, httpx.Client], form: str) -> None:
    # curl -X POST localhost:8080/predict -H 'content-type: application/json' \
    #   -d '{"rows": [{"age": 41, "income": 1.5, "plan": 5, "active": true}]}'  -> 422
    body = _column_bodies(_mixed_row(plan=5))[form]
    _assert_problem(_send(http, "mixed", form, body), "plan", "categorical", "int")


@pytest.mark.parametrize("content_type", ["text/csv", "application/vnd.apache.parquet"])
def test_nan_from_csv_or_parquet_in_a_float_column(
    servers: Servers, http: dict[str, httpx.Client], content_type: str
) -> None:
    # printf 'mean radius,...(the 30 columns)\nnan,1.0,...\n' | curl -X POST \
    #   localhost:8080/invocations -H 'content-type: text/csv' --data-binary @-  -> 422
    import io

    frame = servers.models.X.head(2).copy()
    frame.iloc[0, 0] = float("nan")
    if content_type == "text/csv":
        body = frame.to_csv(index=False).encode()
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        body = buffer.getvalue()
    response = http["bc"].post(
        "/invocations", content=body, headers={"content-type": content_type}
    )
    _assert_problem(response, "mean radius", "without nulls", "null")
