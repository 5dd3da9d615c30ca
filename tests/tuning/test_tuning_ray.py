"""Trials as Ray tasks on a local cluster started by the test, connecting back to the driver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from tuning_helpers import epochs, noisy_logger, trial_runs

import loopml
from loopml.entities import RunStatus
from loopml.tuning import tune

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_tasks_run_trials_against_one_study_and_store(
    ray_cluster: Any, client: loopml.Client
) -> None:
    result = tune(noisy_logger, n_trials=12, n_jobs=2, executor="ray", seed=0)
    assert len(result) == 12 and result.count("complete") == 12
    runs = trial_runs(client, result.run_id)
    assert all(r.status is RunStatus.FINISHED for r in runs)
    assert str(os.getpid()) not in {r.tags["worker_pid"] for r in runs}
    for run in runs:
        assert len(client.get_metric_history(run.run_id, "inner")) == 50
    assert ray_cluster.is_initialized()  # a cluster we did not start is left running

    pruned = tune(epochs, n_trials=10, n_jobs=2, executor="ray", seed=1, study_name="r")
    assert len(pruned) == 10
    again = tune(epochs, n_trials=12, n_jobs=2, executor="ray", seed=1, study_name="r")
    assert [t.number for t in again.trials] == list(range(12))
