"""Failures: what fails, what is skipped, what still runs; retries, timeouts, resume."""

from __future__ import annotations

import time
from pathlib import Path

import pipe_helpers as ph
import pytest

import loopml
from loopml.pipelines import PipelineFailed
from loopml.pipelines.runner import TAG


@pytest.fixture
def client(tmp_path: Path) -> loopml.Client:
    return loopml.Client(str(tmp_path / "store"))


def test_failure_skips_downstream_and_resume_reruns_only_the_rest(
    client: loopml.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "fixed"
    with pytest.raises(PipelineFailed) as err:
        ph.fragile.run(client=client, marker=str(marker), quiet=True)
    result = err.value.result
    assert "step 'fails_until_file': RuntimeError: marker" in err.value.message
    assert f"loopml pipelines resume {result.run_id}" in err.value.message
    status = {k: s.status for k, s in result.steps.items()}
    # the broken step has no downstream; the independent branches still ran
    assert status == {
        "one": "finished",
        "fails_until_file": "failed",
        "add": "finished",
        "one_2": "finished",
        "add_2": "finished",
    }
    assert client.get_run(result.run_id).status.value == "failed"
    failed_run = client.get_run(result.steps["fails_until_file"].run_id)
    assert failed_run.status.value == "failed" and "marker" in failed_run.tags[TAG.ERROR]
    assert "Traceback" in client.read_text(failed_run.run_id, "error.txt")

    marker.write_text("ok")
    resumed = ph.fragile.run(client=client, marker=str(marker), resume=result.run_id, quiet=True)
    assert resumed.ok and resumed.output == {"sum": 2, "broken": "fixed", "after": 3}
    reasons = {k: (s.status, s.reason) for k, s in resumed.steps.items()}
    assert reasons["one"] == ("cached", "resumed: finished in the run being resumed")
    assert reasons["fails_until_file"][0] == "finished"
    assert client.get_run(resumed.run_id).tags[TAG.RESUMED_FROM] == result.run_id


def test_resume_reuses_even_uncached_steps_and_checks_the_run(client: loopml.Client) -> None:
    first = ph.two_branches.run(client=client, seconds=0.01, quiet=True)
    again = ph.two_branches.run(client=client, seconds=0.01, resume=first.run_id, quiet=True)
    assert {s.status for s in again.steps.values()} == {"cached"}
    fresh = ph.two_branches.run(client=client, seconds=0.01, quiet=True)
    assert {s.status for s in fresh.steps.values()} == {"finished"}  # cache=False steps
    with pytest.raises(loopml.errors.InvalidArgument, match="not a run of pipeline"):
        ph.training.run(client=client, resume=first.run_id, quiet=True)
    with pytest.raises(loopml.errors.InvalidArgument, match="does not exist"):
        ph.training.run(client=client, resume="0" * 32, quiet=True)


def test_retries_with_backoff(client: loopml.Client, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    result = ph.flaky_pipeline.run(client=client, counter=str(counter), quiet=True)
    assert result.output == 3
    assert result.steps["flaky"].attempts == 3
    assert client.get_run(result.steps["flaky"].run_id).tags[TAG.ATTEMPTS] == "3"


def test_timeout_in_process(client: loopml.Client) -> None:
    start = time.perf_counter()
    result = ph.slow_pipeline.run(client=client, seconds=3.0, quiet=True, raise_on_failure=False)
    assert time.perf_counter() - start < 2.5
    assert result.status == "failed"
    assert result.steps["sleepy"].error == "the step timed out after 0.5 s"


def test_failed_result_without_raising(client: loopml.Client, tmp_path: Path) -> None:
    result = ph.fragile.run(
        client=client, marker=str(tmp_path / "no"), quiet=True, raise_on_failure=False
    )
    assert not result.ok and [s.node for s in result.failed_steps] == ["fails_until_file"]
    with pytest.raises(PipelineFailed):
        _ = result.output
    with pytest.raises(loopml.errors.InvalidArgument, match="failed: it has no outputs"):
        result.load("fails_until_file")
    assert result.load("add") == 2
