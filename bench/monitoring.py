#!/usr/bin/env python3
"""The monitoring benchmark (issue 6): loopml's batch drift report beside Evidently 0.7.23's
``DataDriftPreset`` on the same Parquet files, plus drift over 30 days of stored window
profiles and the cost of updating window profiles as predictions are logged.

    python bench/monitoring.py              # full run: 100k and 1M rows a side, 3 reps
    python bench/monitoring.py --quick      # smoke test: 20k rows, 1 rep
    python bench/monitoring.py --reps 5 --rows 100000

Steps: (1) ``bench/.work/venv-evidently`` (``pip install evidently==0.7.23 scipy 'pandas<3'
pyarrow``) if missing; (2) the anchors' data (``shared/bench/evidently_drift.py``'s
``make_data``, copied below: seed 0, 20 numeric + 5 categorical columns, numeric 0-4 and
categorical 0-1 drifted) written to Parquet, reference and current, plus a 2,000-row pair
(seed 1) both tools warm up on; (3) per size and rep, each tool in its own fresh process under
``/usr/bin/time -v``, alternating: Evidently reads the two files with pandas and runs
``Report([DataDriftPreset()])`` + ``snapshot.dict()``; loopml runs ``drift_report(ref_path,
cur_path)``; (4) the drifted-column verdicts of both, column by column; (5) 720 hourly window
profiles (30 days x 24) stored with ``Client.add_window_profile`` in a temporary
``LOOPML_HOME``, read back, merged and compared with the reference; (6)
``ProfileBuilder.update`` on 20,000-row batches with the reference's edges; (7) the table,
written to ``bench/results/monitoring-<stamp>.md`` (+ ``.jsonl``) and ``monitoring-latest.md``.

Only the standard library is imported at the top: the Evidently venv runs this file's
``evidently`` worker too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
EV_VENV = WORK / "venv-evidently"
EV_VERSION = "0.7.23"
EV_PACKAGES = [f"evidently=={EV_VERSION}", "scipy", "pandas<3", "pyarrow"]
WARMUP_ROWS = 2000
N_NUM, N_CAT = 20, 5
CAT_CARD = [3, 5, 10, 20, 50]
ROW_GROUP = 131_072

# Evidently's anchors in shared/bench/RESULTS.md (generated in-process, not read from Parquet)
ANCHORS = {100_000: (5.34, 456), 1_000_000: (81.2, 1902)}


def say(msg: str) -> None:
    print(f"[monitoring-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the data: shared/bench/evidently_drift.py's make_data, copied -----------------------------


def make_data(rows: int, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reference and current columns, as numpy arrays.

    Copied from ``make_data`` in ``shared/bench/evidently_drift.py`` (the anchors' script,
    read-only here): the same generator calls in the same order, so the same values; it returns
    dicts of arrays instead of pandas frames so that the files can be written without pandas.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for j in range(N_NUM):
        scale = 1.0 + j * 0.1
        ref[f"num_{j}"] = rng.normal(0.0, scale, rows)
        shift = 0.1 * (j + 1) * scale if j < 5 else 0.0
        cur[f"num_{j}"] = rng.normal(shift, scale, rows)
    for j, k in enumerate(CAT_CARD):
        cats = np.array([f"c{j}_{i}" for i in range(k)], dtype=object)
        p_ref = rng.dirichlet(np.ones(k))
        p_cur = rng.dirichlet(np.ones(k)) if j < 2 else p_ref
        ref[f"cat_{j}"] = cats[rng.choice(k, rows, p=p_ref)]
        cur[f"cat_{j}"] = cats[rng.choice(k, rows, p=p_cur)]
    return ref, cur


NUM_COLS = [f"num_{j}" for j in range(N_NUM)]
CAT_COLS = [f"cat_{j}" for j in range(N_CAT)]


def write_parquet(columns: dict[str, Any], path: Path) -> None:
    """Plain Arrow types (float64, string), no pandas metadata, row groups of 128 Ki rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP)
    tmp.replace(path)


def data_files(rows: int, seed: int = 0) -> tuple[Path, Path]:
    folder = WORK / "monitoring-data"
    return folder / f"ref-{rows}-s{seed}.parquet", folder / f"cur-{rows}-s{seed}.parquet"


