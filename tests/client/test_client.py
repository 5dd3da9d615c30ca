"""The Client: runs, params, tags, buffered metrics, search, comparison, artifacts, stale runs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import loopml
from loopml.config import Settings
from loopml.entities import Metric, Param, RunStatus, Tag, now_ms
from loopml.errors import (
    ArtifactNotFound,
    InvalidArgument,
    InvalidFilter,
    ParamConflict,
    ProjectNotFound,
    RunNotFound,
    UnsafePath,
)

UNKNOWN_RUN = "0" * 32  # well-formed, never created


def _settings(**overrides: object) -> Settings:
    """Settings that ignore the environment's LOOPML_* variables where a test depends on them."""
    values: dict[str, object] = {
        "flush_interval": 3600.0,  # no background flush unless a test asks for one
        "heartbeat_interval": 3600.0,
        "capture_packages": True,
        "artifact_uri": None,
        "tracking_uri": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(
        f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"), settings=_settings()
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def run_id(client: loopml.Client) -> str:
    return client.create_run("proj", name="r").run_id


def _blobs(root: Path) -> list[Path]:
    objects = root / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


# --- runs and projects ---------------------------------------------------------------------------


def test_create_run_creates_the_project_and_get_run_returns_it(client: loopml.Client) -> None:
    assert [p.name for p in client.list_projects()] == []
    before = now_ms()
    run = client.create_run("churn", name="first", tags={"team": 7}, params={"lr": 0.1})

    assert [p.name for p in client.list_projects()] == ["churn"]
    got = client.get_run(run.run_id)
    assert got.run_id == run.run_id and len(got.run_id) == 32
    assert got.project_id == client.get_project("churn").project_id
    assert got.name == "first"
    assert got.status is RunStatus.RUNNING
    assert got.end_time is None
    assert before <= got.start_time <= now_ms()
    assert got.heartbeat_at is not None
    assert got.user == client.settings.user
    assert dict(got.tags) == {"team": "7"}
    assert dict(got.params) == {"lr": "0.1"}


def test_second_run_reuses_the_project(client: loopml.Client) -> None:
    a = client.create_run("p")
    b = client.create_run("p")
    assert a.project_id == b.project_id
    assert len(client.list_projects()) == 1


def test_runs_without_a_project_go_to_the_settings_project(tmp_path: Path) -> None:
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db",
        artifact_uri=str(tmp_path / "art"),
        settings=_settings(project="fallback"),
    ) as c:
        run = c.create_run()
        assert c.get_project("fallback").project_id == run.project_id


def test_end_run_sets_status_and_end_time(client: loopml.Client) -> None:
    a = client.create_run("p")
    b = client.create_run("p")
    client.end_run(a.run_id)
    ended = client.get_run(a.run_id)
    assert ended.status is RunStatus.FINISHED
    assert ended.end_time is not None and ended.end_time >= ended.start_time
    assert ended.duration_ms is not None
    client.end_run(b.run_id, "killed")
    assert client.get_run(b.run_id).status is RunStatus.KILLED


def test_end_run_refuses_running_as_a_final_status(client: loopml.Client, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="end_run needs a final status, not 'running'"):
        client.end_run(run_id, RunStatus.RUNNING)
    assert client.get_run(run_id).status is RunStatus.RUNNING


def test_end_run_refuses_an_unknown_status(client: loopml.Client, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown run status 'bogus'") as info:
        client.end_run(run_id, "bogus")
    assert "finished, failed or killed" in str(info.value)
    assert client.get_run(run_id).status is RunStatus.RUNNING


def test_rename_and_delete_run(client: loopml.Client, run_id: str) -> None:
    client.set_run_name(run_id, "renamed")
    assert client.get_run(run_id).name == "renamed"
    client.log_metric(run_id, "m", 1.0)  # buffered, then deleted with the run
    client.delete_run(run_id)
    client.flush()  # nothing of the deleted run is left to write, so no error
    with pytest.raises(RunNotFound, match=run_id):
        client.get_run(run_id)


@pytest.mark.parametrize("bad", ["abc", "", "A" * 32, "../" + "0" * 29, "0" * 31 + "g", 123])
def test_malformed_run_ids_are_refused_everywhere(client: loopml.Client, bad: object) -> None:
    calls = [
        lambda: client.get_run(bad),  # type: ignore[arg-type]
        lambda: client.log_metric(bad, "m", 1.0),  # type: ignore[arg-type]
        lambda: client.log_param(bad, "p", 1),  # type: ignore[arg-type]
        lambda: client.set_tag(bad, "t", 1),  # type: ignore[arg-type]
        lambda: client.end_run(bad),  # type: ignore[arg-type]
        lambda: client.list_artifacts(bad),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match="run id") as info:
            call()
        assert "malformed" in str(info.value) or "must be a string" in str(info.value)
    assert client.buffer.pending == 0


def test_unknown_run_is_run_not_found_naming_the_id(client: loopml.Client) -> None:
    calls = [
        lambda: client.get_run(UNKNOWN_RUN),
        lambda: client.log_param(UNKNOWN_RUN, "p", 1),
        lambda: client.set_tag(UNKNOWN_RUN, "t", 1),
        lambda: client.end_run(UNKNOWN_RUN),
        lambda: client.get_metric_history(UNKNOWN_RUN, "m"),
        lambda: client.list_artifacts(UNKNOWN_RUN),
        lambda: client.log_text(UNKNOWN_RUN, "x", "a.txt"),
    ]
    for call in calls:
        with pytest.raises(RunNotFound, match=UNKNOWN_RUN):
            call()
    # A metric is buffered; the store says the run is missing when the buffer is written.
    client.log_metric(UNKNOWN_RUN, "m", 1.0)
    with pytest.raises(RunNotFound, match=UNKNOWN_RUN):
        client.flush()
    assert client.buffer.pending == 0
    client.flush()  # the points were dropped, not kept to fail forever


def test_unknown_run_as_parent_is_refused(client: loopml.Client) -> None:
    with pytest.raises(RunNotFound, match=f"parent run '{UNKNOWN_RUN}' does not exist"):
        client.create_run("p", parent_run_id=UNKNOWN_RUN)


# --- params and tags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("rf", "rf"),
        (3, "3"),
        (0.1, "0.1"),
        (True, "True"),
        (None, "None"),
        ([1, 2], "[1, 2]"),
        ((1, "a"), '[1, "a"]'),
        ({"depth": 3, "kind": "gini"}, '{"depth": 3, "kind": "gini"}'),
    ],
)
def test_param_values_become_strings(
    client: loopml.Client, run_id: str, value: object, stored: str
) -> None:
    client.log_param(run_id, "p", value)
    assert client.get_run(run_id).params["p"] == stored
    if isinstance(value, (list, dict, tuple)):
        assert json.loads(stored) == (list(value) if isinstance(value, tuple) else value)


