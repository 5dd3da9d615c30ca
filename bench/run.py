#!/usr/bin/env python3
"""The tracking benchmark driver: MLflow 3.x and loopml side by side, in one invocation.

    python bench/run.py                # full run (~10-15 min), writes bench/results/
    python bench/run.py --quick        # smoke test (< 2 min), writes bench/.work/results/
    python bench/run.py --skip-mlflow  # loopml only; MLflow figures are the anchors in
                                       # shared/bench/RESULTS.md, labelled "anchor"

Steps: (1) create ``bench/.venv-mlflow`` if missing (``python3 -m venv`` + ``pip install
'mlflow>=3,<4' scikit-learn``); (2) run the shared MLflow anchor script
(``shared/bench/mlflow_tracking.py log`` then ``readback``) against a fresh SQLite file; (3) run
``bench/tracking.py`` (loopml, default WAL + synchronous=NORMAL) against a fresh SQLite file, plus
the 100k-run search on SQLite and on a throwaway PostgreSQL database; (4) run the write rows again
with ``LOOPML_SQLITE_SYNCHRONOUS=full``; (5) time ``import`` and ``--help`` of both
(``bench/startup.py``); (6) print the table and write it with the raw JSON lines.

Nothing here tunes loopml: both tools run with their defaults except where a row says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = Path(os.environ.get("LOOPML_BENCH_SHARED", REPO.parent / "shared" / "bench"))
MLFLOW_VENV = BENCH / ".venv-mlflow"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

# Anchors from shared/bench/RESULTS.md (fallback if the file cannot be parsed).
FALLBACK_ANCHORS = {
    "loop": 410.0,
    "batch": 14946.0,
    "ingest": 15073.0,
    "history": 2.09,
    "history_list": 2.09,
    "create": 77.4,
    "search_all": 0.699,
    "search_filtered": 0.0195,
    "search_pandas": 0.76,
    "import": 1.11,
    "help": 2.66,
    "floor": 0.00889,
}

# key, label, unit, higher_is_better, target (kind, value); kind "x" = ratio vs MLflow,
# "lt" = absolute seconds upper bound, None = information only.
ROWS = [
    ("loop", "log_metric per call, {n} pts (fluent, until durable)", "points/s", True, ("x", 100)),
    (
        "loop_full",
        "↳ same, loopml with `LOOPML_SQLITE_SYNCHRONOUS=full`",
        "points/s",
        True,
        ("x", 100),
    ),
    ("batch", "log_batch {nb} calls x 1000 pts", "points/s", True, ("x", 20)),
    (
        "batch_full",
        "↳ same, loopml with `LOOPML_SQLITE_SYNCHRONOUS=full`",
        "points/s",
        True,
        ("x", 20),
    ),
    ("ingest", "ingest {h} pts via log_batch x1000 (setup, 1 sample)", "points/s", True, None),
    ("history", "metric history {h} pts: loopml columnar (numpy arrays)", "s", False, ("x", 20)),
    (
        "history_list",
        "metric history {h} pts: loopml + `list(history)` (Metric objects)",
        "s",
        False,
        ("x", 20),
    ),
    (
        "create",
        "create {r} runs, 10 params + 10 metrics (fluent, 1 sample)",
        "runs/s",
        True,
        ("x", 10),
    ),
    (
        "create_full",
        "↳ same, loopml with `LOOPML_SQLITE_SYNCHRONOUS=full`",
        "runs/s",
        True,
        ("x", 10),
    ),
    ("search_all", "search all {r} runs -> full Run objects", "s", False, ("x", 10)),
    ("search_filtered", "search {r} runs filtered + ordered", "s", False, ("x", 10)),
    ("search_pandas", "search {r} runs -> pandas DataFrame", "s", False, ("x", 10)),
    (
        "search100k_sqlite",
        "search {s} runs filtered + ordered, SQLite (loopml only)",
        "s",
        False,
        ("lt", 0.200),
    ),
    (
        "search100k_postgresql",
        "search {s} runs filtered + ordered, PostgreSQL (loopml only)",
        "s",
        False,
        ("lt", 0.200),
    ),
    ("floor", "`python -c pass` (interpreter floor)", "s", False, None),
    ("import", "`import` (fresh process, median of {k})", "s", False, ("lt", 0.100)),
    ("help", "`--help` of the CLI (fresh process, median of {k})", "s", False, ("lt", 0.300)),
]

MLFLOW_KEYS = [  # MLflow workload prefix -> row key
    ("log_metric loop sync", "loop"),
    ("log_batch x", "batch"),
    ("ingest ", "ingest"),
    ("get_metric_history", "history"),
    ("create ", "create"),
    ("search_runs all", "search_all"),
    ("search_runs filtered", "search_filtered"),
    ("mlflow.search_runs -> pandas", "search_pandas"),
]


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loopml_python() -> str:
    venv_py = REPO / ".venv" / "bin" / "python"
    return str(venv_py) if venv_py.exists() else sys.executable


def ensure_mlflow_venv() -> str:
    py = MLFLOW_VENV / "bin" / "python"
    if (
        py.exists()
        and subprocess.run(
            [str(py), "-c", "import mlflow"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return str(py)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    say(f"creating {MLFLOW_VENV} (python3 -m venv + pip install 'mlflow>=3,<4' scikit-learn)")
    subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "mlflow>=3,<4", "scikit-learn"], check=True
    )
    return str(py)


def run_step(
    name: str,
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    timeout: float,
    failures: list[str],
) -> None:
    say(f"{name}: {' '.join(cmd[1:3])} ...")
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"\n### {name}: {' '.join(cmd)}\n")
        f.flush()
        try:
            r = subprocess.run(
                cmd,
                cwd=cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=f,
                timeout=timeout,
                check=False,
            )
            rc = r.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    say(f"{name}: done in {time.perf_counter() - t0:.0f}s (exit {rc})")
    if rc != 0:
        failures.append(f"{name} exited {rc}; see {log}")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parse_anchors() -> dict[str, float]:
    """MLflow 3.17.2 local-SQLite figures from the generated tables of shared RESULTS.md."""
    anchors: dict[str, float] = {}
    try:
        text = (SHARED / "RESULTS.md").read_text()
    except OSError:
        return dict(FALLBACK_ANCHORS)
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or cells[0] != "mlflow":
            continue
        version, workload, figure = cells[1], cells[2], cells[3]
        try:
            value = float(figure.replace(",", ""))
        except ValueError:
            continue
        if "3.17.2" in version and workload.endswith("— local sqlite (fluent, in-process)"):
            for prefix, key in MLFLOW_KEYS:
                if workload.startswith(prefix) and key not in anchors:
                    anchors[key] = value
        elif version == "3.17.2":
            if workload.startswith("python -c 'import mlflow'"):
                anchors.setdefault("import", value)
            elif workload == "mlflow --help":
                anchors.setdefault("help", value)
            elif workload.startswith("python -c pass"):
                anchors.setdefault("floor", value)
    if "history" in anchors:
        anchors["history_list"] = anchors["history"]  # MLflow returns Metric objects either way
    for key, value in FALLBACK_ANCHORS.items():
        anchors.setdefault(key, value)
    return anchors


def collect(records: list[dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(mlflow rows by key, loopml rows by key)."""
    mlf: dict[str, dict] = {}
    lml: dict[str, dict] = {}
    for rec in records:
        if rec.get("tool") == "mlflow":
            key = rec.get("key")
            if key is None:
                for prefix, k in MLFLOW_KEYS:
                    if rec["workload"].startswith(prefix):
                        key = k
                        break
            if key is not None:
                mlf[key] = rec
                if key == "history":
                    mlf["history_list"] = rec
        elif rec.get("tool") == "loopml":
            key = rec["key"]
            if "synchronous=FULL" in str(rec.get("sqlite_mode")) and key in (
                "loop",
                "batch",
                "create",
            ):
                key += "_full"
            lml[key] = rec
    return mlf, lml


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        if value < 1:
            return f"{value * 1000:.3g} ms" if value >= 0.001 else f"{value * 1e6:.3g} µs"
        return f"{value:.3g} s"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def spread(rec: dict | None) -> str:
    if rec is None or not rec.get("samples") or len(rec["samples"]) < 2:
        return ""
    s = rec["samples"]
    unit = rec.get("unit", "s")
    return f" ({fmt(min(s), unit)}..{fmt(max(s), unit)})"


