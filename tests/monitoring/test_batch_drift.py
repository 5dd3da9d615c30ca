"""Batch drift reports: every kind of input, streamed files equal to data in memory, errors, and
each statistic against scipy on the same data, through the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial import distance

import loopml
from loopml.data.datasets import log_dataset
from loopml.errors import InvalidArgument, NotFound
from loopml.monitoring.batch import DriftReport, drift_report
from loopml.stats import NumericProfile, ProfileBuilder, profile

N = 6000
DRIFTED = {"shifted", "scaled", "plan"}


def _frames(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current: two numeric and one categorical column drift, the rest do not."""
    rng = np.random.default_rng(seed)
    plans = np.array(["basic", "plus", "pro", "team"], dtype=object)

    def side(shift: float, scale: float, p: list[float]) -> pd.DataFrame:
        stable = rng.normal(50, 10, n)
        stable[rng.random(n) < 0.02] = np.nan  # nulls are counted apart, on both sides
        return pd.DataFrame(
            {
                "stable": stable,
                "shifted": rng.normal(shift, 1.0, n),
                "scaled": rng.exponential(scale, n),
                "count": rng.poisson(3, n).astype(np.int64),
                "plan": plans[rng.choice(4, n, p=p)],
                "region": rng.choice(["eu", "us", "apac"], n),
            }
        )

    ref = side(0.0, 1.0, [0.4, 0.3, 0.2, 0.1])
    cur = side(0.5, 1.6, [0.1, 0.2, 0.3, 0.4])
    return ref, cur


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _frames()