def test_log_params_writes_all_at_once(client: loopml.Client, run_id: str) -> None:
    client.log_params(run_id, {"a": 1, "b": "x", "c": [1]})
    assert dict(client.get_run(run_id).params) == {"a": "1", "b": "x", "c": "[1]"}
    with pytest.raises(InvalidArgument, match="params must be a dict, got list"):
        client.log_params(run_id, [("a", 1)])  # type: ignore[arg-type]


def test_relogging_a_param_with_the_same_value_is_a_no_op(
    client: loopml.Client, run_id: str
) -> None:
    client.log_param(run_id, "lr", 0.1)
    client.log_param(run_id, "lr", 0.1)
    client.log_params(run_id, {"lr": "0.1"})
    assert dict(client.get_run(run_id).params) == {"lr": "0.1"}


def test_relogging_a_param_with_another_value_is_a_conflict(
    client: loopml.Client, run_id: str
) -> None:
    client.log_param(run_id, "lr", 0.1)
    with pytest.raises(ParamConflict) as info:
        client.log_param(run_id, "lr", 0.2)
    message = str(info.value)
    assert "'lr'" in message and "'0.1'" in message and "'0.2'" in message
    assert run_id in message
    # the batch is atomic: the other param of a conflicting batch is not written either
    with pytest.raises(ParamConflict, match=re.escape("'0.3'")):
        client.log_params(run_id, {"other": 1, "lr": 0.3})
    assert dict(client.get_run(run_id).params) == {"lr": "0.1"}


def test_param_value_over_the_limit_is_refused(client: loopml.Client, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="6001 characters; the limit is 6000"):
        client.log_param(run_id, "p", "x" * 6001)