def cmd_gen(a: argparse.Namespace) -> None:
    ref_path, cur_path = data_files(a.rows, a.seed)
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    if ref_path.exists() and cur_path.exists():
        return
    ref, cur = make_data(a.rows, a.seed)
    write_parquet(ref, ref_path)
    write_parquet(cur, cur_path)


# --- measuring helpers (stdlib only) -----------------------------------------------------------


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
    value = _status_mb("VmRSS")
    if value is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return value


def peak_mb() -> float:
    value = _status_mb("VmHWM")
    if value is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return value


def emit(rec: dict[str, Any]) -> None:
    rec["loadavg1"] = os.getloadavg()[0]
    print("RESULT " + json.dumps(rec, default=str), flush=True)


# --- the Evidently worker (runs in bench/.work/venv-evidently) ---------------------------------


def evidently_verdicts(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-column drift score, threshold, method and verdict from a 0.7 snapshot dict.

    ``ValueDrift`` metrics carry the score; the preset's tests (one per column) carry the
    decision. The score is compared with the threshold as Evidently does: p-value tests drift
    below it, distances at or above it.
    """
    out: dict[str, dict[str, Any]] = {}
    for m in d.get("metrics", []):
        config = m.get("config", {})
        if config.get("type", "").endswith("ValueDrift") or str(
            m.get("metric_name", "")
        ).startswith("ValueDrift"):
            col = config.get("column")
            method = config.get("method")
            threshold = config.get("threshold")
            value = m.get("value")
            out[str(col)] = {"score": value, "method": method, "threshold": threshold}
    for rec in out.values():
        method = str(rec.get("method") or "").lower()
        score, threshold = rec["score"], rec["threshold"]
        if score is None or threshold is None:
            rec["drifted"] = None
        elif "p_value" in method or method in ("ks", "chisquare", "z", "t_test", "mannw"):
            rec["drifted"] = bool(score < threshold)
        else:
            rec["drifted"] = bool(score >= threshold)
    return out


def cmd_evidently(a: argparse.Namespace) -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import evidently
    import pandas as pd
    import pyarrow.parquet
    import scipy.stats
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    del pyarrow, scipy  # imported for the "after imports" mark: what the run will use
    rss_imports = rss_mb()

    def run(ref_path: str, cur_path: str) -> dict[str, Any]:
        ref = pd.read_parquet(ref_path)
        cur = pd.read_parquet(cur_path)
        dd = DataDefinition(
            numerical_columns=[c for c in ref.columns if c.startswith("num_")],
            categorical_columns=[c for c in ref.columns if c.startswith("cat_")],
        )
        snap = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(cur, data_definition=dd),
            reference_data=Dataset.from_pandas(ref, data_definition=dd),
        )
        return snap.dict()

    t0 = time.perf_counter()
    run(a.warm_ref, a.warm_cur)
    warmup_s = time.perf_counter() - t0
    rss_warm = rss_mb()
    t0 = time.perf_counter()
    d = run(a.ref, a.cur)
    compute_s = time.perf_counter() - t0
    emit(
        {
            "tool": "evidently",
            "version": evidently.__version__,
            "pandas": pd.__version__,
            "compute_s": compute_s,
            "warmup_s": warmup_s,
            "rss_after_imports_mb": rss_imports,
            "rss_after_warmup_mb": rss_warm,
            "peak_in_process_mb": peak_mb(),
            "verdicts": evidently_verdicts(d),
        }
    )


# --- the loopml workers (run in .venv) ---------------------------------------------------------


def cmd_loopml(a: argparse.Namespace) -> None:
    import datasketches
    import pyarrow._parquet

    from loopml.monitoring.batch import drift_report

    del datasketches, pyarrow  # what the report imports on first use, imported up front
    if a.exact:
        import scipy.stats  # the exact tests' too

        del scipy
    rss_imports = rss_mb()
    t0 = time.perf_counter()
    drift_report(a.warm_ref, a.warm_cur, exact=a.exact)
    warmup_s = time.perf_counter() - t0
    rss_warm = rss_mb()
    t0 = time.perf_counter()
    report = drift_report(a.ref, a.cur, exact=a.exact)
    compute_s = time.perf_counter() - t0
    import loopml

    emit(
        {
            "tool": "loopml (exact=True)" if a.exact else "loopml",
            "version": loopml.__version__,
            "exact": a.exact,
            "compute_s": compute_s,
            "warmup_s": warmup_s,
            "timings": dict(report.timings),
            "rss_after_imports_mb": rss_imports,
            "rss_after_warmup_mb": rss_warm,
            "peak_in_process_mb": peak_mb(),
            "verdicts": {
                c.column: {
                    "score": c.result.p_value
                    if c.result.p_value is not None
                    else c.result.statistic,
                    "method": c.result.test,
                    "threshold": c.result.threshold,
                    "drifted": c.drifted,
                }
                for c in report.columns
            },
        }
    )


def cmd_windows(a: argparse.Namespace) -> None:
    """(f): 30 days of hourly window profiles stored, read back, merged, compared."""
    import tempfile

    import numpy as np

    home = Path(tempfile.mkdtemp(prefix="loopml-bench-windows-"))
    os.environ["LOOPML_HOME"] = str(home / ".loopml")
    import loopml
    from loopml.stats import (
        DatasetProfile,
        ProfileBuilder,
        compare_profiles,
        merge_all,
        profile,
    )

    try:
        client = loopml.Client()
        n_windows = a.days * 24
        # one draw of the anchors' data: the reference is 100k rows of its reference side, the
        # windows are consecutive slices of its current side (so they drift as it does)
        ref_cols, cur_cols = make_data(max(100_000, n_windows * a.window_rows), 0)
        reference = profile({k: v[:100_000] for k, v in ref_cols.items()})
        edges = reference.edges()
        start = 1_767_225_600_000  # 2026-01-01T00:00Z, a multiple of one hour
        t0 = time.perf_counter()
        sizes = []
        for w in range(n_windows):
            rows = slice(w * a.window_rows, (w + 1) * a.window_rows)
            cur = {k: v[rows] for k, v in cur_cols.items()}
            p = ProfileBuilder(edges=edges).update(cur).result()
            stored = client.add_window_profile(
                "bench-api",
                route="primary",
                model_version="bench/1",
                window_start=start + w * 3_600_000,
                window_seconds=3600,
                rows=a.window_rows,
                profile=p,
            )
            if w == 0:
                sizes.append(len(json.dumps(stored.profile)))
        build_s = time.perf_counter() - t0
        times: dict[str, list[float]] = {k: [] for k in ("list", "parse", "merge", "compare")}
        drifted: tuple[str, ...] = ()
        compare_profiles(reference, reference)  # warm-up: scipy's lazy import
        for _ in range(a.reps):
            t0 = time.perf_counter()
            windows = client.list_window_profiles("bench-api")
            t1 = time.perf_counter()
            profiles = [DatasetProfile.from_dict(w.profile) for w in windows]
            t2 = time.perf_counter()
            merged = merge_all(profiles)
            t3 = time.perf_counter()
            cmp = compare_profiles(reference, merged)
            t4 = time.perf_counter()
            for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                v_list = times[k]
                v_list.append(v)
            drifted = cmp.drifted_columns
            assert len(windows) == n_windows and merged.num_rows == n_windows * a.window_rows
        med = {k: statistics.median(v) for k, v in times.items()}
        # What a monitor reads: the daily roll-ups its runs write once each day is over.
        from loopml.monitoring.rollups import DAY, roll_up_days, window_fragments

        end = start + a.days * DAY
        t0 = time.perf_counter()
        roll_up_days(client, "bench-api", set(range(start, end, DAY)), now=end + DAY)
        rollup_build_s = time.perf_counter() - t0
        rolled: list[float] = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            parts = window_fragments(client, "bench-api", start, end)
            merged = merge_all(DatasetProfile.from_dict(p.profile) for p in parts)
            cmp = compare_profiles(reference, merged)
            rolled.append(time.perf_counter() - t0)
            assert len(parts) == a.days and merged.num_rows == n_windows * a.window_rows
            rollup_drifted = cmp.drifted_columns
        emit(
            {
                "key": "windows",
                "windows": n_windows,
                "window_rows": a.window_rows,
                "columns": len(reference.columns),
                "profile_json_bytes": sizes[0],
                "store": client.store.__class__.__name__,
                "build_and_store_s": build_s,
                "reps": a.reps,
                "list_s": med["list"],
                "parse_s": med["parse"],
                "merge_s": med["merge"],
                "compare_s": med["compare"],
                "total_s": statistics.median(
                    [sum(v[i] for v in times.values()) for i in range(a.reps)]
                ),
                "all_totals_s": [sum(v[i] for v in times.values()) for i in range(a.reps)],
                "drifted": list(drifted),
                "rollup_build_s": rollup_build_s,
                "rollup_total_s": statistics.median(rolled),
                "rollup_all_s": rolled,
                "rollup_drifted": list(rollup_drifted),
                "rng_check": float(np.round(merged["num_5"].mean or 0.0, 3)),  # type: ignore[union-attr]
            }
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def cmd_update(a: argparse.Namespace) -> None:
    """(g): ProfileBuilder.update on LogWriter-sized batches, with the reference's edges."""
    import pandas as pd

    from loopml.stats import ProfileBuilder, profile

    ref_cols, _ = make_data(100_000, 0)
    reference = profile(ref_cols)
    edges = reference.edges()
    batches = []
    for i in range(a.batches):
        _, cur = make_data(a.batch_rows, 2000 + i)
        batches.append(pd.DataFrame(cur))  # what LogWriter._profile hands the builder
    builder = ProfileBuilder(edges=edges)
    builder.update(batches[0])  # warm-up: first-call set-up, lazy imports
    times = []
    for frame in batches[1:]:
        t0 = time.perf_counter()
        builder.update(frame)
        times.append(time.perf_counter() - t0)
    import pyarrow as pa

    arrow = [pa.Table.from_pandas(f, preserve_index=False) for f in batches[1:]]
    atimes = []
    for table in arrow:
        t0 = time.perf_counter()
        builder.update(table)
        atimes.append(time.perf_counter() - t0)
    per = statistics.median(times)
    emit(
        {
            "key": "update",
            "batch_rows": a.batch_rows,
            "columns": len(batches[0].columns),
            "batches": len(times),
            "batch_s": per,
            "batch_s_all": times,
            "us_per_row": per / a.batch_rows * 1e6,
            "arrow_batch_s": statistics.median(atimes),
            "arrow_us_per_row": statistics.median(atimes) / a.batch_rows * 1e6,
            "string_dtype": str(batches[0]["cat_0"].dtype),
        }
    )


# --- the driver --------------------------------------------------------------------------------


def ensure_evidently_venv() -> tuple[str, float | None]:
    """The Evidently venv's python, created if missing; and how long the install took."""
    py = EV_VENV / "bin" / "python"
    check = [str(py), "-c", f"import evidently; assert evidently.__version__ == '{EV_VERSION}'"]
    if py.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return str(py), None
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    say(f"creating {EV_VENV} (python3 -m venv + pip install {' '.join(EV_PACKAGES)})")
    t0 = time.perf_counter()
    subprocess.run([base, "-m", "venv", str(EV_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *EV_PACKAGES], check=True)
    return str(py), time.perf_counter() - t0


def timed_process(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` under ``/usr/bin/time -v``: its RESULT line, peak RSS and wall time."""
    tv = log.with_suffix(".time")
    with open(log, "a") as f:
        f.write(f"\n### {' '.join(cmd)}\n")
        f.flush()
        res = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(tv), *cmd],
            stdout=subprocess.PIPE,
            stderr=f,
            text=True,
            env=env,
            check=False,
        )
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({res.returncode}); see {log}")
    line = next(x for x in reversed(res.stdout.splitlines()) if x.startswith("RESULT "))
    rec: dict[str, Any] = json.loads(line[len("RESULT ") :])
    text = tv.read_text()
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    rec["peak_rss_mb"] = int(peak.group(1)) / 1024 if peak else None
    if wall:
        parts = [float(p) for p in wall.group(1).split(":")]
        rec["process_wall_s"] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    rec["working_mb"] = (
        rec["peak_rss_mb"] - rec["rss_after_imports_mb"]
        if rec.get("peak_rss_mb") and rec.get("rss_after_imports_mb")
        else None
    )
    return rec


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "PYTHON"))}
    env["PYTHONWARNINGS"] = "ignore"
    env["DO_NOT_TRACK"] = "1"
    return env


def med(values: list[float]) -> float:
    return statistics.median(values)


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def report(recs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown table from the raw records."""
    lines = [
        f"# Monitoring benchmark: loopml vs Evidently ({meta['stamp']})",
        "",
        f"`{meta['cmd']}` on {meta['cpus']} CPUs ({meta['platform']}); loopml {meta['git']}; "
        f"Evidently {meta.get('evidently', '?')} (pandas {meta.get('ev_pandas', '?')}) in "
        f"`bench/.work/venv-evidently`. Load average {meta.get('load_start')} at the start, "
        f"{meta.get('load_end')} at the end.",
        "",
        "Data: `shared/bench/evidently_drift.py`'s `make_data` (seed 0; 20 numeric + 5 "
        "categorical columns; numeric 0-4 and categorical 0-1 drifted), written to Parquet "
        f"(row groups of {ROW_GROUP:,} rows). Each rep is a fresh process per tool under "
        "`/usr/bin/time -v`, the tools alternating. Timed: from the two file paths to the "
        "per-column verdicts, after a 2,000-row warm-up report in the same process (lazy imports "
        "paid). Evidently: `pd.read_parquet` x2, `Dataset.from_pandas` x2, "
        "`Report([DataDriftPreset()]).run(...)`, `snapshot.dict()`. loopml: "
        "`drift_report(ref_path, cur_path)` (default tests: normed Wasserstein and "
        "Jensen-Shannon, as Evidently's for > 1,000 rows; thresholds 0.1 both).",
        "",
        "Memory two ways: **peak** = the process's peak RSS (`/usr/bin/time -v`, imports and "
        "warm-up included); **working** = peak minus the RSS right after the tool's imports, "
        "read by the worker before it touches any data. Imports, the same way for both: the "
        "tool's entry point plus the libraries its run loads (Evidently: `import evidently, "
        "pandas, pyarrow.parquet, scipy.stats`; loopml: `from loopml.monitoring.batch import "
        "drift_report` + `pyarrow._parquet, datasketches` (+ `scipy.stats` with `exact=True`), "
        "which it would otherwise import on first use; its default tests need no scipy). "
        "`loopml (exact=True)` runs KS/Wasserstein on the raw values (scipy), column by "
        "column: information, the targets are judged on the default.",
        "",
        "| rows a side | tool | time (median) | range | process wall | peak RSS | RSS after "
        "imports | working memory | drifted columns | reps |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = sorted({r["rows"] for r in recs if r.get("key") == "drift"})
    summary: dict[tuple[int, str], dict[str, float]] = {}
    for rows in sizes:
        for tool in ("evidently", "loopml", "loopml (exact=True)"):
            rs = [
                r
                for r in recs
                if r.get("key") == "drift" and r["rows"] == rows and r["tool"] == tool
            ]
            if not rs:
                continue
            t = [r["compute_s"] for r in rs]
            s = {
                "time": med(t),
                "peak": med([r["peak_rss_mb"] for r in rs]),
                "imports": med([r["rss_after_imports_mb"] for r in rs]),
                "working": med([r["working_mb"] for r in rs]),
                "wall": med([r["process_wall_s"] for r in rs]),
            }
            summary[(rows, tool)] = s
            drifted = sorted(c for c, v in rs[-1]["verdicts"].items() if v["drifted"])
            lines.append(
                f"| {rows:,} | {tool} | {fmt_s(s['time'])} | {min(t):.3g}..{max(t):.3g} | "
                f"{s['wall']:.1f} s | {s['peak']:.0f} MiB | {s['imports']:.0f} MiB | "
                f"{s['working']:.0f} MiB | {len(drifted)} | {len(rs)} |"
            )
    lines += ["", "## Targets (issue 6)", "", "| target | loopml | Evidently | ratio | |"]
    lines.append("|---|---|---|---|---|")
    for rows in sizes:
        lo, ev = summary.get((rows, "loopml")), summary.get((rows, "evidently"))
        if not lo or not ev:
            continue
        r = ev["time"] / lo["time"]
        lines.append(
            f"| {rows:,} rows: loopml >= 20x faster | {fmt_s(lo['time'])} | {fmt_s(ev['time'])} "
            f"| {r:.1f}x | {'pass' if r >= 20 else 'FAIL'} |"
        )
        for what in ("peak", "working"):
            r = ev[what] / lo[what]
            label = "peak RSS" if what == "peak" else "working memory"
            lines.append(
                f"| {rows:,} rows: loopml {label} <= 1/5 of Evidently's | {lo[what]:.0f} MiB | "
                f"{ev[what]:.0f} MiB | 1/{r:.1f} | {'pass' if r >= 5 else 'FAIL'} |"
            )
    win = next((r for r in recs if r.get("key") == "windows"), None)
    if win:
        if "rollup_total_s" in win:
            lines.append(
                f"| drift over {win['windows'] // 24} days of stored window profiles < 100 ms "
                f"(the monitor's path: daily roll-ups) | {win['rollup_total_s'] * 1000:.0f} ms "
                f"| - | - | {'pass' if win['rollup_total_s'] < 0.1 else 'FAIL'} |"
            )
        lines.append(
            f"| (information) the same over {win['windows']} hourly profiles, no roll-ups | "
            f"{win['total_s'] * 1000:.0f} ms | - | - | - |"
        )
    upd = next((r for r in recs if r.get("key") == "update"), None)
    if upd:
        lines.append(
            f"| window profile update < 5 µs per row ({upd['batch_rows']:,}-row batches x "
            f"{upd['columns']} columns) | {upd['us_per_row']:.2f} µs | - | - | "
            f"{'pass' if upd['us_per_row'] < 5 else 'FAIL'} |"
        )
    # verdicts, column by column
    lines += ["", "## Drift verdicts, column by column", ""]
    for rows in sizes:
        ev_r = [
            r
            for r in recs
            if r.get("key") == "drift" and r["rows"] == rows and r["tool"] == "evidently"
        ]
        runs = {
            tool: [
                r
                for r in recs
                if r.get("key") == "drift" and r["rows"] == rows and r["tool"] == tool
            ]
            for tool in ("loopml", "loopml (exact=True)")
        }
        if not ev_r or not runs["loopml"]:
            continue
        ev_v = ev_r[-1]["verdicts"]
        lo_v = runs["loopml"][-1]["verdicts"]
        ex_v = runs["loopml (exact=True)"][-1]["verdicts"] if runs["loopml (exact=True)"] else {}
        cols = [c for c in lo_v if c in ev_v]
        for tool, verdicts in (("loopml", lo_v), ("loopml (exact=True)", ex_v)):
            if not verdicts:
                continue
            # every rep's verdicts, not only the last one's (the sketches are randomised)
            reps = runs[tool]
            agree = [
                sum(ev_v[c]["drifted"] == r["verdicts"][c]["drifted"] for c in cols) for r in reps
            ]
            lines.append(
                f"**{rows:,} rows: Evidently and {tool} agree on {min(agree)} of {len(cols)} "
                f"columns** (per rep: {agree}; Evidently drifted "
                f"{sorted(c for c in cols if ev_v[c]['drifted'])}; {tool}, last rep: "
                f"{sorted(c for c in cols if verdicts[c]['drifted'])}).",
            )
            lines.append("")
        lines += [
            "| column | Evidently method | Evidently score | loopml test | loopml score | "
            "loopml exact score | threshold | Evidently | loopml | loopml exact |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in cols:
            e, lo = ev_v[c], lo_v[c]
            ex = ex_v.get(c)
            lines.append(
                f"| {c} | {e['method']} | {e['score']:.4f} | {lo['method']} | "
                f"{lo['score']:.4f} | {'-' if ex is None else format(ex['score'], '.4f')} | "
                f"{lo['threshold']} | {'drift' if e['drifted'] else '-'} | "
                f"{'drift' if lo['drifted'] else '-'} | "
                f"{'-' if ex is None else ('drift' if ex['drifted'] else '-')} |"
            )
        lines.append("")
    if win:
        lines += [
            "## Drift over stored window profiles",
            "",
            f"{win['windows']} hourly windows ({win['windows'] // 24} days) of "
            f"{win['window_rows']:,} rows x {win['columns']} columns each, binned on the "
            "reference's edges (`ProfileBuilder(edges=reference.edges())`, as serving's log "
            "writer does), stored "
            f"with `Client.add_window_profile` in a fresh `LOOPML_HOME` ({win['store']}, "
            f"{win['profile_json_bytes'] / 1024:.0f} KiB of JSON per window). Median of "
            f"{win['reps']}: `list_window_profiles` {win['list_s'] * 1000:.1f} ms, "
            f"`DatasetProfile.from_dict` x{win['windows']} {win['parse_s'] * 1000:.1f} ms, "
            f"`merge_all` {win['merge_s'] * 1000:.1f} ms, `compare_profiles` "
            f"{win['compare_s'] * 1000:.1f} ms; total {win['total_s'] * 1000:.1f} ms "
            f"(all reps: {', '.join(f'{x * 1000:.0f}' for x in win['all_totals_s'])} ms). "
            f"Drifted: {win['drifted']}.",
            "",
            "With the daily roll-ups monitor runs write once a day is over "
            "(`loopml.monitoring.rollups`; writing the 30 took "
            f"{win.get('rollup_build_s', float('nan')):.2f} s, once), the same 30 days read as "
            f"30 profiles: {win.get('rollup_total_s', float('nan')) * 1000:.1f} ms from the "
            "store to the verdicts; drifted: "
            f"{win.get('rollup_drifted')} (the sketches merge in another order, so the "
            "binned statistics can move a little).",
            "",
        ]
    if upd:
        lines += [
            "## Updating window profiles",
            "",
            f"`ProfileBuilder(edges=reference.edges()).update(frame)` on pandas frames of "
            f"{upd['batch_rows']:,} rows x {upd['columns']} columns (20 float64, 5 strings as "
            f"`{upd['string_dtype']}`), what the log writer hands it: median "
            f"{upd['batch_s'] * 1000:.1f} ms per batch = {upd['us_per_row']:.2f} µs per row "
            f"({upd['batches']} batches). The same batches as pyarrow tables: "
            f"{upd['arrow_batch_s'] * 1000:.1f} ms = {upd['arrow_us_per_row']:.2f} µs per row.",
            "",
        ]
    lines += [
        "## Anchors",
        "",
        "`shared/bench/RESULTS.md` (Evidently, data generated in process, not read from "
        "Parquet): "
        + "; ".join(f"{k:,} rows {v[0]} s, peak {v[1]} MiB" for k, v in ANCHORS.items())
        + ".",
    ]
    for note in meta.get("notes", []):
        lines.append(f"* {note}")
    return "\n".join(lines) + "\n"


def cmd_run(a: argparse.Namespace) -> None:
    sys.path.insert(0, str(BENCH))
    from run import git_state

    sizes = [int(x) for x in (a.rows or ("20000" if a.quick else "100000,1000000")).split(",")]
    reps = a.reps or (1 if a.quick else 3)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / ("results" if not a.quick else ".work/results")
    results_dir.mkdir(parents=True, exist_ok=True)
    raw = results_dir / f"monitoring-{stamp}.jsonl"
    work = WORK / f"monitoring-{stamp}"
    work.mkdir(parents=True)
    log = work / "workers.log"
    lpy = str(REPO / ".venv" / "bin" / "python")
    me = str(Path(__file__).resolve())
    meta: dict[str, Any] = {
        "stamp": stamp,
        "cmd": "python bench/monitoring.py" + "".join(f" {x}" for x in sys.argv[1:]),
        "git": git_state(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_start": round(os.getloadavg()[0], 2),
        "notes": [],
    }
    recs: list[dict[str, Any]] = []

    def keep(rec: dict[str, Any]) -> None:
        recs.append(rec)
        with open(raw, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    evpy = None
    if not a.skip_evidently:
        evpy, install_s = ensure_evidently_venv()
        if install_s is not None:
            meta["notes"].append(f"Evidently venv created in {install_s:.0f} s")
    env = base_env()
    say(f"data: {sizes} rows a side (+ {WARMUP_ROWS} for warm-up)")
    for rows, seed in [(WARMUP_ROWS, 1), *((n, 0) for n in sizes)]:
        subprocess.run(
            [lpy, me, "gen", "--rows", str(rows), "--seed", str(seed)], env=env, check=True
        )
    warm_ref, warm_cur = data_files(WARMUP_ROWS, 1)
    for rep in range(1, reps + 1):
        for rows in sizes:
            ref, cur = data_files(rows, 0)
            args = ["--ref", str(ref), "--cur", str(cur)]
            args += ["--warm-ref", str(warm_ref), "--warm-cur", str(warm_cur)]
            tools = ["evidently", "loopml", "exact"]
            if rep % 2 == 0:
                tools.reverse()
            for tool in tools:
                if tool == "evidently" and evpy is None:
                    continue
                py = evpy if tool == "evidently" else lpy
                say(f"rep {rep}/{reps}, {rows:,} rows: {tool}")
                assert py is not None
                cmd = [py, me, "loopml" if tool == "exact" else tool, *args]
                rec = timed_process(cmd + (["--exact"] if tool == "exact" else []), env, log)
                rec.update(key="drift", rows=rows, rep=rep)
                keep(rec)
                if tool == "evidently":
                    meta["evidently"] = rec.get("version")
                    meta["ev_pandas"] = rec.get("pandas")
                say(
                    f"  {rec['compute_s']:.3f} s, peak {rec['peak_rss_mb']:.0f} MiB, working "
                    f"{rec['working_mb']:.0f} MiB"
                )
    say("window profiles: 30 days of hourly windows")
    rec = timed_process(
        [lpy, me, "windows", "--window-rows", str(a.window_rows), "--reps", "5"], env, log
    )
    keep(rec)
    say(f"  total {rec['total_s'] * 1000:.0f} ms")
    say("window profile updates")
    rec = timed_process([lpy, me, "update"], env, log)
    keep(rec)
    say(f"  {rec['us_per_row']:.2f} µs per row")
    meta["load_end"] = round(os.getloadavg()[0], 2)
    keep({"key": "meta", **meta})
    text = report(recs, meta)
    (results_dir / f"monitoring-{stamp}.md").write_text(text)
    (results_dir / f"monitoring-latest{'-quick' if a.quick else ''}.md").write_text(text)
    print(text)


def cmd_from_raw(a: argparse.Namespace) -> None:
    recs = [json.loads(x) for x in Path(a.path).read_text().splitlines() if x.strip()]
    meta = next((r for r in recs if r.get("key") == "meta"), {"stamp": "?", "cmd": "?"})
    print(report(recs, meta))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    run = sub.add_parser("run", help="the whole benchmark (the default)")
    for p in (ap, run):
        p.add_argument("--quick", action="store_true", help="20k rows, 1 rep")
        p.add_argument("--reps", type=int, default=None)
        p.add_argument("--rows", default=None, help="comma-separated sizes (rows a side)")
        p.add_argument("--skip-evidently", action="store_true")
        p.add_argument("--window-rows", type=int, default=1000)
    g = sub.add_parser("gen")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    for name in ("evidently", "loopml"):
        w = sub.add_parser(name)
        for opt in ("--ref", "--cur", "--warm-ref", "--warm-cur"):
            w.add_argument(opt, required=True)
        w.add_argument("--exact", action="store_true")
    win = sub.add_parser("windows")
    win.add_argument("--days", type=int, default=30)
    win.add_argument("--window-rows", type=int, default=1000)
    win.add_argument("--reps", type=int, default=5)
    upd = sub.add_parser("update")
    upd.add_argument("--batch-rows", type=int, default=20_000)
    upd.add_argument("--batches", type=int, default=11)
    fr = sub.add_parser("from-raw")
    fr.add_argument("path")
    a = ap.parse_args()
    handlers = {
        None: cmd_run,
        "run": cmd_run,
        "gen": cmd_gen,
        "evidently": cmd_evidently,
        "loopml": cmd_loopml,
        "windows": cmd_windows,
        "update": cmd_update,
        "from-raw": cmd_from_raw,
    }
    handlers[a.cmd](a)


if __name__ == "__main__":
    main()
