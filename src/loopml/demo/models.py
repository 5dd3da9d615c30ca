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
    """Maximise ``objective`` (it takes an Optuna-style trial) over ``n_trials`` trials, each a
    child run of the active run.

    Uses ``loopml.tune`` (TPE, trials as child runs). Where this loopml has no ``loopml.tune``
    yet, runs the same objective through Optuna directly, logging each trial as a child run
    itself, and says so in ``tuner``.
    """
    import loopml

    tuner = getattr(loopml, "tune", None)
    if tuner is None:
        try:
            from loopml.tuning import tune as tuner
        except ImportError:  # a loopml without the tuning package yet
            tuner = None
    if tuner is not None:
        import inspect

        from optuna.samplers import TPESampler

        wanted: dict[str, Any] = {
            "n_trials": n_trials,
            "direction": "maximize",
            "sampler": TPESampler(seed=seed),
            "study_name": study_name,
            "seed": seed,
            "metric": metric,
        }
        accepted = inspect.signature(tuner).parameters
        result = tuner(objective, **{k: v for k, v in wanted.items() if k in accepted})
        return Tuned(
            dict(result.best_params),
            float(result.best_value),
            str(result.best_run_id),
            getattr(result, "run_id", None),
            len(result.trials),
            "loopml.tune",
        )
    return _tune_with_optuna(objective, study_name, n_trials, seed, metric)


def _tune_with_optuna(
    objective: Callable[[Any], float], study_name: str, n_trials: int, seed: int, metric: str
) -> Tuned:
    import logging

    import optuna

    import loopml

    logging.getLogger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
    )
    run_ids: dict[int, str] = {}

    def traced(trial: optuna.Trial) -> float:
        with loopml.start_run(f"{study_name}-{trial.number}", nested=True) as run:
            run_ids[trial.number] = run.run_id
            value = objective(trial)
            loopml.log_params(trial.params)
            loopml.log_metric(metric, value)
            return value

    study.optimize(traced, n_trials=n_trials)
    best = study.best_trial
    return Tuned(
        dict(best.params),
        float(best.value or 0.0),
        run_ids[best.number],
        None,
        len(study.trials),
        "optuna (loopml.tune not available)",
    )
