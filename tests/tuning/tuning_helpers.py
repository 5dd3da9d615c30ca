"""Objectives and checks shared by the tuning tests. Objectives live at module level so that
worker processes and Ray tasks import them by reference."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import loopml
from loopml.tuning import Trial, TrialPruned


def quadratic(trial: Trial) -> float:
    """Minimum 0 at x = 2, y = 0."""
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", 0, 10)
    return (x - 2) ** 2 + y


def noisy_logger(trial: Trial) -> float:
    """Logs 50 metric points and a tag from inside the objective (many writers at once).

    With ``TUNE_RENDEZVOUS`` set to a folder, trial 0 waits (up to 60 s) until a trial runs in
    another process, so that the workers provably overlap.
    """
    folder = os.environ.get("TUNE_RENDEZVOUS")
    if folder:
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while trial.number == 0 and len(os.listdir(folder)) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("no second worker showed up in 60 s")
            time.sleep(0.01)
    x = trial.suggest_float("x", -5, 5)
    for i in range(50):
        loopml.log_metric("inner", x * i, step=i)
    loopml.set_tag("worker_pid", os.getpid())
    loopml.flush()  # a write per trial from every worker, not only the final batch
    return x * x


def epochs(trial: Trial) -> float:
    """Reports 6 intermediate values and prunes when told: a bad ``x`` is bad from epoch 0."""
    x = trial.suggest_float("x", 0, 10)
    loss = 0.0
    for step in range(6):
        loss = x + 1.0 / (step + 1)
        trial.report(loss, step)
        if trial.should_prune():
            raise TrialPruned()
    return loss


def fails_on_big_x(trial: Trial) -> float:
    x = trial.suggest_float("x", 0, 1)
    if x > 0.5:
        raise ValueError(f"x={x} is too big")
    return x


def crash_at(trial: Trial) -> float:
    """Kills its own process (no cleanup at all) at trial ``CRASH_AT``."""
    x = trial.suggest_float("x", 0, 1)
    if trial.number == int(os.environ["CRASH_AT"]):
        os._exit(3)
    return x


def slow(trial: Trial) -> float:
    x = trial.suggest_float("x", 0, 1)
    time.sleep(0.05)
    return x


def params_of(run: Any) -> dict[str, str]:
    return dict(run.params)


def trial_runs(client: loopml.Client, study_run_id: str) -> list[Any]:
    """The trial runs of a study, by trial number."""
    runs = client.search_runs(None, f"parent_run_id = '{study_run_id}'", max_results=5000).items
    return sorted(runs, key=lambda r: int(r.tags["loopml.tune.trial"]))