def test_tags_are_strings_and_last_write_wins(client: loopml.Client, run_id: str) -> None:
    client.set_tag(run_id, "stage", 1)
    client.set_tag(run_id, "stage", "two")
    client.set_tags(run_id, {"owner": "ana", "gpu": True})
    assert dict(client.get_run(run_id).tags) == {"gpu": "True", "owner": "ana", "stage": "two"}
    client.delete_tag(run_id, "gpu")
    client.delete_tag(run_id, "absent")  # no error
    assert dict(client.get_run(run_id).tags) == {"owner": "ana", "stage": "two"}
    with pytest.raises(InvalidArgument, match="tags must be a dict, got str"):
        client.set_tags(run_id, "a=b")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("k" * 251, "251 characters long; the limit is 250"),
        ("a\nb", "is not a valid key"),
        (" padded", "is not a valid key"),
        ("a/../b", "is not a valid key"),
        (None, "must be a string, got NoneType"),
        (3, "must be a string, got int"),
    ],
)
def test_bad_keys_are_refused_with_what_is_wrong(
    client: loopml.Client, run_id: str, key: object, message: str
) -> None:
    with pytest.raises(InvalidArgument, match="metric key") as info:
        client.log_metric(run_id, key, 1.0)  # type: ignore[arg-type]
    assert message in str(info.value)
    with pytest.raises(InvalidArgument, match="param key") as info:
        client.log_param(run_id, key, 1)  # type: ignore[arg-type]
    assert message in str(info.value)
    with pytest.raises(InvalidArgument, match="tag key") as info:
        client.set_tag(run_id, key, 1)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert client.buffer.pending == 0


def test_a_key_of_the_maximum_length_is_accepted(client: loopml.Client, run_id: str) -> None:
    key = "k" * 250
    client.log_metric(run_id, key, 1.0)
    client.log_param(run_id, key, 1)
    run = client.get_run(run_id)
    assert run.metrics[key] == 1.0 and run.params[key] == "1"


# --- metrics -------------------------------------------------------------------------------------


def test_log_metric_is_buffered_until_flush(client: loopml.Client, run_id: str) -> None:
    client.log_metric(run_id, "loss", 0.5)
    client.log_metric(run_id, "loss", 0.25)
    assert client.buffer.pending == 2
    assert len(client.store.get_metric_history(run_id, "loss")) == 0  # not written yet
    client.flush()
    assert client.buffer.pending == 0
    history = client.store.get_metric_history(run_id, "loss")
    assert list(history.values) == [0.5, 0.25]


def test_get_run_and_history_flush_first(client: loopml.Client, run_id: str) -> None:
    client.log_metric(run_id, "acc", 0.9)
    assert client.get_run(run_id).metrics["acc"] == 0.9
    client.log_metric(run_id, "acc", 0.95)
    history = client.get_metric_history(run_id, "acc")
    assert [m.value for m in history] == [0.9, 0.95]
    assert client.buffer.pending == 0


def test_flush_of_one_run_leaves_the_others_buffered(client: loopml.Client) -> None:
    a = client.create_run("p").run_id
    b = client.create_run("p").run_id
    client.log_metric(a, "m", 1.0)
    client.log_metric(b, "m", 2.0)
    client.flush(a)
    assert len(client.store.get_metric_history(a, "m")) == 1
    assert len(client.store.get_metric_history(b, "m")) == 0
    assert client.buffer.pending == 1


def test_steps_count_up_from_zero_when_omitted(client: loopml.Client, run_id: str) -> None:
    other = client.create_run("proj").run_id
    for v in (1.0, 2.0, 3.0):
        client.log_metric(run_id, "loss", v)
    client.log_metric(run_id, "acc", 0.5)  # each key counts on its own
    client.log_metric(other, "loss", 9.0)  # and each run
    assert list(client.get_metric_history(run_id, "loss").steps) == [0, 1, 2]
    assert list(client.get_metric_history(run_id, "acc").steps) == [0]
    assert list(client.get_metric_history(other, "loss").steps) == [0]


