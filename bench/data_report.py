"""The data benchmark's report: the table, the environment and the notes, from raw JSON lines.

``bench/data.py`` calls :func:`report` at the end of a run (and with ``--from-raw``); it prints
the table and writes ``data-<stamp>.md`` + ``.jsonl`` and ``data-latest.md`` to the results dir.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import statistics
from pathlib import Path

GB = 1e9
MEM_TARGET_MB = 1.5 * GB / 2**20  # "under 1.5 GB", read as 10^9 bytes: the stricter reading
TIME_TARGET_S = 3.0
PANDERA_X = 5.0


def _ok(records: list[dict], tool: str, key: str) -> list[dict]:
    return [
        r
        for r in records
        if r.get("tool") == tool and r.get("key") == key and not r.get("error") and "seconds" in r
    ]


def _err(records: list[dict], tool: str, key: str) -> str | None:
    errs = [
        r["error"]
        for r in records
        if r.get("tool") == tool and r.get("key") == key and r.get("error")
    ]
    # the worker's own message (the exception) says more than the driver's "exited 1"
    errs.sort(key=lambda e: e.startswith("exited"))
    return errs[0] if errs else None


def _med(rows: list[dict], field: str = "seconds") -> float | None:
    vals = [r[field] for r in rows if isinstance(r.get(field), (int, float))]
    return statistics.median(vals) if vals else None


def _secs(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v < 1:
        return f"{v * 1000:.3g} ms"
    return f"{v:.3g} s"


def _time_cell(rows: list[dict], field: str = "seconds") -> str:
    vals = [r[field] for r in rows if isinstance(r.get(field), (int, float))]
    if not vals:
        return "n/a"
    text = _secs(statistics.median(vals))
    if len(vals) > 1:
        text += f" ({_secs(min(vals))}..{_secs(max(vals))})"
    return text


def _mb(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f} MiB"


def _x(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f}x" if v >= 100 else f"{v:.3g}x"


def _size(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def _missing(records: list[dict], tool: str, key: str, peer: str | None = None) -> str:
    """Why a row has no figure: install failure, timeout, error, or not run."""
    if peer is not None:
        inst = [r for r in records if r.get("tool") == "install" and r.get("peer") == peer]
        if inst and not inst[-1].get("ok"):
            return f"did not install: {inst[-1].get('why', '?')}"
    err = _err(records, tool, key)
    if err:
        return err if "did not finish" in err else f"error: {err.splitlines()[0][:200]}"
    return "not run"


def build(records: list[dict]) -> tuple[list[str], list[str]]:
    """(table lines, misses)."""
    meta = next((r for r in records if r.get("tool") == "meta"), {})
    rows = meta.get("rows", 0)
    big = next((r for r in records if r.get("tool") == "data" and r.get("versioning")), {})
    infer = next((r for r in records if r.get("key") == "infer_schema" and "seconds" in r), {})
    lines = [
        "| workload | peer | loopml | ratio | target | pass/fail |",
        "|---|---|---|---|---|---|",
    ]
    misses: list[str] = []

    def add(work: str, peer: str, mine: str, ratio: str, target: str, verdict: str) -> None:
        lines.append(f"| {work} | {peer} | {mine} | {ratio} | {target} | {verdict} |")
        if verdict in ("FAIL", "n/a") and target != "—":
            misses.append(f"{work}: peer {peer}, loopml {mine}, ratio {ratio}, target {target}")

    shape = f"{rows:,} rows x 25 cols"
    prof = _ok(records, "loopml", "profile")
    val = _ok(records, "loopml", "validate")
    both = _ok(records, "loopml", "both")
    lp, lv, lb = _med(prof), _med(val), _med(both)

    # profile vs the profilers
    for tool, peer, label in (
        ("ydata-profiling", "ydata", "ydata-profiling `minimal=True`"),
        ("evidently", "evidently", "Evidently `DataSummaryPreset`"),
    ):
        pr = _ok(records, tool, "profile")
        pv = _med(pr)
        peer_text = f"{label}: " + (
            _time_cell(pr) if pr else _missing(records, tool, "profile", peer)
        )
        add(
            f"profile, {shape}",
            peer_text,
            _time_cell(prof),
            _x(pv / lp) if pv and lp else "n/a",
            "—",
            "info",
        )

    # validate vs pandera
    pan = _ok(records, "pandera", "validate")
    pv = _med(pan)
    ratio = pv / lv if pv and lv else None
    n_rules = next((r.get("rules") for r in pan if r.get("rules")), None)
    add(
        f"validate, {shape}, same rules" + (f" ({n_rules} checks)" if n_rules else ""),
        "pandera: "
        + (_time_cell(pan) if pan else _missing(records, "pandera", "validate", "pandera")),
        _time_cell(val),
        _x(ratio),
        f">= {PANDERA_X:g}x faster",
        "n/a" if ratio is None else ("pass" if ratio >= PANDERA_X else "FAIL"),
    )

    add(
        f"profile + validate, {shape} (one process)",
        "—",
        _time_cell(both),
        "—",
        f"< {TIME_TARGET_S:g} s",
        "n/a" if lb is None else ("pass" if lb < TIME_TARGET_S else "FAIL"),
    )
    dm, pm = _med(both, "peak_delta_mb"), _med(both, "process_peak_mb")
    add(
        "peak memory, profile + validate: peak RSS - RSS after load (process peak)",
        "—",
        f"{_mb(dm)} ({_mb(pm)})",
        "—",
        f"< 1.5 GB ({MEM_TARGET_MB:,.0f} MiB)",
        "n/a" if dm is None else ("pass" if dm < MEM_TARGET_MB else "FAIL"),
    )
    add(
        "peak memory, validate: peak RSS - RSS after load",
        "pandera: " + _mb(_med(pan, "peak_delta_mb")),
        _mb(_med(val, "peak_delta_mb")),
        "—",
        "—",
        "info",
    )
    peer_mem = (
        "; ".join(
            f"{t}: {_mb(_med(_ok(records, t, 'profile'), 'peak_delta_mb'))}"
            for t in ("ydata-profiling", "evidently")
            if _ok(records, t, "profile")
        )
        or "—"
    )
    add(
        "peak memory, profile: peak RSS - RSS after load",
        peer_mem,
        _mb(_med(prof, "peak_delta_mb")),
        "—",
        "—",
        "info",
    )
    if infer:
        add(
            f"infer the schema, {shape} (setup, 1 sample)",
            "—",
            _secs(infer["seconds"]),
            "—",
            "—",
            "info",
        )

    # versioning
    floor = _ok(records, "floor", "floor")
    if big or floor:
        size = _size(big.get("bytes"))
        fl = _med(floor)
        add(
            f"read the {size} Parquet file (`cat > /dev/null`)",
            "—",
            _time_cell(floor, "read_s"),
            "—",
            "—",
            "info",
        )
        add(
            f"read + sha256 of the {size} file (the floor)",
            "—",
            _time_cell(floor),
            "—",
            "—",
            "info",
        )
        for key, label in (
            (
                "version_profile",
                f"`log_dataset` of the {size} file, fresh store (default: "
                "digest + profile + schema + store)",
            ),
            ("version_noprofile", "↳ same with `profile=False`"),
            ("version_relog", "↳ log the same file again (reused by digest)"),
        ):
            vr = _ok(records, "loopml", key)
            mine = _time_cell(vr) if vr else _missing(records, "loopml", key)
            ratio_text = f"{_x(_med(vr) / fl)} read+hash" if vr and fl else "n/a"
            add(
                label,
                "read + sha256: " + _secs(fl),
                mine,
                ratio_text,
                "disk/hash-bound (no number)",
                "info",
            )
        vr = _ok(records, "loopml", "version_profile")
        add(
            "peak memory, `log_dataset` (default): peak RSS - RSS before",
            "—",
            _mb(_med(vr, "peak_delta_mb")),
            "—",
            "—",
            "info",
        )
    return lines, misses


def environment(records: list[dict]) -> list[str]:
    meta = next((r for r in records if r.get("tool") == "meta"), {})
    end = next((r for r in records if r.get("tool") == "meta-end"), {})
    out = []
    seen: dict[str, dict] = {}
    for r in records:
        if r.get("versions") and r.get("tool") not in seen:
            seen[r["tool"]] = r["versions"]
    for tool, v in seen.items():
        out.append(
            f"{tool}: " + ", ".join(f"{k} {val}" for k, val in v.items() if k != "loopml_git")
        )
    gits = sorted(
        {
            r["versions"]["loopml_git"]
            for r in records
            if r.get("tool") == "loopml" and (r.get("versions") or {}).get("loopml_git")
        }
    )
    if gits:
        warn = "" if len(gits) == 1 else " (**changed during the run**: rows may not compare)"
        out.append(f"loopml source seen by the loopml steps: {', '.join(gits)}{warn}")
    py = next((r.get("python") for r in records if r.get("python")), None)
    out.append(f"Python {py}; {meta.get('cpus', os.cpu_count())} vCPU; {platform.platform()}")
    la0, la1 = meta.get("loadavg_start"), end.get("loadavg_end")
    if la0:
        out.append(
            "load average (1/5/15 min) at start: "
            + "/".join(f"{x:.2f}" for x in la0)
            + ("; at end: " + "/".join(f"{x:.2f}" for x in la1) if la1 else "")
            + " (2 vCPU box shared with other sessions: numbers move with it)"
        )
    for tool in ("loopml", "pandera", "evidently", "ydata-profiling", "floor"):
        loads = [
            r["loadavg1"]
            for r in records
            if r.get("tool") == tool and isinstance(r.get("loadavg1"), (int, float))
        ]
        if loads:
            out.append(
                f"1-min load average at the end of each {tool} step: "
                f"{min(loads):.2f}..{max(loads):.2f}"
            )
    for r in records:
        if r.get("tool") == "data":
            out.append(
                f"data: `{r['path']}`, {_size(r.get('bytes'))} Parquet (snappy)"
                + (f", {r['rows']:,} rows" if r.get("rows") else "")
            )
    out.append(
        "files are read from the page cache (written just before, 24 GiB RAM): the "
        "floor is memory bandwidth + sha256, not the disk"
    )
    return out


def details(records: list[dict]) -> list[str]:
    out = []
    infer = next((r for r in records if r.get("key") == "infer_schema" and "seconds" in r), {})
    if infer:
        uniq = infer.get("unique_columns") or []
        key = infer.get("unique_key") or []
        out.append(
            "rules (loopml's inferred contract, given to pandera as is): type, nullability, "
            "min/max of every float column, allowed categories of every string column, no "
            "extra columns; unique columns: "
            + (", ".join(uniq) or "none (the inferred schema marks none: floats are not keys)")
            + "; unique key: "
            + (", ".join(key) or "none")
        )
    out.append(
        "timed calls: loopml `profile(df)` / `validate(df, schema)`; pandera "
        "`schema.validate(df, lazy=True)`; Evidently `Dataset.from_pandas` + "
        "`Report([DataSummaryPreset()]).run` + `snapshot.dict()`; ydata-profiling "
        "`ProfileReport(df, minimal=True).get_description()` (no HTML for either)"
    )
    for tool, key in (("loopml", "validate"), ("loopml", "both"), ("pandera", "validate")):
        rs = _ok(records, tool, key)
        if rs:
            found = sorted({r.get("planted_violations_found") for r in rs} - {None})
            valid = sorted({r.get("valid") for r in rs} - {None})
            out.append(
                f"{tool} `{key}`: data valid = {valid}; on 200 rows with 3 planted "
                f"violations it reported {found} violation(s)"
            )
    for tool, key in (
        ("loopml", "profile"),
        ("loopml", "validate"),
        ("loopml", "both"),
        ("pandera", "validate"),
        ("evidently", "profile"),
        ("ydata-profiling", "profile"),
    ):
        rs = _ok(records, tool, key)
        if rs:
            out.append(
                f"{tool} `{key}`: read_parquet {_secs(_med(rs, 'load_s'))}, RSS after load "
                f"{_mb(_med(rs, 'rss_after_load_mb'))}, 2,000-row warm-up "
                f"{_secs(_med(rs, 'warmup_s'))} (not timed), peak - after load per rep: "
                + ", ".join(_mb(r.get("peak_delta_mb")) for r in rs)
            )
    for r in records:
        if r.get("key") == "version_relog" and "first_log_s" in r:
            out.append(
                f"re-log rep {r.get('rep')}: the first log of that store took "
                f"{_secs(r['first_log_s'])}"
            )
        if r.get("key") == "version_stages" and r.get("stages"):
            out.append(
                "`log_dataset` stages run one by one (1 sample): "
                + "; ".join(f"{k} {_secs(v)}" for k, v in r["stages"].items())
            )
        if r.get("tool") == "install":
            if r.get("ok"):
                out.append(f"installed the {r['peer']} venv in {_secs(r.get('seconds'))}")
            else:
                out.append(f"{r['peer']} did not install: {r.get('why')}")
        if r.get("error"):
            out.append(f"{r.get('tool')} `{r.get('key')}` rep {r.get('rep', 1)}: {r['error']}")
    return out


def report(records: list[dict], *, results: Path, quick: bool, raw: Path) -> None:
    meta = next((r for r in records if r.get("tool") == "meta"), {})
    end = next((r for r in records if r.get("tool") == "meta-end"), {})
    stamp = meta.get("stamp", dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    took = f" in {end['wall_s'] / 60:.1f} min" if end.get("wall_s") else ""
    table, misses = build(records)
    mode = "quick smoke test (NOT the reference numbers)" if quick else "full"
    md = [
        f"# Data benchmark: loopml vs pandera, ydata-profiling, Evidently ({mode})",
        "",
        f"Run started {when} by `{meta.get('cmd', 'python bench/data.py')}`{took}; "
        f"{meta.get('reps', '?')} rep(s) per loopml and pandera row, each rep a fresh process "
        "(median, with min..max). Every tool reads the same Parquet file with "
        "`pandas.read_parquet`, warms up on its first 2,000 rows, then one call is timed. "
        "Memory is the timed call's peak RSS minus the RSS just before it (after the data was "
        "loaded); the process peak is in brackets.",
        "",
        *table,
        "",
        "Ratio: peer time / loopml time (higher is better for loopml); for the versioning rows, "
        "loopml's time as a multiple of reading + hashing the file once (lower is better). "
        "Targets are the issue's; the issue gives no number for versioning (\"limited by disk "
        'and hashing speed, not Python overhead"), so those rows are information.',
        "",
    ]
    if misses:
        md += ["**Targets missed or not measured:**", ""] + [f"* {m}" for m in misses] + [""]
    md += ["## Environment", ""] + [f"* {x}" for x in environment(records)] + [""]
    md += ["## Details", ""] + [f"* {x}" for x in details(records)] + [""]
    suffix = "-quick" if quick else ""
    md += [f"Raw JSON lines: `data-{stamp}{suffix}.jsonl` next to this file.", ""]
    text = "\n".join(md)
    print("\n".join(table))
    if misses:
        print("\nmissed: " + "\n        ".join(misses))
    results.mkdir(parents=True, exist_ok=True)
    (results / f"data-{stamp}{suffix}.md").write_text(text)
    (results / f"data-latest{suffix}.md").write_text(text)
    dest = results / f"data-{stamp}{suffix}.jsonl"
    if raw.resolve() != dest.resolve():
        shutil.copy(raw, dest)
    print(f"wrote {results / f'data-{stamp}{suffix}.md'} and data-latest{suffix}.md")
