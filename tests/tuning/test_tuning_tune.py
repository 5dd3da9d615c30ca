"""loopml.tune in this process: what the store holds for a study and its trials, both objective
styles, samplers and seeds, failures, and the errors bad arguments get."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from tuning_helpers import fails_on_big_x, quadratic, trial_runs

import loopml
from loopml.entities import RunStatus
from loopml.errors import InvalidArgument, NoActiveRun
from loopml.tuning import Categorical, Float, Int, Trial, current_trial, tune


def test_every_trial_is_a_child_run_with_params_value_and_state(client: loopml.Client) -> None:
    result = tune(quadratic, n_trials=12, seed=1, study_name="quad")
    assert len(result) == 12 and result.count("complete") == 12
    study = client.get_run(result.run_id)
    assert study.name == "quad" and study.status is RunStatus.FINISHED
    assert study.tags["loopml.tune.role"] == "study"
    assert study.tags["loopml.tune.direction"] == "minimize"
    assert study.tags["loopml.tune.sampler"] == "TPESampler"
    assert study.environment_id is not None  # captured once, on the study
    runs = trial_runs(client, result.run_id)
    assert [r.name for r in runs] == [f"quad/trial-{i}" for i in range(12)]
    for run, trial in zip(runs, result.trials, strict=True):
        assert run.run_id == trial.run_id
        assert run.status is RunStatus.FINISHED
        assert run.environment_id is None  # not captured per trial
        assert run.tags["loopml.tune.state"] == "complete"
        assert float(run.params["x"]) == trial.params["x"]
        assert int(run.params["y"]) == trial.params["y"]
        assert (
            run.metrics["value"] == trial.value == (trial.params["x"] - 2) ** 2 + trial.params["y"]
        )
    best = result.best_trial
    assert best.value == min(t.value for t in result.trials if t.value is not None)
    assert result.best_run_id == best.run_id and result.best_params == dict(best.params)
    assert study.tags["loopml.tune.best_run_id"] == best.run_id
    assert study.metrics["best_value"] == best.value
    history = client.get_metric_history(result.run_id, "best_value")
    assert list(history.values) == sorted(history.values, reverse=True)  # improvements only
    assert history.steps[-1] == best.number


def test_logging_inside_the_objective_lands_in_the_trial_run(client: loopml.Client) -> None:
    seen: list[tuple[str, str | None]] = []

    def objective(trial: Trial) -> float:
        active = loopml.active_run()
        assert active is not None
        seen.append((active.run_id, active.run.parent_run_id))
        loopml.log_metric("train_loss", 1.0 / (trial.number + 1))
        loopml.set_tag("note", f"trial {trial.number}")
        return trial.suggest_float("lr", 1e-4, 1e-1, log=True)

    result = tune(objective, n_trials=3, metric="val_loss")
    assert loopml.active_run() is None
    for (run_id, parent), trial in zip(seen, result.trials, strict=True):
        assert run_id == trial.run_id and parent == result.run_id
        run = client.get_run(run_id)
        assert run.tags["note"] == f"trial {trial.number}"
        assert run.metrics["val_loss"] == trial.value
        assert run.metrics["train_loss"] == 1.0 / (trial.number + 1)


def test_a_study_inside_an_active_run_is_its_child(client: loopml.Client) -> None:
    with loopml.start_run(name="experiment") as outer:
        result = tune(quadratic, n_trials=2)
        assert loopml.active_run() is outer
    assert client.get_run(result.run_id).parent_run_id == outer.run_id


def test_a_declarative_space_as_a_dict_or_as_keyword_arguments(client: loopml.Client) -> None:
    space = {
        "lr": Float(1e-4, 1e-1, log=True),
        "depth": Int(2, 10),
        "kind": Categorical(["rf", "gbm"]),
    }
    got: list[dict[str, Any]] = []

    def as_dict(params: dict[str, Any]) -> float:
        got.append(params)
        return params["lr"] * params["depth"]

    result = tune(as_dict, space, n_trials=5, seed=0)
    assert [dict(t.params) for t in result.trials] == got
    for params in got:
        assert 1e-4 <= params["lr"] <= 1e-1 and params["depth"] in range(2, 11)
        assert params["kind"] in ("rf", "gbm")
    run = client.get_run(result.trials[0].run_id)
    assert set(run.params) == {"lr", "depth", "kind"}
    assert "lr" in client.get_run(result.run_id).tags["loopml.tune.space"]

    def as_kwargs(lr: float, depth: int, kind: str, trial: Trial) -> float:
        assert trial.params == {"lr": lr, "depth": depth, "kind": kind}
        assert current_trial() is trial
        return lr

    assert tune(as_kwargs, space, n_trials=3).count("complete") == 3

    def with_trial(trial: Trial) -> float:  # the space is sampled; suggest returns the same
        return trial.suggest_float("lr", 1e-4, 1e-1, log=True) + trial.params["depth"]

    result = tune(with_trial, space, n_trials=2)
    assert all(t.value == t.params["lr"] + t.params["depth"] for t in result.trials)


def test_a_seed_makes_the_search_repeatable(store_uri: str) -> None:
    a = tune(quadratic, n_trials=15, seed=7)
    b = tune(quadratic, n_trials=15, seed=7)
    c = tune(quadratic, n_trials=15, seed=8)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.params for t in a.trials] != [t.params for t in c.trials]


def test_maximize_and_named_samplers_and_sampler_objects(store_uri: str) -> None:
    def objective(trial: Trial) -> float:
        return -((trial.suggest_float("x", -3, 3) - 1) ** 2)

    result = tune(objective, n_trials=20, direction="maximize", sampler="random", seed=3)
    assert result.best_value == max(t.value for t in result.trials if t.value is not None)
    sampler = optuna.samplers.RandomSampler(seed=3)
    again = tune(objective, n_trials=20, direction="maximize", sampler=sampler)
    assert [t.params for t in again.trials] == [t.params for t in result.trials]
    assert tune(objective, n_trials=2, pruner="none").count("complete") == 2


def test_timeout_stops_starting_trials(store_uri: str) -> None:
    def objective(trial: Trial) -> float:
        import time

        time.sleep(0.05)
        return trial.suggest_float("x", 0, 1)

    result = tune(objective, timeout=0.3)
    assert 1 <= len(result) <= 10


def test_an_exception_fails_the_trial_and_the_study_and_is_raised(client: loopml.Client) -> None:
    with pytest.raises(ValueError, match="too big") as info:
        tune(fails_on_big_x, n_trials=50, seed=0, study_name="boom")
    assert any("catch=" in note for note in info.value.__notes__)
    study = next(iter(client.search_runs("default", "name = 'boom'")))
    assert study.status is RunStatus.FAILED
    assert "too big" in study.tags["loopml.error"]
    runs = trial_runs(client, study.run_id)
    assert runs[-1].status is RunStatus.FAILED
    assert runs[-1].tags["loopml.tune.state"] == "fail"
    assert "too big" in runs[-1].tags["loopml.error"]
    assert all(r.status is RunStatus.FINISHED for r in runs[:-1])


def test_catch_records_failures_and_goes_on(client: loopml.Client) -> None:
    result = tune(fails_on_big_x, n_trials=20, seed=0, catch=(ValueError,))
    assert len(result) == 20
    assert result.count("fail") > 0 and result.count("complete") > 0
    assert all(t.value is None for t in result.trials if t.state == "fail")
    assert client.get_run(result.run_id).status is RunStatus.FINISHED


def test_nan_or_a_non_number_fails_only_that_trial(store_uri: str) -> None:
    def objective(trial: Trial) -> Any:
        trial.suggest_int("x", 0, 2)
        return [math.nan, "oops", 1.5][trial.number % 3]

    result = tune(objective, n_trials=6)
    assert [t.state for t in result.trials] == ["fail", "fail", "complete"] * 2
    failed = result.trials[1]
    run = loopml.get_client().get_run(failed.run_id)
    assert "not a number" in run.tags["loopml.error"]


def test_tune_works_on_an_explicit_in_memory_client() -> None:
    client = loopml.Client("memory://")
    result = tune(quadratic, n_trials=4, client=client, project="mem")
    assert client.get_run(result.best_run_id).metrics["value"] == result.best_value
    assert result.project == "mem"


def test_threads_share_one_study(client: loopml.Client) -> None:
    result = tune(quadratic, n_trials=16, n_jobs=3, seed=0)
    assert len(result) == 16 and result.count("complete") == 16
    assert len({t.run_id for t in result.trials}) == 16
    assert all(r.parent_run_id == result.run_id for r in trial_runs(client, result.run_id))


def test_current_trial_outside_a_trial_is_an_error() -> None:
    with pytest.raises(NoActiveRun, match="inside an objective"):
        current_trial()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "n_trials must be a positive int"),
        ({"n_trials": True}, "n_trials must be a positive int"),
        ({}, "give n_trials, timeout or both"),
        ({"n_trials": 1, "timeout": -1}, "timeout must be a positive number"),
        ({"n_trials": 1, "direction": "up"}, "direction must be 'minimize' or 'maximize'"),
        ({"n_trials": 1, "direction": ["minimize", "maximize"]}, "optimises one value"),
        ({"n_trials": 1, "metric": "bad key!"}, "not a valid key"),
        ({"n_trials": 1, "n_jobs": 0}, "n_jobs"),
        ({"n_trials": 1, "executor": "dask"}, "executor must be one of local, processes, ray"),
        ({"n_trials": 1, "ray_address": "auto"}, "ray_address is for executor='ray'"),
        ({"n_trials": 1, "sampler": "bayes"}, "sampler must be an Optuna sampler or one of"),
        ({"n_trials": 1, "pruner": 3}, "pruner must be an Optuna pruner or one of"),
        ({"n_trials": 1, "seed": "1"}, "seed must be an int"),
        ({"n_trials": 1, "catch": "ValueError"}, "catch takes exception classes"),
        ({"n_trials": 1, "study_name": ""}, "study_name must not be empty"),
        ({"n_trials": 1, "space": {"lr": (0, 1)}}, "use loopml.tuning.Float"),
        ({"n_trials": 1, "space": {}}, "space is empty"),
    ],
)
def test_bad_arguments_say_what_to_fix(
    store_uri: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        tune(quadratic, **kwargs)


def test_a_non_callable_objective_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="objective must be a function"):
        tune(quadratic(optuna.trial.FixedTrial({"x": 1.0, "y": 1})), n_trials=1)  # type: ignore[arg-type]


def test_ctrl_c_kills_the_trial_and_the_study(client: loopml.Client) -> None:
    def objective(trial: Trial) -> float:
        if trial.number == 2:
            raise KeyboardInterrupt
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(KeyboardInterrupt):
        tune(objective, n_trials=5, study_name="stopped")
    study = next(iter(client.search_runs("default", "name = 'stopped'")))
    assert study.status is RunStatus.KILLED
    runs = trial_runs(client, study.run_id)
    assert len(runs) == 3 and runs[2].status is RunStatus.KILLED
    assert runs[2].tags["loopml.tune.state"] == "interrupted"
    resumed = tune(quadratic, n_trials=5, study_name="stopped")
    assert [t.state for t in resumed.trials][:3] == ["complete", "complete", "interrupted"]
    assert resumed.count("complete") == 5
