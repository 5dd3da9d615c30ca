"""The same pipeline on every executor: child processes (in parallel, killed on timeout) and a
Ray cluster started by the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pipe_helpers as ph
import pytest

import loopml
from loopml.errors import InvalidArgument


@pytest.fixture
def client(tmp_path: Path) -> loopml.Client:
    return loopml.Client(str(tmp_path / "store"))


def test_processes_run_independent_steps_in_parallel(client: loopml.Client) -> None:
    result = ph.two_branches.run(client=client, executor="processes", max_workers=2, quiet=True)
    a, b = result.output
    assert {a["pid"], b["pid"]}.isdisjoint({os.getpid()}) and a["pid"] != b["pid"]
    assert a["start"] < b["end"] and b["start"] < a["end"]  # the two sleeps overlapped


def test_processes_give_the_same_results_and_share_the_cache(client: loopml.Client) -> None:
    local = ph.training.run(client=client, quiet=True, cache=False)
    remote = ph.training.run(client=client, executor="processes", quiet=True, cache=False)
    assert remote.output == local.output
    fit = client.get_run(remote.steps["fit"].run_id)
    assert fit.metrics["train_rows"] == 300  # logged from the child process
    cached = ph.training.run(client=client, executor="processes", quiet=True)
    assert {s.status for s in cached.steps.values()} == {"cached"}


def test_processes_kill_a_step_on_timeout(client: loopml.Client) -> None:
    start = time.perf_counter()
    result = ph.slow_pipeline.run(
        client=client, executor="processes", seconds=60.0, quiet=True, raise_on_failure=False
    )
    assert time.perf_counter() - start < 30
    assert result.steps["sleepy"].error == "the step timed out after 0.5 s"


def test_out_of_process_executors_need_a_shared_store() -> None:
    memory = loopml.Client("memory://")
    with pytest.raises(InvalidArgument, match="cannot see an in-memory store"):
        ph.training.run(client=memory, executor="processes", quiet=True)
    with pytest.raises(InvalidArgument, match="unknown executor"):
        ph.training.run(client=memory, executor="threads", quiet=True)
    with pytest.raises(InvalidArgument, match="executor='ray'"):
        ph.training.run(client=memory, address="auto", quiet=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray head node started with ``ray start``; its address."""
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_bin is None:
        pytest.skip("the ray command is not installed")
    port = _free_port()
    # A throwaway local cluster: no token auth (Ray turns it on wherever ~/.ray/auth_token
    # exists, which would make this driver and that cluster disagree).
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    old_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    tmp = tmp_path_factory.mktemp("ray")
    subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={tmp}",
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=180,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
        if old_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_mode


@pytest.mark.slow
def test_ray_runs_the_same_pipeline(client: loopml.Client, ray_cluster: str) -> None:
    # the workers import the test's helper module, as the child processes do
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(ph.__file__).parent), os.environ.get("PYTHONPATH", "")]
    )
    local = ph.training.run(client=client, quiet=True, cache=False)
    on_ray = ph.training.run(
        client=client, executor="ray", address=ray_cluster, quiet=True, cache=False
    )
    assert on_ray.output == local.output
    assert client.get_run(on_ray.steps["fit"].run_id).metrics["train_rows"] == 300
    result = ph.slow_pipeline.run(
        client=client,
        executor="ray",
        address=ray_cluster,
        seconds=60.0,
        quiet=True,
        raise_on_failure=False,
    )
    assert result.steps["sleepy"].error == "the step timed out after 0.5 s"
