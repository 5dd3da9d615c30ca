#!/usr/bin/env python3
"""Synthetic data for the data benchmark (``bench/data.py``): deterministic, seeded.

25 columns: ``num_0`` .. ``num_19`` (float64, normal with growing scale; every fourth column has
0.5 % NaN) and ``cat_0`` .. ``cat_4`` (strings with 8..12 categories drawn with skewed
probabilities; ``cat_0`` and ``cat_3`` have 0.5 % nulls).

    python bench/data_gen.py table --rows 1000000 --out bench/.work/data/table-1000000.parquet
    python bench/data_gen.py big --gb 1.0 --out bench/.work/data/big-1.0gb.parquet

``big`` appends row groups of ``--group-rows`` rows (a new seed each) until the file is at least
``--gb`` GiB. Each command prints one JSON line (rows, bytes, row groups, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_NUM, N_CAT = 20, 5
CAT_CARD = [8, 9, 10, 11, 12]
NULL_SHARE = 0.005
BYTES_PER_ROW = 175  # about, in the snappy Parquet file


def make_table(rows: int, seed: int = 0) -> pa.Table:
    """``rows`` rows of the benchmark table, the same for the same seed."""
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {}
    for j in range(N_NUM):
        values = rng.normal(j * 0.5, 1.0 + j * 0.1, rows)
        if j % 4 == 0:
            values[rng.random(rows) < NULL_SHARE] = np.nan
        # NaN -> null in Arrow/Parquet (pandas reads it back as NaN in a float64 column)
        cols[f"num_{j}"] = pa.array(values, from_pandas=True)
    for j, k in enumerate(CAT_CARD):
        cats = np.array([f"c{j}_{i}" for i in range(k)], dtype=object)
        p = rng.dirichlet(np.ones(k) * 2.0)
        codes = rng.choice(k, rows, p=p).astype(np.int32)
        mask = (rng.random(rows) < NULL_SHARE) if j in (0, 3) else None
        dictionary = pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=mask), pa.array(cats.tolist(), type=pa.string())
        )
        cols[f"cat_{j}"] = dictionary.cast(pa.string())  # plain strings, not a categorical type
    return pa.table(cols)


def write_table(rows: int, out: Path, seed: int = 0) -> dict[str, object]:
    t0 = time.perf_counter()
    table = make_table(rows, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    pq.write_table(table, tmp, compression="snappy", row_group_size=256 * 1024)
    os.replace(tmp, out)
    return {
        "rows": rows,
        "bytes": out.stat().st_size,
        "seconds": time.perf_counter() - t0,
        "path": str(out),
    }


def write_big(gb: float, out: Path, group_rows: int | None = None) -> dict[str, object]:
    """Append row groups until the file is at least ``gb`` GiB (row groups of about a tenth of
    that, at most 500,000 rows, unless ``group_rows`` says)."""
    t0 = time.perf_counter()
    target = int(gb * 1024**3)
    if group_rows is None:
        group_rows = max(10_000, min(500_000, target // BYTES_PER_ROW // 10))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    schema = make_table(1, 0).schema
    rows = groups = 0
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        while True:
            writer.write_table(
                make_table(group_rows, seed=1000 + groups), row_group_size=group_rows
            )
            rows += group_rows
            groups += 1
            if tmp.stat().st_size >= target:
                break
    os.replace(tmp, out)
    return {
        "rows": rows,
        "row_groups": groups,
        "bytes": out.stat().st_size,
        "seconds": time.perf_counter() - t0,
        "path": str(out),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table")
    t.add_argument("--rows", type=int, default=1_000_000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True)
    b = sub.add_parser("big")
    b.add_argument("--gb", type=float, default=1.0)
    b.add_argument("--group-rows", type=int, default=None)
    b.add_argument("--out", required=True)
    a = p.parse_args()
    if a.cmd == "table":
        rec = write_table(a.rows, Path(a.out), a.seed)
    else:
        rec = write_big(a.gb, Path(a.out), a.group_rows)
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
