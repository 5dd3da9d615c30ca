"""Projects and runs: a run's status, params, metrics (and their history), tags,
artifacts and environment, a page of results, and runs as a pandas frame."""

from __future__ import annotations

import collections
import enum
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, overload

from loopml.entities._common import _EMPTY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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
