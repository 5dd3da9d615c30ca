"""The domain entities: frozen dataclasses with no I/O.

Stores return new entity objects on every call; an entity never changes after it is returned
(a later write produces a new object on the next read). Times are integer milliseconds since the
Unix epoch, as in most trackers, so they survive JSON and every database without rounding.
"""

from __future__ import annotations

import collections
import enum
import itertools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertState",
    "ArtifactInfo",
    "AuditEvent",
    "Dataset",
    "DatasetInput",
    "DatasetVersion",
    "Deployment",
    "Environment",
    "LabelSegment",
    "Lease",
    "Metric",
    "MetricHistory",
    "ModelVersion",
    "ModelVersionStatus",
    "Monitor",
    "MonitorResult",
    "Page",
    "Param",
    "PredictionSegment",
    "Project",
    "RegisteredModel",
    "Route",
    "RouteRole",
    "Run",
    "RunStatus",
    "Tag",
    "TrafficWindow",
    "WindowProfile",
    "now_ms",
    "runs_to_pandas",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class RunStatus(enum.StrEnum):
    """Where a run is in its life: running, then exactly one of finished, failed or killed."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended."""
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Project:
    """A namespace for runs (and later datasets and models), and the unit of permission."""

    project_id: str
    name: str
    description: str = ""
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric: a float ``value`` at ``step`` and ``timestamp`` (ms).

    ``value`` may be NaN or +/-inf; stores keep them faithfully.
    """

    key: str
    value: float
    step: int = 0
    timestamp: int = 0


_METRIC_SLOTS: tuple[Any, ...] = tuple(
    getattr(Metric, name) for name in ("key", "value", "step", "timestamp")
)


@dataclass(frozen=True, slots=True, eq=False)
class MetricHistory(Sequence[Metric]):
    """Every point of one metric, in order (step, then timestamp, then logging order).

    Columnar: ``steps`` and ``timestamps`` are read-only int64 numpy arrays and ``values`` a
    float64 one, ready to plot. It is also a sequence of :class:`Metric` (built on access), so
    ``for m in history`` and ``history[-1]`` work as with a list.
    """

    key: str
    steps: np.ndarray[Any, Any]
    timestamps: np.ndarray[Any, Any]
    values: np.ndarray[Any, Any]

    @classmethod
    def from_arrays(
        cls, key: str, steps: Any, timestamps: Any, values: Any, *, sort: bool = True
    ) -> MetricHistory:
        """Build a history from array-likes (in logging order); sorts stably unless told not to."""
        import numpy as np

        s = np.asarray(steps, dtype=np.int64)
        t = np.asarray(timestamps, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        if sort and len(s) > 1:
            ordered = bool(np.all((s[1:] > s[:-1]) | ((s[1:] == s[:-1]) & (t[1:] >= t[:-1]))))
            if not ordered:
                idx = np.lexsort((t, s))  # stable: equal (step, ts) keep logging order
                s, t, v = s[idx], t[idx], v[idx]
        for arr in (s, t, v):
            arr.flags.writeable = False
        return cls(key, s, t, v)

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> Metric: ...

    @overload
    def __getitem__(self, index: slice) -> list[Metric]: ...

    def __getitem__(self, index: int | slice) -> Metric | list[Metric]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Metric(
            self.key,
            float(self.values[index]),
            int(self.steps[index]),
            int(self.timestamps[index]),
        )

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.to_list())

    def to_list(self) -> list[Metric]:
        """Every point as a :class:`Metric` (``list(history)`` does the same)."""
        n = len(self.steps)
        # 10^5 points: calling the frozen dataclass's __init__ per point costs ~2 us each. Making
        # the objects and filling each slot column by column with C-level map() calls over the
        # slot descriptors costs a third of that; the objects are the same frozen Metrics.
        points: list[Metric] = list(map(object.__new__, itertools.repeat(Metric, n)))
        fill = collections.deque[None](maxlen=0).extend
        fill(map(_METRIC_SLOTS[0].__set__, points, itertools.repeat(self.key, n)))
        fill(map(_METRIC_SLOTS[1].__set__, points, self.values.tolist()))
        fill(map(_METRIC_SLOTS[2].__set__, points, self.steps.tolist()))
        fill(map(_METRIC_SLOTS[3].__set__, points, self.timestamps.tolist()))
        return points

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(
            isinstance(b, Metric)
            and a.key == b.key
            and a.step == b.step
            and a.timestamp == b.timestamp
            and (a.value == b.value or (math.isnan(a.value) and math.isnan(b.value)))
            for a, b in zip(self, other, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MetricHistory(key={self.key!r}, points={len(self)})"

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with columns step, timestamp, value (needs pandas)."""
        from loopml._lazy import require

        pandas = require("pandas", "pandas", "MetricHistory.to_pandas()")
        frame: pd.DataFrame = pandas.DataFrame(
            {"step": self.steps, "timestamp": self.timestamps, "value": self.values}
        )
        return frame


