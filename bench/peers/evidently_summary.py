#!/usr/bin/env python3
"""Evidently side of the data benchmark: the data summary of the table (the profile's peer).

Runs in ``bench/.venv-evidently`` (``pip install evidently scipy 'pandas<3' pyarrow``, as the
anchors in ``shared/bench`` did: Evidently 0.7.x fails to import on pandas 3). Current API:
``Report([DataSummaryPreset()]).run(current_data=Dataset.from_pandas(df, data_definition=...))``
then ``snapshot.dict()`` (the computed values; no HTML). The timed span is ``Dataset.from_pandas``
+ ``run`` + ``dict()``, after a 2,000-row warm-up report in the same process (the first report
pays Evidently's lazy imports, as in the anchors). One JSON line out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently telemetry off
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_measure import emit, fail, measure

WARMUP_ROWS = 2000


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True)
    p.add_argument("--rep", type=int, default=1)
    p.add_argument("--out", default="")
    a = p.parse_args()
    rec: dict[str, object] = {"tool": "evidently", "key": "profile", "rep": a.rep}
    try:
        import evidently
        import pandas as pd
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataSummaryPreset

        rec["versions"] = {"evidently": evidently.__version__, "pandas": pd.__version__}
        t0 = time.perf_counter()
        df = pd.read_parquet(a.data)
        rec["load_s"] = time.perf_counter() - t0
        rec["rows"] = len(df)
        num = [c for c in df.columns if c.startswith("num_")]
        cat = [c for c in df.columns if c.startswith("cat_")]
        dd = DataDefinition(numerical_columns=num, categorical_columns=cat)

        def summary(frame: pd.DataFrame) -> dict[str, object]:
            ds = Dataset.from_pandas(frame, data_definition=dd)
            snap = Report([DataSummaryPreset()]).run(current_data=ds)
            return {"metrics": len(snap.dict().get("metrics", []))}

        t0 = time.perf_counter()
        summary(df.head(WARMUP_ROWS))
        rec["warmup_s"] = time.perf_counter() - t0
        result, figures = measure(lambda: summary(df))
    except Exception as exc:
        fail(rec, exc, a.out)
    rec.update(figures)
    rec.update(result)
    emit(rec, a.out)


if __name__ == "__main__":
    main()
