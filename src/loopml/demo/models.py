"""The model families the demo trains, their search spaces, and the tuning call.

Each family is a scikit-learn pipeline that takes the raw feature table (text categories and
numbers) so that the served model needs no preprocessing outside it: a logistic regression on
one-hot categories and standardised numbers, and a histogram gradient boosting on ordinal
category codes (categories it never saw get the code -1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loopml.demo.data import CATEGORICAL, NUMERIC
from loopml.errors import InvalidArgument

__all__ = ["FAMILIES", "Tuned", "build_model", "suggest", "tune"]

FAMILIES = ("logreg", "hgb")
"""The families trained, in order."""


def build_model(family: str, params: Mapping[str, Any], seed: int) -> Any:
    """An unfitted scikit-learn pipeline of ``family`` with ``params``.

    Raises:
        InvalidArgument: an unknown family.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if family == "logreg":
        from sklearn.linear_model import LogisticRegression

        prep = ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), CATEGORICAL),
                ("num", StandardScaler(), NUMERIC),
            ]
        )
        model = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=300)
        return Pipeline([("prep", prep), ("model", model)])
    if family == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        prep = ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    CATEGORICAL,
                ),
            ],
            remainder="passthrough",
        )
        # Categories as ordinal codes split like numbers: HGB's own categorical support adds
        # a functools.partial to the fitted model, which loopml's safe (skops) loading refuses.
        model = HistGradientBoostingClassifier(
            learning_rate=float(params.get("learning_rate", 0.1)),
            max_leaf_nodes=int(params.get("max_leaf_nodes", 31)),
            min_samples_leaf=int(params.get("min_samples_leaf", 20)),
            l2_regularization=float(params.get("l2_regularization", 0.0)),
            max_iter=int(params.get("max_iter", 100)),
            random_state=seed,
        )
        return Pipeline([("prep", prep), ("model", model)])
    raise InvalidArgument(f"unknown model family {family!r}; one of {', '.join(FAMILIES)}")


def suggest(trial: Any, family: str) -> dict[str, Any]:
    """Sample ``family``'s hyperparameters from a trial (Optuna's trial API)."""
    if family == "logreg":
        return {"C": trial.suggest_float("C", 1e-3, 10.0, log=True)}
    if family == "hgb":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 63, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 200, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10.0, log=True),
            "max_iter": trial.suggest_int("max_iter", 40, 120, step=40),
        }
    raise InvalidArgument(f"unknown model family {family!r}; one of {', '.join(FAMILIES)}")


@dataclass(frozen=True)
class Tuned:
    """A study's outcome: the best trial's params, value and run, the study's run, the
    number of trials, and which tuner ran it (``loopml.tune`` or plain Optuna)."""

    params: dict[str, Any]
    value: float
    run_id: str
    study_run_id: str | None
    trials: int
    tuner: str


def tune(
    objective: Callable[[Any], float],
    *,
    study_name: str,
    n_trials: int,
    seed: int,
    metric: str,
) -> Tuned:
    """Maximise ``objective`` (it takes an Optuna-style trial) over ``n_trials`` trials with
    ``loopml.tune`` (TPE, seeded; the study a run, each trial its child)."""
    from loopml.tuning import tune as loopml_tune

    result = loopml_tune(
        objective,
        n_trials=n_trials,
        direction="maximize",
        study_name=study_name,
        seed=seed,
        metric=metric,
    )
    return Tuned(
        dict(result.best_params),
        float(result.best_value),
        str(result.best_run_id),
        result.run_id,
        len(result.trials),
        "loopml.tune",
    )
