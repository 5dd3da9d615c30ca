"""The model server with the real clients of each protocol, unchanged: tritonclient (JSON
tensors), the kserve REST client, and MLflow's ``ScoringServerClient``. Their predictions must
equal the model's own, in process.

The clients are in the ``test`` extra except kserve, whose pins (pandas<3, protobuf<7) clash
with the project's: ``.ci/run`` installs it with ``--no-deps`` plus the few modules its client
imports. Without a client a test skips, except on CI, where it fails.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import requests
from serving_clients_fixtures import (
    FEATURE_NAMES_WARNING,
    Models,
    running,
    serve_app,
    shared_models,
)

pytestmark = pytest.mark.filterwarnings(FEATURE_NAMES_WARNING)


def _client_module(name: str, install: str) -> ModuleType:
    """Import a client; skip without it (fail on CI, which must run these tests)."""
    try:
        with warnings.catch_warnings():  # their import-time deprecations are not ours
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{name} is not installed ({exc}); {install}")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return shared_models(tmp_path_factory)


@pytest.fixture(scope="module")
def bc(models: Models) -> Iterator[tuple[str, int]]:
    with running(serve_app(models.client, "bc")) as address:
        yield address


@pytest.fixture(scope="module")
def mixed(models: Models) -> Iterator[tuple[str, int]]:
    with running(serve_app(models.client, "mixed")) as address:
        yield address


def _rows(models: Models) -> Any:
    """Rows of both classes."""
    X = models.X.iloc[::37]
    assert len(set(models.bc.predict(X))) == 2
    return X


# --- tritonclient[http] --------------------------------------------------------------------------


@pytest.fixture
def triton(bc: tuple[str, int]) -> Iterator[Any]:
    http = _client_module("tritonclient.http", "pip install 'tritonclient[http]'")
    client = http.InferenceServerClient(url=f"{bc[0]}:{bc[1]}")
    yield client
    client.close()


def test_tritonclient_health_and_metadata(triton: Any, models: Models) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("bc")
    assert triton.is_model_ready("bc", "1")
    assert not triton.is_model_ready("nope")
    server = triton.get_server_metadata()
    assert server["name"] == "loopml" and server["extensions"] == []
    meta = triton.get_model_metadata("bc")
    assert meta["name"] == "bc" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == list(models.X.columns)
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


def test_tritonclient_infer_json_tensors(triton: Any, models: Models) -> None:
    http = importlib.import_module("tritonclient.http")
    X = _rows(models)
    tensor = http.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X.to_numpy(), binary_data=False)
    outputs = [
        http.InferRequestedOutput("predict", binary_data=False),
        http.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = triton.infer("bc", [tensor], outputs=outputs, request_id="req-42")
    np.testing.assert_array_equal(result.as_numpy("predict"), models.bc.predict(X))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), models.bc.predict_proba(X))
    response = result.get_response()
    assert response["id"] == "req-42" and response["model_name"] == "bc"
    # a version in the path, and no outputs named: the client then asks for binary outputs
    # (parameters.binary_data_output), which a JSON-only server ignores
    pinned = triton.infer("bc", [tensor], model_version="1")
    np.testing.assert_array_equal(pinned.as_numpy("predict"), models.bc.predict(X))


def test_tritonclient_one_tensor_per_column(mixed: tuple[str, int], models: Models) -> None:
    http = _client_module("tritonclient.http", "pip install 'tritonclient[http]'")
    frame = models.mixed_X.head(9)
    types = {"age": "INT64", "income": "FP64", "plan": "BYTES", "active": "BOOL"}
    tensors = []
    for name, datatype in types.items():
        values = frame[name].to_numpy()
        tensor = http.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(
            values.astype(object) if datatype == "BYTES" else values, binary_data=False
        )
        tensors.append(tensor)
    client = http.InferenceServerClient(url=f"{mixed[0]}:{mixed[1]}")
    try:
        result = client.infer(
            "mixed", tensors, outputs=[http.InferRequestedOutput("predict", binary_data=False)]
        )
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("predict"), models.mixed.predict(frame))


def test_tritonclient_binary_tensors_get_a_clear_400(triton: Any, models: Models) -> None:
    http = importlib.import_module("tritonclient.http")
    utils = importlib.import_module("tritonclient.utils")
    tensor = http.InferInput("input-0", [2, 30], "FP64")
    tensor.set_data_from_numpy(models.X.head(2).to_numpy(), binary_data=True)
    with pytest.raises(utils.InferenceServerException) as caught:
        triton.infer("bc", [tensor])
    assert caught.value.status() == "400"
    assert "binary tensor data" in caught.value.message()
    assert "binary_data=False" in caught.value.message()


def test_tritonclient_unknown_model_is_a_404(triton: Any, models: Models) -> None:
    http = importlib.import_module("tritonclient.http")
    utils = importlib.import_module("tritonclient.utils")
    tensor = http.InferInput("input-0", [1, 30], "FP64")
    tensor.set_data_from_numpy(models.X.head(1).to_numpy(), binary_data=False)
    with pytest.raises(utils.InferenceServerException) as caught:
        triton.infer("nope", [tensor])
    assert caught.value.status() == "404"
    assert "nope" in caught.value.message()


# --- the kserve REST client ----------------------------------------------------------------------


def _kserve() -> ModuleType:
    return _client_module(
        "kserve",
        "see .ci/run: pip install --no-deps kserve and the modules its client imports",
    )


def test_kserve_rest_client(bc: tuple[str, int], models: Models) -> None:
    kserve = _kserve()
    base = f"http://{bc[0]}:{bc[1]}"
    X = _rows(models)

    async def scenario() -> None:
        client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", timeout=10))
        try:
            assert await client.is_server_live(base) is True
            assert await client.is_server_ready(base) is True  # reads {"ready": true}
            assert await client.is_model_ready(base, "bc") is True
            assert await client.is_model_ready(base, "nope") is False
            tensor = kserve.InferInput(
                name="input-0",
                shape=list(X.shape),
                datatype="FP64",
                data=X.to_numpy().ravel().tolist(),
            )
            request = kserve.InferRequest(
                model_name="bc", infer_inputs=[tensor], request_id="kserve-1"
            )
            response = await client.infer(base, request, model_name="bc")
            assert response.id == "kserve-1" and response.model_name == "bc"
            (predict,) = (o for o in response.outputs if o.name == "predict")
            np.testing.assert_array_equal(predict.as_numpy(), models.bc.predict(X))
            # the same through a dict body and set_data_from_numpy(binary_data=False)
            tensor = kserve.InferInput(name="input-0", shape=list(X.shape), datatype="FP64")
            tensor.set_data_from_numpy(X.to_numpy(), binary_data=False)
            request = kserve.InferRequest(model_name="bc", infer_inputs=[tensor])
            response = await client.infer(base, request, model_name="bc")
            np.testing.assert_array_equal(response.outputs[0].as_numpy(), models.bc.predict(X))
        finally:
            await client.close()

    asyncio.run(scenario())


def test_kserve_errors_carry_the_servers_message(bc: tuple[str, int], models: Models) -> None:
    kserve = _kserve()
    import httpx

    base = f"http://{bc[0]}:{bc[1]}"
    X = models.X.head(2)

    async def scenario() -> None:
        client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", timeout=10))
        try:
            binary = kserve.InferInput(name="input-0", shape=[2, 30], datatype="FP64")
            binary.set_data_from_numpy(X.to_numpy(), binary_data=True)
            request = kserve.InferRequest(model_name="bc", infer_inputs=[binary])
            with pytest.raises(httpx.HTTPStatusError, match="binary tensor data") as caught:
                await client.infer(base, request, model_name="bc")
            assert caught.value.response.status_code == 400
            plain = kserve.InferInput(
                name="input-0", shape=[2, 30], datatype="FP64", data=X.to_numpy().tolist()
            )
            request = kserve.InferRequest(model_name="nope", infer_inputs=[plain])
            with pytest.raises(httpx.HTTPStatusError, match="not served here") as caught:
                await client.infer(base, request, model_name="nope")
            assert caught.value.response.status_code == 404
        finally:
            await client.close()

    asyncio.run(scenario())


# --- MLflow's scoring client ---------------------------------------------------------------------


def _scoring_client(address: tuple[str, int]) -> Any:
    module = _client_module(
        "mlflow.pyfunc.scoring_server.client", "pip install mlflow-skinny (the test extra)"
    )
    return module.ScoringServerClient(*address)


def test_mlflow_scoring_client(bc: tuple[str, int], models: Models) -> None:
    client = _scoring_client(bc)
    client.wait_server_ready(timeout=10)
    assert client.get_version().strip()
    X = _rows(models)
    expected = models.bc.predict(X).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own deprecations, raised client side
        by_frame = client.invoke(X)  # dataframe_split
        by_array = client.invoke(X.to_numpy())  # inputs: a tensor batch
    assert by_frame.get_predictions()[0].tolist() == expected
    assert by_array["predictions"] == expected


def test_mlflow_scoring_client_mixed_types(mixed: tuple[str, int], models: Models) -> None:
    client = _scoring_client(mixed)
    frame = models.mixed_X.head(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answer = client.invoke(frame)
    assert answer["predictions"] == models.mixed.predict(frame).tolist()


def test_mlflow_scoring_client_bad_input_names_the_column(
    bc: tuple[str, int], models: Models
) -> None:
    client = _scoring_client(bc)
    frame = models.X.head(2).drop(columns=["worst area"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match="error code 400") as caught:
            client.invoke(frame)
    assert "worst area" in str(caught.value)
    assert "INVALID_PARAMETER_VALUE" in str(caught.value)


@pytest.mark.parametrize(
    "form", ["dataframe_split", "dataframe_records", "instances", "inputs", "csv", "parquet"]
)
def test_mlflow_body_forms_over_requests(bc: tuple[str, int], models: Models, form: str) -> None:
    """What MLflow users' own callers send, through ``requests``: each body form gives the
    model's predictions."""
    import io

    X = _rows(models)
    headers = {"Content-Type": "application/json"}
    body: Any
    if form == "dataframe_split":
        body = {"dataframe_split": X.to_dict(orient="split")}
    elif form == "dataframe_records":
        body = {"dataframe_records": X.to_dict(orient="records")}
    elif form == "instances":
        body = {"instances": X.to_numpy().tolist()}
    elif form == "inputs":
        body = {"inputs": X.to_dict(orient="list")}
    elif form == "csv":
        body, headers = X.to_csv(index=False), {"Content-Type": "text/csv"}
    else:
        buffer = io.BytesIO()
        X.to_parquet(buffer)
        body, headers = buffer.getvalue(), {"Content-Type": "application/vnd.apache.parquet"}
    url = f"http://{bc[0]}:{bc[1]}/invocations"
    if isinstance(body, dict):
        response = requests.post(url, json=body, timeout=10)
    else:
        response = requests.post(url, data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": models.bc.predict(X).tolist()}
