"""The challenger's live evidence during a rollout, and the verdict on it.

Everything comes from what serving already records: the prediction log (route, model version,
latency and prediction of every request, a shadow's answers under the primary's request id),
the ground truth joined by prediction id, and, when the policy lists the serving processes,
their Prometheus ``/metrics`` (exact counts of a canary's failures, which fall back to the
primary, and of a shadow's).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.loop.policy import Rollout

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client

__all__ = ["Evidence", "RouteStats", "Verdict", "gather", "judge", "scrape"]

_SOURCES = {
    "metrics": "from the servers",
    "traffic": "from the servers' traffic windows",
    "log": "estimated from the log",
    "none": "",
}
_Z = 3.0  # how many standard deviations a shortfall of logged answers must be to count


@dataclass
class RouteStats:
    """One route's live figures since the rollout started.

    Attributes:
        route: the route's name.
        predictions: predictions it logged.
        requests: requests it answered.
        p99_ms: its p99 latency (None without predictions).
        labeled: its predictions with ground truth.
        metric: the criterion's metric on the labelled ones (None without enough).
    """

    route: str
    predictions: int = 0
    requests: int = 0
    p99_ms: float | None = None
    labeled: int = 0
    metric: float | None = None


@dataclass
class Evidence:
    """What a rollout has shown so far.

    Attributes:
        challenger, primary: each route's figures.
        elapsed_s: seconds since the rollout started.
        error_rate: the challenger's failed requests over its attempts (None: not measured).
        error_source: ``metrics`` (the servers' counters), ``traffic`` (the traffic windows
            they stored), ``log`` (estimated from answers missing in the log) or ``none``.
        error_significant: for an estimate: whether the shortfall is beyond chance.
        attempts: the requests the challenger got (or, estimated, should have got).
        agreement: shadow: the share of compared predictions equal to the primary's.
        compared: shadow: predictions compared.
    """

    challenger: RouteStats
    primary: RouteStats
    elapsed_s: float
    error_rate: float | None = None
    error_source: str = "none"
    error_significant: bool = False
    attempts: int = 0
    agreement: float | None = None
    compared: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        from dataclasses import asdict

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {k: clean(v) for k, v in asdict(self).items()}


@dataclass
class Verdict:
    """``promote``, ``rollback`` or ``wait``, the reason, and each criterion's finding."""

    action: str
    reason: str
    checks: list[dict[str, Any]] = field(default_factory=list)


