"""Prometheus metrics of a serving endpoint (``GET /metrics``).

Per route and model version: requests by protocol and status, latency, batch sizes, model
errors and canary fallbacks, shadow agreement; per endpoint: prediction-log rows served,
logged and dropped, model switches, queue depth. With several worker processes the values are
summed across them (prometheus_client's multiprocess mode, set up by the server).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.serving.prediction_log import LogCounts
    from loopml.serving.traffic import TrafficCounter

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_ROUTE = ("deployment", "route", "model_version")


class ServingMetrics:
    """The endpoint's metrics, with label children cached (a request costs two dict lookups).

    Args:
        deployment: the endpoint's name (a label on every series).
        traffic: also counts every answer per route and window, for the store (see
            :mod:`loopml.serving.traffic`).
    """

    def __init__(self, deployment: str, traffic: TrafficCounter | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.deployment = deployment
        self.traffic = traffic
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._requests = Counter(
            "loopml_requests",
            "Prediction requests answered, by route, protocol and status.",
            [*_ROUTE, "protocol", "status"],
            registry=reg,
        )
        self._latency = Histogram(
            "loopml_request_duration_seconds",
            "Time from request to answer, by route.",
            _ROUTE,
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self._batch = Histogram(
            "loopml_batch_rows",
            "Rows per model call (micro-batching), by route.",
            _ROUTE,
            buckets=_BATCH_BUCKETS,
            registry=reg,
        )
        self._errors = Counter(
            "loopml_route_errors",
            "Failures of a route: model errors, refused input on a "
            "canary or shadow, canary fallbacks to the primary.",
            [*_ROUTE, "kind"],
            registry=reg,
        )
        self._shadow = Counter(
            "loopml_shadow_comparisons",
            "Shadow answers compared with the primary's.",
            [*_ROUTE, "result"],
            registry=reg,
        )
        self._log = Counter(
            "loopml_prediction_log_rows",
            "Predictions seen by the prediction log: served = logged + dropped (+ pending).",
            ["deployment", "state"],
            registry=reg,
        )
        self._switches = Counter(
            "loopml_model_switches",
            "Model versions switched in on a route.",
            _ROUTE,
            registry=reg,
        )
        self._load_failures = Counter(
            "loopml_model_load_failures",
            "Model versions that failed to load (the route kept serving the version it had).",
            ["deployment", "route"],
            registry=reg,
        )
        self._rejected = Counter(
            "loopml_rejected_requests",
            "Requests refused before a route was chosen, by status.",
            ["deployment", "protocol", "status"],
            registry=reg,
        )
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self._queue = Gauge(
            "loopml_queue_depth",
            "Requests waiting or running, by route.",
            _ROUTE,
            registry=reg,
            **gauge_mode,
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._log_seen = {"served": 0, "logged": 0, "dropped": 0}

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(
        self, route: str, version: str, protocol: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and its latency."""
        d = self.deployment
        self._child(self._requests, (d, route, version, protocol, str(status))).inc()
        self._child(self._latency, (d, route, version)).observe(seconds)
        if self.traffic is not None:
            self.traffic.count(route, version, status)

    def rejected(self, protocol: str, status: int) -> None:
        """Count a request refused before a route was chosen (bad body, too large...)."""
        self._child(self._rejected, (self.deployment, protocol, str(status))).inc()
        if self.traffic is not None:
            self.traffic.count("", "", status)

    def batch(self, route: str, version: str, rows: int) -> None:
        """Record one model call's batch size."""
        self._child(self._batch, (self.deployment, route, version)).observe(rows)

    def route_error(self, route: str, version: str, kind: str) -> None:
        """Count a route failure (``model_error``, ``refused_input``, ``fallback``)."""
        self._child(self._errors, (self.deployment, route, version, kind)).inc()

    def fallback(self, route: str, version: str, refused: bool) -> None:
        """Count a canary's failure (its model raised, or it ``refused`` the input) that
        handed the request to the primary."""
        self.route_error(route, version, "refused_input" if refused else "model_error")
        self.route_error(route, version, "fallback")
        if self.traffic is not None:
            self.traffic.count(route, version, 400 if refused else 500)

    def shadow(self, route: str, version: str, result: str, status: int | None = None) -> None:
        """Count a shadow comparison (``agree``, ``disagree``, ``error``); the shadow's
        request counts in the traffic windows with ``status`` (default: 500 for an error,
        else 200)."""
        self._child(self._shadow, (self.deployment, route, version, result)).inc()
        if self.traffic is not None:
            self.traffic.count(route, version, status or (500 if result == "error" else 200))

    def switched(self, route: str, version: str) -> None:
        """Count a model version switched in."""
        self._child(self._switches, (self.deployment, route, version)).inc()

    def load_failed(self, route: str) -> None:
        """Count a model version that failed to load."""
        self._child(self._load_failures, (self.deployment, route)).inc()

    def queue(self, route: str, version: str, depth: int) -> None:
        """Set a route's queue depth."""
        self._child(self._queue, (self.deployment, route, version)).set(depth)

    def log_counts(self, counts: LogCounts) -> None:
        """Publish the prediction log's counters (called after each flush)."""
        for state in ("served", "logged", "dropped"):
            value = getattr(counts, state)
            delta = value - self._log_seen[state]
            if delta > 0:
                self._child(self._log, (self.deployment, state)).inc(delta)
                self._log_seen[state] = value

    def render(self) -> bytes:
        """The exposition text (summed over worker processes in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
