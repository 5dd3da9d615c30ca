"""The training pipeline: select the rows, check them, tune each model family, compare the
families, and register the best, as ``@loopml.step`` s of one ``@loopml.pipeline``.

The same pipeline trains the first champion (January to April) and, called by the
continuous-training loop through :func:`retrain` (``loopml.demo.train:retrain``), every
challenger (the most recent labelled weeks).
"""

from __future__ import annotations

from typing import Any

import loopml
from loopml.demo.data import FEATURES, TARGET, TIME
from loopml.demo.models import FAMILIES, build_model, suggest, tune

__all__ = [
    "MODEL",
    "check_quality",
    "register_best",
    "retrain",
    "select_rows",
    "training",
    "tune_family",
]

MODEL = "flight-delays"
"""The registered model's name."""
METRIC = "roc_auc"
"""What tuning maximises and what the families are compared on (accuracy at a 0.5 threshold
mostly measures the base rate of delays)."""


@loopml.step(outputs=("train", "holdout"))
def select_rows(
    source: str,
    start: str | None,
    end: str | None,
    holdout_days: int,
    max_rows: int,
    seed: int,
) -> tuple[Any, Any]:
    """The rows of ``source`` in ``[start, end)`` (dates, UTC; None: unbounded), split in time:
    the last ``holdout_days`` days are held out, the rest is sampled down to ``max_rows``."""
    import pandas as pd

    frame = loopml.load_dataset(source, role="source")
    when = frame[TIME]
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= when >= pd.Timestamp(start, tz="UTC")
    if end is not None:
        keep &= when < pd.Timestamp(end, tz="UTC")
    frame = frame[keep]
    if frame.empty:
        raise ValueError(f"{source} has no rows between {start} and {end}")
    cut = frame[TIME].max().normalize() - pd.Timedelta(days=holdout_days - 1)
    train, holdout = frame[frame[TIME] < cut], frame[frame[TIME] >= cut]
    if len(train) > max_rows:
        train = train.sample(max_rows, random_state=seed).sort_values(TIME, kind="stable")
    loopml.log_metrics({"train_rows": len(train), "holdout_rows": len(holdout)})
    cols = [*FEATURES, TARGET]
    return train[cols].reset_index(drop=True), holdout[cols].reset_index(drop=True)


@loopml.step
def check_quality(train: Any, holdout: Any) -> dict[str, str]:
    """The quality checks on the holdout against the training rows (leakage between them
    included); a required check that fails stops the pipeline."""
    from loopml.data.checks import run_checks

    report = run_checks(
        holdout, target=TARGET, reference=train, name="holdout", raise_on_failure=True
    )
    return {r.name: str(r.severity) for r in report}


