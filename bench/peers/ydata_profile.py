#!/usr/bin/env python3
"""ydata-profiling side of the data benchmark: a minimal profile of the table.

Runs in ``bench/.venv-ydata`` (``pip install ydata-profiling pyarrow``; pip picks the pandas and
numpy it supports). ``ProfileReport(df, minimal=True).get_description()``: the statistics only
(minimal mode: no correlations, interactions or duplicate search; no HTML). Timed after a
2,000-row warm-up profile in the same process. One JSON line out.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

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
    warnings.filterwarnings("ignore")
    rec: dict[str, object] = {"tool": "ydata-profiling", "key": "profile", "rep": a.rep}
    try:
        import pandas as pd
        import ydata_profiling
        from ydata_profiling import ProfileReport

        rec["versions"] = {
            "ydata-profiling": ydata_profiling.__version__,
            "pandas": pd.__version__,
        }
        t0 = time.perf_counter()
        df = pd.read_parquet(a.data)
        rec["load_s"] = time.perf_counter() - t0
        rec["rows"] = len(df)

        def describe(frame: pd.DataFrame) -> dict[str, object]:
            report = ProfileReport(frame, minimal=True, progress_bar=False)
            desc = report.get_description()
            return {"profiled_columns": len(desc.variables)}

        t0 = time.perf_counter()
        describe(df.head(WARMUP_ROWS))
        rec["warmup_s"] = time.perf_counter() - t0
        result, figures = measure(lambda: describe(df))
    except Exception as exc:
        fail(rec, exc, a.out)
    rec.update(figures)
    rec.update(result)
    emit(rec, a.out)


if __name__ == "__main__":
    main()
