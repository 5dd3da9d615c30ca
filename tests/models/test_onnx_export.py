"""to_onnx: skl2onnx conversion checked against scikit-learn, then logged and loaded as ONNX."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopml.errors import InvalidArgument
from loopml.models import load_model, save_model, to_onnx

pytest.importorskip("skl2onnx")


class Majority(ClassifierMixin, BaseEstimator):
    """An estimator skl2onnx has no converter for."""

    def fit(self, X: Any, y: Any) -> Majority:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


def test_numeric_dataframe_pipeline(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    onx = to_onnx(model, X)
    assert [i.name for i in onx.graph.input] == ["X"]
    assert [o.name for o in onx.graph.output] == ["label", "probabilities"]
    save_model(onx, tmp_path / "m", input_example=X.head(3))
    p = load_model(tmp_path / "m")  # no trust needed
    assert p.flavor == "onnx"
    np.testing.assert_array_equal(p.predict(X), model.predict(X))
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X), atol=1e-4)


def test_arrays_and_regressors(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X, y)
    onx = to_onnx(model, X[:20])
    save_model(onx, tmp_path / "m")
    p = load_model(tmp_path / "m")
    np.testing.assert_allclose(
        p.predict(X.astype(np.float32)).ravel(), model.predict(X), rtol=1e-4
    )
    assert not p.has_predict_proba
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y > 140)
    to_onnx(forest, X[:30])


def test_text_columns_become_one_input_each(tmp_path: Path) -> None:
    frame = pd.DataFrame({"plan": ["a", "b", "c", "a"] * 10, "x": np.linspace(0, 1, 40)})
    y = (frame["x"] > 0.5) | (frame["plan"] == "c")
    model = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
        ),
        LogisticRegression(),
    ).fit(frame, y)
    onx = to_onnx(model, frame)
    assert [i.name for i in onx.graph.input] == ["plan", "x"]
    manifest = save_model(onx, tmp_path / "m", input_example=frame.head(4))
    assert manifest.flavor_options["input_columns"] == ["plan", "x"]
    p = load_model(tmp_path / "m")
    np.testing.assert_array_equal(p.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(p.predict(frame[["x", "plan"]]), model.predict(frame))


def test_disagreement_is_a_clear_error() -> None:
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():  # whether lbfgs converges on raw-scale data varies by BLAS
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=500).fit(X * 1e3, y)
    with pytest.raises(InvalidArgument, match="disagrees with scikit-learn") as info:
        to_onnx(model, X * 1e3, rtol=0.0, atol=0.0)  # float32 cannot match float64 exactly
    assert "row" in str(info.value) and "rtol" in str(info.value)


def test_unconvertible_models_are_a_clear_error() -> None:
    X, y = load_iris(return_X_y=True)
    with pytest.raises(InvalidArgument, match="skl2onnx cannot convert Majority"):
        to_onnx(Majority().fit(X, y), X)
    with pytest.raises(InvalidArgument, match="2-D"):
        to_onnx(LogisticRegression(max_iter=500).fit(X, y), X[0])
