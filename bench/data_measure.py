"""Measuring helpers shared by the data benchmark's workers (loopml's and the peers').

Standard library only, so every venv (loopml's, pandera's, ydata-profiling's, Evidently's) can
import it: the peers' scripts put ``bench/`` on ``sys.path``.

Memory: :func:`measure` resets the kernel's peak-RSS mark (``/proc/self/clear_refs``, value 5)
right before the timed call, so the peak it reports is the call's own, not the data load's;
``peak_delta_mb`` is that peak minus the RSS just before the call (after the data was loaded).
Where the reset is not possible the peak is ``ru_maxrss`` and the record says so.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """The resident set size now, MiB."""
    value = _status_mb("VmRSS")
    if value is None:  # not Linux: fall back to the high-water mark
        return peak_mb()
    return value


def peak_mb() -> float:
    """The peak resident set size since start (or since the last reset), MiB."""
    value = _status_mb("VmHWM")
    if value is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return value


def reset_peak() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loadavg1() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` once; return its result and the wall time and memory figures of the call.

    Before the call, garbage is collected and pyarrow's memory pool hands unused memory back
    (what ``read_parquet`` left behind), so the RSS the peak is compared with is the data's, not
    a transient high that would hide the call's own memory.
    """
    import gc

    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
    load_peak = peak_mb()
    before = rss_mb()
    exact = reset_peak()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    return result, {
        "seconds": seconds,
        "rss_after_load_mb": round(before, 1),
        "load_peak_mb": round(load_peak, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_delta_mb": round(peak - before, 1),
        "process_peak_mb": round(max(peak, load_peak), 1),
        "peak_method": "VmHWM after clear_refs" if exact else "ru_maxrss (no reset: upper bound)",
    }


def corrupt(frame: Any) -> Any:
    """The first 200 rows with three violations planted (out of range, unknown category, null
    in a non-nullable column): a validator that is really checking finds at least three."""
    bad = frame.head(200).copy()
    bad.loc[bad.index[0], "num_1"] = 1e9
    bad.loc[bad.index[1], "cat_1"] = "not-a-category"
    bad.loc[bad.index[2], "num_2"] = float("nan")
    return bad


def emit(record: dict[str, Any], out: str | None) -> None:
    """Print one JSON line and append it to ``out``."""
    record.setdefault("python", platform.python_version())
    record.setdefault("loadavg1", loadavg1())
    line = json.dumps(record, default=str)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def fail(record: dict[str, Any], exc: BaseException, out: str | None) -> None:
    """Record an error line (the driver shows it) and exit non-zero."""
    record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    emit(record, out)
    sys.exit(1)


def git_state() -> str:
    """The loopml commit the worker imports, and how many files under ``src/`` differ from it."""
    import subprocess
    from pathlib import Path

    repo = str(Path(__file__).resolve().parent.parent)
    try:
        head = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    n = len(dirty.splitlines())
    return (head or "unknown") + (f"+{n} uncommitted under src/" if n else " (clean src/)")
