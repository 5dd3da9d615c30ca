#!/usr/bin/env python3
"""The demo benchmark (issue 7): ``loopml demo`` end to end, wall time against the 5-minute
target, with the demo's own stage timings and outcome.

    python bench/demo.py            # one full run
    python bench/demo.py --quick    # loopml demo --quick

Runs ``loopml demo --dir <tmp>`` as a fresh process (imports, data loading, training, the
server's start and stop included), times it from the outside, and reads the ``summary.json`` the
demo writes (stage timings, accuracy before and after, the loop's decision). Results:
``bench/results/demo-<stamp>.md`` and ``demo-latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TARGET_S = 300.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    loopml_bin = Path(sys.executable).with_name("loopml")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demo"
        cmd = [str(loopml_bin), "demo", "--dir", str(folder), *(["--quick"] if a.quick else [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"loopml demo failed (exit {proc.returncode})")
        summary = json.loads((folder / "summary.json").read_text())
    sys.path.insert(0, str(BENCH))
    from run import git_state

    stamp = time.strftime("%Y%m%d-%H%M%S")
    timings = summary.get("timings", {})
    lines = [
        f"# Demo benchmark ({stamp})",
        "",
        f"`python bench/demo.py{' --quick' if a.quick else ''}` on {os.cpu_count()} CPUs "
        f"({platform.platform()}); loopml {git_state()}; load average "
        f"{os.getloadavg()[0]:.2f} at the end.",
        "",
        "`loopml demo` as a fresh process in a new folder, timed from outside (process start to "
        "exit, the server's start and stop included); stage timings from its `summary.json`.",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {k} | {v:.1f} |" for k, v in timings.items()),
        f"| **process wall time** | **{wall:.1f}** |",
        "",
        "| target (issue 7) | loopml | target | |",
        "|---|---|---|---|",
        f"| `loopml demo` end to end | {wall:.0f} s | < {TARGET_S:.0f} s | "
        f"{'pass' if wall < TARGET_S else 'FAIL'} |",
        "",
        "Outcome, from `summary.json`:",
        "",
        "```json",
        json.dumps(
            {k: summary[k] for k in ("comparison", "loop") if k in summary}, indent=2, default=str
        )[:4000],
        "```",
        "",
    ]
    text = "\n".join(lines)
    out = BENCH / ("results" if not a.quick else ".work/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"demo-{stamp}.md").write_text(text)
    (out / f"demo-latest{'-quick' if a.quick else ''}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