def test_automatic_steps_are_unique_when_threads_share_a_run(
    client: loopml.Client, run_id: str
) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(500):
                client.log_metric(run_id, "shared", 1.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert client.get_metric_history(run_id, "shared").steps.tolist() == list(range(4000))


def test_explicit_steps_are_kept_and_later_automatic_steps_follow(
    client: loopml.Client, run_id: str
) -> None:
    client.log_metric(run_id, "m", 1.0, step=10)
    client.log_metric(run_id, "m", 2.0, step=5)
    client.log_metric(run_id, "m", 3.0)  # one more than the last step logged: 6
    history = client.get_metric_history(run_id, "m")
    assert list(history.steps) == [5, 6, 10]
    assert list(history.values) == [2.0, 3.0, 1.0]
    # the latest value is the one at the highest step
    assert client.get_run(run_id).metrics["m"] == 1.0


def test_explicit_timestamp_is_kept(client: loopml.Client, run_id: str) -> None:
    client.log_metric(run_id, "m", 1.0, step=0, timestamp=1_700_000_000_000)
    assert client.get_metric_history(run_id, "m")[0].timestamp == 1_700_000_000_000
    with pytest.raises(InvalidArgument, match=r"timestamp -1 is out of range \[0, "):
        client.log_metric(run_id, "m", 1.0, timestamp=-1)


def test_log_metrics_share_step_and_timestamp(client: loopml.Client, run_id: str) -> None:
    client.log_metrics(run_id, {"a": 1.0, "b": 2}, step=7)
    a = client.get_metric_history(run_id, "a")[0]
    b = client.get_metric_history(run_id, "b")[0]
    assert (a.step, b.step) == (7, 7)
    assert a.timestamp == b.timestamp
    assert b.value == 2.0 and isinstance(b.value, float)
    with pytest.raises(InvalidArgument, match="metrics must be a dict, got list"):
        client.log_metrics(run_id, [1.0])  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -1e-300, 5e-324])
def test_special_float_values_are_stored_faithfully(
    client: loopml.Client, run_id: str, value: float
) -> None:
    client.log_metric(run_id, "m", value)
    stored = client.get_metric_history(run_id, "m")[0].value
    latest = client.get_run(run_id).metrics["m"]
    for got in (stored, latest):
        if math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == value


