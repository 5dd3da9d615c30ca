"""A new client whose first call goes through the metric buffer opens its store without
deadlocking (the buffer is built under a lock the store's opening takes too)."""

from __future__ import annotations

import threading
from pathlib import Path

import loopml


def test_first_call_through_the_buffer_does_not_deadlock(tmp_path: Path) -> None:
    run_id = loopml.Client(str(tmp_path / "s")).create_run("p").run_id
    fresh = loopml.Client(str(tmp_path / "s"))
    done = threading.Event()

    def log() -> None:
        fresh.log_metric(run_id, "loss", 0.5)
        fresh.flush()
        done.set()

    threading.Thread(target=log, daemon=True).start()
    assert done.wait(20), "log_metric on a fresh client hung"
    assert fresh.get_run(run_id).metrics["loss"] == 0.5