@loopml.step
def tune_family(
    train: Any, family: str, n_trials: int, tune_rows: int, seed: int
) -> dict[str, Any]:
    """Tune one family: each trial fits on 75 % of (a sample of ``tune_rows`` of) the training
    rows and is scored (ROC AUC) on the other 25 %."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    rows = train.sample(min(tune_rows, len(train)), random_state=seed)
    fit, val = train_test_split(rows, test_size=0.25, random_state=seed, stratify=rows[TARGET])

    def objective(trial: Any) -> float:
        model = build_model(family, suggest(trial, family), seed)
        model.fit(fit[FEATURES], fit[TARGET])
        return float(roc_auc_score(val[TARGET], model.predict_proba(val[FEATURES])[:, 1]))

    found = tune(
        objective,
        # one study per training: a retrain on new data must not resume the old study
        study_name=f"{family}-{seed}-{_run_tag()}",
        n_trials=n_trials,
        seed=seed,
        metric=METRIC,
    )
    loopml.log_metric(METRIC, found.value)
    return {
        "family": family,
        "params": found.params,
        METRIC: found.value,
        "run_id": found.run_id,
        "study_run_id": found.study_run_id,
        "trials": found.trials,
        "tuner": found.tuner,
    }


@loopml.step(cache=False)
def register_best(
    train: Any,
    holdout: Any,
    results: list[dict[str, Any]],
    quality: dict[str, str],
    model_name: str,
    train_name: str,
    seed: int,
) -> dict[str, Any]:
    """Compare the families' best trials, refit the winner on all training rows, log the data
    it saw (``train``, ``validation``) and register it. Returns the version's URI and what
    decided it."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    client = loopml.get_client()
    table = client.compare_runs([r["run_id"] for r in results]).to_pandas()
    scores = {r["family"]: float(r[METRIC]) for r in results}
    best = max(results, key=lambda r: float(r[METRIC]))
    loopml.log_dict(
        {"families": results, "comparison": table.astype(str).to_dict(orient="list")},
        "comparison.json",
    )
    loopml.log_params({"family": best["family"], **best["params"]})
    train_version = loopml.log_dataset(
        train, train_name, role="train", target=TARGET, description="rows the model was fit on"
    )
    holdout_version = loopml.log_dataset(
        holdout,
        "flights-holdout",
        role="validation",
        target=TARGET,
        description="the latest days of the window, held out",
    )
    model = build_model(best["family"], best["params"], seed)
    model.fit(train[FEATURES], train[TARGET])
    proba = model.predict_proba(holdout[FEATURES])[:, 1]
    metrics = {
        "holdout_accuracy": float(accuracy_score(holdout[TARGET], proba > 0.5)),
        "holdout_roc_auc": float(roc_auc_score(holdout[TARGET], proba)),
        "holdout_delay_rate": float(holdout[TARGET].mean()),
    }
    loopml.log_metrics(metrics)
    info = loopml.log_model(
        model,
        input_example=train[FEATURES].head(5),
        registered_model_name=model_name,
    )
    version = info.registered_version
    assert version is not None
    del quality  # an input so that the checks run (and pass) before anything is registered
    return {
        "model_uri": f"models:/{model_name}/{version.version}",
        "version": int(version.version),
        "family": best["family"],
        "params": best["params"],
        "scores": scores,
        "train": train_version.uri,
        "holdout": holdout_version.uri,
        "tuner": best["tuner"],
        **metrics,
    }


@loopml.pipeline
def training(
    source: str,
    start: str | None = None,
    end: str | None = None,
    holdout_days: int = 7,
    max_rows: int = 30_000,
    n_trials: int = 5,
    tune_rows: int = 16_000,
    families: list[str] | None = None,
    model_name: str = MODEL,
    train_name: str = "flights-train",
    seed: int = 0,
) -> Any:
    """Train, tune, compare and register a delay model on a window of a flights dataset."""
    train, holdout = select_rows(source, start, end, holdout_days, max_rows, seed)
    quality = check_quality(train, holdout)
    results = [
        tune_family(train, family=f, n_trials=n_trials, tune_rows=tune_rows, seed=seed)
        for f in (families or list(FAMILIES))
    ]
    return register_best(
        train,
        holdout,
        results,
        quality,
        model_name=model_name,
        train_name=train_name,
        seed=seed,
    )


def _run_tag() -> str:
    """The active run's id, short (the pipeline step's run when training runs in a pipeline)."""
    run = loopml.active_run()
    return run.run_id[:8] if run is not None else "adhoc"


def retrain(
    dataset: str = "flights-recent",
    holdout_days: int = 5,
    max_rows: int = 30_000,
    n_trials: int = 5,
    tune_rows: int = 16_000,
    families: list[str] | None = None,
    model_name: str = MODEL,
    seed: int = 0,
    project: str | None = None,
) -> str:
    """The continuous-training loop's training entry (``loopml.demo.train:retrain``): run the
    training pipeline on the newest version of ``dataset`` (the latest labelled weeks).

    Returns:
        The registered version's ``models:/`` URI.
    """
    version = loopml.get_dataset(f"datasets:/{dataset}@latest", project=project)
    result = training.run(
        source=version.uri,  # pinned: the cache must see a new version as a new input
        holdout_days=holdout_days,
        max_rows=max_rows,
        n_trials=n_trials,
        tune_rows=tune_rows,
        families=families,
        model_name=model_name,
        train_name=f"{dataset}-train",
        seed=seed,
        project=project,
        quiet=True,
    )
    return str(result.output["model_uri"])