def test_numpy_and_int_values_are_accepted_as_floats(client: loopml.Client, run_id: str) -> None:
    client.log_metric(run_id, "a", np.float32(0.5))
    client.log_metric(run_id, "b", np.int64(3))
    client.log_metric(run_id, "c", 7)
    metrics = client.get_run(run_id).metrics
    assert metrics == {"a": 0.5, "b": 3.0, "c": 7.0}
    assert all(type(v) is float for v in metrics.values())
    client.log_metric(run_id, "d", 1.0, step=np.int64(4))  # what np.arange yields
    client.log_metric(run_id, "d", 2.0, step=5.0)  # a whole float is a step too
    assert client.get_metric_history(run_id, "d").steps.tolist() == [4, 5]


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("abc", "str"),
        (None, "NoneType"),
        ([1], "list"),
        (b"1", "bytes"),
        (True, "bool"),
        ({"v": 1}, "dict"),
        (1 + 2j, "complex"),
    ],
)
def test_non_numeric_metric_values_are_refused(
    client: loopml.Client, run_id: str, value: object, type_name: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        client.log_metric(run_id, "acc", value)  # type: ignore[arg-type]
    assert f"metric 'acc' must be a number, got {type_name}" in str(info.value)
    assert client.buffer.pending == 0


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("3", "step must be an integer, got str '3'"),
        (True, "step must be an integer, got bool True"),
        (1.5, "step must be an integer, got float 1.5"),
        (2**64, "step 18446744073709551616 is out of range"),
    ],
)
def test_bad_steps_are_refused(
    client: loopml.Client, run_id: str, step: object, message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        client.log_metric(run_id, "m", 1.0, step=step)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert client.buffer.pending == 0


def test_log_batch_writes_metrics_params_and_tags_at_once(
    client: loopml.Client, run_id: str
) -> None:
    client.log_batch(
        run_id,
        metrics=[Metric("m", 1.0, 0, 1), Metric("m", 2.0, 1, 2)],
        params={"a": 1},
        tags={"t": "x"},
    )
    client.log_batch(run_id, params=[Param("b", "2")], tags=[Tag("u", "y")])
    run = client.store.get_run(run_id)  # written now, no flush needed
    assert dict(run.params) == {"a": "1", "b": "2"}
    assert dict(run.tags) == {"t": "x", "u": "y"}
    assert list(client.store.get_metric_history(run_id, "m").values) == [1.0, 2.0]


def test_log_batch_with_a_conflict_writes_nothing(client: loopml.Client, run_id: str) -> None:
    client.log_param(run_id, "a", 1)
    with pytest.raises(ParamConflict, match="'a'"):
        client.log_batch(run_id, metrics=[Metric("m", 1.0, 0, 1)], params={"a": 2}, tags={"t": 1})
    run = client.get_run(run_id)
    assert "m" not in run.metrics and "t" not in run.tags


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def searchable(client: loopml.Client) -> dict[str, str]:
    """Five runs in 'search' (auc 0.1 .. 0.9, model rf/lr) and one in 'other'."""
    ids = {}
    for i, (model, auc) in enumerate(
        [("rf", 0.5), ("lr", 0.9), ("rf", 0.7), ("lr", 0.1), ("rf", 0.3)]
    ):
        run = client.create_run("search", name=f"run{i}", params={"model": model, "i": i})
        client.log_metric(run.run_id, "auc", auc)
        client.set_tag(run.run_id, "kind", "trial")
        ids[f"run{i}"] = run.run_id
    other = client.create_run("other", name="elsewhere")
    client.log_metric(other.run_id, "auc", 0.99)
    ids["elsewhere"] = other.run_id
    client.flush()
    return ids


def test_search_filters_and_orders(client: loopml.Client, searchable: dict[str, str]) -> None:
    page = client.search_runs("search", "metrics.auc > 0.4 and params.model = 'rf'")
    assert sorted(r.name for r in page) == ["run0", "run2"]
    ordered = client.search_runs("search", order_by="metrics.auc desc")
    assert [r.name for r in ordered] == ["run1", "run2", "run0", "run4", "run3"]
    assert ordered.next_page_token is None
    everywhere = client.search_runs(None, "metrics.auc > 0.8")
    assert sorted(r.name for r in everywhere) == ["elsewhere", "run1"]
    both = client.search_runs(["search", "other"], order_by=["metrics.auc asc"])
    assert len(both) == 6 and both[0].name == "run3"


def test_search_errors_name_the_problem(client: loopml.Client, searchable: dict[str, str]) -> None:
    with pytest.raises(InvalidFilter, match=re.escape("metrics.auc >>> 3")):
        client.search_runs("search", "metrics.auc >>> 3")
    with pytest.raises(ProjectNotFound, match="'nope'"):
        client.search_runs("nope")
    with pytest.raises(InvalidArgument, match="max_results must be between 1 and"):
        client.search_runs("search", max_results=0)


def test_pagination_and_iter_runs_see_every_run_once(
    client: loopml.Client, searchable: dict[str, str]
) -> None:
    first = client.search_runs("search", order_by="metrics.auc asc", max_results=2)
    assert [r.name for r in first] == ["run3", "run4"]
    assert first.next_page_token is not None
    second = client.search_runs(
        "search", order_by="metrics.auc asc", max_results=2, page_token=first.next_page_token
    )
    assert [r.name for r in second] == ["run0", "run2"]
    with pytest.raises(InvalidArgument, match="page token belongs to a different search"):
        client.search_runs(
            "search", order_by="metrics.auc desc", max_results=2, page_token=first.next_page_token
        )
    names = [r.name for r in client.iter_runs("search", order_by="metrics.auc asc", page_size=2)]
    assert names == ["run3", "run4", "run0", "run2", "run1"]
    assert len(list(client.iter_runs(page_size=1))) == 6


def test_best_run(client: loopml.Client, searchable: dict[str, str]) -> None:
    assert client.best_run("auc", project="search").name == "run1"  # type: ignore[union-attr]
    assert client.best_run("auc", project="search", mode="min").name == "run3"  # type: ignore[union-attr]
    best_rf = client.best_run("auc", project="search", filter="params.model = 'rf'")
    assert best_rf is not None and best_rf.name == "run2"
    assert client.best_run("auc").name == "elsewhere"  # type: ignore[union-attr]
    assert client.best_run("never_logged", project="search") is None
    with pytest.raises(InvalidArgument, match="mode must be 'max' or 'min', got 'median'"):
        client.best_run("auc", mode="median")
    with pytest.raises(InvalidArgument, match="metric key"):
        client.best_run("")


def test_compare_runs(client: loopml.Client, searchable: dict[str, str]) -> None:
    ids = [searchable["run0"], searchable["run2"], searchable["run1"]]
    comparison = client.compare_runs(ids)
    assert [r.run_id for r in comparison.runs] == ids
    assert comparison.params["model"] == ("rf", "rf", "lr")
    assert comparison.metrics["auc"] == (0.5, 0.7, 0.9)
    assert comparison.differing_params == ["i", "model"]
    same_model = client.compare_runs([searchable["run0"], searchable["run2"]])
    assert same_model.differing_params == ["i"]
    with_missing = client.compare_runs([searchable["run0"], searchable["elsewhere"]])
    assert with_missing.params["model"] == ("rf", None)
    assert "model" in with_missing.differing_params

    frame = comparison.to_pandas()
    assert list(frame.index) == ["params.i", "params.model", "metrics.auc"]
    assert list(frame.columns) == [
        f"run0 ({ids[0][:8]})",
        f"run2 ({ids[1][:8]})",
        f"run1 ({ids[2][:8]})",
    ]
    assert frame.loc["metrics.auc"].tolist() == [0.5, 0.7, 0.9]


def test_compare_runs_refuses_a_string_or_nothing(client: loopml.Client, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="compare_runs needs a list of run ids"):
        client.compare_runs(run_id)
    with pytest.raises(InvalidArgument, match="compare_runs needs a list of run ids"):
        client.compare_runs([])
    with pytest.raises(RunNotFound, match=UNKNOWN_RUN):
        client.compare_runs([run_id, UNKNOWN_RUN])


def test_page_to_pandas_columns(client: loopml.Client, searchable: dict[str, str]) -> None:
    frame = client.search_runs("search", order_by="metrics.auc desc").to_pandas()
    assert list(frame.columns[:9]) == [
        "run_id",
        "name",
        "status",
        "start_time",
        "end_time",
        "duration_s",
        "parent_run_id",
        "user",
        "project_id",
    ]
    assert {"params.model", "params.i", "metrics.auc", "tags.kind"} <= set(frame.columns)
    assert frame["name"].tolist() == ["run1", "run2", "run0", "run4", "run3"]
    assert frame["metrics.auc"].tolist() == [0.9, 0.7, 0.5, 0.3, 0.1]
    assert set(frame["status"]) == {"running"}
    assert str(frame["start_time"].dtype).startswith("datetime64")
    empty = client.search_runs("search", "metrics.auc > 5").to_pandas()
    assert len(empty) == 0 and "run_id" in empty.columns


# --- artifacts -----------------------------------------------------------------------------------


def test_log_artifact_and_read_it_back(client: loopml.Client, run_id: str, tmp_path: Path) -> None:
    src = tmp_path / "model.txt"
    src.write_bytes(b"weights\x00\xff")
    info = client.log_artifact(run_id, src)
    assert info.path == "model.txt"
    assert info.sha256 == hashlib.sha256(b"weights\x00\xff").hexdigest()
    assert info.size == 9
    nested = client.log_artifact(run_id, src, artifact_path="models/v1/")
    assert nested.path == "models/v1/model.txt"
    assert [a.path for a in client.list_artifacts(run_id)] == ["model.txt", "models/v1/model.txt"]
    assert [a.path for a in client.list_artifacts(run_id, "models")] == ["models/v1/model.txt"]
    assert client.read_artifact(run_id, "models/v1/model.txt") == b"weights\x00\xff"
    with pytest.raises(ArtifactNotFound, match=re.escape("'absent.txt'")):
        client.read_artifact(run_id, "absent.txt")


def test_log_artifact_refuses_folders_and_missing_files(
    client: loopml.Client, run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match="is not a file; log a folder with log_artifacts"):
        client.log_artifact(run_id, tmp_path)
    with pytest.raises(InvalidArgument, match=re.escape("nope.bin' does not exist")):
        client.log_artifact(run_id, tmp_path / "nope.bin")
    with pytest.raises(InvalidArgument, match="is not a folder"):
        client.log_artifacts(run_id, tmp_path / "nope")


def test_log_artifact_to_an_unknown_run_uploads_nothing(
    client: loopml.Client, tmp_path: Path
) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(RunNotFound, match=UNKNOWN_RUN):
        client.log_artifact(UNKNOWN_RUN, src)
    assert _blobs(tmp_path / "art") == []


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"top",
        "sub/b.bin": bytes(range(256)),
        "sub/deeper/c.json": b'{"c": 1}',
        "sub/deeper/empty": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_log_artifacts_keeps_the_folder_structure_and_downloads_verified(
    client: loopml.Client, run_id: str, tmp_path: Path
) -> None:
    files = _make_tree(tmp_path / "src")
    infos = client.log_artifacts(run_id, tmp_path / "src", artifact_path="data")
    assert sorted(i.path for i in infos) == sorted(f"data/{rel}" for rel in files)
    listed = client.list_artifacts(run_id)
    assert [a.path for a in listed] == sorted(f"data/{rel}" for rel in files)

    whole = client.download_artifacts(run_id, dst_path=tmp_path / "dl")
    assert whole == tmp_path / "dl"
    for rel, data in files.items():
        assert (whole / "data" / rel).read_bytes() == data
    part = client.download_artifacts(run_id, "data/sub", dst_path=tmp_path / "dl2")
    assert part == tmp_path / "dl2" / "data" / "sub"
    assert (part / "deeper" / "c.json").read_bytes() == b'{"c": 1}'
    assert not (tmp_path / "dl2" / "data" / "a.txt").exists()
    single = client.download_artifacts(run_id, "data/a.txt", dst_path=tmp_path / "dl3")
    assert single.read_bytes() == b"top"
    tmp_default = client.download_artifacts(run_id, "data/a.txt")
    assert tmp_default.read_bytes() == b"top"
    with pytest.raises(ArtifactNotFound, match="no artifact at 'missing'"):
        client.download_artifacts(run_id, "missing", dst_path=tmp_path / "dl4")


def test_text_dict_and_bytes_artifacts(client: loopml.Client, run_id: str) -> None:
    client.log_text(run_id, "héllo\nwörld ✓", "notes/summary.md")
    assert client.read_text(run_id, "notes/summary.md") == "héllo\nwörld ✓"
    payload = {"lr": 0.1, "layers": [64, 32], "nested": {"ok": True, "none": None}}
    client.log_dict(run_id, payload, "config.json")
    assert client.read_dict(run_id, "config.json") == payload
    assert json.loads(client.read_artifact(run_id, "config.json")) == payload
    client.log_bytes(run_id, b"\x00\x01", "raw.bin")
    client.log_bytes(run_id, bytearray(b"\x02"), "raw2.bin")
    assert client.read_artifact(run_id, "raw.bin") == b"\x00\x01"
    assert client.read_artifact(run_id, "raw2.bin") == b"\x02"


def test_text_dict_and_bytes_refuse_wrong_types(client: loopml.Client, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="text must be a str, got bytes"):
        client.log_text(run_id, b"x", "a.txt")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="data must be bytes, got str"):
        client.log_bytes(run_id, "x", "a.bin")  # type: ignore[arg-type]
    circular: dict[str, object] = {}
    circular["self"] = circular
    with pytest.raises(InvalidArgument, match="log_dict: cannot serialise to JSON"):
        client.log_dict(run_id, circular, "c.json")
    assert client.list_artifacts(run_id) == []


