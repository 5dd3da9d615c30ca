#!/usr/bin/env python3
"""pandera side of the data benchmark: the loopml-inferred contract as a pandera schema.

Runs in ``bench/.venv-pandera`` (``bench/data.py`` creates it). Reads the schema JSON that
``bench/data_loopml.py schema`` wrote (loopml's dict form) and checks the same rules:

  type         ``pa.Column(float)`` for float columns, ``pa.Column(str)`` for categorical and
               text ones, ``int`` / ``bool`` / ``datetime64[ns]`` for the others
  nullable     ``nullable=`` as in the contract
  range        ``pa.Check.in_range(min, max)`` (both ends included, as in loopml)
  categories   ``pa.Check.isin(categories)``
  unique       ``unique=True`` on a column the contract marks unique, and
               ``DataFrameSchema(unique=[...])`` for the contract's unique key
  extra        ``strict=True`` unless the contract allows extra columns

``validate(df, lazy=True)``: every failure is collected (loopml reports every violation too).
Same protocol as loopml's worker: fresh process, ``pandas.read_parquet``, a warm-up on the first
2,000 rows, then one timed call; one JSON line out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_measure import corrupt, emit, fail, measure

WARMUP_ROWS = 2000


def build_schema(contract: dict):  # type: ignore[no-untyped-def]
    import pandera.pandas as pa

    kinds = {
        "float": float,
        "integer": "int64",
        "boolean": bool,
        "categorical": str,
        "text": str,
        "datetime": "datetime64[ns]",
    }
    columns = {}
    for col in contract["columns"]:
        checks = []
        lo, hi = col.get("min"), col.get("max")
        if lo is not None and hi is not None:
            checks.append(pa.Check.in_range(lo, hi))
        elif lo is not None:
            checks.append(pa.Check.ge(lo))
        elif hi is not None:
            checks.append(pa.Check.le(hi))
        if col.get("categories") is not None:
            checks.append(pa.Check.isin(col["categories"]))
        columns[col["name"]] = pa.Column(
            kinds[col["type"]],
            checks=checks,
            nullable=bool(col.get("nullable")),
            unique=bool(col.get("unique")),
        )
    key = contract.get("unique_key") or None
    return pa.DataFrameSchema(
        columns, strict=not contract.get("allow_extra_columns", False), unique=key
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--rep", type=int, default=1)
    p.add_argument("--out", default="")
    a = p.parse_args()

    import pandas as pd
    import pandera
    import pandera.errors

    rec: dict[str, object] = {
        "tool": "pandera",
        "key": "validate",
        "rep": a.rep,
        "versions": {"pandera": pandera.__version__, "pandas": pd.__version__},
    }
    try:
        import pyarrow

        rec["versions"]["pyarrow"] = pyarrow.__version__  # type: ignore[index]
        contract = json.loads(Path(a.schema).read_text())
        schema = build_schema(contract)
        rec["rules"] = sum(
            1
            + bool(c.get("min") is not None or c.get("max") is not None)
            + bool(c.get("categories") is not None)
            + bool(c.get("unique"))
            for c in contract["columns"]
        )
        t0 = time.perf_counter()
        df = pd.read_parquet(a.data)
        rec["load_s"] = time.perf_counter() - t0
        rec["rows"] = len(df)

        def check(frame: pd.DataFrame) -> dict[str, object]:
            try:
                schema.validate(frame, lazy=True)
            except pandera.errors.SchemaErrors as exc:
                return {"valid": False, "violations": len(exc.failure_cases)}
            return {"valid": True, "violations": 0}

        t0 = time.perf_counter()
        check(df.head(WARMUP_ROWS))
        rec["warmup_s"] = time.perf_counter() - t0
        result, figures = measure(lambda: check(df))
        rec["planted_violations_found"] = check(corrupt(df))["violations"]
    except Exception as exc:
        fail(rec, exc, a.out)
    rec.update(figures)
    rec.update(result)
    emit(rec, a.out)


if __name__ == "__main__":
    main()