@dataclass(frozen=True, slots=True)
class Param:
    """A run input, logged once. Values are stored as strings."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Tag:
    """A mutable label on a run. Keys starting with ``loopml.`` are reserved for loopml."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """A file logged to a run: its path inside the run, its sha256 (the blob address), its size."""

    path: str
    sha256: str
    size: int
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Environment:
    """Where a run ran: code version, interpreter, platform, installed packages, command, seed."""

    python_version: str = ""
    platform: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    command: tuple[str, ...] = ()
    packages: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the form stores keep)."""
        return {
            "python_version": self.python_version,
            "platform": self.platform,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "command": list(self.command),
            "packages": dict(sorted(self.packages.items())),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        """Rebuild an environment from :meth:`to_dict` output."""
        return cls(
            python_version=str(data.get("python_version", "")),
            platform=str(data.get("platform", "")),
            git_commit=data.get("git_commit"),
            git_dirty=data.get("git_dirty"),
            command=tuple(data.get("command", ())),
            packages=MappingProxyType(dict(data.get("packages", {}))),
            seed=data.get("seed"),
        )


@dataclass(frozen=True, slots=True)
class Run:
    """One execution: a training job, a tuning trial, a pipeline step, an evaluation.

    ``metrics`` holds the latest value of each metric (the point with the highest step, then the
    latest timestamp); the full series is ``Store.get_metric_history``.
    """

    run_id: str
    project_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    user: str = ""
    heartbeat_at: int | None = None
    params: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    metrics: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    environment_id: str | None = None

    @property
    def duration_ms(self) -> int | None:
        """Wall time from start to end, or None while running."""
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results and the token for the next (None on the last page)."""

    items: tuple[Run, ...]
    next_page_token: str | None = None

    def __iter__(self) -> Iterator[Run]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Run:
        return self.items[index]

    def to_pandas(self) -> pd.DataFrame:
        """The runs as a DataFrame: attributes, then ``params.*``, ``metrics.*``, ``tags.*``."""
        return runs_to_pandas(self.items)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named dataset of a project; its content lives in immutable :class:`DatasetVersion` s.

    ``latest_version`` is the highest version number (0 when there is none) and
    ``num_versions`` how many versions there are.
    """

    id: str
    project_id: str
    name: str
    description: str = ""
    created_at: int = 0
    latest_version: int = 0
    num_versions: int = 0


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a dataset, addressed by the hash of its content.

    ``version`` numbers 1, 2, 3... per dataset in the order versions were logged. ``digest`` is
    the content hash the data layer computes (the same rows and columns give the same digest,
    whatever the file layout), ``blob`` the sha256 of the stored Parquet file in the artifact
    store and ``profile_blob`` that of its profile (JSON), when there is one. ``schema`` is the
    data contract as a JSON-ready dict; ``metadata`` says how the version was made (e.g. how a
    split was drawn). ``run_id`` is the run that logged it (None once that run is deleted).
    ``schema`` and ``metadata`` are fresh dicts on every read: treat them as read-only.
    """

    id: str
    dataset_id: str
    project_id: str
    name: str
    version: int
    digest: str
    blob: str
    size_bytes: int = 0
    num_rows: int = 0
    num_columns: int = 0
    schema: dict[str, Any] | None = None
    profile_blob: str | None = None
    source: str = ""
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0

    @property
    def uri(self) -> str:
        """The URI naming this version: ``datasets:/<name>/<version>``."""
        return f"datasets:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset version a run used, and in which role (``train``, ``test``, ``reference``...).

    Returned both by ``Store.get_run_inputs`` (what a run read) and
    ``Store.get_dataset_version_runs`` (which runs read a version): lineage both ways.
    """

    run_id: str
    dataset_version: DatasetVersion
    role: str
    created_at: int = 0


def runs_to_pandas(runs: Sequence[Run]) -> pd.DataFrame:
    """Runs as a DataFrame, one row per run (needs pandas)."""
    from loopml._lazy import require

    pandas = require("pandas", "pandas", "a DataFrame of runs")
    columns: dict[str, Any] = {
        "run_id": [r.run_id for r in runs],
        "name": [r.name for r in runs],
        "status": [r.status.value for r in runs],
        "start_time": pandas.to_datetime([r.start_time for r in runs], unit="ms", utc=True),
        "end_time": pandas.to_datetime([r.end_time for r in runs], unit="ms", utc=True),
        "duration_s": [None if r.duration_ms is None else r.duration_ms / 1000 for r in runs],
        "parent_run_id": [r.parent_run_id for r in runs],
        "user": [r.user for r in runs],
        "project_id": [r.project_id for r in runs],
    }
    for prefix in ("params", "metrics", "tags"):
        maps: list[Mapping[str, Any]] = [getattr(r, prefix) for r in runs]
        for key in sorted({k for m in maps for k in m}):
            columns[f"{prefix}.{key}"] = [m.get(key) for m in maps]
    frame: pd.DataFrame = pandas.DataFrame(columns)
    return frame


class ModelVersionStatus(enum.StrEnum):
    """Whether a model version may be used: ``ready`` (the default) or ``archived`` (kept for the
    record; ``models:/NAME/latest`` skips it)."""

    READY = "ready"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model of a project; its content lives in immutable :class:`ModelVersion` s.

    ``aliases`` maps each alias (``champion``, ``challenger``...) to the version it points at,
    ``latest_version`` is the highest version number (0 when there is none). ``updated_at``
    changes with the model, its versions and its aliases.
    """

    project_id: str
    name: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    aliases: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    latest_version: int = 0
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, auto-numbered version of a registered model.

    ``source`` is where the model files are (an artifact URI such as ``runs:/<run_id>/model``),
    ``manifest_digest`` the sha256 of its manifest file (loading checks it), ``run_id`` the run
    that trained it (None once that run is deleted), ``signature`` its input and output schema
    and ``gate_result`` the outcome of its latest release gate (JSON-ready dicts, fresh on
    every read: treat them as read-only). ``description``, ``tags`` and ``status`` may change;
    the rest never does. ``aliases`` are the aliases pointing at it, sorted.
    """

    project_id: str
    name: str
    version: int
    source: str
    run_id: str | None = None
    flavor: str = ""
    signature: Mapping[str, Any] | None = None
    manifest_digest: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    status: ModelVersionStatus = ModelVersionStatus.READY
    aliases: tuple[str, ...] = ()
    gate_result: Mapping[str, Any] | None = None
    created_at: int = 0
    created_by: str = ""

    @property
    def uri(self) -> str:
        """The URI naming this version: ``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which object, when, and why: one entry of the audit trail.

    ``action`` names the change (``alias.set``, ``model_version.create``...), ``object_type``
    and ``object_name`` the object (``alias`` / ``churn@champion``, ``model_version`` /
    ``churn/3``), ``details`` the facts of the change (a JSON-ready dict, fresh on every read),
    and ``origin`` where the call came from (``local``, or a client address behind a server).
    Events are never changed or deleted, and outlive the objects they name.
    """

    id: str
    project_id: str
    timestamp: int
    actor: str
    action: str
    object_type: str
    object_name: str
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    origin: str = "local"


class RouteRole(enum.StrEnum):
    """What a route of a deployment does with requests: ``primary`` answers what the canaries
    leave, ``canary`` answers a share of live traffic, ``shadow`` gets a copy of a share of the
    traffic and its answers are logged, never returned."""

    PRIMARY = "primary"
    CANARY = "canary"
    SHADOW = "shadow"


# The default of Route.weight: a private NaN object, told apart from a NaN the caller passes by
# identity, so that a shadow route without a weight mirrors everything (1.0) while an explicit
# NaN still reaches the store's validation and is refused there.
_ROLE_DEFAULT_WEIGHT = float("nan")


@dataclass(frozen=True, slots=True)
class Route:
    """One route of a :class:`Deployment`: a model (by ``models:/`` URI) in a role.

    ``weight`` depends on the role: a ``primary`` route ignores it (it gets the traffic the
    canaries leave; stored as 0.0), a ``canary`` answers that share of live traffic (in [0, 1],
    default 0.0), a ``shadow`` is sent a copy of that share (default 1.0, all of it). ``role``
    may be given as its string (``"canary"``). Stores validate routes (names, URI, weights).
    """

    name: str
    model_uri: str
    role: RouteRole
    weight: float = _ROLE_DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        role: object = self.role  # a string is accepted for convenience; stores check the rest
        if isinstance(role, str) and not isinstance(role, RouteRole):
            if role in RouteRole._value2member_map_:
                object.__setattr__(self, "role", RouteRole(role))
        if self.weight is _ROLE_DEFAULT_WEIGHT:
            object.__setattr__(self, "weight", 1.0 if self.role == RouteRole.SHADOW else 0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``name``, ``model_uri``, ``role`` (its string), ``weight``."""
        return {
            "name": self.name,
            "model_uri": self.model_uri,
            "role": str(self.role),
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class Deployment:
    """A named endpoint of a project serving models through its :class:`Route` s: exactly one
    ``primary``, any number of ``canary`` and ``shadow`` routes (at most 16 in all).

    ``sticky_key`` names the request field or header whose value pins a caller to one route
    (None: each request is routed on its own). ``config`` holds the server's settings
    (batching, limits), a JSON-ready dict, fresh on every read: treat it as read-only.
    ``revision`` is 1 when created and grows by one with every update; pass it back as
    ``expected_revision`` to update only if nobody changed the deployment meanwhile.
    """

    project_id: str
    name: str
    routes: tuple[Route, ...]
    sticky_key: str | None = None
    description: str = ""
    config: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    revision: int = 1
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""
    updated_by: str = ""

    @property
    def primary(self) -> Route:
        """The ``primary`` route (stores guarantee there is exactly one)."""
        for route in self.routes:
            if route.role == RouteRole.PRIMARY:
                return route
        raise LookupError(f"deployment {self.name!r} has no primary route")

    @property
    def canaries(self) -> tuple[Route, ...]:
        """The ``canary`` routes, in the order given."""
        return tuple(r for r in self.routes if r.role == RouteRole.CANARY)

    @property
    def shadows(self) -> tuple[Route, ...]:
        """The ``shadow`` routes, in the order given."""
        return tuple(r for r in self.routes if r.role == RouteRole.SHADOW)

    def route(self, name: str) -> Route:
        """The route called ``name``.

        Raises:
            KeyError: the deployment has no such route (the message lists those it has).
        """
        for route in self.routes:
            if route.name == name:
                return route
        known = ", ".join(repr(r.name) for r in self.routes)
        raise KeyError(f"deployment {self.name!r} has no route {name!r}; its routes are {known}")


@dataclass(frozen=True, slots=True)
class PredictionSegment:
    """One Parquet file of logged predictions of a deployment, kept in the artifact store.

    The store indexes segments by time so that a monitor finds the files of a window without
    listing the artifact store: ``start_time`` and ``end_time`` (ms) are the earliest and latest
    prediction in the file, ``uri`` where it is (as the writer gave it), ``digest`` the sha256
    of the file, ``routes`` and ``model_versions`` (``"churn/3"``) which of them it holds.
    Segments are immutable and outlive their deployment.
    """

    id: str
    project_id: str
    deployment: str
    start_time: int
    end_time: int
    rows: int
    uri: str
    digest: str = ""
    size_bytes: int = 0
    routes: tuple[str, ...] = ()
    model_versions: tuple[str, ...] = ()
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class WindowProfile:
    """A mergeable profile of the inputs and outputs one route of a deployment saw in one time
    window: the sketches drift and data-quality monitors compare with a reference.

    ``window_start`` (ms) is aligned to ``window_seconds``; ``model_version`` is like
    ``"churn/3"``; ``profile`` is the profile's JSON form (the store does not look inside it),
    fresh on every read: treat it as read-only. Profiles are append-only and outlive their
    deployment; several fragments of one window (from several servers) merge on read.
    """

    id: str
    project_id: str
    deployment: str
    route: str
    model_version: str
    window_start: int
    window_seconds: int
    rows: int
    profile: Mapping[str, Any]
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class TrafficWindow:
    """How many requests one server process answered for one route of a deployment in one
    time window, and how many of them failed: what the deployment page charts as traffic and
    error rate.

    ``window_start`` (ms) is aligned to ``window_seconds``; ``route`` and ``model_version``
    (``"churn/3"``) are empty for requests refused before a route was chosen (a body that is
    not JSON, too large...). ``requests`` counts every answer, ``client_errors`` those with a
    4xx status and ``server_errors`` those with a 5xx status (a model that raised, an
    overloaded queue). Windows are append-only and outlive their deployment; the fragments of
    one window and route (one per server process) add up on read.
    """

    id: str
    project_id: str
    deployment: str
    route: str
    model_version: str
    window_start: int
    window_seconds: int
    requests: int
    client_errors: int = 0
    server_errors: int = 0
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Monitor:
    """What to watch and how: a named monitor of a project.

    ``spec`` is the monitor's definition in its JSON form (see
    :class:`loopml.monitoring.MonitorSpec`: the deployment or dataset it watches, the reference,
    the windows, the checks and thresholds, the alert rules and notifiers); the store keeps it
    as given, fresh on every read: treat it as read-only. ``revision`` grows by one with every
    update; pass it back as ``expected_revision`` to update only if nobody changed it meanwhile.
    """

    project_id: str
    name: str
    spec: Mapping[str, Any]
    description: str = ""
    enabled: bool = True
    revision: int = 1
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """What one evaluation of a monitor found in one window: a point of its time series.

    ``metrics`` holds the numbers alert rules and charts use, by name (``rows``,
    ``drift_share``, ``drift.<column>``, ``prediction_drift``, ``accuracy``,
    ``latency_p99_ms``, ``null_share.<column>``, ...); ``details`` the full result (per-column
    tests, quality findings, notes), JSON-ready. Windows are ``[window_start, window_end)`` in
    ms. A monitor has one result per window: storing another for the same window replaces it
    (labels that arrive late update the performance of windows already evaluated).
    """

    id: str
    project_id: str
    monitor: str
    window_start: int
    window_end: int
    metrics: Mapping[str, float]
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    status: str = "ok"
    created_at: int = 0


class AlertState(enum.StrEnum):
    """An alert is ``firing`` while its rule's condition holds, then ``resolved``."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence of an alert rule of a monitor, from the window it fired in until the
    condition cleared. At most one alert per (monitor, rule) is ``firing`` at a time: later
    windows that still breach update it (``occurrences``, ``value``, ``last_seen_at``) rather
    than open another (deduplication).

    ``severity`` is ``info``, ``warning`` or ``critical``; ``value`` and ``threshold`` are the
    rule's metric and bound in the window that last breached; ``notified_at`` is when its last
    notification went out (None: never), which the rule's cooldown counts from.
    """

    id: str
    project_id: str
    monitor: str
    rule: str
    severity: str
    state: AlertState
    message: str
    value: float | None = None
    threshold: float | None = None
    window_start: int = 0
    window_end: int = 0
    started_at: int = 0
    last_seen_at: int = 0
    resolved_at: int | None = None
    notified_at: int | None = None
    occurrences: int = 1
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One attempt to deliver an alert's notification: which notifier (its name and kind:
    ``webhook``, ``slack``, ``email``, ``log``), for which event (``firing`` or
    ``resolved``), the attempt number, whether it went through, and what the other side said
    (``HTTP 200``, an SMTP reply, the error)."""

    id: str
    project_id: str
    alert_id: str
    notifier: str
    kind: str
    event: str
    attempt: int
    ok: bool
    status: str = ""
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class LabelSegment:
    """One Parquet file of ground truth (``prediction_id``, ``label``, ``time``) in the artifact
    store, as :func:`loopml.log_ground_truth` wrote it, indexed so that monitors find the
    labels that arrived since a time without listing the artifact store. ``deployment`` is the
    deployment the labels belong to ("" when not given: they join by prediction id alone).
    Segments are immutable."""

    id: str
    project_id: str
    deployment: str
    rows: int
    uri: str
    digest: str = ""
    size_bytes: int = 0
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease: at most one ``holder`` at a time, until ``expires_at`` (for leader
    election among server replicas). Times are milliseconds since the epoch on the store's
    clock (the database server's on PostgreSQL), so that holders with skewed clocks agree.
    ``acquired_at`` is when the holder took the lease; renewing it moves only ``expires_at``."""

    name: str
    holder: str
    acquired_at: int
    expires_at: int
