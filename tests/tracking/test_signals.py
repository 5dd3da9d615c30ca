"""How a run ends when its process ends: normally, by an exception, by a signal, or by SIGKILL.

Each test runs a small script in a child process against a SQLite file, then reads the run back.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.config import Settings
from loopml.entities import Run, RunStatus

pytestmark = pytest.mark.slow  # every test starts a Python process (~3 s each on CI)

STARTUP_TIMEOUT = 60.0  # importing loopml + SQLAlchemy on a loaded CI machine
EXIT_TIMEOUT = 5.0  # research R-CLI-3: SIGTERM/SIGINT end the run within 5 s


class Child:
    """A child Python process running ``code`` with LOOPML_* pointing at the test's store."""

    def __init__(self, tmp_path: Path, code: str, **env: str) -> None:
        self.stderr_path = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
        full_env = {
            **os.environ,
            "LOOPML_TRACKING_URI": f"sqlite:///{tmp_path}/t.db",
            "LOOPML_ARTIFACT_URI": str(tmp_path / "art"),
            "LOOPML_CAPTURE_PACKAGES": "false",
            "LOOPML_FLUSH_INTERVAL": "3600",  # only exit paths write the buffered points
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        full_env.pop("LOOPML_PROJECT", None)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(code)],
                stdout=subprocess.PIPE,
                stderr=err,
                env=full_env,
                cwd=tmp_path,
            )
        self.out = b""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, marker: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """Read stdout until a whole line holding ``marker`` has arrived; return the rest of
        that line (what follows the marker, stripped)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        token = marker.encode()
        while token not in self.out or b"\n" not in self.out.split(token, 1)[1]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(f"child did not print {marker!r} in {timeout} s:\n{self.stderr}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait()
                    pytest.fail(
                        f"child exited ({self.proc.returncode}) before printing {marker!r}:\n"
                        f"{self.stderr}"
                    )
                self.out += chunk
        return self.out.split(token, 1)[1].split(b"\n", 1)[0].decode().strip()

    def wait(self, timeout: float = STARTUP_TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"child did not exit within {timeout} s:\n{self.stderr}")
        assert self.proc.stdout is not None
        self.out += self.proc.stdout.read()
        self.proc.stdout.close()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    settings = Settings(flush_interval=3600, heartbeat_interval=3600)
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"), settings=settings
    ) as c:
        yield c


def _run_script(tmp_path: Path, code: str) -> tuple[int, Child]:
    child = Child(tmp_path, code)
    return child.wait(), child


def _only_run(client: loopml.Client) -> Run:
    runs = list(client.iter_runs())
    assert len(runs) == 1, runs
    return runs[0]


_LOG_100 = "for i in range(100): loopml.log_metric('m', float(i))"


def _assert_all_points(client: loopml.Client, run: Run, n: int = 100) -> None:
    history = client.get_metric_history(run.run_id, "m")
    assert list(history.steps) == list(range(n))


def test_sigterm_inside_with_kills_the_run(tmp_path: Path, client: loopml.Client) -> None:
    child = Child(
        tmp_path,
        f"""
        import time, loopml
        with loopml.start_run(name="job") as run:
            {_LOG_100}
            print("READY", run.run_id, flush=True)
            time.sleep(120)
        """,
    )
    run_id = child.wait_for("READY")
    sent = time.monotonic()
    child.proc.send_signal(signal.SIGTERM)
    rc = child.wait(timeout=30)
    took = time.monotonic() - sent
    assert rc == 128 + signal.SIGTERM, child.stderr
    assert took < EXIT_TIMEOUT
    run = client.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert run.end_time is not None
    _assert_all_points(client, run)  # queued metrics are flushed on a SIGTERM
    assert "Traceback" not in child.stderr


def test_sigterm_outside_with_kills_the_run(tmp_path: Path, client: loopml.Client) -> None:
    child = Child(
        tmp_path,
        f"""
        import time, loopml
        loopml.start_run(name="job")
        {_LOG_100}
        print("READY", flush=True)
        time.sleep(120)
        """,
    )
    child.wait_for("READY")
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM, child.stderr
    run = _only_run(client)
    assert run.status is RunStatus.KILLED
    _assert_all_points(client, run)


def test_sigint_inside_with_kills_the_run(tmp_path: Path, client: loopml.Client) -> None:
    child = Child(
        tmp_path,
        f"""
        import time, loopml
        with loopml.start_run(name="job"):
            {_LOG_100}
            print("READY", flush=True)
            time.sleep(120)
        """,
    )
    child.wait_for("READY")
    child.proc.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) != 0
    run = _only_run(client)
    assert run.status is RunStatus.KILLED
    _assert_all_points(client, run)


def test_sigint_outside_with_kills_the_run(tmp_path: Path, client: loopml.Client) -> None:
    child = Child(
        tmp_path,
        """
        import time, loopml
        loopml.start_run(name="job")
        print("READY", flush=True)
        time.sleep(120)
        """,
    )
    child.wait_for("READY")
    child.proc.send_signal(signal.SIGINT)
    child.wait(timeout=30)
    assert _only_run(client).status is RunStatus.KILLED


def test_a_script_that_exits_normally_finishes_its_runs(
    tmp_path: Path, client: loopml.Client
) -> None:
    rc, child = _run_script(
        tmp_path,
        f"""
        import loopml
        parent = loopml.start_run(name="parent")
        child = loopml.start_run(name="child", nested=True)
        {_LOG_100}
        loopml.log_param("p", 1)
        """,
    )
    assert rc == 0, child.stderr
    runs = {r.name: r for r in client.iter_runs()}
    assert runs["parent"].status is RunStatus.FINISHED
    assert runs["child"].status is RunStatus.FINISHED
    assert runs["child"].parent_run_id == runs["parent"].run_id
    _assert_all_points(client, runs["child"])  # buffered points are written at exit
    assert child.stderr == ""


def test_sys_exit_zero_outside_with_finishes_the_run(
    tmp_path: Path, client: loopml.Client
) -> None:
    rc, child = _run_script(
        tmp_path,
        f"""
        import sys, loopml
        loopml.start_run()
        {_LOG_100}
        sys.exit(0)
        """,
    )
    assert rc == 0, child.stderr
    run = _only_run(client)
    assert run.status is RunStatus.FINISHED
    _assert_all_points(client, run)


def test_an_uncaught_exception_fails_the_run(tmp_path: Path, client: loopml.Client) -> None:
    rc, child = _run_script(
        tmp_path,
        f"""
        import loopml
        loopml.start_run()
        {_LOG_100}
        raise RuntimeError("diverged at step 100")
        """,
    )
    assert rc == 1
    assert "RuntimeError: diverged at step 100" in child.stderr  # the user's traceback is kept
    run = _only_run(client)
    assert run.status is RunStatus.FAILED
    _assert_all_points(client, run)


def test_an_uncaught_exception_inside_with_fails_the_run_and_tags_it(
    tmp_path: Path, client: loopml.Client
) -> None:
    rc, _ = _run_script(
        tmp_path,
        """
        import loopml
        with loopml.start_run():
            loopml.log_metric("m", 1.0)
            raise KeyError("label")
        """,
    )
    assert rc == 1
    run = _only_run(client)
    assert run.status is RunStatus.FAILED
    assert run.tags["loopml.error"] == "KeyError: 'label'"


def test_sys_exit_non_zero_outside_with_fails_the_run(
    tmp_path: Path, client: loopml.Client
) -> None:
    rc, _ = _run_script(
        tmp_path,
        """
        import sys, loopml
        loopml.start_run()
        sys.exit(2)
        """,
    )
    assert rc == 2
    assert _only_run(client).status is RunStatus.FAILED


def test_client_points_are_flushed_at_exit(tmp_path: Path, client: loopml.Client) -> None:
    rc, child = _run_script(
        tmp_path,
        """
        import loopml
        c = loopml.Client()
        run = c.create_run("p", name="explicit")
        for i in range(100):
            c.log_metric(run.run_id, "m", float(i))
        print(c.buffer.pending)
        """,
    )
    assert rc == 0, child.stderr
    assert child.out.decode().strip() == "100"  # nothing was written before exit
    run = _only_run(client)
    _assert_all_points(client, run)
    assert run.status is RunStatus.RUNNING  # a Client run is ended explicitly, not at exit


def test_sigkill_leaves_the_run_running_until_its_heartbeat_is_stale(
    tmp_path: Path,
) -> None:
    child = Child(
        tmp_path,
        """
        import time, loopml
        run = loopml.start_run(name="doomed")
        loopml.log_metric("m", 1.0)
        loopml.flush()
        print("READY", run.run_id, flush=True)
        time.sleep(120)
        """,
        LOOPML_FLUSH_INTERVAL="0.05",
        LOOPML_HEARTBEAT_INTERVAL="0.1",
    )
    dead_id = child.wait_for("READY")
    child.proc.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL

    settings = Settings(flush_interval=0.05, heartbeat_interval=0.1, heartbeat_timeout=1.5)
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"), settings=settings
    ) as client:
        dead = client.get_run(dead_id)
        assert dead.status is RunStatus.RUNNING  # nobody could say otherwise
        assert dead.metrics == {"m": 1.0}
        alive = client.create_run("p", name="alive").run_id  # beats every 0.1 s
        time.sleep(2.0)
        assert client.mark_stale_runs() == [dead_id]
        failed = client.get_run(dead_id)
        assert failed.status is RunStatus.FAILED
        assert failed.end_time == dead.heartbeat_at  # when it was last known alive
        assert "lost heartbeat" in failed.tags["loopml.failure_reason"]
        assert client.get_run(alive).status is RunStatus.RUNNING


def test_searching_marks_a_killed_process_run_failed(tmp_path: Path) -> None:
    child = Child(
        tmp_path,
        """
        import time, loopml
        run = loopml.start_run(name="doomed")
        print("READY", run.run_id, flush=True)
        time.sleep(120)
        """,
    )
    dead_id = child.wait_for("READY")
    child.proc.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    time.sleep(0.05)
    settings = Settings(flush_interval=3600, heartbeat_interval=3600, heartbeat_timeout=0.01)
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"), settings=settings
    ) as client:
        # a reader's first search sweeps stale runs (what `loopml runs list` shows)
        (run,) = client.search_runs()
        assert run.run_id == dead_id
        assert run.status is RunStatus.FAILED
        assert "loopml.failure_reason" in run.tags
