"""Every flavor round-trips: save, load (a fresh object from the folder), equal predictions."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopml.errors import InvalidArgument, MissingExtra
from loopml.models import (
    FLAVORS,
    PythonModel,
    PythonModelContext,
    load_model,
    save_model,
    to_onnx,
)
from loopml.models.flavors import detect_flavor
from loopml.models.manifest import Manifest, hash_folder


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


def _round_trip(
    model: Any, folder: Path, example: Any, *, trusted: bool = False, **kwargs: Any
) -> Any:
    manifest = save_model(model, folder, input_example=example, **kwargs)
    predictor = load_model(folder, trusted=trusted)
    assert predictor.flavor == manifest.flavor
    assert predictor.native is not model
    return predictor


# --- scikit-learn --------------------------------------------------------------------------------


def test_sklearn_pipeline_on_a_dataframe(tmp_path: Path, iris: Any) -> None:
    X, y = iris
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    p = _round_trip(model, tmp_path / "m", X.head(5))
    assert p.flavor == "sklearn" and type(p.native).__name__ == "Pipeline"
    np.testing.assert_array_equal(p.predict(X), model.predict(X))
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X))
    assert p.manifest.flavor_options["file"] == "model.skops"
    np.testing.assert_array_equal(p.classes_, model.classes_)


def test_sklearn_mixed_columns_and_approved_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"plan": ["a", "b", "a", "c"] * 10, "x": np.arange(40.0), "y": [0, 1, 1, 0] * 10}
    )
    X, y = frame[["plan", "x"]], frame["y"]
    model = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
        ),
        HistGradientBoostingClassifier(max_iter=5),
    ).fit(X, y)
    p = _round_trip(model, tmp_path / "m", X.head(3))
    approved = p.manifest.flavor_options["trusted_types"]
    assert approved and all(t.startswith(("sklearn.", "numpy.")) for t in approved)
    np.testing.assert_array_equal(p.predict(X), model.predict(X))
    np.testing.assert_array_equal(p.predict(X.to_dict("records")), model.predict(X))


def test_sklearn_fitted_on_arrays(tmp_path: Path, diabetes: Any) -> None:
    X, y = diabetes[0].to_numpy(), diabetes[1].to_numpy()
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    p = _round_trip(model, tmp_path / "m", X[:5])
    assert p.signature.input_names == [str(i) for i in range(X.shape[1])]
    np.testing.assert_allclose(p.predict(X), model.predict(X))
    with pytest.raises(InvalidArgument, match="no predict_proba"):
        p.predict_proba(X)
    assert not p.has_predict_proba
    assert not hasattr(p, "classes_")


def test_sklearn_categorical_boosting_loads_without_trust(tmp_path: Path) -> None:
    """scikit-learn >= 1.9 keeps a functools.partial in such models: safe, not foreign."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from loopml.models import load_model, save_model

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 3, 300), rng.normal(size=300)])
    y = (X[:, 0] > 1).astype(int)
    model = HistGradientBoostingClassifier(categorical_features=[0], max_iter=5).fit(X, y)
    save_model(model, tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(X), model.predict(X))


# --- XGBoost -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_xgboost_classifier(tmp_path: Path, iris: Any, fmt: str) -> None:
    X, y = iris
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    p = _round_trip(model, tmp_path / "m", X.head(), flavor_options={"format": fmt})
    assert isinstance(p.native, xgboost.XGBClassifier)
    assert p.manifest.flavor_options["file"] == f"model.{fmt}"
    np.testing.assert_array_equal(p.predict(X), model.predict(X))
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X))


def test_xgboost_regressor_on_arrays_and_booster(tmp_path: Path, diabetes: Any) -> None:
    X, y = diabetes[0].to_numpy(), diabetes[1].to_numpy()
    model = xgboost.XGBRegressor(n_estimators=5).fit(X, y)
    p = _round_trip(model, tmp_path / "reg", X[:5])
    np.testing.assert_allclose(p.predict(X), model.predict(X), rtol=1e-6)
    booster = model.get_booster()
    b = _round_trip(booster, tmp_path / "booster", X[:5])
    assert isinstance(b.native, xgboost.Booster)
    np.testing.assert_allclose(b.predict(X), booster.predict(xgboost.DMatrix(X)), rtol=1e-6)
    assert b.manifest.flavor_options["class"] == "Booster"


# --- LightGBM ------------------------------------------------------------------------------------


def test_lightgbm_classifier_with_text_labels(tmp_path: Path, iris: Any) -> None:
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, labels)
    p = _round_trip(model, tmp_path / "m", X.head())
    assert isinstance(p.native, lightgbm.Booster)
    np.testing.assert_array_equal(p.predict(X), model.predict(X))
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(p.classes_, model.classes_)


def test_lightgbm_binary_regressor_and_booster(tmp_path: Path, diabetes: Any) -> None:
    X, y = diabetes
    binary = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y > y.median())
    p = _round_trip(binary, tmp_path / "bin", X.head())
    np.testing.assert_array_equal(p.predict(X), binary.predict(X))
    np.testing.assert_allclose(p.predict_proba(X), binary.predict_proba(X))
    reg = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y)
    r = _round_trip(reg, tmp_path / "reg", X.head())
    np.testing.assert_allclose(r.predict(X), reg.predict(X))
    b = _round_trip(reg.booster_, tmp_path / "booster", X.head())
    np.testing.assert_allclose(b.predict(X), reg.predict(X))


