"""Progress bars for long work (hashing a large file, profiling, validating), on stderr.

Shown only when stderr is a terminal and ``LOOPML_PROGRESS`` is not ``0``; scripts, CI logs and
notebooks' captured output stay clean. The bar disappears when the work is done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Bar", "progress"]


class Bar:
    """Advance it as work gets done; a no-op when no bar is shown."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)


def enabled() -> bool:
    """Whether progress bars are shown in this process."""
    return os.environ.get("LOOPML_PROGRESS", "1") != "0" and sys.stderr.isatty()


@contextmanager
def progress(description: str, total: float | None = None, unit: str = "") -> Iterator[Bar]:
    """A transient progress bar on stderr for the ``with`` block.

    Args:
        description: what is being done (``hashing churn``).
        total: how much work there is, when known (a spinner otherwise).
        unit: what is counted (``rows``, ``bytes``), shown after the count.
    """
    if not enabled():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    else:
        columns += [TextColumn("{task.completed:,.0f} " + unit)]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield Bar(bar, task)
