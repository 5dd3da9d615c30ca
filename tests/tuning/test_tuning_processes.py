"""Parallel trials in worker processes, all writing to one SQLite file: no "database is locked",
one study for the sampler and the pruner, errors and crashes of workers reported, objectives
that cannot be sent refused up front."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import optuna
import pytest
from tuning_helpers import crash_at, epochs, fails_on_big_x, noisy_logger, trial_runs

import loopml
from loopml.entities import RunStatus
from loopml.errors import InvalidArgument, LoopError
from loopml.tuning import Trial, tune


def test_worker_processes_share_the_study_and_the_sqlite_store(
    client: loopml.Client,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "rdv").mkdir()
    monkeypatch.setenv("TUNE_RENDEZVOUS", str(tmp_path / "rdv"))
    result = tune(noisy_logger, n_trials=24, n_jobs=2, executor="processes", seed=0)
    assert len(result) == 24 and result.count("complete") == 24
    runs = trial_runs(client, result.run_id)
    assert len(runs) == 24 and all(r.status is RunStatus.FINISHED for r in runs)
    pids = {r.tags["worker_pid"] for r in runs}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    for run, trial in zip(runs, result.trials, strict=True):
        assert len(client.get_metric_history(run.run_id, "inner")) == 50
        assert run.metrics["value"] == trial.value == trial.params["x"] ** 2
    assert "locked" not in caplog.text
    assert client.get_run(result.run_id).tags["loopml.tune.executor"] == "processes x2"


def test_pruning_decisions_come_from_the_driver(client: loopml.Client) -> None:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    result = tune(epochs, n_trials=16, n_jobs=2, executor="processes", pruner=pruner, seed=1)
    assert result.count("pruned") > 0
    for t in result.trials:
        points = client.get_metric_history(t.run_id, "value")  # type: ignore[arg-type]
        assert len(points) == len(t.intermediate_values) + (t.state == "complete")


def test_an_objective_error_in_a_worker_is_raised_here(store_uri: str) -> None:
    with pytest.raises(ValueError, match="too big") as info:
        tune(fails_on_big_x, n_trials=20, executor="processes", seed=0)
    assert any("in worker process" in note for note in info.value.__notes__)


def test_a_worker_that_dies_fails_its_trial(client: loopml.Client) -> None:
    os.environ["CRASH_AT"] = "2"
    try:
        with pytest.raises(LoopError, match="died while running trial 2"):
            tune(crash_at, n_trials=5, executor="processes", study_name="dies")
    finally:
        del os.environ["CRASH_AT"]
    study = next(iter(client.search_runs("default", "name = 'dies'")))
    assert study.status is RunStatus.FAILED
    runs = trial_runs(client, study.run_id)
    assert runs[2].status is RunStatus.FAILED and "died" in runs[2].tags["loopml.error"]


def test_an_unpicklable_objective_is_refused_before_anything_runs(client: loopml.Client) -> None:
    lock = threading.Lock()

    def objective(trial: Trial) -> float:
        with lock:
            return trial.suggest_float("x", 0, 1)

    with pytest.raises(InvalidArgument, match=r"not picklable.*executor='local'"):
        tune(objective, n_trials=2, executor="processes")
    assert client.list_projects() == []  # nothing was written


def test_an_in_memory_store_cannot_be_shared_with_workers() -> None:
    with pytest.raises(InvalidArgument, match="in-memory store"):
        tune(noisy_logger, n_trials=1, executor="processes", client=loopml.Client("memory://"))


def test_a_worker_that_cannot_import_the_objective_says_so(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "vanishing_objective.py").write_text(
        "def objective(trial):\n    return trial.suggest_float('x', 0, 1)\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    import vanishing_objective

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(folder)])
    (folder / "vanishing_objective.py").unlink()
    try:
        with pytest.raises(InvalidArgument, match=r"could not load the objective.*importable"):
            tune(vanishing_objective.objective, n_trials=2, executor="processes")
    finally:
        sys.modules.pop("vanishing_objective", None)
