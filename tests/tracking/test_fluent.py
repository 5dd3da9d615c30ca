"""The fluent API: start_run as a context manager, how runs end, nesting, threads, resuming."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.client import context
from loopml.entities import RunStatus
from loopml.errors import InvalidArgument, NoActiveRun, ProjectNotFound, RunNotFound
from loopml.tracking import fluent


def _end_everything() -> None:
    while (run := loopml.active_run()) is not None:
        run.end(RunStatus.KILLED)
    for run in list(fluent._open_runs.values()):
        run.end(RunStatus.KILLED)


@pytest.fixture(autouse=True)
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh store per test; no active run, project or client leaks in or out."""
    _end_everything()
    uri = f"sqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("LOOPML_ARTIFACT_URI", str(tmp_path / "art"))
    monkeypatch.setenv("LOOPML_FLUSH_INTERVAL", "3600")
    monkeypatch.setenv("LOOPML_HEARTBEAT_INTERVAL", "3600")
    monkeypatch.delenv("LOOPML_PROJECT", raising=False)
    monkeypatch.setattr(context, "_project", None)
    loopml.set_tracking_uri(uri)
    yield uri
    leaked = loopml.active_run()
    _end_everything()
    client = context.peek_client()
    loopml.set_tracking_uri(None)
    if client is not None:
        client.close()
    assert leaked is None, f"the test left run {leaked.run_id} active"


def _client() -> loopml.Client:
    return loopml.get_client()


def test_with_start_run_finishes_the_run() -> None:
    with loopml.start_run(name="first", params={"lr": 0.1}, tags={"team": "a"}) as run:
        assert loopml.active_run() is run
        loopml.log_metric("loss", 0.5)
        loopml.log_metric("loss", 0.25)
        loopml.log_metrics({"acc": 0.9, "f1": 0.8}, step=3)
        loopml.log_param("depth", 4)
        loopml.log_params({"model": "rf", "layers": [2, 3]})
        loopml.set_tag("stage", "dev")
        loopml.set_tags({"owner": "ana"})
        assert run.info.metrics["loss"] == 0.25  # info flushes and reads the run now
    assert loopml.active_run() is None
    got = _client().get_run(run.run_id)
    assert got.status is RunStatus.FINISHED
    assert got.end_time is not None
    assert got.name == "first"
    assert dict(got.params) == {"depth": "4", "layers": "[2, 3]", "lr": "0.1", "model": "rf"}
    assert dict(got.tags) == {"owner": "ana", "stage": "dev", "team": "a"}
    assert dict(got.metrics) == {"acc": 0.9, "f1": 0.8, "loss": 0.25}
    assert list(_client().get_metric_history(run.run_id, "loss").steps) == [0, 1]


def test_runs_go_to_the_default_project() -> None:
    with loopml.start_run() as run:
        pass
    assert _client().get_project("default").project_id == run.run.project_id


def test_an_exception_fails_the_run_and_keeps_the_error() -> None:
    with pytest.raises(ValueError, match="boom"), loopml.start_run() as run:
        loopml.log_metric("m", 1.0)
        raise ValueError("boom: bad batch 17")
    got = _client().get_run(run.run_id)
    assert got.status is RunStatus.FAILED
    assert got.tags["loopml.error"] == "ValueError: boom: bad batch 17"
    assert got.metrics["m"] == 1.0  # flushed on the way out
    assert loopml.active_run() is None


def test_a_huge_exception_message_is_truncated_in_the_tag() -> None:
    with pytest.raises(RuntimeError), loopml.start_run() as run:
        raise RuntimeError("x" * 20_000)
    tag = _client().get_run(run.run_id).tags["loopml.error"]
    assert tag.startswith("RuntimeError: xxx") and len(tag) == 8000


def test_keyboard_interrupt_kills_the_run() -> None:
    with pytest.raises(KeyboardInterrupt), loopml.start_run() as run:
        loopml.log_metric("m", 1.0)
        raise KeyboardInterrupt
    got = _client().get_run(run.run_id)
    assert got.status is RunStatus.KILLED
    assert got.metrics["m"] == 1.0
    assert "loopml.error" not in got.tags


@pytest.mark.parametrize("code", [0, None])
def test_system_exit_zero_finishes_the_run(code: int | None) -> None:
    with pytest.raises(SystemExit), loopml.start_run() as run:
        raise SystemExit(code)
    assert _client().get_run(run.run_id).status is RunStatus.FINISHED


def test_system_exit_non_zero_fails_the_run() -> None:
    with pytest.raises(SystemExit), loopml.start_run() as run:
        raise SystemExit(3)
    got = _client().get_run(run.run_id)
    assert got.status is RunStatus.FAILED
    assert got.tags["loopml.error"] == "SystemExit: 3"


