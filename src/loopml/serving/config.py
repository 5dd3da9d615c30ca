"""What a server serves and how: an endpoint's routes (from a model URI, a stored deployment or
a YAML file) and the server's settings (batching, limits, the prediction log).

A deployment file::

    name: churn
    routes:
      - {name: primary, model: "models:/churn@champion"}
      - {name: canary, model: "models:/churn@challenger", role: canary, weight: 0.1}
      - {name: shadow, model: "models:/churn/4", role: shadow}
    sticky_key: customer_id        # optional: pins a caller to one route
    server:                        # optional; kept with the deployment in the store
      batching: {enabled: true, max_rows: 512, max_wait_ms: 0}
      max_body_mb: 16
      prediction_log: {enabled: true, flush_seconds: 5, window_seconds: 300}
      traffic_seconds: 60          # request and error counts per minute, kept in the store
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loopml.entities import Route, RouteRole
from loopml.errors import InvalidArgument
from loopml.serving.batcher import BatchPolicy

__all__ = ["DeploymentFile", "ServerSettings", "load_deployment_file"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingSettings(_Strict):
    """Micro-batching (see :class:`~loopml.serving.batcher.BatchPolicy`)."""

    enabled: bool = True
    max_rows: int = Field(default=512, ge=1, le=1_000_000)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    max_queue: int = Field(default=2048, ge=1, le=10_000_000)
    timeout_s: float = Field(default=10.0, gt=0, le=3600)

    def policy(self) -> BatchPolicy:
        """As a :class:`BatchPolicy`."""
        return BatchPolicy(
            enabled=self.enabled,
            max_rows=self.max_rows,
            max_wait=self.max_wait_ms / 1000,
            max_queue=self.max_queue,
            timeout=self.timeout_s,
        )


class PredictionLogSettings(_Strict):
    """The prediction log (see :class:`~loopml.serving.prediction_log.PredictionLogger`)."""

    enabled: bool = True
    flush_seconds: float = Field(default=5.0, gt=0, le=3600)
    flush_rows: int = Field(default=20_000, ge=1)
    max_pending_rows: int = Field(default=200_000, ge=1)
    # at most an hour: longer spans are the monitors' daily roll-ups (loopml.monitoring.rollups)
    window_seconds: int = Field(default=300, ge=1, le=3600)
    profiles: bool = True
    process: bool = True
    # Outlier flags stored with each prediction: inputs outside the training data's range or
    # unseen categories ("range"), also an isolation forest's verdict, or none.
    outliers: Literal["off", "range", "isolation_forest"] = "range"


class ServerSettings(_Strict):
    """How the server runs an endpoint.

    Attributes:
        batching: micro-batching across concurrent requests.
        prediction_log: recording every prediction for monitoring.
        max_body_mb: the largest request body (bigger ones get 413).
        poll_seconds: how often the server checks the store for a moved alias or a changed
            deployment.
        drain_seconds: how long a switched-out model version may finish its queued requests.
        access_log: one JSON line per request on stderr.
        traffic_seconds: the window of the request and error counts kept in the store (the
            deployment page's traffic and error charts); 0 keeps none.
        trusted: load models whose loading runs code (pickle...); see ``load_model``.
    """

    batching: BatchingSettings = BatchingSettings()
    prediction_log: PredictionLogSettings = PredictionLogSettings()
    max_body_mb: float = Field(default=16.0, gt=0, le=4096)
    poll_seconds: float = Field(default=2.0, ge=0.05, le=3600)
    drain_seconds: float = Field(default=30.0, ge=0, le=3600)
    access_log: bool = True
    traffic_seconds: int = Field(default=60, ge=0, le=3600)
    trusted: bool = False

    @classmethod
    def parse(
        cls, data: Mapping[str, Any] | None, what: str = "server settings"
    ) -> ServerSettings:
        """Validate a dict of settings.

        Raises:
            InvalidArgument: an unknown key or a bad value, named.
        """
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            raise InvalidArgument(f"invalid {what}: {_explain(exc)}") from None

    def merged(self, overrides: Mapping[str, Any]) -> ServerSettings:
        """These settings with ``overrides`` (nested dicts merge key by key)."""
        return ServerSettings.parse(_deep_merge(self.model_dump(), overrides))


class RouteFile(_Strict):
    """One route in a deployment file."""

    name: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1)
    role: Literal["primary", "canary", "shadow"] = "primary"
    weight: float | None = Field(default=None, ge=0, le=1)

    def route(self) -> Route:
        """As a :class:`~loopml.entities.Route`."""
        if self.weight is None:
            return Route(self.name, self.model, RouteRole(self.role))
        return Route(self.name, self.model, RouteRole(self.role), self.weight)


class DeploymentFile(_Strict):
    """A deployment file's content."""

    name: str = Field(min_length=1, max_length=256)
    project: str | None = None
    description: str = ""
    routes: list[RouteFile] = Field(min_length=1, max_length=16)
    sticky_key: str | None = None
    server: dict[str, Any] = Field(default_factory=dict)

    def routes_(self) -> tuple[Route, ...]:
        """The routes as entities."""
        return tuple(r.route() for r in self.routes)


def load_deployment_file(path: str | Path) -> DeploymentFile:
    """Read and check a deployment YAML file.

    Raises:
        InvalidArgument: the file is missing, not YAML, or not a valid deployment (every
            problem named with its place in the file).
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read the deployment file {str(p)!r}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{p.name} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{p.name} must hold a mapping with 'name' and 'routes'")
    try:
        parsed = DeploymentFile.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgument(f"{p.name} is not a valid deployment: {_explain(exc)}") from None
    ServerSettings.parse(parsed.server, f"'server' settings in {p.name}")
    return parsed


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        where = ".".join(str(x) for x in err["loc"]) or "(top)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