# --- ONNX ----------------------------------------------------------------------------------------


def test_onnx_from_sklearn_and_from_bytes(tmp_path: Path, iris: Any) -> None:
    X, y = iris
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    onx = to_onnx(model, X.head(50))
    p = _round_trip(onx, tmp_path / "proto", X.head())
    assert p.flavor == "onnx" and type(p.native).__name__ == "InferenceSession"
    np.testing.assert_array_equal(p.predict(X), model.predict(X))
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(p.classes_, model.classes_)
    raw = save_model(onx.SerializeToString(), tmp_path / "bytes", flavor="onnx")
    assert raw.signature is not None and raw.signature.input_names == ["X"]  # from the graph
    q = load_model(tmp_path / "bytes")
    np.testing.assert_array_equal(q.predict(X.to_numpy(np.float32)), model.predict(X))


# --- PythonModel and pickle ----------------------------------------------------------------------


class Scaled(PythonModel):
    """Multiplies column x by a factor read from an artifact file."""

    def load_context(self, context: PythonModelContext) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, context: PythonModelContext, data: Any) -> Any:
        return data["x"].to_numpy() * self.factor


class Thresholds:
    """A plain object with predict and predict_proba: saved with pickle."""

    def predict(self, data: Any) -> Any:
        return (np.asarray(data)[:, 0] > 0.5).astype(int)

    def predict_proba(self, data: Any) -> Any:
        p = np.clip(np.asarray(data)[:, 0], 0, 1)
        return np.column_stack([1 - p, p])


def test_python_model_with_artifacts(tmp_path: Path) -> None:
    factor = tmp_path / "factor.txt"
    factor.write_text("3")
    manifest = save_model(
        Scaled(), tmp_path / "m", input_example={"x": [1.0, 2.0]}, artifacts={"factor": factor}
    )
    assert manifest.flavor == "python" and "artifacts/factor/factor.txt" in manifest.files
    factor.write_text("100")  # the model keeps its own copy
    p = load_model(tmp_path / "m", trusted=True)
    np.testing.assert_allclose(p.predict({"x": [1.0, 5.0]}), [3.0, 15.0])


def test_pickle_flavor_is_the_last_resort(tmp_path: Path) -> None:
    assert detect_flavor(Thresholds()).name == "pickle"
    save_model(Thresholds(), tmp_path / "m", input_example=np.array([[0.2], [0.9]]))
    p = load_model(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(p.predict(np.array([[0.1], [0.7]])), [0, 1])
    np.testing.assert_allclose(p.predict_proba(np.array([[0.25]])), [[0.75, 0.25]])
    with pytest.raises(InvalidArgument, match="no predict method"):
        save_model(object(), tmp_path / "nothing")


# --- torch ---------------------------------------------------------------------------------------


def _torch_net() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def test_torch_exported_program(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = _torch_net().eval()
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    p = _round_trip(net, tmp_path / "m", x[:2], trusted=True)
    assert p.manifest.flavor_options["format"] == "exported_program"
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(p.predict(x), want, rtol=1e-5)  # another batch size than traced


def test_torch_torchscript_and_pickle(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = _torch_net().eval()
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        scripted = torch.jit.script(net)
    s = _round_trip(scripted, tmp_path / "ts", x, trusted=True)
    assert s.manifest.flavor_options["format"] == "torchscript"
    np.testing.assert_allclose(s.predict(x), want, rtol=1e-5)
    p = _round_trip(net, tmp_path / "pkl", x, flavor_options={"format": "pickle"}, trusted=True)
    assert p.manifest.flavor_options["format"] == "pickle"
    np.testing.assert_allclose(p.predict(x), want, rtol=1e-5)


def test_torch_module_needs_an_example_to_export(tmp_path: Path) -> None:
    net = _torch_net()
    with pytest.raises(InvalidArgument, match="input_example"):
        save_model(net, tmp_path / "m")


# --- detection and missing extras ----------------------------------------------------------------


def test_flavor_detection_prefers_the_specific_flavor(iris: Any) -> None:
    X, y = iris
    assert detect_flavor(xgboost.XGBRegressor()).name == "xgboost"
    assert detect_flavor(lightgbm.LGBMRegressor()).name == "lightgbm"
    assert detect_flavor(LinearRegression()).name == "sklearn"
    assert detect_flavor(Scaled()).name == "python"
    assert list(FLAVORS) == ["xgboost", "lightgbm", "onnx", "torch", "python", "sklearn", "pickle"]
    with pytest.raises(InvalidArgument, match="not a loopml flavor"):
        save_model(LinearRegression().fit(X, y), "unused", flavor="keras")


def test_missing_framework_names_the_extra(
    tmp_path: Path, iris: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    save_model(xgboost.XGBClassifier(n_estimators=2).fit(X, y), tmp_path / "m")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # as if it were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'loopml\[xgboost\]'"):
        load_model(tmp_path / "m")


def test_missing_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.pt2").write_bytes(b"not read")
    Manifest(
        flavor="torch",
        flavor_options={"file": "model.pt2", "format": "exported_program"},
        files=hash_folder(folder),
        requirements={},
    ).write(folder)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtra, match=r"pip install 'loopml\[torch\]'"):
        load_model(folder, trusted=True)
