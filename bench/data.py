#!/usr/bin/env python3
"""The data benchmark driver (issue 3, "Performance"): loopml beside pandera, ydata-profiling,
Evidently and the disk/hash floor, in one invocation.

    python bench/data.py                  # full run (1M rows x 25 columns, 1 GiB versioning)
    python bench/data.py --quick          # smoke test (< 2 min): 100k rows, 0.1 GiB, 1 rep
    python bench/data.py --rows 500000 --versioning-gb 0.5 --reps 5

Steps: (1) write the table once to ``bench/.work/data/`` (``bench/data_gen.py``: 20 float + 5
string categorical columns, seeded, a few nulls); (2) infer its contract with loopml
(``bench/data_loopml.py schema``): these are the rules both loopml and pandera check;
(3) loopml ``profile``, ``validate`` and both, each rep in a fresh process; (4) pandera in
``bench/.venv-pandera``; (5) Evidently's data summary in ``bench/.venv-evidently`` and
ydata-profiling (minimal) in ``bench/.venv-ydata``, each bounded by ``--peer-timeout-min``;
(6) versioning: a Parquet file of ``--versioning-gb`` GiB, the read and read + sha256 floor,
``log_dataset`` with and without the profile, and re-logging the same file; (7) the table.
Venvs are created on first use (``python -m venv`` + ``pip install``); a failed install is
recorded with its reason, not fatal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from data_report import report

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".work" / "data"
GEN_VERSION = 1  # bump when data_gen.py changes what it writes

PEERS = {
    # name: (venv folder, pip requirements, module to import)
    "pandera": (".venv-pandera", ["pandera", "pandas", "pyarrow"], "pandera"),
    "evidently": (".venv-evidently", ["evidently", "scipy", "pandas<3", "pyarrow"], "evidently"),
    "ydata": (".venv-ydata", ["ydata-profiling", "pyarrow"], "ydata_profiling"),
}


def say(msg: str) -> None:
    print(f"[data-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loopml_python() -> str:
    venv_py = REPO / ".venv" / "bin" / "python"
    return str(venv_py) if venv_py.exists() else sys.executable


def append(raw: Path, rec: dict) -> None:
    with open(raw, "a") as f:
        f.write(json.dumps(rec, default=str) + "\n")


def run(
    name: str, cmd: list[str], *, log: Path, timeout: float, raw: Path, record: dict | None = None
) -> str | None:
    """Run one step in its own process group; on timeout kill that group. Returns None on
    success, else why it failed (also appended to ``raw`` as an error record when ``record``)."""
    say(f"{name} ...")
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"\n### {name}: {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=f,
            start_new_session=True,
            env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )
        try:
            rc = proc.wait(timeout=timeout)
            why = None if rc == 0 else f"exited {rc} (see {log.relative_to(REPO)})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            why = f"did not finish in {timeout / 60:g} min (killed)"
    say(f"{name}: {time.perf_counter() - t0:.0f}s" + (f" - {why}" if why else ""))
    if why and record is not None:
        append(raw, dict(record, error=why, timeout="did not finish" in why))
    return why


def ensure_venv(peer: str, raw: Path, log: Path) -> str | None:
    """The peer's venv python, created on first use; None (and an install record) on failure."""
    folder, reqs, module = PEERS[peer]
    venv = BENCH / folder
    py = venv / "bin" / "python"
    ok = (
        py.exists()
        and subprocess.run(
            [str(py), "-c", f"import {module}"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if ok:
        return str(py)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    say(f"creating {venv.relative_to(REPO)}: python -m venv + pip install {' '.join(reqs)}")
    t0 = time.perf_counter()
    steps = [[base, "-m", "venv", str(venv)], [str(py), "-m", "pip", "install", "-q", *reqs]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
        with open(log, "a") as f:
            f.write(f"\n### install {peer}: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            lines = [
                ln
                for ln in (r.stderr + r.stdout).splitlines()
                if ln.strip() and "WARNING: Location" not in ln
            ]
            append(
                raw,
                {
                    "tool": "install",
                    "peer": peer,
                    "ok": False,
                    "why": " / ".join(lines[-3:])[:600],
                    "cmd": " ".join(cmd[2:]),
                },
            )
            say(f"install of {peer} failed; recorded")
            return None
    r = subprocess.run(
        [str(py), "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["import failed"])[-1]
        append(raw, {"tool": "install", "peer": peer, "ok": False, "why": f"import: {why}"})
        return None
    append(raw, {"tool": "install", "peer": peer, "ok": True, "seconds": time.perf_counter() - t0})
    return str(py)


def ensure_data(
    lpy: str, rows: int, gb: float | None, raw: Path, log: Path
) -> tuple[Path, Path | None]:
    """The table (and the versioning file), generated once and reused by later runs."""
    DATA.mkdir(parents=True, exist_ok=True)
    table = DATA / f"table-v{GEN_VERSION}-{rows}.parquet"
    if not table.exists():
        run(
            "generate table",
            [lpy, str(BENCH / "data_gen.py"), "table", "--rows", str(rows), "--out", str(table)],
            log=log,
            timeout=1800,
            raw=raw,
        )
    big = None
    if gb:
        big = DATA / f"big-v{GEN_VERSION}-{gb:g}gb.parquet"
        if not big.exists():
            run(
                "generate versioning file",
                [lpy, str(BENCH / "data_gen.py"), "big", "--gb", str(gb), "--out", str(big)],
                log=log,
                timeout=3600,
                raw=raw,
            )
    for path in (table, big):
        if path is not None and not path.exists():
            raise SystemExit(f"could not generate {path}; see {log}")
    return table, big


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="100k rows, 0.1 GiB, 1 rep (< 2 min)")
    p.add_argument("--rows", type=int, default=None, help="table rows (default 1,000,000)")
    p.add_argument("--reps", type=int, default=None, help="reps per row (default 3, quick 1)")
    p.add_argument(
        "--slow-peer-reps",
        type=int,
        default=1,
        help="reps of ydata-profiling and Evidently (default 1)",
    )
    p.add_argument(
        "--versioning-gb",
        type=float,
        default=None,
        help="size of the versioned Parquet file (default 1.0, quick 0.1; 0 skips)",
    )
    p.add_argument("--peer-timeout-min", type=float, default=10.0)
    p.add_argument(
        "--peers",
        default="pandera,evidently,ydata",
        help="comma-separated peers to run (default all; '' for none)",
    )
    p.add_argument(
        "--results-dir", default="", help="default bench/results (quick: bench/.work/results)"
    )
    p.add_argument("--from-raw", default="", help="re-render a run's raw.jsonl, measure nothing")
    a = p.parse_args()

    quick = a.quick
    reps = a.reps or (1 if quick else 3)
    rows = a.rows or (100_000 if quick else 1_000_000)
    gb = a.versioning_gb if a.versioning_gb is not None else (0.1 if quick else 1.0)
    results = (
        Path(a.results_dir)
        if a.results_dir
        else (BENCH / ".work" / "results" if quick else BENCH / "results")
    )
    if a.from_raw:
        raw = Path(a.from_raw)
        records = [json.loads(x) for x in raw.read_text().splitlines() if x.strip()]
        report(records, results=results, quick=quick, raw=raw)
        return

    lpy = loopml_python()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    work = BENCH / ".work" / f"data-{stamp}"
    work.mkdir(parents=True)
    raw, log = work / "raw.jsonl", work / "bench.log"
    t_start = time.perf_counter()
    say(f"work dir {work.relative_to(REPO)}; log {log.name}")
    cmdline = "python bench/data.py" + "".join(f" {x}" for x in sys.argv[1:])
    append(
        raw,
        {
            "tool": "meta",
            "stamp": stamp,
            "cmd": cmdline,
            "rows": rows,
            "gb": gb,
            "reps": reps,
            "quick": quick,
            "loadavg_start": os.getloadavg(),
            "cpus": os.cpu_count(),
        },
    )

    table, big = ensure_data(lpy, rows, gb, raw, log)
    append(
        raw,
        {
            "tool": "data",
            "path": str(table.relative_to(REPO)),
            "bytes": table.stat().st_size,
            "rows": rows,
        },
    )
    schema = work / "schema.json"
    run(
        "loopml infer schema",
        [
            lpy,
            str(BENCH / "data_loopml.py"),
            "schema",
            "--data",
            str(table),
            "--schema",
            str(schema),
            "--out",
            str(raw),
        ],
        log=log,
        timeout=1800,
        raw=raw,
        record={"tool": "loopml", "key": "infer_schema"},
    )
    if not schema.exists():
        raise SystemExit(f"schema inference failed; see {log}")

    # --- loopml: profile, validate, both (one fresh process per rep) --------------------------
    for op in ("profile", "validate", "both"):
        for rep in range(1, reps + 1):
            run(
                f"loopml {op} rep {rep}",
                [
                    lpy,
                    str(BENCH / "data_loopml.py"),
                    "run",
                    "--op",
                    op,
                    "--data",
                    str(table),
                    "--schema",
                    str(schema),
                    "--rep",
                    str(rep),
                    "--out",
                    str(raw),
                ],
                log=log,
                timeout=1800,
                raw=raw,
                record={"tool": "loopml", "key": op, "rep": rep},
            )

    # --- peers ----------------------------------------------------------------------------------
    peers = [x for x in a.peers.split(",") if x]
    timeout = a.peer_timeout_min * 60
    scripts = {
        "pandera": ("pandera_validate.py", ["--schema", str(schema)], "pandera", "validate"),
        "evidently": ("evidently_summary.py", [], "evidently", "profile"),
        "ydata": ("ydata_profile.py", [], "ydata-profiling", "profile"),
    }
    for peer in peers:
        py = ensure_venv(peer, raw, log)
        if py is None:
            continue
        script, extra, tool, key = scripts[peer]
        n = reps if peer == "pandera" else a.slow_peer_reps
        for rep in range(1, n + 1):
            why = run(
                f"{tool} rep {rep}",
                [
                    py,
                    str(BENCH / "peers" / script),
                    "--data",
                    str(table),
                    *extra,
                    "--rep",
                    str(rep),
                    "--out",
                    str(raw),
                ],
                log=log,
                timeout=timeout,
                raw=raw,
                record={"tool": tool, "key": key, "rep": rep},
            )
            if why and "did not finish" in why:
                break  # one timeout is enough to know

    # --- versioning -----------------------------------------------------------------------------
    if big is not None:
        append(
            raw,
            {
                "tool": "data",
                "path": str(big.relative_to(REPO)),
                "bytes": big.stat().st_size,
                "versioning": True,
            },
        )
        for rep in range(1, reps + 1):
            run(
                f"floor rep {rep}",
                [
                    lpy,
                    str(BENCH / "data_loopml.py"),
                    "floor",
                    "--file",
                    str(big),
                    "--rep",
                    str(rep),
                    "--out",
                    str(raw),
                ],
                log=log,
                timeout=1800,
                raw=raw,
                record={"tool": "floor", "key": "floor"},
            )
        for mode in ("profile", "noprofile", "relog"):
            for rep in range(1, reps + 1):
                run(
                    f"loopml log_dataset ({mode}) rep {rep}",
                    [
                        lpy,
                        str(BENCH / "data_loopml.py"),
                        "version",
                        "--mode",
                        mode,
                        "--file",
                        str(big),
                        "--workdir",
                        str(work),
                        "--rep",
                        str(rep),
                        "--out",
                        str(raw),
                    ],
                    log=log,
                    timeout=3600,
                    raw=raw,
                    record={"tool": "loopml", "key": f"version_{mode}", "rep": rep},
                )
        run(
            "loopml log_dataset stages",
            [
                lpy,
                str(BENCH / "data_loopml.py"),
                "stages",
                "--file",
                str(big),
                "--workdir",
                str(work),
                "--out",
                str(raw),
            ],
            log=log,
            timeout=3600,
            raw=raw,
            record={"tool": "loopml", "key": "version_stages"},
        )

    append(
        raw,
        {
            "tool": "meta-end",
            "loadavg_end": os.getloadavg(),
            "wall_s": time.perf_counter() - t_start,
        },
    )
    records = [json.loads(x) for x in raw.read_text().splitlines() if x.strip()]
    report(records, results=results, quick=quick, raw=raw)


if __name__ == "__main__":
    main()