def test_log_dict_yaml(client: loopml.Client, run_id: str) -> None:
    yaml = pytest.importorskip("yaml")
    payload = {"b": 1, "a": [1, 2], "nested": {"x": "y"}}
    client.log_dict(run_id, payload, "conf.yaml")
    assert client.read_dict(run_id, "conf.yaml") == payload
    text = client.read_text(run_id, "conf.yaml")
    assert yaml.safe_load(text) == payload
    assert text.index("b:") < text.index("a:")  # key order kept
    client.log_dict(run_id, payload, "conf.yml")
    assert client.read_dict(run_id, "conf.yml") == payload


def test_log_figure_matplotlib(client: loopml.Client, run_id: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1])
    try:
        png = client.log_figure(run_id, fig, "plots/curve.png")
        svg = client.log_figure(run_id, fig, "plots/curve.svg")
    finally:
        plt.close(fig)
    assert client.read_artifact(run_id, png.path).startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in client.read_artifact(run_id, svg.path)
    with pytest.raises(InvalidArgument, match="matplotlib or plotly figure, got object"):
        client.log_figure(run_id, object(), "x.png")


def test_the_same_content_is_stored_once(
    client: loopml.Client, run_id: str, tmp_path: Path
) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(4096))
    a = client.log_artifact(run_id, src)
    b = client.log_artifact(run_id, src, artifact_path="copy")
    other = client.create_run("proj").run_id
    c = client.log_artifact(other, src)
    d = client.log_bytes(other, src.read_bytes(), "as-bytes.bin")
    assert a.sha256 == b.sha256 == c.sha256 == d.sha256
    blobs = _blobs(tmp_path / "art")
    assert len(blobs) == 1
    assert blobs[0].read_bytes() == src.read_bytes()


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "%2e%2e/x",
        "%252e%252e/x",
        "a/%2e%2e/%2e%2e/b",
        "..\\x",
        "",
        "a\x00b",
    ],
)
def test_traversal_paths_are_refused(
    client: loopml.Client, run_id: str, tmp_path: Path, bad: str
) -> None:
    src = tmp_path / "f.txt"
    src.write_text("payload")
    writers = [
        lambda: client.log_text(run_id, "payload", bad),
        lambda: client.log_bytes(run_id, b"payload", bad),
        lambda: client.log_dict(run_id, {"a": 1}, bad),
        lambda: client.read_artifact(run_id, bad),
    ]
    if bad:
        writers.append(lambda: client.log_artifact(run_id, src, artifact_path=bad))
    for call in writers:
        with pytest.raises(UnsafePath) as info:
            call()
        assert "is refused" in str(info.value)
    assert client.list_artifacts(run_id) == []
    assert _blobs(tmp_path / "art") == []
    assert not (tmp_path / "x").exists() and not (tmp_path / "b").exists()