def scrape(servers: list[str], route: str, version_label: str) -> dict[str, float]:
    """The challenger's counters summed over the servers' ``/metrics``: ``answered`` (its 200
    answers), ``failed`` (canary failures that fell back, and shadow errors), ``agree``,
    ``disagree``. Unreachable servers are skipped (their counts are missing, not zero)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"answered": 0.0, "failed": 0.0, "agree": 0.0, "disagree": 0.0, "servers": 0.0}
    for base in servers:
        try:
            text = httpx.get(base.rstrip("/") + "/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        totals["servers"] += 1
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if labels.get("route") != route or labels.get("model_version") != version_label:
                    continue
                if not sample.name.endswith("_total"):
                    continue
                if sample.name == "loopml_requests_total" and labels.get("status") == "200":
                    totals["answered"] += sample.value
                elif (
                    sample.name == "loopml_route_errors_total" and labels.get("kind") == "fallback"
                ):
                    totals["failed"] += sample.value
                elif sample.name == "loopml_shadow_comparisons_total":
                    result = labels.get("result", "")
                    if result == "error":
                        totals["failed"] += sample.value
                    elif result in ("agree", "disagree"):
                        totals[result] += sample.value
    return totals


def _log(client: Client, deployment: str, since: int, project: str | None) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = ["prediction_id", "request_id", "time", "route", "model_version", "latency_ms"]
    wanted.append("prediction")
    tables = []
    for seg in client.list_prediction_segments(deployment, start=since, project=project):
        data = client.artifacts.read(seg.uri.removeprefix("sha256:"))
        file = pq.ParquetFile(io.BytesIO(data))
        names = [n for n in wanted if n in file.schema_arrow.names]
        table = file.read(columns=names)
        ms = pc.cast(table.column("time"), pa.int64())
        table = table.set_column(table.schema.get_field_index("time"), "time", ms)
        tables.append(table.filter(pc.greater_equal(ms, since)).to_pandas())
    frames = [t for t in tables if not t.empty]
    if not frames:
        return pd.DataFrame(columns=wanted)
    frame: pd.DataFrame = pd.concat(frames, ignore_index=True)
    for col in ("route", "model_version"):
        frame[col] = frame[col].astype(str)
    return frame


def _metric(rows: pd.DataFrame, labels: pd.DataFrame, name: str) -> tuple[int, float | None]:
    from loopml.monitoring.performance import performance
    from loopml.monitoring.spec import PerformanceCheck

    if rows.empty or labels.empty:
        return 0, None
    check = PerformanceCheck(
        task="regression" if name in ("rmse", "mae", "mape", "r2") else "classification",
        metrics=[name],
    )
    found = performance(rows, labels, check)
    if found is None:
        return 0, None
    value = found["metrics"].get(name)
    return int(found["labelled"]), (None if value is None or math.isnan(value) else value)


def _stats(route: str, rows: pd.DataFrame) -> RouteStats:
    import numpy as np

    out = RouteStats(route, predictions=len(rows), requests=int(rows["request_id"].nunique()))
    if len(rows):
        out.p99_ms = float(np.percentile(rows["latency_ms"].to_numpy(dtype=float), 99))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def gather(
    client: Client,
    deployment: str,
    rollout: Rollout,
    *,
    primary_route: str,
    version_label: str,
    started_at: int,
    at: int,
    baseline: dict[str, float] | None = None,
    project: str | None = None,
) -> Evidence:
    """The evidence of a rollout of ``version_label`` (``name/version``) on its route since
    ``started_at``."""
    frame = _log(client, deployment, started_at, project)
    mine = frame[(frame["route"] == rollout.route) & (frame["model_version"] == version_label)]
    primary = frame[frame["route"] == primary_route]
    if rollout.strategy == "canary" and len(mine):
        # the servers pick the route up at their next poll: count from its first answer
        primary = primary[primary["time"] >= int(mine["time"].min())]
    elif rollout.strategy == "shadow" and len(mine):
        first, last = int(mine["time"].min()), int(mine["time"].max())
        primary = primary[(primary["time"] >= first - 1000) & (primary["time"] <= last)]
    ev = Evidence(_stats(rollout.route, mine), _stats(primary_route, primary), 0.0)
    ev.elapsed_s = max(0.0, (at - started_at) / 1000)
    if rollout.strategy == "shadow":
        joined = primary[["prediction_id", "prediction"]].merge(
            mine[["prediction_id", "prediction"]], on="prediction_id", suffixes=("_p", "_c")
        )
        ev.compared = len(joined)
        if len(joined):
            same = [
                _same(a, b)
                for a, b in zip(joined["prediction_p"], joined["prediction_c"], strict=True)
            ]
            ev.agreement = sum(same) / len(same)
    criterion = rollout.criteria.accuracy
    if criterion is not None:
        table = client.read_ground_truth(project=project)
        labels: pd.DataFrame = table.select(["prediction_id", "label"]).to_pandas()
        if rollout.strategy == "shadow":  # paired: the same requests for both
            compared = set(mine["prediction_id"])
            primary = primary[primary["prediction_id"].isin(compared)]
        ev.challenger.labeled, ev.challenger.metric = _metric(mine, labels, criterion.metric)
        ev.primary.labeled, ev.primary.metric = _metric(primary, labels, criterion.metric)
    counted = _traffic(client, deployment, rollout.route, version_label, started_at, project)
    _errors(ev, rollout, version_label, baseline, counted)
    return ev


def _traffic(
    client: Client,
    deployment: str,
    route: str,
    version_label: str,
    started_at: int,
    project: str | None,
) -> tuple[int, int] | None:
    """The challenger's requests and failures (4xx and 5xx: a canary's refusals and errors fell
    back to the primary, a shadow's were dropped) in the traffic windows the serving processes
    stored since the rollout started, or None when there are none yet."""
    windows = [
        w
        for w in client.list_traffic_windows(
            deployment, start=started_at - 3_600_000, route=route, project=project
        )
        if w.model_version == version_label
        and w.window_start + w.window_seconds * 1000 > started_at
    ]
    if not windows:
        return None
    requests = sum(w.requests for w in windows)
    return requests, sum(w.client_errors + w.server_errors for w in windows)


def _errors(
    ev: Evidence,
    rollout: Rollout,
    version_label: str,
    baseline: dict[str, float] | None,
    traffic: tuple[int, int] | None = None,
) -> None:
    if traffic is not None and not rollout.servers:
        requests, errors = traffic
        ev.attempts = requests
        ev.error_source = "traffic"
        ev.error_rate = errors / requests if requests else None
        ev.error_significant = True
        return
    if rollout.servers:
        now = scrape(rollout.servers, rollout.route, version_label)
        base = baseline or {}
        failed = now["failed"] - base.get("failed", 0.0)
        answered = now["answered"] - base.get("answered", 0.0)
        if rollout.strategy == "shadow":
            answered = (now["agree"] + now["disagree"]) - (
                base.get("agree", 0.0) + base.get("disagree", 0.0)
            )
        attempts = max(failed + answered, 0.0)
        ev.attempts = int(attempts)
        ev.error_source = "metrics"
        ev.error_rate = failed / attempts if attempts else None
        ev.error_significant = True
        return
    # Estimate: the challenger should have answered `share` of the primary's requests (canary:
    # of all requests); its failures fell back to the primary (canary) or were not logged
    # (shadow). A shortfall beyond chance is counted as failures.
    w = rollout.share
    got = ev.challenger.requests
    if rollout.strategy == "canary":
        n = got + ev.primary.requests
    else:
        n = ev.primary.requests
    if n == 0:
        return
    expected = w * n
    ev.attempts = round(expected)
    ev.error_source = "log"
    ev.error_rate = max(0.0, 1 - got / expected) if expected else None
    sd = math.sqrt(n * w * (1 - w)) if w < 1 else 0.0
    shortfall = expected - got
    ev.error_significant = shortfall > _Z * sd + (0 if w < 1 else 0.5)


def judge(rollout: Rollout, ev: Evidence) -> Verdict:
    """Decide on the evidence: ``rollback`` as soon as a criterion fails for sure, ``promote``
    once the evidence is complete and every criterion passed, else ``wait`` (until
    ``max_duration``, then ``rollback``: the evidence never came)."""
    c = rollout.criteria
    checks: list[dict[str, Any]] = []
    if c.max_error_rate is not None and ev.error_rate is not None:
        ok = not (ev.error_rate > c.max_error_rate and ev.error_significant)
        checks.append(
            _check(
                "error_rate",
                ok,
                f"{ev.error_rate:.1%} of {ev.attempts} requests failed (max "
                f"{c.max_error_rate:.1%}, {_SOURCES[ev.error_source]})",
            )
        )
        if not ok and ev.attempts >= min(20, rollout.min_predictions):
            return Verdict(
                "rollback",
                f"the challenger's error rate is too high: {checks[-1]['message']}",
                checks,
            )
    enough = (
        ev.compared >= rollout.predictions
        if rollout.strategy == "shadow"
        else ev.elapsed_s >= rollout.duration
        and ev.challenger.predictions >= rollout.min_predictions
    )
    timed_out = ev.elapsed_s >= rollout.max_duration
    if not enough:
        got = (
            f"{ev.compared}/{rollout.predictions} predictions compared"
            if rollout.strategy == "shadow"
            else f"{ev.challenger.predictions}/{rollout.min_predictions} predictions in "
            f"{ev.elapsed_s:.0f}/{rollout.duration:.0f}s"
        )
        if timed_out:
            return Verdict(
                "rollback", f"not enough evidence after {rollout.max_duration:.0f}s: {got}", checks
            )
        return Verdict("wait", f"waiting for evidence: {got}", checks)
    p99c, p99p = ev.challenger.p99_ms, ev.primary.p99_ms
    if c.max_p99_latency_ms is not None and p99c is not None:
        checks.append(
            _check(
                "p99_latency",
                p99c <= c.max_p99_latency_ms,
                f"p99 {p99c:.1f} ms (max {c.max_p99_latency_ms:g} ms)",
            )
        )
    if c.max_p99_latency_ratio is not None and p99c is not None and p99p:
        ratio = p99c / p99p
        checks.append(
            _check(
                "p99_latency_ratio",
                ratio <= c.max_p99_latency_ratio,
                f"p99 {p99c:.1f} ms vs the primary's {p99p:.1f} ms ({ratio:.2f}x, "
                f"max {c.max_p99_latency_ratio:g}x)",
            )
        )
    if c.min_agreement is not None:
        agree = ev.agreement if ev.agreement is not None else 0.0
        checks.append(
            _check(
                "agreement",
                agree >= c.min_agreement,
                f"{agree:.1%} of {ev.compared} predictions agree with the primary "
                f"(min {c.min_agreement:.1%})",
            )
        )
    if c.accuracy is not None:
        a = c.accuracy
        lc, lp = ev.challenger.labeled, ev.primary.labeled
        if (
            min(lc, lp) < a.min_labeled
            or ev.challenger.metric is None
            or ev.primary.metric is None
        ):
            message = (
                f"labels: {lc} challenger / {lp} primary predictions labelled "
                f"(min {a.min_labeled})"
            )
            if not timed_out:
                failed = [x for x in checks if not x["passed"]]
                if failed:
                    return Verdict("rollback", _failed_reason(failed), checks)
                return Verdict("wait", f"waiting for labels: {message}", checks)
            checks.append(_check(a.metric, not a.required, message + " by max_duration"))
        else:
            mc, mp = ev.challenger.metric, ev.primary.metric
            worse = (mc - mp) if a.lower_is_better else (mp - mc)
            checks.append(
                _check(
                    a.metric,
                    worse <= a.max_drop + 1e-12,
                    f"{a.metric} {mc:.4f} vs the primary's {mp:.4f} on {lc}/{lp} labelled "
                    f"predictions (max drop {a.max_drop:g})",
                )
            )
    failed = [x for x in checks if not x["passed"]]
    if failed:
        return Verdict("rollback", _failed_reason(failed), checks)
    passed = "; ".join(x["message"] for x in checks) or "no criterion failed"
    return Verdict("promote", f"every criterion passed: {passed}", checks)


def _failed_reason(failed: list[dict[str, Any]]) -> str:
    return "criteria failed: " + "; ".join(f"{x['name']}: {x['message']}" for x in failed)


def _check(name: str, passed: bool, message: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "message": message}
