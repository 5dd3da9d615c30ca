"""Resuming a study by name: earlier trials reloaded into Optuna from the store, n_trials as the
study's total, trials left running by a crashed process marked interrupted, and the refusals
(another live process, another direction or metric, resume=False)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from tuning_helpers import crash_at, epochs, quadratic, trial_runs

import loopml
from loopml.entities import RunStatus
from loopml.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from loopml.tuning import Trial, load_study, tune

HERE = Path(__file__).resolve().parent


def test_running_again_continues_the_study(client: loopml.Client) -> None:
    first = tune(quadratic, n_trials=5, seed=0, study_name="again")
    second = tune(quadratic, n_trials=8, seed=0, study_name="again")
    assert second.run_id == first.run_id
    assert [t.number for t in second.trials] == list(range(8))
    assert [t.run_id for t in second.trials[:5]] == [t.run_id for t in first.trials]
    assert [t.params for t in second.trials[:5]] == [t.params for t in first.trials]
    assert len(trial_runs(client, first.run_id)) == 8
    study = client.get_run(first.run_id)
    assert study.status is RunStatus.FINISHED and study.tags["loopml.tune.trials"] == "8"
    # the sampler saw the old trials: Optuna's study holds them with their values
    frozen = second.study.trials
    assert [t.value for t in frozen[:5]] == [t.value for t in first.trials]
    assert all(t.state is optuna.trial.TrialState.COMPLETE for t in frozen)
    assert second.best_value <= first.best_value


def test_a_finished_study_is_returned_as_it_is(client: loopml.Client) -> None:
    first = tune(quadratic, n_trials=4, study_name="done")
    end = client.get_run(first.run_id).end_time
    again = tune(quadratic, n_trials=4, study_name="done")
    assert [t.run_id for t in again.trials] == [t.run_id for t in first.trials]
    assert client.get_run(first.run_id).end_time == end  # untouched


def test_reloaded_trials_keep_params_intermediate_values_and_attrs(client: loopml.Client) -> None:
    def objective(trial: Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b", None, 3, 2.5, True])
        n = trial.suggest_int("n", 1, 64, log=True)
        trial.set_user_attr("note", {"kind": str(kind)})
        return float(epochs(trial)) + n

    first = tune(objective, n_trials=6, seed=2, study_name="rich", pruner="none")
    loaded = load_study("rich")
    assert loaded.run_id == first.run_id and loaded.direction == "minimize"
    for a, b in zip(first.trials, loaded.trials, strict=True):
        assert a.params == b.params and type(a.params["kind"]) is type(b.params["kind"])
        assert a.value == b.value and a.state == b.state and a.run_id == b.run_id
        assert a.intermediate_values == b.intermediate_values
        assert b.user_attrs == {"note": {"kind": str(a.params["kind"])}}
    assert loaded.best_trial.number == first.best_trial.number


def _crash_script(uri: str, tmp: Path) -> str:
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import loopml
        import loopml.tuning
        from tuning_helpers import crash_at
        loopml.set_tracking_uri({uri!r})
        loopml.tuning.tune(crash_at, n_trials=10, study_name="crashy", seed=0)
        """
    )


def test_a_crashed_study_resumes_and_marks_its_running_trial(
    client: loopml.Client, store_uri: str, tmp_path: Path
) -> None:
    env = {**os.environ, "CRASH_AT": "4"}
    proc = subprocess.run(
        [sys.executable, "-c", _crash_script(store_uri, tmp_path)], env=env, timeout=120
    )
    assert proc.returncode == 3
    study = next(iter(client.search_runs("default", "name = 'crashy'")))
    assert study.status is RunStatus.RUNNING  # nobody ended it
    before = trial_runs(client, study.run_id)
    assert [r.status for r in before] == [RunStatus.FINISHED] * 4 + [RunStatus.RUNNING]

    os.environ["CRASH_AT"] = "-1"
    try:
        result = tune(crash_at, n_trials=10, study_name="crashy", seed=0)
    finally:
        del os.environ["CRASH_AT"]
    # 4 complete + 1 interrupted (not counted) + 6 new = 10 counted
    assert len(result) == 11 and result.count("complete") == 10
    assert result.trials[4].state == "interrupted" and result.trials[4].value is None
    crashed = client.get_run(before[4].run_id)
    assert crashed.status is RunStatus.FAILED
    assert crashed.tags["loopml.tune.state"] == "interrupted"
    assert "interrupted" in crashed.tags["loopml.failure_reason"]
    assert client.get_run(study.run_id).status is RunStatus.FINISHED


def test_a_study_another_live_process_tunes_is_refused(store_uri: str) -> None:
    def objective(trial: Trial) -> float:
        tune(quadratic, n_trials=1, study_name="busy")  # this process is tuning it right now
        return 1.0

    with pytest.raises(Conflict, match="is being tuned by process"):
        tune(objective, n_trials=1, study_name="busy")


def test_resume_refusals(store_uri: str) -> None:
    tune(quadratic, n_trials=1, study_name="fixed", metric="loss")
    with pytest.raises(AlreadyExists, match="pass resume=True"):
        tune(quadratic, n_trials=2, study_name="fixed", metric="loss", resume=False)
    with pytest.raises(InvalidArgument, match="direction='minimize', not 'maximize'"):
        tune(quadratic, n_trials=2, study_name="fixed", metric="loss", direction="maximize")
    with pytest.raises(InvalidArgument, match="metric='loss', not 'value'"):
        tune(quadratic, n_trials=2, study_name="fixed")
    with pytest.raises(NotFound, match="study 'nope' does not exist in project 'default'"):
        load_study("nope")
    # the same name in another project is another study
    assert len(tune(quadratic, n_trials=2, study_name="fixed", project="other")) == 2


def test_a_trial_whose_run_is_gone_resumes_as_a_failed_placeholder(client: loopml.Client) -> None:
    first = tune(quadratic, n_trials=4, seed=0, study_name="holes")
    client.delete_run(first.trials[1].run_id)  # type: ignore[arg-type]
    loaded = load_study("holes")
    assert [t.state for t in loaded.trials] == ["complete", "fail", "complete", "complete"]
    assert loaded.trials[1].run_id is None
    again = tune(quadratic, n_trials=5, seed=0, study_name="holes")
    assert [t.number for t in again.trials] == [0, 1, 2, 3, 4, 5]  # numbers never reused
    assert again.trials[5].run_id is not None
