#!/usr/bin/env python3
"""Start-up cost: wall time of ``python -c 'import X'`` and of ``X --help`` in fresh processes.

Same method as ``shared/bench/cli_startup.py``: each command runs once as a discarded warm-up
(page cache warm), then --reps times; the median is reported. Also records the interpreter floor
(``python -c pass``) and a one-shot ``python -X importtime`` total and module count.

  python bench/startup.py --tool loopml --venv .venv --module loopml --cli loopml --out x.jsonl
  python bench/startup.py --tool mlflow --venv bench/.venv-mlflow --module mlflow --cli mlflow

A command that fails (non-zero exit) is reported with ``median: null`` and its error, not raised.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work"


def timed(
    cmd: list[str], reps: int, env: dict[str, str], cwd: Path
) -> tuple[list[float], str | None]:
    r = subprocess.run(
        cmd, capture_output=True, env=env, cwd=cwd, check=False
    )  # warm-up, discarded
    if r.returncode != 0:
        return [], (r.stderr.decode(errors="replace") or r.stdout.decode(errors="replace"))[-1500:]
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=env, cwd=cwd, check=False)
        ts.append(time.perf_counter() - t0)
        if r.returncode != 0:
            return [], r.stderr.decode(errors="replace")[-1500:]
    return ts, None


def importtime(py: str, module: str, env: dict[str, str], cwd: Path) -> dict[str, object]:
    r = subprocess.run(
        [py, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    rows = []
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self" not in line:
            parts = [x.strip() for x in line[len("import time:") :].split("|")]
            try:
                rows.append((int(parts[0]), int(parts[1]), parts[2].strip()))
            except ValueError:
                pass
    total = max((c for _, c, n in rows if n == module), default=None)
    top = sorted(rows, key=lambda x: -x[1])[:8]
    return {
        "cumulative_us": total,
        "n_modules": len(rows),
        "top_cumulative": [(n, c) for _, c, n in top],
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tool", required=True)
    p.add_argument("--venv", required=True)
    p.add_argument("--module", required=True)
    p.add_argument("--cli", default="")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", default="")
    a = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    venv = Path(a.venv).absolute()  # not resolve(): bin/python is a symlink out of the venv
    py = str(venv / "bin" / "python")
    ver = subprocess.run(
        [py, "-c", f"import importlib.metadata as m; print(m.version('{a.module}'))"],
        capture_output=True,
        text=True,
        env=env,
        cwd=WORK,
        check=False,
    ).stdout.strip()
    jobs = [
        ("floor", "python -c pass (interpreter floor)", [py, "-c", "pass"]),
        ("import", f"python -c 'import {a.module}'", [py, "-c", f"import {a.module}"]),
    ]
    if a.cli:
        jobs.append(("help", f"{a.cli} --help", [str(venv / "bin" / a.cli), "--help"]))
    recs = []
    for key, what, cmd in jobs:
        samples, err = timed(cmd, a.reps, env, WORK)
        rec = {
            "tool": a.tool,
            "key": key,
            "workload": what,
            "version": ver,
            "median": statistics.median(samples) if samples else None,
            "min": min(samples) if samples else None,
            "unit": "s",
            "samples": samples,
            "notes": f"median of {a.reps} fresh processes after 1 discarded warm-up",
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "loadavg1": os.getloadavg()[0],
        }
        if err is not None:
            rec["error"] = err
        if a.tool == "loopml":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from tracking import git_state

            rec["loopml_git"] = git_state()
        if key == "import":
            rec["importtime"] = importtime(py, a.module, env, WORK)
        recs.append(rec)
    for rec in recs:
        line = json.dumps(rec)
        print(line, flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
