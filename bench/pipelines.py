#!/usr/bin/env python3
"""The pipelines benchmark (issue 7): loopml's overhead per step when a 10-step pipeline re-runs
from its cache, and, for information, per step when it runs for real.

    python bench/pipelines.py            # 10 steps, 20 cached re-runs, 5 fresh runs
    python bench/pipelines.py --quick    # 3 cached re-runs, 1 fresh run

The pipeline is a chain of 10 steps, each passing a small pandas DataFrame (1,000 rows x 4
columns) to the next, on the default store (a SQLite file and a local artifact folder in a
temporary ``.loopml``), executor ``local``. The first run fills the cache; every re-run then
finds all 10 steps cached: its wall time (from ``run()`` to the result, the graph built and
checked, the pipeline run and 10 step runs recorded) divided by 10 is the per-step overhead the
target bounds (< 50 ms). A fresh run (``cache=False``) also saves and loads every output; its
wall time minus the time inside the step functions, divided by 10, is the overhead per executed
step. Results: ``bench/results/pipelines-<stamp>.md`` and ``pipelines-latest.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
STEPS = 10
TARGET_MS = 50.0


def build():
    import numpy as np
    import pandas as pd

    import loopml

    @loopml.step
    def source(rows: int) -> pd.DataFrame:
        rng = np.random.default_rng(0)
        return pd.DataFrame(rng.normal(size=(rows, 4)), columns=list("abcd"))

    @loopml.step
    def transform(df: pd.DataFrame, k: int) -> pd.DataFrame:
        return df.assign(a=df.a + k)

    @loopml.pipeline(name="bench-chain")
    def chain(rows: int = 1000):
        df = source(rows)
        for k in range(STEPS - 1):
            df = transform(df, k)
        return df

    return chain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cached-reps", type=int, default=20)
    ap.add_argument("--fresh-reps", type=int, default=5)
    a = ap.parse_args()
    cached_reps, fresh_reps = (3, 1) if a.quick else (a.cached_reps, a.fresh_reps)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LOOPML_HOME"] = str(Path(tmp) / ".loopml")
        import loopml

        client = loopml.Client()
        chain = build()
        first = chain.run(client=client, quiet=True)
        assert first.ok and {s.status for s in first.steps.values()} == {"finished"}

        cached = []
        for _ in range(cached_reps):
            t0 = time.perf_counter()
            r = chain.run(client=client, quiet=True)
            cached.append(time.perf_counter() - t0)
            assert {s.status for s in r.steps.values()} == {"cached"}, r.steps

        fresh, inside = [], []
        for _ in range(fresh_reps):
            t0 = time.perf_counter()
            r = chain.run(client=client, quiet=True, cache=False)
            fresh.append(time.perf_counter() - t0)
            inside.append(sum(s.seconds for s in r.steps.values()))
            assert {s.status for s in r.steps.values()} == {"finished"}
        client.close()

    per_step_cached = statistics.median(cached) / STEPS * 1000
    per_step_fresh = statistics.median(f for f in fresh) / STEPS * 1000
    per_step_overhead = statistics.median(f - i for f, i in zip(fresh, inside, strict=True))
    per_step_overhead = per_step_overhead / STEPS * 1000
    sys.path.insert(0, str(BENCH))
    from run import git_state

    stamp = time.strftime("%Y%m%d-%H%M%S")
    verdict = "pass" if per_step_cached < TARGET_MS else "FAIL"
    lines = [
        f"# Pipelines benchmark ({stamp})",
        "",
        f"`python bench/pipelines.py{' --quick' if a.quick else ''}` on {os.cpu_count()} CPUs "
        f"({platform.platform()}); loopml {git_state()}; load average "
        f"{os.getloadavg()[0]:.2f} at the end.",
        "",
        __doc__.split("\n\n")[2].replace("\n", " ").strip(),
        "",
        "| measure | median | range | reps |",
        "|---|---|---|---|",
        f"| cached re-run of the 10-step pipeline | {statistics.median(cached) * 1000:.1f} ms | "
        f"{min(cached) * 1000:.1f}..{max(cached) * 1000:.1f} | {cached_reps} |",
        f"| fresh run (every step executed, outputs saved and loaded) | "
        f"{statistics.median(fresh) * 1000:.1f} ms | {min(fresh) * 1000:.1f}.."
        f"{max(fresh) * 1000:.1f} | {fresh_reps} |",
        "",
        "| target (issue 7) | loopml | target | |",
        "|---|---|---|---|",
        f"| overhead per step, cached re-run | {per_step_cached:.1f} ms | < {TARGET_MS:.0f} ms | "
        f"{verdict} |",
        f"| (information) wall time per executed step, fresh run | {per_step_fresh:.1f} ms | - | "
        "- |",
        f"| (information) overhead per executed step (wall minus the step functions) | "
        f"{per_step_overhead:.1f} ms | - | - |",
        "",
    ]
    text = "\n".join(lines)
    out = BENCH / ("results" if not a.quick else ".work/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"pipelines-{stamp}.md").write_text(text)
    (out / f"pipelines-latest{'-quick' if a.quick else ''}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
