"""Pruning through intermediate values: reports become the trial run's metric series, the pruner
decides from every trial's reports, pruned trials end as killed runs tagged pruned."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from tuning_helpers import epochs, trial_runs

import loopml
from loopml.entities import RunStatus
from loopml.tuning import Float, Trial, TrialPruned, current_trial, tune


def test_reports_are_the_metric_series_and_bad_trials_are_pruned(client: loopml.Client) -> None:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    result = tune(epochs, n_trials=25, seed=0, pruner=pruner, metric="val_loss")
    assert result.count("pruned") > 0 and result.count("complete") > 3
    runs = {r.run_id: r for r in trial_runs(client, result.run_id)}
    for trial in result.trials:
        run = runs[trial.run_id]  # type: ignore[index]
        history = client.get_metric_history(run.run_id, "val_loss")
        reported = sorted(trial.intermediate_values.items())
        assert run.tags["loopml.tune.steps"] == str(len(reported))
        if trial.state == "complete":
            assert run.status is RunStatus.FINISHED
            assert len(reported) == 6
            # every report at its step, then the final value as the series' last point
            assert [(p.step, p.value) for p in history][:-1] == reported
            assert history[-1].step == 5 and history[-1].value == trial.value
            assert run.metrics["val_loss"] == trial.value
        else:
            assert trial.state == "pruned"
            assert run.status is RunStatus.KILLED
            assert run.tags["loopml.tune.state"] == "pruned"
            assert [(p.step, p.value) for p in history] == reported
            assert trial.value == reported[-1][1]  # Optuna keeps the last reported value
    assert result.best_trial.state == "complete"


def test_no_pruner_lets_every_trial_finish(store_uri: str) -> None:
    assert tune(epochs, n_trials=8, pruner="none").count("complete") == 8


def test_a_params_objective_reports_through_current_trial(client: loopml.Client) -> None:
    def objective(params: dict[str, Any]) -> float:
        trial = current_trial()
        for step in range(3):
            trial.report(params["x"] * (3 - step), step)
            if trial.should_prune():
                raise TrialPruned()
        return params["x"]

    result = tune(objective, {"x": Float(0, 1)}, n_trials=4, pruner="none")
    for t in result.trials:
        assert len(t.intermediate_values) == 3
        assert list(client.get_metric_history(t.run_id, "value").steps) == [0, 1, 2, 2]  # type: ignore[arg-type]


def test_a_step_reported_twice_keeps_its_first_value(
    client: loopml.Client, caplog: pytest.LogCaptureFixture
) -> None:
    def objective(trial: Trial) -> float:
        trial.report(1.0, 0)
        trial.report(2.0, 0)
        return 3.0

    result = tune(objective, n_trials=1)
    assert dict(result.trials[0].intermediate_values) == {0: 1.0}
    assert "reported step 0 twice" in caplog.text


@pytest.mark.parametrize(
    ("value", "step", "error"),
    [("x", 0, TypeError), (1.0, "a", TypeError), (1.0, -1, ValueError)],
)
def test_bad_reports_fail_the_trial(
    store_uri: str, value: Any, step: Any, error: type[Exception]
) -> None:
    def objective(trial: Trial) -> float:
        trial.report(value, step)
        return 1.0

    with pytest.raises(error):
        tune(objective, n_trials=1)
