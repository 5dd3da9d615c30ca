"""Evaluate one window of a monitor: drift, prediction drift, data quality, performance and
latency, as a flat set of metrics (the time series alert rules read) and the full details.

The inputs are what serving already wrote: drift and quality come from the window profiles
(mergeable sketches per route and 5-minute window), so a window of a day or a month is a merge
of counts, never a pass over raw rows; performance and latency read only the prediction log's
few columns they need (id, time, route, prediction, latency) and join the ground truth by
prediction id.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, LoopError
from loopml.monitoring.spec import MonitorSpec

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.stats import ColumnProfile, DatasetProfile

__all__ = ["PREDICTION", "Evaluation", "Window", "evaluate_window", "window_profile"]

PREDICTION = "prediction"
"""The prediction's column in window profiles and log segments."""
_INPUT = "input."


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in epoch milliseconds."""

    start: int
    end: int


@dataclass
class Evaluation:
    """What a window's evaluation produced: ``metrics`` (name -> float, NaN when not
    computed), ``details`` (JSON-ready), ``status`` and the profiles compared (for reports)."""

    window: Window
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    reference: DatasetProfile | None = None
    current: DatasetProfile | None = None


class _Sources:
    """Per-run caches: references by model version, the ground truth, the first window."""

    def __init__(self, client: Client, spec: MonitorSpec, project: str | None) -> None:
        self.client = client
        self.spec = spec
        self.project = project
        self.references: dict[str, tuple[DatasetProfile | None, dict[str, Any]]] = {}
        self.labels: pd.DataFrame | None = None
        self.baseline: DatasetProfile | None = None


def evaluate_window(
    client: Client,
    spec: MonitorSpec,
    window: Window,
    *,
    project: str | None = None,
    sources: _Sources | None = None,
) -> Evaluation:
    """Evaluate one window of a deployment monitor.

    Args:
        client: where the window profiles, segments, labels and references are.
        spec: the monitor's spec.
        window: the window.
        project: the project (default: the client's).
        sources: caches shared by the windows of one run.
    """
    if spec.deployment is None:
        raise InvalidArgument(
            "evaluate_window is for deployment monitors; this one watches a dataset"
        )
    src = sources or _Sources(client, spec, project)
    out = Evaluation(window)
    current, versions = window_profile(client, spec, window, project=project)
    rows = current.num_rows if current is not None else 0
    out.metrics["rows"] = float(rows)
    out.details["rows"] = rows
    notes: list[str] = []
    out.details["notes"] = notes
    reference: DatasetProfile | None = None
    if versions:
        version = versions.most_common(1)[0][0]
        reference, info = _reference(src, version)
        out.details["reference"] = info
        out.details["model_versions"] = dict(versions)
    elif spec.reference != "training":
        reference, info = _reference(src, None)
        out.details["reference"] = info
    if current is not None and reference is not None:
        current = _on_edges(current, reference)
    out.reference, out.current = reference, current
    exact: list[str] = []  # numeric features for the exact KS test
    if current is None:
        notes.append("no predictions were logged in this window")
    elif reference is None:
        notes.append(
            "no reference profile: the model version has no training dataset with a profile; "
            "set reference: datasets:/name/version"
        )
    else:
        if spec.drift.enabled:
            _drift(spec, reference, current, out)
            if spec.drift.exact:
                exact = _exact_columns(out)
        if spec.prediction_drift.enabled:
            _prediction_drift(src, window, reference, current, out)
        if spec.quality.enabled:
            _quality(spec, reference, current, out)
    if exact or spec.performance.enabled or spec.latency.enabled:
        frame = _log_rows(src, window, exact)  # read once for all three
        if frame is not None and not frame.empty:
            if exact:
                _exact_ks(src, frame, exact, out.details["reference"]["uri"], out)
            _from_log(src, frame, out)
    if spec.latency.enabled:
        _errors(src, window, out)
    if out.metrics.get("dataset_drift") == 1.0:
        out.status = "drifted"
    return out


# --- profiles ------------------------------------------------------------------------------------


def window_profile(
    client: Client, spec: MonitorSpec, window: Window, *, project: str | None = None
) -> tuple[DatasetProfile | None, Counter[str]]:
    """The merged profile of a window (None when nothing was logged) and its rows by model
    version."""
    from loopml.stats import DatasetProfile

    assert spec.deployment is not None
    from loopml.monitoring.rollups import window_fragments

    fragments = window_fragments(
        client, spec.deployment, window.start, window.end, route=spec.route, project=project
    )
    versions: Counter[str] = Counter()
    profiles = []
    for fragment in fragments:  # a log window belongs to the window it starts in
        versions[fragment.model_version] += fragment.rows
        profiles.append(DatasetProfile.from_dict(fragment.profile))
    if not profiles:
        return None, versions
    return _merge(profiles), versions


def first_logged(client: Client, deployment: str, *, project: str | None = None) -> int | None:
    """When the deployment logged its first prediction (ms), or None (read from the segment
    index: no profile is decoded)."""
    first = client.list_prediction_segments(deployment, limit=1, project=project)
    return first[0].start_time if first else None


def _merge(profiles: list[DatasetProfile]) -> DatasetProfile:
    """Merge window fragments; fragments binned on other edges (no reference when they were
    written) are rebinned on the first one's through their sketches."""
    out = profiles[0]
    for p in profiles[1:]:
        try:
            out = out.merge(p)
        except InvalidArgument:
            out = out.merge(_on_edges(p, out))
    return out


def _on_edges(profile: DatasetProfile, like: DatasetProfile) -> DatasetProfile:
    """``profile`` with each numeric column's counts on ``like``'s edges for that column."""
    from loopml.stats import DatasetProfile, NumericProfile

    edges = like.edges()
    columns: list[ColumnProfile] = []
    changed = False
    for col in profile.columns:
        target = edges.get(col.name)
        if isinstance(col, NumericProfile) and target and col.edges and col.edges != target:
            counts = tuple(int(c) for c in col.counts_on(target))
            columns.append(replace(col, edges=tuple(target), counts=counts))
            changed = True
        else:
            columns.append(col)
    if not changed:
        return profile
    return DatasetProfile(profile.num_rows, tuple(columns), profile.target)


def _reference(src: _Sources, version: str | None) -> tuple[DatasetProfile | None, dict[str, Any]]:
    key = version if src.spec.reference == "training" else src.spec.reference
    if key is None:
        return None, {"kind": "training", "uri": None, "rows": 0}
    if key not in src.references:
        src.references[key] = _load_reference(src, version)
    return src.references[key]


def stored_profile(client: Client, dv: DatasetVersion) -> DatasetProfile | None:
    """A dataset version's stored profile, or None when it was logged without one."""
    from loopml.data import dataset_profile

    return dataset_profile(dv, client=client) if dv.profile_blob else None


def training_dataset(
    client: Client, model_version: str, *, project: str | None = None
) -> DatasetVersion | None:
    """The dataset a model version (``name/version``) was trained on: its run's ``train``
    input (one with a profile first), or None (no such input, no run, not a registered
    version)."""
    name, _, number = model_version.rpartition("/")
    if not number.isdigit():
        return None
    try:
        lineage = client.model_lineage(name, int(number), project=project)
    except LoopError:
        return None
    train: list[DatasetVersion] = [
        i.dataset_version for i in lineage["inputs"] if i.role == "train"
    ]
    profiled = [dv for dv in train if dv.profile_blob]
    return (profiled or train)[0] if train else None


def _load_reference(
    src: _Sources, version: str | None
) -> tuple[DatasetProfile | None, dict[str, Any]]:
    client, spec = src.client, src.spec
    if spec.reference != "training":
        dv = client.get_dataset_version(spec.reference, project=src.project)
        return stored_profile(client, dv), {"kind": "dataset", "uri": dv.uri, "rows": dv.num_rows}
    info: dict[str, Any] = {"kind": "training", "uri": None, "rows": 0, "model_version": version}
    trained_on = training_dataset(client, version or "", project=src.project)
    if trained_on is None or not trained_on.profile_blob:
        return None, info
    info.update(uri=trained_on.uri, rows=trained_on.num_rows)
    return stored_profile(client, trained_on), info


def _subset(profile: DatasetProfile, names: list[str]) -> DatasetProfile:
    from loopml.stats import DatasetProfile

    return DatasetProfile(profile.num_rows, tuple(profile[n] for n in names), None)


def _features(spec: MonitorSpec, reference: DatasetProfile, current: DatasetProfile) -> list[str]:
    skip = {PREDICTION, reference.target, *spec.drift.exclude}
    names = [n for n in reference.column_names if n in current and n not in skip]
    if spec.drift.columns is not None:
        wanted = set(spec.drift.columns)
        names = [n for n in names if n in wanted]
    return names


# --- checks --------------------------------------------------------------------------------------


def _drift(
    spec: MonitorSpec, reference: DatasetProfile, current: DatasetProfile, out: Evaluation
) -> None:
    from loopml.stats import compare_profiles

    names = _features(spec, reference, current)
    if not names:
        out.details["notes"].append("no feature is both in the reference and in the window")
        return
    tests = {k: v for k, v in spec.drift.tests.items() if k in names}
    comparison = compare_profiles(
        _subset(reference, names),
        _subset(current, names),
        tests=tests,
        drift_share=spec.drift.drift_share,
    )
    out.details["drift"] = comparison.to_dict()
    out.metrics["drift_share"] = comparison.drifted_share
    out.metrics["drifted_features"] = float(len(comparison.drifted_columns))
    out.metrics["dataset_drift"] = 1.0 if comparison.dataset_drift else 0.0
    for c in comparison.columns:
        out.metrics[f"drift.{c.column}"] = c.result.statistic


def _prediction_drift(
    src: _Sources,
    window: Window,
    reference: DatasetProfile,
    current: DatasetProfile,
    out: Evaluation,
) -> None:
    from loopml.stats import compare_profiles

    if PREDICTION not in current:
        return
    base: ColumnProfile | None = None
    against = "target"
    if reference.target is not None and reference.target in reference:
        base = replace(reference[reference.target], name=PREDICTION)
    else:
        baseline = _baseline(src)
        if baseline is not None and PREDICTION in baseline:
            base, against = baseline[PREDICTION], "first window"
    if base is None:
        out.details["notes"].append(
            "prediction drift needs the reference's target column or an earlier window"
        )
        return
    ref = type(reference)(reference.num_rows, (base,), None)
    cur = _subset(current, [PREDICTION])
    try:
        test = src.spec.prediction_drift.test
        comparison = compare_profiles(ref, cur, tests={PREDICTION: test} if test else None)
    except InvalidArgument as exc:
        out.details["notes"].append(f"prediction drift not computed: {exc}")
        return
    col = comparison.columns[0]
    out.details["prediction_drift"] = {**col.to_dict(), "against": against}
    out.metrics["prediction_drift"] = col.result.statistic
    out.metrics["prediction_drifted"] = 1.0 if col.drifted else 0.0


def _baseline(src: _Sources) -> DatasetProfile | None:
    """The deployment's first monitor window (the prediction-drift reference without a target)."""
    if src.baseline is None:
        spec = src.spec
        assert spec.deployment is not None
        start = first_logged(src.client, spec.deployment, project=src.project)
        if start is None:
            return None
        window = Window(start, start + int(spec.window * 1000))
        src.baseline, _ = window_profile(src.client, spec, window, project=src.project)
    return src.baseline


def _quality(
    spec: MonitorSpec, reference: DatasetProfile, current: DatasetProfile, out: Evaluation
) -> None:
    from loopml.stats import CategoricalProfile, NumericProfile

    skip = {PREDICTION, reference.target}
    ref_names = [n for n in reference.column_names if n not in skip]
    cur_names = [n for n in current.column_names if n not in skip]
    columns = []
    out_total = unseen_total = counted = 0
    for name in ref_names:
        if name not in current:
            continue
        ref, cur = reference[name], current[name]
        rows = cur.rows
        null_share = cur.nulls / rows if rows else 0.0
        ref_null = ref.nulls / ref.rows if ref.rows else 0.0
        item: dict[str, Any] = {
            "column": name,
            "null_share": null_share,
            "reference_null_share": ref_null,
            "null_increase": null_share - ref_null > spec.quality.max_null_increase,
        }
        out.metrics[f"null_share.{name}"] = null_share
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
            outside = _out_of_range(ref, cur)
            item["out_of_range"] = outside
            out_total += outside
            counted += cur.count
        elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
            known = {v for v, _ in ref.categories}
            unseen = [(v, c) for v, c in cur.categories if v not in known]
            if ref.other:  # the reference folded a tail: those may be known values
                item["unseen_note"] = "the reference kept only its most frequent categories"
            n_unseen = sum(c for _, c in unseen)
            item["unseen"] = [v for v, _ in unseen[:20]]
            item["unseen_share"] = n_unseen / cur.count if cur.count else 0.0
            unseen_total += n_unseen
            counted += cur.count
        columns.append(item)
    values = max(counted, 1)
    out.metrics["out_of_range_share"] = out_total / values
    out.metrics["unseen_category_share"] = unseen_total / values
    out.metrics["null_share"] = sum(current[n].nulls for n in cur_names) / max(
        sum(current[n].rows for n in cur_names), 1
    )
    out.details["quality"] = {
        "columns": columns,
        "missing_columns": [n for n in ref_names if n not in current],
        "extra_columns": [n for n in cur_names if n not in reference],
    }
    out.metrics["missing_columns"] = float(len(out.details["quality"]["missing_columns"]))


def _out_of_range(ref: Any, cur: Any) -> int:
    """Values of the window outside the reference's [min, max] (exact when the window's range is
    inside it, else estimated from the window's sketch)."""
    import numpy as np

    if ref.min is None or ref.max is None or cur.min is None or cur.count == 0:
        return 0
    if cur.min >= ref.min and cur.max <= ref.max:
        return 0
    cuts = [ref.min, float(np.nextafter(ref.max, math.inf))]
    bins = cur.sketch.bin_counts(cuts, total=cur.finite)
    return int(bins[0] + bins[-1])


# --- the prediction log: performance and latency ---------------------------------------------


def _from_log(src: _Sources, frame: pd.DataFrame, out: Evaluation) -> None:
    spec = src.spec
    if spec.latency.enabled and "latency_ms" in frame:
        import numpy as np

        lat = frame["latency_ms"].to_numpy(dtype=np.float64)
        p50, p90, p99 = (float(x) for x in np.percentile(lat, [50, 90, 99]))
        requests = int(frame["request_id"].nunique()) if "request_id" in frame else len(frame)
        out.details["latency"] = {
            "requests": requests,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
        }
        out.metrics.update(latency_p50_ms=p50, latency_p90_ms=p90, latency_p99_ms=p99)
    if spec.performance.enabled:
        from loopml.monitoring.performance import performance

        if src.labels is None:
            src.labels = _labels(src)
        result = performance(frame, src.labels, spec.performance)
        if result is not None:
            out.details["performance"] = result
            out.metrics["labelled"] = float(result["labelled"])
            for name, value in result["metrics"].items():
                out.metrics[name] = value


def _errors(src: _Sources, window: Window, out: Evaluation) -> None:
    """The window's requests and error rates, from the traffic windows the serving processes
    stored (every answer counts, failures too, which the prediction log never sees)."""
    spec = src.spec
    assert spec.deployment is not None
    windows = src.client.list_traffic_windows(
        spec.deployment, start=window.start, end=window.end, route=spec.route, project=src.project
    )
    requests = sum(w.requests for w in windows)
    if not requests:
        return
    server = sum(w.server_errors for w in windows)
    client = sum(w.client_errors for w in windows)
    counts = {
        "served_requests": requests,
        "server_errors": server,
        "client_errors": client,
        "error_rate": server / requests,
        "client_error_rate": client / requests,
    }
    out.details.setdefault("latency", {}).update(counts)
    out.metrics.update(
        requests=float(requests),
        error_rate=server / requests,
        client_error_rate=client / requests,
    )


def _log_rows(
    src: _Sources, window: Window, inputs: list[str] | None = None
) -> pd.DataFrame | None:
    """The window's rows of the log: ids, latency, prediction (and ``inputs``, named without
    their ``input.`` prefix)."""
    import io

    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    spec = src.spec
    assert spec.deployment is not None
    segments = src.client.list_prediction_segments(
        spec.deployment, start=window.start, end=window.end - 1, project=src.project
    )
    wanted = ["prediction_id", "request_id", "time", "route", "latency_ms", PREDICTION]
    wanted += [_INPUT + n for n in inputs or ()]
    tables = []
    for seg in segments:
        digest = seg.uri.removeprefix("sha256:")
        data = src.client.artifacts.read(digest)
        file = pq.ParquetFile(io.BytesIO(data))
        names = [n for n in wanted if n in file.schema_arrow.names]
        table = file.read(columns=names)
        t = pc.cast(table.column("time"), pa.int64())
        keep = pc.and_(pc.greater_equal(t, window.start), pc.less(t, window.end))
        if spec.route is not None and "route" in names:
            keep = pc.and_(keep, pc.equal(pc.cast(table.column("route"), pa.string()), spec.route))
        tables.append(table.filter(keep).select([n for n in names if n not in ("time", "route")]))
    if not tables:
        return None
    frame: pd.DataFrame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    return frame.rename(columns=lambda c: c.removeprefix(_INPUT))


def _exact_columns(out: Evaluation) -> list[str]:
    """The numeric features the exact KS test will read back (none, with a note, when the
    drift check found no feature or the reference is not a stored dataset)."""
    drift = out.details.get("drift")
    if not drift or out.details.get("reference", {}).get("uri") is None:
        out.details["notes"].append(
            "exact KS needs the drift check and a stored reference dataset"
        )
        return []
    return [c["column"] for c in drift["columns"] if c["kind"] == "numeric"]


def _exact_ks(
    src: _Sources, rows: pd.DataFrame, names: list[str], reference_uri: str, out: Evaluation
) -> None:
    """Exact two-sample KS of each numeric feature: the window's logged inputs against the
    reference dataset's rows (both read back from storage)."""
    from loopml.data import load_dataset
    from loopml.stats.drift import ks_exact

    ref = load_dataset(reference_uri, columns=names, client=src.client)
    results = {}
    for name in names:
        if name not in rows:
            continue
        stat, p = ks_exact(ref[name].to_numpy(dtype=float), rows[name].to_numpy(dtype=float))
        drifted = bool(p < src.spec.drift.exact_threshold)
        results[name] = {"statistic": stat, "p_value": p, "drifted": drifted}
        out.metrics[f"ks_exact.{name}"] = stat
    out.details["drift_exact"] = results


def _labels(src: _Sources) -> pd.DataFrame:
    """Every label of the project (prediction ids are unique across deployments, and labels
    logged without a deployment name must join too)."""
    table = src.client.read_ground_truth(project=src.project)
    frame: pd.DataFrame = table.select(["prediction_id", "label"]).to_pandas()
    return frame