@pytest.fixture(scope="module")
def files(
    frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    ref, cur = frames
    folder = tmp_path_factory.mktemp("drift-files")
    out = {}
    for name, df in (("ref", ref), ("cur", cur)):
        pq.write_table(
            pa.Table.from_pandas(df, preserve_index=False),
            folder / f"{name}.parquet",
            row_group_size=1500,  # several row groups: batches cross them
        )
        df.to_csv(folder / f"{name}.csv", index=False)
        out[name] = folder / f"{name}.parquet"
        out[f"{name}_csv"] = folder / f"{name}.csv"
    return out


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


def _stats(report: DriftReport) -> dict[str, float]:
    return {c.column: c.result.statistic for c in report.columns}


def test_in_memory_report_finds_the_drifted_columns(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    ref, cur = frames
    report = drift_report(ref, cur)
    assert set(report.drifted_columns) == DRIFTED
    assert report.dataset_drift is True and report.drifted_share == pytest.approx(0.5)
    assert [c.column for c in report.columns] == list(ref.columns)
    by = {c.column: c.result.test for c in report.columns}
    assert by == {
        "stable": "wasserstein",
        "shifted": "wasserstein",
        "scaled": "wasserstein",
        "count": "wasserstein",  # more than 5 values: binned like any number
        "plan": "jensenshannon",
        "region": "jensenshannon",
    }
    assert report["stable"].current_null_share == pytest.approx(cur["stable"].isna().mean())
    # the report serialises and prints
    data = json.loads(report.to_json())
    assert data["dataset_drift"] is True and set(data["timings"]) >= {"reference", "total"}
    assert {c["column"] for c in data["columns"] if c["drifted"]} == DRIFTED
    text = str(report)
    assert "3 of 6 columns drifted" in text and "shifted" in text
    # no drift against itself, and a share above the drifted one means no dataset drift
    assert drift_report(ref, ref).drifted_columns == ()
    assert drift_report(ref, cur, drift_share=0.6).dataset_drift is False


def test_every_kind_of_input_gives_the_same_verdicts(
    frames: tuple[pd.DataFrame, pd.DataFrame], files: dict[str, Path], client: loopml.Client
) -> None:
    pl = pytest.importorskip("polars")
    ref, cur = frames
    base = drift_report(ref, cur)
    ref_profile = profile(ref)
    log_dataset(ref, "ref", client=client)
    log_dataset(cur, "cur", client=client)
    log_dataset(cur, "cur-raw", client=client, profile=False)
    inputs = {
        "pyarrow": (pa.Table.from_pandas(ref, preserve_index=False), pa.Table.from_pandas(cur)),
        "polars": (pl.from_pandas(ref), pl.from_pandas(cur)),
        "dict": ({k: ref[k].to_numpy() for k in ref}, {k: cur[k].to_numpy() for k in cur}),
        "parquet": (files["ref"], files["cur"]),
        "parquet as str": (str(files["ref"]), str(files["cur"])),
        "csv": (files["ref_csv"], files["cur_csv"]),
        "profile": (ref_profile, cur),
        "profiles": (ref_profile, ProfileBuilder(edges=ref_profile).update(cur).result()),
        "datasets": ("datasets:/ref/1", "datasets:/cur-raw/1"),
        "datasets, stored profiles": ("datasets:/ref/1", "datasets:/cur@latest"),
        "mixed": (files["ref"], pl.from_pandas(cur)),
    }
    expected = _stats(base)
    for label, (r, c) in inputs.items():
        report = drift_report(r, c, client=client)
        assert set(report.drifted_columns) == DRIFTED, label
        got = _stats(report)
        for col, value in expected.items():
            # the same statistic; edges from a file or a stored profile differ a little
            assert got[col] == pytest.approx(value, rel=0.1, abs=0.03), (label, col)
    # a stored current profile has its own edges: counts come through its sketch, and it says so
    stored = drift_report("datasets:/ref/1", "datasets:/cur/1", client=client)
    assert any("sketch" in n for n in stored.notes)
    # exact tests fetch the versions' data (one column at a time)
    exact = drift_report("datasets:/ref/1", "datasets:/cur/1", client=client, exact=True)
    assert set(exact.exact_columns) == {"stable", "shifted", "scaled", "count"}
    a, b = ref["shifted"].to_numpy(), cur["shifted"].to_numpy()
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert exact["shifted"].result.statistic == pytest.approx(expected, rel=1e-12)


def test_streaming_a_parquet_file_in_chunks_matches_memory(
    frames: tuple[pd.DataFrame, pd.DataFrame], files: dict[str, Path]
) -> None:
    ref, cur = frames
    streamed = drift_report(files["ref"], files["cur"], chunk_rows=700)
    whole = drift_report(files["ref"], files["cur"], chunk_rows=N)  # one chunk a side
    assert streamed.drifted_columns == whole.drifted_columns
    # The streamed reference's edges come from a KLL sketch; its counts on them are exact: the
    # same as profiling the frame in memory on those edges, and so is the current's.
    edges = streamed.reference
    for side, df in ((streamed.reference, ref), (streamed.current, cur)):
        mem = profile(df, edges=edges)
        for col in side.columns:
            other = mem[col.name]
            if isinstance(col, NumericProfile):
                assert isinstance(other, NumericProfile)
                assert (col.edges, col.counts, col.nulls) == (
                    other.edges,
                    other.counts,
                    other.nulls,
                )
                assert col.mean == pytest.approx(other.mean)
                assert col.std == pytest.approx(other.std)
            else:
                assert col == other
    # and on the same edges every statistic computed from counts is the one computed in memory
    # (Wasserstein also reads bin medians from the KLL sketches, whose compactions are random:
    # close, not equal; the long exponential tail of "scaled" moves by up to about 5 %)
    counted = {"stable": "ks", "shifted": "psi", "scaled": "ks", "count": "chisquare"}
    a = drift_report(files["ref"], files["cur"], chunk_rows=700, tests=counted)
    b = drift_report(
        a.reference, ProfileBuilder(edges=a.reference).update(cur).result(), tests=counted
    )
    assert _stats(a) == _stats(b)
    in_memory = ProfileBuilder(edges=edges).update(cur).result()
    for x, y in zip(streamed.columns, drift_report(edges, in_memory).columns, strict=True):
        assert x.result.statistic == pytest.approx(y.result.statistic, rel=0.1, abs=0.02), x.column
    # a single read of a small file takes the exact quantile edges, as in memory
    mem = drift_report(ref, cur)
    assert whole.reference.edges() == mem.reference.edges()
    for side in ("reference", "current"):
        a_cols, b_cols = getattr(whole, side), getattr(mem, side)
        for col in a_cols.columns:
            other = b_cols[col.name]
            if isinstance(col, NumericProfile):
                assert isinstance(other, NumericProfile)
                assert (col.counts, col.nulls, col.min, col.max) == (
                    other.counts,
                    other.nulls,
                    other.min,
                    other.max,
                )
            else:
                assert col == other


def test_columns_tests_and_categorical_options(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    report = drift_report(
        ref,
        cur.drop(columns=["region"]).assign(extra=1.0),
        columns=["shifted", "count", "plan"],
        tests={"shifted": "ks", "count": "psi", "plan": "chisquare"},
        categorical=["count"],
    )
    assert [c.column for c in report.columns] == ["shifted", "count", "plan"]
    assert [c.result.test for c in report.columns] == ["ks", "psi", "chisquare"]
    assert report["count"].kind == "categorical"
    assert report.comparison.only_in_reference == () and report.comparison.only_in_current == ()
    missing = drift_report(ref, cur.drop(columns=["region"]).assign(extra=1.0))
    assert missing.comparison.only_in_reference == ("region",)
    assert missing.comparison.only_in_current == ("extra",)


def test_errors_say_what_is_wrong(
    frames: tuple[pd.DataFrame, pd.DataFrame], files: dict[str, Path], tmp_path: Path
) -> None:
    ref, cur = frames
    with pytest.raises(InvalidArgument, match="does not exist"):
        drift_report(tmp_path / "nope.parquet", cur)
    with pytest.raises(InvalidArgument, match="is a folder"):
        drift_report(ref, tmp_path)
    junk = tmp_path / "data.bin"
    junk.write_bytes(b"not a table")
    with pytest.raises(InvalidArgument, match="neither Parquet nor CSV"):
        drift_report(junk, cur)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 but not really")
    with pytest.raises(InvalidArgument, match="not a readable Parquet"):
        drift_report(bad, cur)
    with pytest.raises(InvalidArgument, match="share no column"):
        drift_report(ref[["stable"]], cur[["plan"]])
    with pytest.raises(InvalidArgument, match="unknown drift test 'kolmogorov'"):
        drift_report(ref, cur, tests={"stable": "kolmogorov"})
    with pytest.raises(InvalidArgument, match="not compared"):
        drift_report(ref, cur, tests={"nope": "ks"})
    with pytest.raises(InvalidArgument, match=r"\['nope'\] are not in the reference table"):
        drift_report(ref, cur.assign(nope=1), columns=["stable", "nope"])
    with pytest.raises(InvalidArgument, match="applies to numeric columns"):
        drift_report(ref, cur, tests={"plan": "ks"})
    with pytest.raises(InvalidArgument, match="drift_share"):
        drift_report(ref, cur, drift_share=0)
    with pytest.raises(InvalidArgument, match="chunk_rows"):
        drift_report(files["ref"], files["cur"], chunk_rows=0)
    with pytest.raises(InvalidArgument, match="not list"):
        drift_report([1, 2, 3], cur)
    with pytest.raises(InvalidArgument, match=r"duplicate columns \['a'\]"):
        drift_report(pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), cur)


def test_dataset_uri_errors(client: loopml.Client) -> None:
    with pytest.raises(NotFound):
        drift_report("datasets:/nothing/1", {"x": [1.0]}, client=client)
    with pytest.raises(InvalidArgument, match="alias"):
        drift_report("datasets:/nothing@prod", {"x": [1.0]}, client=client)


# --- each statistic against scipy, through the report ------------------------------------------


def _cat_counts(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(a.dropna()) | set(b.dropna()))
    va, vb = a.value_counts(), b.value_counts()
    return (
        np.array([va.get(k, 0) for k in keys], dtype=float),
        np.array([vb.get(k, 0) for k in keys], dtype=float),
    )


def test_categorical_statistics_equal_scipy(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    for col in ("plan", "region"):
        p, q = _cat_counts(ref[col], cur[col])
        report = drift_report(ref, cur, columns=[col], tests={col: "jensenshannon"})
        assert report[col].result.statistic == pytest.approx(
            distance.jensenshannon(p, q), rel=1e-12
        )
        chi = drift_report(ref, cur, columns=[col], tests={col: "chisquare"})[col].result
        expected = stats.chi2_contingency(np.vstack([p, q]), correction=False)
        assert chi.statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert chi.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        psi = drift_report(ref, cur, columns=[col], tests={col: "psi"})[col].result
        pp, qq = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
        assert psi.statistic == pytest.approx(float(np.sum((qq - pp) * np.log(qq / pp))))


def test_numeric_statistics_match_scipy_within_the_binning_error(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Binned KS and Wasserstein against scipy on the raw values: within a stated tolerance
    (20 quantile bins); with exact=True, equal."""
    ref, cur = frames
    for col in ("stable", "shifted", "scaled"):
        a = ref[col].dropna().to_numpy()
        b = cur[col].dropna().to_numpy()
        ks = stats.ks_2samp(a, b)
        wd = stats.wasserstein_distance(a, b) / np.std(a)
        binned = drift_report(ref, cur, columns=[col], tests={col: "ks"})[col].result
        # The binned KS statistic is the CDF gap at the 19 inner edges: never above the exact
        # one, and below it by at most the mass of one bin (1/20 of each side).
        assert binned.statistic <= ks.statistic + 1e-12
        assert binned.statistic >= ks.statistic - 0.05
        assert binned.drifted == (ks.pvalue < 0.05)
        w = drift_report(ref, cur, columns=[col])[col].result
        assert w.test == "wasserstein"
        # Wasserstein with each bin's mass at the bin's median: within 0.02 (in reference
        # standard deviations) or 15 % of scipy's, whichever is larger; a change of spread is
        # underestimated most (the medians hide the bins' widening)
        assert w.statistic == pytest.approx(wd, abs=max(0.02, 0.15 * wd))
        assert w.drifted == (wd >= 0.1)
        exact = drift_report(ref, cur, columns=[col], tests={col: "ks"}, exact=True)
        assert exact.exact_columns == (col,)
        e = exact[col].result
        assert (e.statistic, e.p_value) == (pytest.approx(ks.statistic), pytest.approx(ks.pvalue))
        ew = drift_report(ref, cur, columns=[col], exact=True)[col].result
        assert ew.statistic == pytest.approx(wd, rel=1e-12)


def test_exact_tests_read_files_column_by_column_and_skip_profiles(
    frames: tuple[pd.DataFrame, pd.DataFrame], files: dict[str, Path]
) -> None:
    ref, cur = frames
    a, b = ref["shifted"].to_numpy(), cur["shifted"].to_numpy()
    for r, c in ((files["ref"], files["cur"]), (files["ref_csv"], files["cur_csv"])):
        report = drift_report(r, c, exact=True, tests={"shifted": "ks"}, chunk_rows=1000)
        assert report["shifted"].result.statistic == pytest.approx(stats.ks_2samp(a, b).statistic)
        assert "stable" in report.exact_columns and "plan" not in report.exact_columns
    skipped = drift_report(profile(ref), cur, exact=True)
    assert skipped.exact_columns == ()
    assert any("raw values" in n for n in skipped.notes)


# --- files are profiled as Arrow, without pandas -----------------------------------------------


def test_arrow_columns_profile_like_pandas() -> None:
    """The Arrow reading path gives the profile pandas gives, type by type (nulls, NaN,
    offsets of sliced arrays, chunks with their own dictionaries, types left to pandas)."""
    rng = np.random.default_rng(3)
    n = 3000
    ints = pa.array(rng.integers(0, 50, n), mask=rng.random(n) < 0.1)
    floats = rng.normal(size=n)
    floats[rng.random(n) < 0.05] = np.nan
    words = rng.choice(["a", "b", "c", "d"], n)
    table = pa.table(
        {
            "ints": ints,
            "floats": pa.array(floats, mask=rng.random(n) < 0.05),
            "flags": pa.array(rng.random(n) < 0.3),
            "flags_null": pa.array(rng.random(n) < 0.3, mask=rng.random(n) < 0.1),
            "ts": pa.array(
                rng.integers(1_700_000_000, 1_800_000_000, n) * 1_000_000,
                pa.timestamp("us", tz="Europe/Paris"),
                mask=rng.random(n) < 0.02,
            ),
            "wait": pa.array(rng.integers(0, 10**9, n), pa.duration("ms")),
            "words": pa.array(words, mask=rng.random(n) < 0.1),
            "coded": pa.array(words).dictionary_encode(),
            "day": pa.array(rng.integers(19000, 19010, n).astype("int32"), pa.date32()),
            "small": pa.array(rng.integers(0, 3, n).astype(np.uint8)),
        }
    )
    # two chunks, the second with another dictionary, both sliced (non-zero offsets)
    halves = [table.slice(1, 1400), table.slice(1500, 1400)]
    other = pa.array(rng.choice(["x", "a"], 1400)).dictionary_encode()
    halves[1] = halves[1].set_column(halves[1].schema.get_field_index("coded"), "coded", other)
    chunked = pa.concat_tables(halves, promote_options="permissive")
    for data in (table, table.slice(7, 2000), chunked):
        arrow = profile(data)
        pandas = profile(data.to_pandas())
        assert [c.kind for c in arrow] == [c.kind for c in pandas]
        for a, b in zip(arrow.columns, pandas.columns, strict=True):
            if isinstance(a, NumericProfile):
                assert isinstance(b, NumericProfile)
                assert (a.count, a.nulls, a.min, a.max, a.edges, a.counts, a.tz) == (
                    b.count,
                    b.nulls,
                    b.min,
                    b.max,
                    b.edges,
                    b.counts,
                    b.tz,
                ), a.name
                assert a.mean == pytest.approx(b.mean), a.name
            else:
                assert a == b, a.name


def test_a_report_on_files_does_not_import_pandas(files: dict[str, Path]) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from loopml.monitoring.batch import drift_report\n"
        f"r = drift_report({str(files['ref'])!r}, {str(files['cur'])!r}, chunk_rows=1000)\n"
        "assert set(r.drifted_columns) == {'shifted', 'scaled', 'plan'}, r.drifted_columns\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