def test_end_run_ends_the_active_run_with_a_status() -> None:
    run = loopml.start_run()
    loopml.end_run("failed")
    assert loopml.active_run() is None
    assert _client().get_run(run.run_id).status is RunStatus.FAILED
    loopml.end_run()  # no active run: no error
    run.end()  # already ended: no error, no change
    assert _client().get_run(run.run_id).status is RunStatus.FAILED


def test_nested_runs() -> None:
    with loopml.start_run(project="tuning", name="study") as parent:
        with loopml.start_run(nested=True, name="trial-0") as child:
            assert loopml.active_run() is child
            loopml.log_metric("score", 0.7)
            grandchild = loopml.start_run(nested=True)
            grandchild.end()
        assert loopml.active_run() is parent  # the parent is active again
        with loopml.start_run(nested=True, project="elsewhere") as moved:
            pass
    client = _client()
    kid = client.get_run(child.run_id)
    assert kid.parent_run_id == parent.run_id
    assert kid.project_id == parent.run.project_id == client.get_project("tuning").project_id
    assert kid.status is RunStatus.FINISHED
    assert kid.metrics == {"score": 0.7}
    assert "score" not in client.get_run(parent.run_id).metrics
    assert client.get_run(grandchild.run_id).parent_run_id == child.run_id
    assert client.get_run(moved.run_id).project_id == client.get_project("elsewhere").project_id
    assert client.get_run(moved.run_id).parent_run_id == parent.run_id


def test_a_failing_child_fails_only_the_child() -> None:
    with loopml.start_run() as parent:
        with pytest.raises(ZeroDivisionError), loopml.start_run(nested=True) as child:
            _ = 1 / 0
        assert loopml.active_run() is parent
    client = _client()
    assert client.get_run(child.run_id).status is RunStatus.FAILED
    assert client.get_run(parent.run_id).status is RunStatus.FINISHED


def test_a_second_run_without_nested_is_refused() -> None:
    with loopml.start_run(name="outer") as outer:
        with pytest.raises(InvalidArgument) as info:
            loopml.start_run()
        message = str(info.value)
        assert outer.run_id in message and "outer" in message
        assert "loopml.end_run()" in message and "nested=True" in message
        assert loopml.active_run() is outer
    assert len(_client().search_runs("default")) == 1  # the refused run was never created


