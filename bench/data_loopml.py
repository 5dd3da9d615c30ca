#!/usr/bin/env python3
"""loopml side of the data benchmark; each call is one fresh process (``bench/data.py`` runs it).

    schema   infer the data contract of the table once (``loopml.schema.infer_schema``) and write
             its dict form as JSON: the rules both loopml and pandera then check.
    run      load the table (``pandas.read_parquet``), warm up on its first 2,000 rows, then time
             one call of ``--op``: ``profile`` (``loopml.stats.profile(df)``), ``validate``
             (``loopml.schema.validate(df, schema)``) or ``both`` (profile, then validate).
    floor    read a file to the end in 8 MiB blocks (``cat > /dev/null``), then read + sha256 it
             in one pass (``hashlib``): what versioning cannot beat.
    version  ``loopml.data.datasets.log_dataset(path, name, client=...)`` against a fresh local
             store (``--mode profile`` = the default, ``noprofile`` = ``profile=False``, ``relog``
             = the same file logged a second time: reuse by digest).
    stages   one pass of each stage of ``log_dataset`` on its own (content digest, profile,
             schema inference, artifact put), to show where the versioning time goes.

Every command prints one JSON line (and appends it to ``--out``) with ``tool: loopml`` and
``key``; timings and memory come from ``bench/data_measure.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from data_measure import corrupt, emit, fail, git_state, measure, peak_mb, rss_mb  # noqa: E402

WARMUP_ROWS = 2000
BLOCK = 8 * 1024 * 1024


def versions() -> dict[str, str]:
    import numpy
    import pandas
    import pyarrow

    import loopml

    return {
        "loopml": loopml.__version__,
        "loopml_git": git_state(),
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
    }


def cmd_schema(a: argparse.Namespace) -> None:
    import pandas as pd

    from loopml.schema import infer_schema

    df = pd.read_parquet(a.data)
    t0 = time.perf_counter()
    schema = infer_schema(df)
    seconds = time.perf_counter() - t0
    Path(a.schema).write_text(json.dumps(schema.to_dict(), indent=1))
    emit(
        {
            "tool": "loopml",
            "key": "infer_schema",
            "rows": len(df),
            "seconds": seconds,
            "unique_columns": [c.name for c in schema.columns if c.unique],
            "unique_key": list(schema.unique_key),
            "versions": versions(),
        },
        a.out,
    )


def cmd_run(a: argparse.Namespace) -> None:
    import pandas as pd

    from loopml.schema import Schema, validate
    from loopml.stats import profile

    rec: dict[str, object] = {"tool": "loopml", "key": a.op, "rep": a.rep}
    schema = Schema.from_dict(json.loads(Path(a.schema).read_text()))
    t0 = time.perf_counter()
    df = pd.read_parquet(a.data)
    rec["load_s"] = time.perf_counter() - t0
    rec["rows"] = len(df)

    def work(frame: pd.DataFrame) -> dict[str, object]:
        out: dict[str, object] = {}
        if a.op in ("profile", "both"):
            prof = profile(frame)
            out["profiled_columns"] = len(prof)
        if a.op in ("validate", "both"):
            report = validate(frame, schema)
            out["valid"] = report.ok
            out["violations"] = len(report.violations)
        return out

    try:
        t0 = time.perf_counter()
        work(df.head(WARMUP_ROWS))
        rec["warmup_s"] = time.perf_counter() - t0
        result, figures = measure(lambda: work(df))
        if a.op != "profile":
            rec["planted_violations_found"] = len(validate(corrupt(df), schema).violations)
    except Exception as exc:
        fail(rec, exc, a.out)
    rec.update(figures)
    rec.update(result)
    rec["versions"] = versions()
    emit(rec, a.out)


def cmd_floor(a: argparse.Namespace) -> None:
    import hashlib

    path = Path(a.file)
    buf = bytearray(BLOCK)
    view = memoryview(buf)

    def read_all() -> int:
        n = 0
        with open(path, "rb", buffering=0) as f:
            while got := f.readinto(buf):
                n += got
        return n

    def read_hash() -> str:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while got := f.readinto(buf):
                h.update(view[:got])
        return h.hexdigest()

    size, fig_read = measure(read_all)
    digest, fig_hash = measure(read_hash)
    emit(
        {
            "tool": "floor",
            "key": "floor",
            "rep": a.rep,
            "bytes": size,
            "read_s": fig_read["seconds"],
            "seconds": fig_hash["seconds"],
            "sha256": digest,
            "peak_delta_mb": fig_hash["peak_delta_mb"],
        },
        a.out,
    )


def _client(root: Path):  # type: ignore[no-untyped-def]
    from loopml import Client

    return Client(str(root / "store"))


def cmd_version(a: argparse.Namespace) -> None:
    from loopml.client import context
    from loopml.data.datasets import log_dataset

    rec: dict[str, object] = {"tool": "loopml", "key": f"version_{a.mode}", "rep": a.rep}
    path = Path(a.file)
    rec["bytes"] = path.stat().st_size
    root = Path(tempfile.mkdtemp(prefix="store-", dir=a.workdir))
    try:
        client = _client(root)
        client.store  # noqa: B018 - open (create) the store outside the timed call
        client.project_id(context.get_project())  # create the project outside the timing
        with_profile = a.mode != "noprofile"
        if a.mode == "relog":
            t0 = time.perf_counter()
            first = log_dataset(path, "big", client=client, profile=True)
            rec["first_log_s"] = time.perf_counter() - t0
        version, figures = measure(
            lambda: log_dataset(path, "big", client=client, profile=with_profile)
        )
        if a.mode == "relog" and version.version != first.version:
            raise AssertionError(f"re-logging made version {version.version}, not reused")
        rec.update(figures)
        rec["dataset_version"] = version.version
        rec["num_rows"] = version.num_rows
        rec["digest"] = version.digest
        rec["stored_bytes"] = sum(
            p.stat().st_size for p in (root / "store").rglob("*") if p.is_file()
        )
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        fail(rec, exc, a.out)
    shutil.rmtree(root, ignore_errors=True)
    rec["versions"] = versions()
    emit(rec, a.out)


def cmd_stages(a: argparse.Namespace) -> None:
    """Each stage of log_dataset on its own (same order, same helpers)."""
    from loopml.data import contract
    from loopml.data.digest import ContentHasher
    from loopml.data.sources import open_source

    path = Path(a.file)
    rec: dict[str, object] = {"tool": "loopml", "key": "version_stages", "rep": a.rep}
    root = Path(tempfile.mkdtemp(prefix="store-", dir=a.workdir))
    stages: dict[str, float] = {}
    try:
        client = _client(root)
        client.store  # noqa: B018

        def digest() -> str:
            source = open_source(path)
            hasher = None
            for batch in source.batches():
                if hasher is None:
                    hasher = ContentHasher(batch.schema)
                hasher.update(batch)
            assert hasher is not None
            return hasher.hexdigest()

        t0 = time.perf_counter()
        digest()
        stages["content digest (read + decode + hash)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = contract.in_memory(path)
        stages["read whole file into memory (small files only)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prof = contract.profile_parquet(path, frame=frame)
        stages["profile" + (" (in memory)" if frame is not None else " (two streamed passes)")] = (
            time.perf_counter() - t0
        )
        t0 = time.perf_counter()
        contract.infer_parquet(path, frame=frame, profile=prof)
        stages["infer schema"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.artifacts.put(str(path))
        stages["artifact put (sha256 + copy into the store)"] = time.perf_counter() - t0
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        fail(rec, exc, a.out)
    shutil.rmtree(root, ignore_errors=True)
    rec["stages"] = stages
    rec["seconds"] = sum(stages.values())
    rec["peak_rss_mb"] = round(peak_mb(), 1)
    rec["rss_end_mb"] = round(rss_mb(), 1)
    emit(rec, a.out)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("schema")
    s.add_argument("--data", required=True)
    s.add_argument("--schema", required=True, help="where to write the schema JSON")
    r = sub.add_parser("run")
    r.add_argument("--op", choices=["profile", "validate", "both"], required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--schema", required=True)
    f = sub.add_parser("floor")
    f.add_argument("--file", required=True)
    v = sub.add_parser("version")
    v.add_argument("--mode", choices=["profile", "noprofile", "relog"], required=True)
    v.add_argument("--file", required=True)
    v.add_argument("--workdir", required=True, help="where the throwaway store goes")
    g = sub.add_parser("stages")
    g.add_argument("--file", required=True)
    g.add_argument("--workdir", required=True)
    for sp in (s, r, f, v, g):
        sp.add_argument("--rep", type=int, default=1)
        sp.add_argument("--out", default="")
    a = p.parse_args()
    {
        "schema": cmd_schema,
        "run": cmd_run,
        "floor": cmd_floor,
        "version": cmd_version,
        "stages": cmd_stages,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
