"""The server end to end over real HTTP: the three protocols, signature errors, limits."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest


def _row(X: Any, i: int = 0) -> dict[str, float]:
    return {k: float(v) for k, v in X.iloc[i].items()}


def test_native_rows_columns_inputs_and_proba(serve: Any, bc_data: Any, bc_store: Any) -> None:
    X, _ = bc_data
    model = __import__("loopml").load_model("models:/bc/1", client=bc_store)
    expected = model.predict(X.head(5)).tolist()
    proba = model.predict_proba(X.head(5))
    with serve() as (url, _app), httpx.Client(base_url=url) as http:
        r = http.post("/predict", json={"rows": [_row(X, i) for i in range(5)], "proba": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["predictions"] == expected
        assert np.allclose(body["probabilities"], proba)
        assert body["classes"] == [0, 1]
        assert body["model"] == "bc" and body["version"] == 1 and body["route"] == "primary"
        rid = r.headers["x-request-id"]
        assert body["prediction_ids"] == [f"{rid}-{i}" for i in range(5)]
        assert r.headers["x-model-version"] == "bc/1"
        cols = {c: X[c].head(5).tolist() for c in X.columns}
        assert http.post("/predict", json={"columns": cols}).json()["predictions"] == expected
        rows = X.head(5).to_numpy().tolist()
        assert http.post("/predict", json={"inputs": rows}).json()["predictions"] == expected
        one = http.post("/predict", json={"rows": _row(X)}).json()
        assert one["predictions"] == expected[:1] and len(one["prediction_ids"]) == 1


def test_mlflow_protocol_forms(serve: Any, bc_data: Any) -> None:
    X, _ = bc_data
    head = X.head(3)
    with serve() as (url, app), httpx.Client(base_url=url) as http:
        expected = app.endpoint.primary.runtime.predictor.predict(head).tolist()
        split = {"columns": list(head.columns), "data": head.to_numpy().tolist()}
        forms = [
            {"dataframe_split": split},
            {"dataframe_records": head.to_dict(orient="records")},
            {"instances": head.to_dict(orient="records")},
            {"instances": head.to_numpy().tolist()},
            {"inputs": {c: head[c].tolist() for c in head.columns}},
            {"dataframe_split": split, "params": {"anything": 1}},
        ]
        for body in forms:
            r = http.post("/invocations", json=body)
            assert r.status_code == 200, (body.keys(), r.text)
            assert r.json() == {"predictions": expected}
        r = http.post(
            "/invocations", content=head.to_csv(index=False), headers={"content-type": "text/csv"}
        )
        assert r.json() == {"predictions": expected}
        r = http.post(
            "/invocations",
            content=__import__("orjson").dumps({"dataframe_split": split}),
            headers={"content-type": "application/json; charset=UTF-8"},
        )
        assert r.status_code == 200
        # MLflow drops columns the signature does not list
        extra = head.assign(customer_id=[1, 2, 3]).to_dict(orient="records")
        assert http.post("/invocations", json={"dataframe_records": extra}).status_code == 200
        assert http.get("/ping").status_code == 200
        assert http.get("/health").status_code == 200
        assert http.get("/version").text


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, "BAD_REQUEST"),
        (b'{"rows": [1]}', {}, 400, "BAD_REQUEST"),
        (b'{"dataframe_split": {}, "instances": []}', {}, 400, "BAD_REQUEST"),
        (b"{}", {"content-type": "text/plain"}, 415, None),
        (b"{}", {"content-type": "application/json; something=x"}, 415, None),
    ],
)
def test_mlflow_errors(
    serve: Any, body: bytes, headers: dict[str, str], status: int, code: str | None
) -> None:
    with serve() as (url, _), httpx.Client(base_url=url) as http:
        r = http.post(
            "/invocations", content=body, headers=headers or {"content-type": "application/json"}
        )
        assert r.status_code == status, r.text
        if code:
            assert r.json()["error_code"] == code


def test_signature_problems_are_4xx_naming_each_column(serve: Any, bc_data: Any) -> None:
    X, _ = bc_data
    row = _row(X)
    with serve() as (url, _), httpx.Client(base_url=url) as http:
        bad = {**row, "mean radius": "wide", "mean area": None, "mean texture": True}
        bad.pop("worst area")
        r = http.post("/predict", json={"rows": [bad]})
        assert r.status_code == 400, r.text
        problems = {p["column"]: p for p in r.json()["error"]["problems"]}
        assert set(problems) == {"mean radius", "mean area", "mean texture", "worst area"}
        assert problems["worst area"]["got"] == "missing"
        assert "float" in problems["mean radius"]["expected"]
        r = http.post("/invocations", json={"dataframe_records": [bad]})
        assert r.status_code == 400
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert {p["column"] for p in r.json()["problems"]} == set(problems)
        r = http.post("/predict", json={"rows": [{**row, "extra": 1}]})
        assert r.status_code == 400
        assert r.json()["error"]["problems"][0]["column"] == "extra"
        r = http.post("/predict", content=b'{"rows": [{"mean radius": NaN}]}')
        assert r.status_code == 400


def test_body_limit(serve: Any) -> None:
    with serve(settings={"max_body_mb": 0.01}) as (url, _), httpx.Client(base_url=url) as http:
        r = http.post("/predict", content=b"x" * 20_000)
        assert r.status_code == 413
        assert "limit" in r.json()["error"]["message"]

        def chunks() -> Any:
            for _ in range(40):
                yield b"x" * 1000

        r = http.post("/predict", content=chunks())
        assert r.status_code == 413


def test_v2_protocol(serve: Any, bc_data: Any) -> None:
    X, _ = bc_data
    head = X.head(2)
    with serve() as (url, app), httpx.Client(base_url=url) as http:
        expected = app.endpoint.primary.runtime.predictor.predict(head).tolist()
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").json() == {"ready": True}
        assert http.get("/v2").json()["name"] == "loopml"
        meta = http.get("/v2/models/bc").json()
        assert meta["versions"] == ["1"] and len(meta["inputs"]) == 30
        assert http.get("/v2/models/bc/versions/1/ready").json() == {"name": "bc", "ready": True}
        assert http.get("/v2/models/nope").status_code == 404
        tensor = {
            "name": "input-0",
            "shape": [2, 30],
            "datatype": "FP64",
            "data": head.to_numpy().ravel().tolist(),
        }
        body = {"id": "42", "inputs": [tensor], "parameters": {"binary_data_output": True}}
        r = http.post("/v2/models/bc/infer", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["id"] == "42" and out["model_name"] == "bc" and out["model_version"] == "1"
        assert out["outputs"][0]["data"] == expected and out["outputs"][0]["shape"] == [2]
        per_column = [
            {"name": c, "shape": [2], "datatype": "FP64", "data": head[c].tolist()}
            for c in head.columns
        ]
        r = http.post(
            "/v2/models/bc/versions/1/infer",
            json={"inputs": per_column, "outputs": [{"name": "predict_proba"}]},
        )
        assert r.status_code == 200, r.text
        names = [o["name"] for o in r.json()["outputs"]]
        assert names == ["predict", "predict_proba"]
        assert http.post("/v2/models/bc/versions/9/infer", json=body).status_code == 404
        r = http.post(
            "/v2/models/bc/infer", json=body, headers={"Inference-Header-Content-Length": "10"}
        )
        assert r.status_code == 400 and "binary_data=False" in r.json()["error"]
        bad = {**tensor, "shape": [3, 30]}
        assert http.post("/v2/models/bc/infer", json={"inputs": [bad]}).status_code == 400


def test_metrics_and_routes(serve: Any, bc_data: Any) -> None:
    X, _ = bc_data
    with serve() as (url, _), httpx.Client(base_url=url) as http:
        for _ in range(3):
            http.post("/predict", json={"rows": [_row(X)]})
        http.post("/predict", content=b"{")
        text = http.get("/metrics").text
        assert (
            'loopml_requests_total{deployment="bc",model_version="bc/1",protocol="native"' in text
        )
        assert "loopml_request_duration_seconds_bucket" in text
        assert "loopml_batch_rows_bucket" in text
        assert (
            'loopml_rejected_requests_total{deployment="bc",protocol="native",status="400"} 1.0'
            in text
        )
        assert http.get("/").json()["routes"][0]["model_version"] == "bc/1"
        assert http.get("/openapi.json").json()["openapi"].startswith("3.")
        assert http.get("/nope").status_code == 404
        assert http.get("/predict").status_code == 405
