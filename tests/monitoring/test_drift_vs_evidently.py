"""loopml's batch drift report and Evidently's ``DataDriftPreset`` reach the same verdicts on the
same data.

Comparable settings: Evidently's automatic choice for a reference of more than 1,000 rows is the
normed Wasserstein distance for numeric columns and the Jensen-Shannon distance for categorical
ones, both drifting at >= 0.1; loopml's defaults are the same tests with the same thresholds (and
the same normalisation: the reference's population standard deviation, at least 0.001). loopml's
Wasserstein is binned (20 quantile bins, each bin's mass at its median: within 0.02 or 12 % of
the exact distance here), so the data keep every column at least 0.03 away from the threshold.
A second run forces Kolmogorov-Smirnov on the numeric columns in both (Evidently:
``num_method="ks"``, threshold 0.05 on the p-value; loopml: ``tests=... "ks"`` with
``exact=True``, i.e. ``scipy.stats.ks_2samp``, what Evidently calls).

Evidently 0.7.23 runs in its own venv (it needs pandas < 3): ``LOOPML_EVIDENTLY_PYTHON``, else
``bench/.work/venv-evidently/bin/python`` (``make bench-monitoring`` creates it). Without it the
test is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.monitoring.batch import drift_report

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / "bench" / ".work" / "venv-evidently" / "bin" / "python"
ROWS = 20_000

EVIDENTLY = textwrap.dedent(
    """
    import json, os, sys
    os.environ["DO_NOT_TRACK"] = "1"
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur, mode = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2]), sys.argv[3]
    dd = DataDefinition(
        numerical_columns=[c for c in ref if c.startswith("num")],
        categorical_columns=[c for c in ref if c.startswith("cat")],
    )
    preset = DataDriftPreset() if mode == "default" else DataDriftPreset(num_method="ks")
    snap = Report([preset]).run(
        current_data=Dataset.from_pandas(cur, data_definition=dd),
        reference_data=Dataset.from_pandas(ref, data_definition=dd),
    )
    out = {}
    for m in snap.dict()["metrics"]:
        config = m["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, score = config["method"], config["threshold"], m["value"]
        # p-value tests drift below the threshold, distances at or above it; a method named by
        # its id (num_method="ks") shows the id, an automatic one its long name
        p_value = "p_value" in method or method in ("ks", "chisquare", "z", "t_test", "mannw")
        drifted = score < threshold if p_value else score >= threshold
        out[config["column"]] = dict(method=method, score=score, drifted=bool(drifted))
    print(json.dumps(out))
    """
)


def _evidently_python() -> str:
    given = os.environ.get("LOOPML_EVIDENTLY_PYTHON")
    python = Path(given) if given else VENV_PYTHON
    if not python.exists():
        pytest.skip(
            f"Evidently's venv is missing ({python}); create it with `make bench-monitoring` or "
            "`python3 -m venv bench/.work/venv-evidently && bench/.work/venv-evidently/bin/pip "
            "install evidently==0.7.23 scipy 'pandas<3' pyarrow`, or set LOOPML_EVIDENTLY_PYTHON"
        )
    probe = subprocess.run(
        [str(python), "-c", "import evidently; print(evidently.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"{python} cannot import evidently: {probe.stderr.strip()[-300:]}")
    return str(python)


def _write(tmp_path: Path) -> tuple[Path, Path]:
    """Numeric columns shifted by 0, 0.02, 0.25, 0.5 standard deviations or widened by 1.6x;
    categorical columns with the same or other frequencies. Every column's distance is at
    least 0.03 from 0.1."""
    rng = np.random.default_rng(6)
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    for j, (shift, scale) in enumerate(
        [(0.0, 1.0), (0.02, 1.0), (0.25, 1.0), (0.5, 1.0), (0.0, 1.6), (0.0, 1.0)]
    ):
        sd = 1.0 + j
        ref[f"num_{j}"] = rng.normal(10.0, sd, ROWS)
        cur[f"num_{j}"] = rng.normal(10.0 + shift * sd, sd * scale, ROWS)
    ref["num_exp"] = rng.exponential(2.0, ROWS)
    cur["num_exp"] = rng.exponential(2.0, ROWS)
    for j, k in enumerate([3, 8, 20]):
        cats = np.array([f"c{j}_{i}" for i in range(k)], dtype=object)
        p = rng.dirichlet(np.ones(k) * 2)
        q = rng.dirichlet(np.ones(k) * 2) if j == 1 else p
        ref[f"cat_{j}"] = cats[rng.choice(k, ROWS, p=p)]
        cur[f"cat_{j}"] = cats[rng.choice(k, ROWS, p=q)]
    paths = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    for path, cols in zip(paths, (ref, cur), strict=True):
        pq.write_table(pa.table({k: pa.array(v) for k, v in cols.items()}), path)
    return paths


def _evidently(python: str, ref: Path, cur: Path, mode: str) -> dict[str, dict[str, object]]:
    res = subprocess.run(
        [python, "-c", EVIDENTLY, str(ref), str(cur), mode],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out: dict[str, dict[str, object]] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_drifted_columns_agree_with_evidently(tmp_path: Path) -> None:
    python = _evidently_python()
    ref, cur = _write(tmp_path)

    theirs = _evidently(python, ref, cur, "default")
    ours = drift_report(ref, cur)
    assert {c.column for c in ours.columns} == set(theirs)
    for c in ours.columns:
        e = theirs[c.column]
        expected = "Wasserstein" if c.column.startswith("num") else "Jensen-Shannon"
        assert expected in str(e["method"])
        assert c.result.test == ("wasserstein" if c.column.startswith("num") else "jensenshannon")
        assert c.drifted == e["drifted"], (c.column, c.result, e)
        score = float(e["score"])  # type: ignore[arg-type]
        if c.column.startswith("cat"):  # categories are counted exactly: the same number
            assert c.result.statistic == pytest.approx(score, rel=1e-9)
        else:  # binned (bin medians): within 0.02 or 12 %, whichever is larger (a change of
            # spread is underestimated by about 10 %: the medians hide the bins' widening)
            assert c.result.statistic == pytest.approx(score, abs=max(0.02, 0.12 * score))
    assert set(ours.drifted_columns) == {"num_2", "num_3", "num_4", "cat_1"}
    assert ours.dataset_drift is False  # 4 of 10 columns, under Evidently's 0.5 share too

    theirs_ks = _evidently(python, ref, cur, "ks")
    numeric = [c for c in theirs_ks if c.startswith("num")]
    ks = drift_report(ref, cur, tests={c: "ks" for c in numeric}, exact=True)
    for c in ks.columns:
        e = theirs_ks[c.column]
        assert c.drifted == e["drifted"], (c.column, c.result, e)
        if c.column in numeric:
            assert e["method"] == "ks"
            assert c.result.p_value == pytest.approx(float(e["score"]), rel=1e-6, abs=1e-12)  # type: ignore[arg-type]