def build_table(
    records: list[dict], anchors: dict[str, float] | None, sizes: dict
) -> tuple[str, list[str]]:
    mlf, lml = collect(records)
    lines = [
        "| workload | MLflow | loopml | ratio | target | pass/fail |",
        "|---|---|---|---|---|---|",
    ]
    misses = []
    for key, label, unit, higher, target in ROWS:
        text = label.format(**sizes)
        base_key = key.removesuffix("_full")
        m = mlf.get(base_key)
        mval: float | None = m["median"] if m else None
        mtext = fmt(mval, unit) + spread(m) if m else "n/a"
        if anchors is not None and base_key in anchors and not key.startswith("search100k"):
            mval = anchors[base_key]
            mtext = f"{fmt(mval, unit)} (anchor)"
        if key.startswith("search100k"):
            mtext = "—"
            mval = None
        lrec = lml.get(key)
        lval = lrec["median"] if lrec else None
        ltext = "n/a" if lval is None else fmt(lval, unit) + spread(lrec)
        if lrec is not None and lrec.get("error"):
            ltext = "n/a (error)"
        unit_note = "" if unit == "s" else f" {unit}"
        ratio = None
        if mval and lval:
            ratio = lval / mval if higher else mval / lval
        rtext = "n/a" if ratio is None else (f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x")
        if target is None:
            ttext, verdict = "—", "info"
        elif target[0] == "x":
            ttext = f">= {target[1]}x" + (" faster" if not higher else "")
            verdict = "n/a" if ratio is None else ("pass" if ratio >= target[1] else "FAIL")
        else:
            ttext = f"< {fmt(target[1], 's')}"
            verdict = "n/a" if lval is None else ("pass" if lval < target[1] else "FAIL")
        if key.endswith("_full") and verdict in ("pass", "FAIL"):
            verdict += " (info: target is for the default mode)"
        if verdict == "FAIL" or (verdict == "n/a" and target is not None):
            misses.append(
                f"{text.strip()}: MLflow {mtext}, loopml {ltext}, ratio {rtext}, target {ttext}"
            )
        lines.append(f"| {text}{unit_note} | {mtext} | {ltext} | {rtext} | {ttext} | {verdict} |")
    return "\n".join(lines), misses


def _rel(value: float | None, anchor: float, higher: bool) -> str:
    if not value:
        return "n/a"
    r = value / anchor if higher else anchor / value
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def anchor_table(records: list[dict], anchors: dict[str, float], sizes: dict) -> str:
    """This run's MLflow and loopml figures next to the RESULTS.md anchors: shows how much
    slower (loaded) the box was than when the anchors were measured."""
    mlf, lml = collect(records)
    lines = [
        "| workload | MLflow anchor (RESULTS.md) | MLflow this run | this run / anchor "
        "| loopml | loopml vs anchor |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, unit, higher, _target in ROWS:
        base_key = key.removesuffix("_full")
        if key.startswith("search100k") or base_key not in anchors:
            continue
        anchor = anchors[base_key]
        m = mlf.get(base_key)
        mval = m["median"] if m else None
        lrec = lml.get(key)
        lval = lrec["median"] if lrec else None

        lines.append(
            f"| {label.format(**sizes)} | {fmt(anchor, unit)} | {fmt(mval, unit)} "
            f"| {_rel(mval, anchor, higher)} | {fmt(lval, unit)} | {_rel(lval, anchor, higher)} |"
        )
    return "\n".join(lines)


def git_state() -> str:
    """The commit the measured loopml was built from, and whether src/ had local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown (git not available)"
    if not head:
        return "unknown (not a git checkout)"
    n = len(dirty.splitlines())
    return f"commit {head}" + (
        f" + {n} uncommitted change(s) under src/" if n else " (clean src/)"
    )


def environment_notes(records: list[dict], loopml_py: str, mlflow_py: str | None) -> list[str]:
    out = []
    lv = next(
        (r.get("versions") for r in records if r.get("tool") == "loopml" and r.get("versions")), {}
    )
    mv = next(
        (r.get("versions") for r in records if r.get("tool") == "mlflow" and r.get("versions")), {}
    )
    if mv:
        out.append(
            f"MLflow {mv.get('mlflow_client')} (SQLAlchemy {mv.get('sqlalchemy')}, SQLite "
            f"{mv.get('sqlite')}), venv `bench/.venv-mlflow`"
        )
    if lv:
        out.append(
            f"loopml {lv.get('loopml')} (SQLAlchemy {lv.get('sqlalchemy')}, SQLite "
            f"{lv.get('sqlite')}, psycopg {lv.get('psycopg', 'n/a')}), Python {lv.get('python')}"
        )
    try:
        pg = subprocess.run(
            [
                loopml_py,
                "-c",
                "import psycopg;c=psycopg.connect('host=127.0.0.1 "
                "user=postgres dbname=postgres');print(c.execute('show server_version')"
                ".fetchone()[0])",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if pg.returncode == 0:
            out.append(f"PostgreSQL server {pg.stdout.strip()} on 127.0.0.1:5432")
    except (OSError, subprocess.SubprocessError):
        pass
    out.append(f"{os.cpu_count()} vCPU, {platform.platform()}")
    meta = next((r for r in records if r.get("tool") == "meta"), None)
    if meta:
        out.append(f"loopml source when the run started: {meta['git']}")
    seen = sorted(
        {
            (r.get("versions") or {}).get("loopml_git") or r.get("loopml_git") or "not recorded"
            for r in records
            if r.get("tool") == "loopml"
        }
    )
    if seen:
        warn = "" if len(seen) == 1 else " (**changed during the run**: rows are not comparable)"
        out.append(f"loopml source seen by the loopml steps: {', '.join(seen)}{warn}")
    for tool in ("mlflow", "loopml"):
        loads = [
            r["loadavg1"]
            for r in records
            if r.get("tool") == tool and isinstance(r.get("loadavg1"), (int, float))
        ]
        if loads:
            out.append(
                f"1-min load average at the end of each {tool} row: {min(loads):.2f}.."
                f"{max(loads):.2f} (2 vCPU box shared with other sessions)"
            )
    return out


def details(records: list[dict]) -> list[str]:
    """Per-row notes worth reading next to the table."""
    _, lml = collect(records)
    out = []
    for key in ("loop", "loop_full"):
        rec = lml.get(key)
        if rec and rec.get("parts"):
            parts = rec["parts"]
            med = sorted(parts, key=lambda p: sum(p.values()))[len(parts) // 2]
            out.append(
                f"loopml `{key}` ({rec.get('sqlite_mode')}): median rep = calls "
                f"{med['calls_s']:.3f} s + flush {med['flush_s']:.3f} s + end of run "
                f"{med['end_run_s']:.3f} s"
            )
    for key in ("batch", "create", "batch_full", "create_full"):
        rec = lml.get(key)
        if rec:
            out.append(f"loopml `{key}`: {rec.get('sqlite_mode')}")
    for key in ("search_filtered", "search100k_sqlite", "search100k_postgresql"):
        rec = lml.get(key)
        if rec:
            out.append(
                f"loopml `{key}`: {rec['notes']}; samples "
                + ", ".join(f"{s * 1000:.1f}" for s in rec["samples"])
                + " ms"
            )
    for key in ("import", "help"):
        rec = lml.get(key)
        if rec and rec.get("error"):
            out.append(f"loopml `{key}` failed: `{rec['error'].strip().splitlines()[-1]}`")
        if rec and rec.get("importtime"):
            it = rec["importtime"]
            out.append(
                f"loopml `import` -X importtime: {it['n_modules']} modules, "
                f"{(it['cumulative_us'] or 0) / 1000:.1f} ms cumulative for the package"
            )
    return out


def report(
    records: list[dict],
    *,
    quick: bool,
    skip_mlflow: bool,
    reps: int,
    sizes: dict,
    wall: float | None,
    stamp: str,
    results: Path,
    raw: Path,
    failures: list[str],
    lpy: str,
    mpy: str | None,
) -> None:
    """Render the table and notes from raw JSON lines and write the result files."""
    all_anchors = parse_anchors()
    anchors = all_anchors if skip_mlflow else None
    table, misses = build_table(records, anchors, sizes)
    when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    took = "" if wall is None else f" in {wall / 60:.1f} min"
    mode = "quick smoke test (NOT the reference numbers)" if quick else "full"
    if skip_mlflow:
        intro = (
            f"Run started {when} by `python bench/run.py --skip-mlflow`{took}; MLflow "
            "figures are the **anchors** from `shared/bench/RESULTS.md` (measured earlier, "
            "not in this run)."
        )
    else:
        intro = (
            f"Run started {when} by `python bench/run.py{' --quick' if quick else ''}`{took}; "
            f"{reps} rep(s) per row unless noted, median shown with (min..max) over reps. Both "
            "tools in the same invocation, each on a fresh SQLite file under `bench/.work/`."
        )
    md = [
        f"# Tracking benchmark: MLflow vs loopml ({mode})",
        "",
        intro,
        "",
        table,
        "",
        "Ratio: loopml / MLflow for throughputs, MLflow / loopml for times (higher is better "
        "for loopml). Targets are the issue's, for loopml's default durability mode (WAL + "
        "`synchronous=NORMAL`: a commit survives a crash of the process); the "
        "`synchronous=full` rows (every commit fsynced: survives power loss, like MLflow's "
        "SQLite default rollback journal) are shown for information.",
        "",
    ]
    if misses:
        md += ["**Targets missed or not measured:**", ""] + [f"* {m}" for m in misses] + [""]
    if failures:
        md += ["**Steps that failed:**", ""] + [f"* {f}" for f in failures] + [""]
    if quick:
        md += [
            "Quick mode uses smaller sizes than the anchors (2k points, 100 runs, 5k search "
            "runs), so any comparison with `shared/bench/RESULTS.md` figures is not meaningful "
            "for the size-dependent rows (history, create, search).",
            "",
        ]
    else:
        md += [
            "## Cross-check against the anchors",
            "",
            "The same figures next to the MLflow 3.17.2 local-SQLite anchors in "
            "`shared/bench/RESULTS.md` (measured on this box when it was quieter). "
            '"this run / anchor" below 1x means the box was slower than at anchor time; the '
            "table above compares the two tools under the same conditions.",
            "",
            anchor_table(records, all_anchors, sizes),
            "",
        ]
    md += ["## Environment", ""] + [f"* {x}" for x in environment_notes(records, lpy, mpy)] + [""]
    md += ["## Details", ""] + [f"* {x}" for x in details(records)] + [""]
    suffix = "-quick" if quick else ""
    md += [f"Raw JSON lines: `tracking-{stamp}{suffix}.jsonl` next to this file.", ""]
    text = "\n".join(md)
    print(table)
    if misses:
        print("\nmissed: " + "\n        ".join(misses))
    results.mkdir(parents=True, exist_ok=True)
    (results / f"tracking-{stamp}{suffix}.md").write_text(text)
    (results / f"latest{suffix}.md").write_text(text)
    if raw.resolve() != (results / f"tracking-{stamp}{suffix}.jsonl").resolve():
        shutil.copy(raw, results / f"tracking-{stamp}{suffix}.jsonl")
    say(f"wrote {results / f'tracking-{stamp}{suffix}.md'} and latest{suffix}.md")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 rep, 2k points, 100 runs, 5k search runs (< 2 min)",
    )
    p.add_argument(
        "--skip-mlflow",
        action="store_true",
        help="loopml only; ratios use the anchors in shared/bench/RESULTS.md",
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    p.add_argument(
        "--pg-url",
        default=DEFAULT_PG,
        help="PostgreSQL admin URL for the 100k search ('none' to skip)",
    )
    p.add_argument("--startup-reps", type=int, default=7)
    p.add_argument(
        "--results-dir", default="", help="default bench/results (quick: bench/.work/results)"
    )
    p.add_argument(
        "--from-raw",
        default="",
        help="measure nothing: re-render the table of an earlier run from its raw.jsonl "
        "(bench/.work/run-<stamp>/raw.jsonl; pass the same --quick/--skip-mlflow/--reps)",
    )
    a = p.parse_args()

    quick = a.quick
    reps = a.reps or (1 if quick else 3)
    n = 2000 if quick else 10_000
    hist = 2000 if quick else 100_000
    nruns = 100 if quick else 1000
    search_runs = 5000 if quick else 100_000
    startup_reps = 3 if quick else a.startup_reps
    sizes = {
        "n": f"{n:,}",
        "nb": n // 1000,
        "h": f"{hist:,}",
        "r": f"{nruns:,}",
        "s": f"{search_runs:,}",
        "k": startup_reps,
    }

    lpy = loopml_python()
    results_default = BENCH / ".work" / "results" if quick else BENCH / "results"
    if a.from_raw:
        raw = Path(a.from_raw)
        report(
            read_jsonl(raw),
            quick=quick,
            skip_mlflow=a.skip_mlflow,
            reps=reps,
            sizes=sizes,
            wall=None,
            stamp=raw.resolve().parent.name.removeprefix("run-"),
            results=Path(a.results_dir) if a.results_dir else results_default,
            raw=raw,
            failures=[],
            lpy=lpy,
            mpy=str(MLFLOW_VENV / "bin" / "python"),
        )
        return

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    work = BENCH / ".work" / f"run-{stamp}"
    work.mkdir(parents=True)
    raw = work / "raw.jsonl"
    log = work / "bench.log"
    results = Path(a.results_dir) if a.results_dir else results_default
    results.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("LOOPML_SQLITE_SYNCHRONOUS", None)
    env.pop("LOOPML_TRACKING_URI", None)
    failures: list[str] = []
    mpy: str | None = None
    t_start = time.perf_counter()
    say(f"work dir {work}; log {log}")
    with open(raw, "a") as f:
        f.write(json.dumps({"tool": "meta", "git": git_state(), "stamp": stamp}) + "\n")

    # --- MLflow -------------------------------------------------------------------------------
    if not a.skip_mlflow:
        mpy = ensure_mlflow_venv()
        script = SHARED / "mlflow_tracking.py"
        if not script.exists():
            raise SystemExit(f"MLflow script not found at {script} (set LOOPML_BENCH_SHARED)")
        mdir = work / "mlflow"
        mdir.mkdir()
        uri = f"sqlite:///{mdir / 'mlflow.db'}"
        common = [
            "--uri",
            uri,
            "--tool",
            "mlflow",
            "--backend",
            "local sqlite (fluent, in-process)",
            "--reps",
            str(reps),
            "--out",
            str(raw),
        ]
        run_step(
            "mlflow log",
            [mpy, str(script), "log", *common, "--n", str(n), "--modes", "loop,batch"],
            cwd=mdir,
            env=env,
            log=log,
            timeout=3600,
            failures=failures,
        )
        run_step(
            "mlflow readback",
            [
                mpy,
                str(script),
                "readback",
                *common,
                "--hist-points",
                str(hist),
                "--runs",
                str(nruns),
            ],
            cwd=mdir,
            env=env,
            log=log,
            timeout=3600,
            failures=failures,
        )

    # --- loopml -------------------------------------------------------------------------------
    ldir = work / "loopml"
    ldir.mkdir()
    tracking = str(BENCH / "tracking.py")
    common = [
        "--out",
        str(raw),
        "--reps",
        str(reps),
        "--n",
        str(n),
        "--hist",
        str(hist),
        "--runs",
        str(nruns),
        "--search-runs",
        str(search_runs),
    ]
    run_step(
        "loopml (default: WAL, synchronous=normal)",
        [lpy, tracking, "--uri", f"sqlite:///{ldir / 'loopml.db'}", *common, "--pg-url", a.pg_url],
        cwd=ldir,
        env=dict(env, LOOPML_HOME=str(ldir / ".loopml")),
        log=log,
        timeout=3600,
        failures=failures,
    )
    fdir = work / "loopml-full"
    fdir.mkdir()
    run_step(
        "loopml (LOOPML_SQLITE_SYNCHRONOUS=full)",
        [
            lpy,
            tracking,
            "--uri",
            f"sqlite:///{fdir / 'loopml.db'}",
            *common,
            "--workloads",
            "loop,batch,create",
            "--label",
            "LOOPML_SQLITE_SYNCHRONOUS=full",
            "--pg-url",
            "none",
        ],
        cwd=fdir,
        env=dict(env, LOOPML_SQLITE_SYNCHRONOUS="full", LOOPML_HOME=str(fdir / ".loopml")),
        log=log,
        timeout=3600,
        failures=failures,
    )

    # --- start-up -----------------------------------------------------------------------------
    startup = str(BENCH / "startup.py")
    if mpy is not None:
        run_step(
            "mlflow startup",
            [
                lpy,
                startup,
                "--tool",
                "mlflow",
                "--venv",
                str(MLFLOW_VENV),
                "--module",
                "mlflow",
                "--cli",
                "mlflow",
                "--reps",
                str(startup_reps),
                "--out",
                str(raw),
            ],
            cwd=work,
            env=env,
            log=log,
            timeout=600,
            failures=failures,
        )
    run_step(
        "loopml startup",
        [
            lpy,
            startup,
            "--tool",
            "loopml",
            "--venv",
            str(Path(lpy).parent.parent),
            "--module",
            "loopml",
            "--cli",
            "loopml",
            "--reps",
            str(startup_reps),
            "--out",
            str(raw),
        ],
        cwd=work,
        env=env,
        log=log,
        timeout=600,
        failures=failures,
    )

    # --- report -------------------------------------------------------------------------------
    report(
        read_jsonl(raw),
        quick=quick,
        skip_mlflow=a.skip_mlflow,
        reps=reps,
        sizes=sizes,
        wall=time.perf_counter() - t_start,
        stamp=stamp,
        results=results,
        raw=raw,
        failures=failures,
        lpy=lpy,
        mpy=mpy,
    )


if __name__ == "__main__":
    main()