def test_a_symlink_out_of_a_logged_folder_is_refused(
    client: loopml.Client, run_id: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.txt").write_text("fine")
    (folder / "sub" / "link.txt").symlink_to(secret)
    with pytest.raises(UnsafePath, match="resolves outside"):
        client.log_artifacts(run_id, folder)
    assert client.list_artifacts(run_id) == []
    assert _blobs(tmp_path / "art") == []


def test_a_symlink_inside_a_logged_folder_is_fine(
    client: loopml.Client, run_id: str, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "real.txt").write_text("data")
    (folder / "alias.txt").symlink_to(folder / "real.txt")
    infos = client.log_artifacts(run_id, folder)
    assert sorted(i.path for i in infos) == ["alias.txt", "real.txt"]
    assert client.read_text(run_id, "alias.txt") == "data"


# --- heartbeats and stale runs -------------------------------------------------------------------


def test_mark_stale_runs_fails_runs_whose_heartbeat_stopped(client: loopml.Client) -> None:
    stale = client.create_run("p", heartbeat=True).run_id
    alive = client.create_run("p", heartbeat=True).run_id
    done = client.create_run("p")
    client.end_run(done.run_id)
    old = now_ms() - 10 * 60 * 1000
    client.store.heartbeat([stale, done.run_id], at=old)

    assert client.mark_stale_runs(timeout=60) == [stale]
    run = client.get_run(stale)
    assert run.status is RunStatus.FAILED
    assert run.end_time == old
    assert "heartbeat" in run.tags["loopml.failure_reason"]
    assert client.get_run(alive).status is RunStatus.RUNNING
    assert client.get_run(done.run_id).status is RunStatus.FINISHED
    assert client.mark_stale_runs(timeout=60) == []  # idempotent


def test_mark_stale_runs_uses_the_heartbeat_timeout_setting(tmp_path: Path) -> None:
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db",
        artifact_uri=str(tmp_path / "art"),
        settings=_settings(heartbeat_timeout=120.0),
    ) as c:
        a = c.create_run("p").run_id
        b = c.create_run("p").run_id
        c.store.heartbeat([a], at=now_ms() - 60_000)  # younger than the timeout
        c.store.heartbeat([b], at=now_ms() - 180_000)  # older
        assert c.mark_stale_runs() == [b]


def test_client_repr_and_uris(client: loopml.Client, tmp_path: Path) -> None:
    assert str(tmp_path / "t.db") in repr(client)
    assert client.artifact_uri == str(tmp_path / "art")
    with loopml.Client(f"sqlite:///{tmp_path}/x/y.db", settings=_settings()) as beside:
        assert beside.artifact_uri == str(tmp_path / "x" / "artifacts")


def test_run_ids_are_unique(client: loopml.Client) -> None:
    ids = {client.create_run("p", capture_environment=False).run_id for _ in range(50)}
    assert len(ids) == 50
    assert all(uuid.UUID(hex=i).hex == i for i in ids)
