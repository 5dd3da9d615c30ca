"""``loopml pipelines`` and ``loopml scheduler`` through Typer's CliRunner, and the schedule
logic with a chosen clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pipe_helpers as ph
import pytest
from typer.testing import CliRunner, Result

import loopml
from loopml.cli.app import app
from loopml.errors import InvalidArgument
from loopml.pipelines.schedule import Scheduled, load_pipeline, run_due

FLOW = """
import loopml

@loopml.step
def base(x: int) -> int:
    return x * 10

@loopml.step
def check(v: int, marker: str) -> int:
    from pathlib import Path
    if marker and not Path(marker).exists():
        raise ValueError("not yet")
    return v + 1

@loopml.pipeline(schedule="0 * * * *", params={"x": 2})
def flow(x: int = 1, marker: str = ""):
    return check(base(x), marker)

not_a_pipeline = 3
"""


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "flowmod.py"
    path.write_text(FLOW)
    return path


def invoke(store: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--store", str(store), *args])


def test_run_list_show_resume(tmp_path: Path, flow_file: Path) -> None:
    store = tmp_path / "store"
    marker = tmp_path / "ok"
    res = invoke(
        store, "pipelines", "run", f"{flow_file}:flow", "-P", "x=3", "-P", f"marker={marker}"
    )
    assert res.exit_code == 1, res.output
    assert "failed at step 'check'" in res.output and "ValueError: not yet" in res.output
    run_id = res.output.split("loopml pipelines resume ")[1].split("`")[0]

    listed = invoke(store, "pipelines", "list", "--json")
    runs = json.loads(listed.output)
    assert [r["run_id"] for r in runs] == [run_id] and runs[0]["status"] == "failed"

    shown = json.loads(invoke(store, "pipelines", "show", run_id, "--json").output)
    assert [(s["step"], s["status"]) for s in shown["steps"]] == [
        ("base", "finished"),
        ("check", "failed"),
    ]
    assert shown["params"] == {"x": 3, "marker": str(marker)}

    marker.write_text("")
    resumed = invoke(store, "pipelines", "resume", run_id, "--json")
    assert resumed.exit_code == 0, resumed.output
    body = json.loads(resumed.output)
    assert body["status"] == "finished"
    assert [(s["step"], s["status"]) for s in body["steps"]] == [
        ("base", "cached"),
        ("check", "finished"),
    ]
    table = invoke(store, "pipelines", "show", body["run_id"])
    assert "cached" in table.output and "outputs of" in table.output


def test_cli_errors_are_clear(tmp_path: Path, flow_file: Path) -> None:
    store = tmp_path / "store"
    for ref, message in [
        ("nope", "module:attribute"),
        (f"{flow_file}:missing", "has no attribute"),
        (f"{flow_file}:not_a_pipeline", "not a pipeline"),
        ("no_such_module_xyz:flow", "cannot import"),
    ]:
        res = invoke(store, "pipelines", "run", ref)
        assert res.exit_code != 0 and message in res.output, (ref, res.output)
    res = invoke(store, "pipelines", "run", f"{flow_file}:flow", "-P", "y=1")
    assert res.exit_code != 0 and "cannot take" in res.output
    res = invoke(store, "pipelines", "run", f"{flow_file}:flow", "-P", "x")
    assert res.exit_code != 0 and "KEY=VALUE" in res.output
    res = invoke(store, "scheduler", "--once", f"{tmp_path / 'flowmod.py'}:flow", "--cron", "bad")
    assert res.exit_code != 0 and "not a cron expression" in res.output


def test_scheduler_once_runs_what_never_ran(tmp_path: Path, flow_file: Path) -> None:
    store = tmp_path / "store"
    first = invoke(store, "scheduler", "--once", f"{flow_file}:flow")
    assert first.exit_code == 0, first.output
    assert "flow: finished" in first.output
    again = invoke(store, "scheduler", "--once", f"{flow_file}:flow")
    assert "flow:" not in again.output  # the next tick (the top of the hour) is not here yet
    runs = loopml.Client(str(store)).search_runs(None, "tags.`loopml.trigger` = 'schedule'")
    assert len(runs) == 1 and runs.items[0].params["x"] == "2"


def test_schedule_ticks_with_a_chosen_clock(tmp_path: Path) -> None:
    client = loopml.Client(str(tmp_path / "store"))
    s = Scheduled(ph.training, "0 * * * *", {"n": 200})
    t0 = dt.datetime.now(dt.UTC)
    # never ran: due at its first tick after the scheduler started, not before
    assert run_due(client, [s], now=t0, started=t0, quiet=True) == []
    later = t0 + dt.timedelta(hours=1, minutes=1)
    done = run_due(client, [s], now=later, started=t0, quiet=True)
    assert [r.status for r in done] == ["finished"]
    # the run just made is the last one: nothing is due until the next hour after it
    assert run_due(client, [s], now=later, started=t0, quiet=True) == []
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
    assert len(run_due(client, [s], now=far, started=t0, quiet=True)) == 1  # caught up once


def test_load_pipeline_by_module_name(monkeypatch: pytest.MonkeyPatch, flow_file: Path) -> None:
    monkeypatch.syspath_prepend(str(flow_file.parent))
    assert load_pipeline("flowmod:flow").name == "flow"
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_pipeline("missing_file.py:flow")