def test_fluent_calls_without_an_active_run_raise_no_active_run(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    calls = [
        lambda: loopml.log_metric("m", 1.0),
        lambda: loopml.log_metrics({"m": 1.0}),
        lambda: loopml.log_param("p", 1),
        lambda: loopml.log_params({"p": 1}),
        lambda: loopml.set_tag("t", 1),
        lambda: loopml.set_tags({"t": 1}),
        lambda: loopml.log_text("x", "a.txt"),
        lambda: loopml.log_dict({}, "a.json"),
        lambda: loopml.log_artifact(tmp_path / "f.txt"),
        lambda: loopml.log_artifacts(tmp_path),
        lambda: loopml.log_figure(object(), "a.png"),
    ]
    for call in calls:
        with pytest.raises(NoActiveRun, match="no active run in this thread or context") as info:
            call()
        assert "loopml.start_run()" in str(info.value)
        assert "copy_context" in str(info.value)


def test_bad_input_through_the_fluent_api_names_the_problem() -> None:
    with loopml.start_run():
        with pytest.raises(InvalidArgument, match="metric 'acc' must be a number, got str"):
            loopml.log_metric("acc", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="metric key must not be empty"):
            loopml.log_metric("", 1.0)


def test_artifacts_through_the_fluent_api(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a")
    (tmp_path / "model.bin").write_bytes(b"\x01\x02")
    with loopml.start_run() as run:
        loopml.log_text("hello", "notes.txt")
        loopml.log_dict({"k": [1]}, "cfg.json")
        loopml.log_artifact(tmp_path / "model.bin", artifact_path="models")
        loopml.log_artifacts(src, artifact_path="data")
    client = _client()
    paths = [a.path for a in client.list_artifacts(run.run_id)]
    assert paths == ["cfg.json", "data/sub/a.txt", "models/model.bin", "notes.txt"]
    assert client.read_dict(run.run_id, "cfg.json") == {"k": [1]}
    assert client.read_artifact(run.run_id, "models/model.bin") == b"\x01\x02"


def test_a_new_thread_has_no_active_run() -> None:
    seen: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            seen.append(loopml.active_run())
            with pytest.raises(NoActiveRun):
                loopml.log_metric("m", 1.0)
        except BaseException as exc:
            errors.append(exc)

    with loopml.start_run():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert errors == []
    assert seen == [None]


def test_copy_context_shares_the_active_run_with_a_thread() -> None:
    errors: list[BaseException] = []
    seen: list[object] = []

    def worker() -> None:
        try:
            seen.append(loopml.active_run())
            for i in range(10):
                loopml.log_metric("from_thread", float(i))
        except BaseException as exc:
            errors.append(exc)

    with loopml.start_run() as run:
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(worker,))
        thread.start()
        thread.join()
    assert errors == []
    assert seen == [run]
    history = _client().get_metric_history(run.run_id, "from_thread")
    assert list(history.values) == [float(i) for i in range(10)]


def test_eight_threads_each_with_their_own_run_lose_nothing() -> None:
    n_threads, n_points = 8, 1_000
    errors: list[BaseException] = []
    run_ids: dict[int, str] = {}
    barrier = threading.Barrier(n_threads)

    def worker(t: int) -> None:
        try:
            with loopml.start_run(name=f"thread-{t}") as run:
                run_ids[t] = run.run_id
                barrier.wait(timeout=30)
                for i in range(n_points):
                    loopml.log_metric("value", t * 10_000 + i)
                    if i % 250 == 0:
                        loopml.set_tag("progress", i)
                loopml.log_param("thread", t)
            assert loopml.active_run() is None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    assert loopml.active_run() is None  # nothing leaked into the main thread
    client = _client()
    assert len(set(run_ids.values())) == n_threads
    for t, run_id in run_ids.items():
        run = client.get_run(run_id)
        assert run.status is RunStatus.FINISHED
        assert run.params["thread"] == str(t)
        assert run.tags["progress"] == "750"
        history = client.get_metric_history(run_id, "value")
        assert list(history.steps) == list(range(n_points))
        assert list(history.values) == [float(t * 10_000 + i) for i in range(n_points)]


def test_resume_a_run_by_id() -> None:
    with loopml.start_run(name="long") as first:
        loopml.log_metric("loss", 1.0)
        loopml.log_param("lr", 0.1)
    with loopml.start_run(run_id=first.run_id, tags={"resumed": "yes"}) as again:
        assert again.run_id == first.run_id
        current = again.info
        assert current.status is RunStatus.RUNNING and current.end_time is None
        assert current.tags["resumed"] == "yes"
        loopml.log_metric("loss", 0.5)
        loopml.log_param("lr", 0.1)  # same value: fine
    got = _client().get_run(first.run_id)
    assert got.status is RunStatus.FINISHED
    assert got.name == "long"
    assert list(_client().get_metric_history(first.run_id, "loss").values) == [1.0, 0.5]


def test_resume_an_unknown_or_malformed_run_id_is_refused() -> None:
    with pytest.raises(RunNotFound, match="0" * 32):
        loopml.start_run(run_id="0" * 32)
    assert loopml.active_run() is None
    with pytest.raises(InvalidArgument, match="run id 'nope' is malformed"):
        loopml.start_run(run_id="nope")
    assert loopml.active_run() is None


def test_set_project_and_search_runs_of_the_current_project() -> None:
    loopml.set_project("alpha")
    for auc in (0.6, 0.8):
        with loopml.start_run():
            loopml.log_metric("auc", auc)
    loopml.set_project("beta")
    with loopml.start_run() as beta_run:
        loopml.log_metric("auc", 0.99)
    client = _client()
    assert beta_run.run.project_id == client.get_project("beta").project_id

    assert [r.run_id for r in loopml.search_runs()] == [beta_run.run_id]
    alpha = loopml.search_runs(project="alpha", order_by="metrics.auc desc")
    assert [r.metrics["auc"] for r in alpha] == [0.8, 0.6]
    assert len(loopml.search_runs("metrics.auc > 0.7", project="alpha")) == 1
    frame = loopml.search_runs(project=["alpha", "beta"]).to_pandas()
    assert len(frame) == 3 and "metrics.auc" in frame.columns
    with loopml.start_run(project="gamma") as explicit:
        pass
    assert explicit.run.project_id == client.get_project("gamma").project_id


def test_search_runs_of_a_project_with_no_runs_yet() -> None:
    loopml.set_project("empty")
    with pytest.raises(ProjectNotFound, match="'empty'"):
        loopml.search_runs()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "project name must not be empty"),
        (None, "project name must be a string"),
        ("x" * 300, "project name is 300 characters long"),
    ],
)
def test_set_project_refuses_bad_names(name: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        loopml.set_project(name)  # type: ignore[arg-type]


def test_tracking_uri_and_flush(tracking: str) -> None:
    assert loopml.get_tracking_uri() == tracking
    with loopml.start_run() as run:
        loopml.log_metric("m", 1.0)
        client = _client()
        assert len(client.store.get_metric_history(run.run_id, "m")) == 0  # still buffered
        loopml.flush()
        assert len(client.store.get_metric_history(run.run_id, "m")) == 1


def test_set_tracking_uri_switches_stores(tmp_path: Path) -> None:
    with loopml.start_run() as first:
        pass
    old_client = context.peek_client()
    loopml.set_tracking_uri(f"sqlite:///{tmp_path}/other.db")
    try:
        assert loopml.get_tracking_uri().endswith("other.db")
        with pytest.raises(RunNotFound):
            loopml.get_client().get_run(first.run_id)
    finally:
        if old_client is not None:
            old_client.close()
