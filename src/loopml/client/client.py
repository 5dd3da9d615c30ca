"""The :class:`Client`: everything loopml tracks, explicitly, by run id.

One object composes a metadata :class:`~loopml.store.Store` and a content-addressed
:class:`~loopml.store.artifacts.ArtifactStore`, plus the metric buffer in front of the store.
The fluent API (``loopml.start_run()``) is a thin layer over it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.client import environment as _environment
from loopml.client.buffer import MetricBuffer
from loopml.client.compare import RunComparison
from loopml.client.datasets import DatasetMethods
from loopml.client.deployments import DeploymentMethods
from loopml.client.monitors import MonitorMethods
from loopml.client.registry import RegistryMethods
from loopml.config import Settings, get_settings
from loopml.entities import (
    ArtifactInfo,
    Environment,
    Metric,
    MetricHistory,
    Page,
    Param,
    Project,
    Run,
    RunStatus,
    Tag,
    now_ms,
)
from loopml.errors import InvalidArgument, StoreError
from loopml.store import normalize_store_uri, open_artifact_store, open_store
from loopml.store.base import Store
from loopml.store.paths import confined_join, normalize_artifact_path
from loopml.store.validation import check_int, check_key, check_metric_value, check_run_id

if TYPE_CHECKING:
    from loopml.store.artifacts import ArtifactStore

__all__ = ["Client"]

log = logging.getLogger("loopml")
_STALE_CHECK_EVERY = 60.0  # seconds between "mark dead runs failed" sweeps of one client


def _param_value(value: object) -> str:
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, (list, dict, tuple))
        else str(value)
    )


class Client(DatasetMethods, RegistryMethods, DeploymentMethods, MonitorMethods):
    """Track projects, runs, params, metrics, tags and artifacts against one store; the dataset,
    model-registry, deployment and monitoring methods come from
    :class:`~loopml.client.datasets.DatasetMethods`,
    :class:`~loopml.client.registry.RegistryMethods`,
    :class:`~loopml.client.deployments.DeploymentMethods` and
    :class:`~loopml.client.monitors.MonitorMethods`.

    Args:
        tracking_uri: the metadata store: a folder, ``sqlite:///file.db``,
            ``postgresql://user@host/db`` or ``memory://``. Default: ``LOOPML_TRACKING_URI``,
            else the ``.loopml/`` folder found upward from the working directory.
        artifact_uri: a folder or fsspec URL (``s3://bucket/prefix``). Default:
            ``LOOPML_ARTIFACT_URI``, else ``artifacts/`` beside a local store.
        store: use this store object instead of opening ``tracking_uri``.
        artifacts: use this artifact store instead of opening ``artifact_uri``.
        settings: settings to use instead of the environment's.

    Example:
        >>> client = loopml.Client("memory://")
        >>> run = client.create_run("demo", params={"lr": 0.1})
        >>> client.log_metric(run.run_id, "loss", 0.25, step=1)
        >>> client.end_run(run.run_id)
        >>> client.get_run(run.run_id).metrics["loss"]
        0.25
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
        *,
        store: Store | None = None,
        artifacts: ArtifactStore | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self._tracking_uri = normalize_store_uri(
            tracking_uri or self.settings.resolved_tracking_uri()
        )
        self._artifact_uri = artifact_uri
        self._store = store
        self._artifacts = artifacts
        self._buffer: MetricBuffer | None = None
        self._lock = threading.Lock()
        self._projects: dict[str, str] = {}  # name -> id
        self._steps: dict[tuple[str, str], int] = {}  # (run, key) -> next automatic step
        self._step_lock = threading.Lock()
        self._last_stale_check = 0.0

    # --- wiring ----------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The metadata store (opened on first use)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(
                        self._tracking_uri,
                        busy_timeout=self.settings.sqlite_busy_timeout,
                        synchronous=self.settings.sqlite_synchronous,
                    )
        return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store (opened on first use)."""
        if self._artifacts is None:
            with self._lock:
                if self._artifacts is None:
                    self._artifacts = open_artifact_store(self.artifact_uri)
        return self._artifacts

    @property
    def tracking_uri(self) -> str:
        """The metadata store URI."""
        return self._store.uri if self._store is not None else self._tracking_uri

    @property
    def artifact_uri(self) -> str:
        """The artifact store URI: explicit, else ``LOOPML_ARTIFACT_URI``, else beside the DB."""
        if self._artifact_uri:
            return self._artifact_uri
        if self.settings.artifact_uri:
            return self.settings.artifact_uri
        uri = self._tracking_uri
        if uri.startswith(("http://", "https://")):  # the server's artifacts, through it
            return uri
        if uri.startswith("sqlite:///"):
            return str(Path(uri[len("sqlite:///") :]).parent / "artifacts")
        if uri == "memory://":  # nothing of an in-memory store should land on disk
            return f"memory://loopml-artifacts-{id(self):x}"
        return self.settings.resolved_artifact_uri()

    @property
    def buffer(self) -> MetricBuffer:
        """The metric buffer in front of the store."""
        if self._buffer is None:
            store = self.store  # opened outside the lock: opening takes it too
            with self._lock:
                if self._buffer is None:
                    self._buffer = MetricBuffer(
                        store,
                        flush_interval=self.settings.flush_interval,
                        max_points=self.settings.buffer_max_points,
                        heartbeat_interval=self.settings.heartbeat_interval,
                    )
        return self._buffer

    def flush(self, run_id: str | None = None) -> None:
        """Write buffered metrics (of one run, or all) and return once they are committed."""
        if self._buffer is not None:
            self._buffer.flush(run_id)

    def close(self) -> None:
        """Flush, stop the background thread and release the store."""
        if self._buffer is not None:
            self._buffer.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(tracking_uri={self.tracking_uri!r})"

    # --- projects --------------------------------------------------------------------------------

    def create_project(self, name: str, description: str = "") -> Project:
        """Create a project (:class:`~loopml.errors.AlreadyExists` if the name is taken)."""
        return self.store.create_project(name, description)

    def get_project(self, name: str) -> Project:
        """A project by name or id."""
        return self.store.get_project(name)

    def list_projects(self) -> list[Project]:
        """All projects, by name."""
        return self.store.list_projects()

    def _known_project_id(self, name: str) -> str:
        """The id of an existing project (ids never change, so they are cached)."""
        return self._cached_project_id(name, self.store.get_project)

    def project_id(self, project: str | None = None) -> str:
        """The id of a project by name, created when missing (default: ``LOOPML_PROJECT``)."""
        return self._project_id(project)

    def _project_id(self, name: str | None) -> str:
        """The id of a project, created when missing (default: ``LOOPML_PROJECT``)."""
        return self._cached_project_id(
            name or self.settings.project, self.store.get_or_create_project
        )

    def _cached_project_id(self, name: str, lookup: Callable[[str], Project]) -> str:
        pid = self._projects.get(name)
        if pid is None:
            pid = lookup(name).project_id
            self._projects[name] = pid
        return pid

    # --- runs ------------------------------------------------------------------------------------

    def create_run(
        self,
        project: str | None = None,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        capture_environment: bool = True,
        heartbeat: bool = True,
    ) -> Run:
        """Start a run in ``project`` (created when missing; default ``LOOPML_PROJECT``).

        Args:
            project: project name.
            name: run name (a readable one is generated when None).
            parent_run_id: the parent of a nested run.
            tags: first tags (values become strings). params: first params (likewise).
            capture_environment: record git state, Python, platform, packages and seed.
            heartbeat: send heartbeats while this client lives, so that a later reader can tell
                a dead run from a long one.
        """
        env: Environment | None = None
        if capture_environment:
            env = _environment.capture_environment(packages=self.settings.capture_packages)
        run = self.store.create_run(
            self._project_id(project),
            name=name,
            parent_run_id=parent_run_id,
            user=self.settings.user,
            tags={k: str(v) for k, v in (tags or {}).items()},
            params={k: _param_value(v) for k, v in (params or {}).items()},
            environment=env,
        )
        if heartbeat:
            self.buffer.track(run.run_id)
        return run

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags and latest metrics (buffered points are flushed first)."""
        self.flush(run_id)
        return self.store.get_run(run_id)

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush the run's metrics, then set its final status (finished, failed or killed)."""
        try:
            final = RunStatus(status)
        except ValueError as exc:
            raise InvalidArgument(
                f"unknown run status {status!r}; end a run as finished, failed or killed"
            ) from exc
        if not final.is_terminal:
            raise InvalidArgument(f"end_run needs a final status, not {final.value!r}")
        if self._buffer is not None:
            self._buffer.untrack(run_id)
        self.flush(run_id)
        self.store.update_run(run_id, status=final)

    def set_run_name(self, run_id: str, name: str) -> None:
        """Rename a run."""
        self.store.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> None:
        """Delete a run and everything logged to it (artifact blobs shared with others stay)."""
        if self._buffer is not None:
            self._buffer.untrack(run_id)
            self._buffer.discard(run_id)
        self.store.delete_run(run_id)

    # --- params, metrics, tags -------------------------------------------------------------------

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log one param (values become strings; once logged, a param cannot change)."""
        self.store.log_batch(run_id, params=[Param(key, _param_value(value))])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log several params in one write."""
        if not isinstance(params, Mapping):
            raise InvalidArgument(f"params must be a dict, got {type(params).__name__}")
        self.store.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a tag (tags can change; the last value wins)."""
        self.store.log_batch(run_id, tags=[Tag(key, str(value))])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set several tags in one write."""
        if not isinstance(tags, Mapping):
            raise InvalidArgument(f"tags must be a dict, got {type(tags).__name__}")
        self.store.log_batch(run_id, tags=[Tag(k, str(v)) for k, v in tags.items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag."""
        self.store.delete_tag(run_id, key)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Buffer one metric point; it is written in the background or by :meth:`flush`.

        Args:
            step: the point's step; when None, one more than the last step this client logged
                for the key in this run (0 first), so a bare loop of calls gives 0, 1, 2, ...
            timestamp: milliseconds since the epoch (default now).
        """
        self.log_metrics(run_id, {key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Buffer several points that share a step and timestamp."""
        if not isinstance(metrics, Mapping):
            raise InvalidArgument(f"metrics must be a dict, got {type(metrics).__name__}")
        check_run_id(run_id)
        ts = now_ms() if timestamp is None else check_int(timestamp, "timestamp", minimum=0)
        fixed = None if step is None else check_int(step, "step")
        points = []
        steps = self._steps
        with self._step_lock:  # automatic steps: one counter per (run, key), shared by threads
            for key, value in metrics.items():
                check_key(key, "metric key")
                v = value if type(value) is float else check_metric_value(value, key)
                s = steps.get((run_id, key), 0) if fixed is None else fixed
                steps[(run_id, key)] = s + 1
                points.append(Metric(key, v, s, ts))
        if points:
            self.buffer.add(run_id, points)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | Sequence[Param] = (),
        tags: Mapping[str, Any] | Sequence[Tag] = (),
    ) -> None:
        """Write metrics, params and tags now, in one transaction (no buffering)."""
        ps = (
            [Param(k, _param_value(v)) for k, v in params.items()]
            if isinstance(params, Mapping)
            else list(params)
        )
        ts = [Tag(k, str(v)) for k, v in tags.items()] if isinstance(tags, Mapping) else list(tags)
        self.store.log_batch(run_id, metrics, ps, ts)

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        """Every point of a metric (buffered points are flushed first); columnar and iterable."""
        self.flush(run_id)
        return self.store.get_metric_history(run_id, key)

    # --- search ----------------------------------------------------------------------------------

    def search_runs(
        self,
        project: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page:
        """One page of runs matching ``filter``, e.g. ``"metrics.auc > 0.9 and params.model =
        'rf'"``, ordered by ``order_by`` (``"metrics.auc desc"``).

        Args:
            project: a project name or several; None searches every project.
        Returns:
            a :class:`~loopml.entities.Page` of runs (``.to_pandas()`` for a DataFrame) and
            the ``next_page_token``.
        """
        self._sweep_stale_runs()
        pids: list[str] | None = None
        if project is not None:
            names = [project] if isinstance(project, str) else list(project)
            pids = [self._known_project_id(n) for n in names]
        return self.store.search_runs(pids, filter, order_by, max_results, page_token)

    def iter_runs(
        self,
        project: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Run]:
        """Every matching run, fetched page by page."""
        token: str | None = None
        while True:
            page = self.search_runs(project, filter, order_by, page_size, token)
            yield from page.items
            token = page.next_page_token
            if token is None:
                return

    def best_run(
        self,
        metric: str,
        *,
        project: str | Sequence[str] | None = None,
        mode: str = "max",
        filter: str | None = None,
    ) -> Run | None:
        """The run with the highest (``mode="max"``) or lowest (``"min"``) latest ``metric``."""
        if mode not in ("max", "min"):
            raise InvalidArgument(f"mode must be 'max' or 'min', got {mode!r}")
        check_key(metric, "metric key")
        where = f"metrics.`{metric}` is not null"
        if filter:
            where = f"({filter}) and {where}"
        order = f"metrics.`{metric}` {'desc' if mode == 'max' else 'asc'}"
        page = self.search_runs(project, where, [order], max_results=1)
        return page.items[0] if page.items else None

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """A side-by-side table of several runs' params and latest metrics."""
        if isinstance(run_ids, str) or not run_ids:
            raise InvalidArgument("compare_runs needs a list of run ids")
        return RunComparison.of([self.get_run(r) for r in run_ids])

    def get_environment(self, run_id: str) -> Environment | None:
        """Where a run ran, or None if it was created without capturing its environment."""
        env_id = self.store.get_run(run_id).environment_id
        return None if env_id is None else self.store.get_environment(env_id)

    def mark_stale_runs(self, timeout: float | None = None) -> list[str]:
        """Mark running runs whose process stopped sending heartbeats as failed; returns ids.

        Args:
            timeout: seconds without a heartbeat (default ``LOOPML_HEARTBEAT_TIMEOUT``).
        """
        seconds = self.settings.heartbeat_timeout if timeout is None else timeout
        return self.store.fail_stale_runs(now_ms() - int(seconds * 1000))

    def _sweep_stale_runs(self) -> None:
        now = time.monotonic()
        if now - self._last_stale_check >= _STALE_CHECK_EVERY:
            self._last_stale_check = now
            try:
                self.mark_stale_runs()
            except StoreError as exc:  # a read-only database or replica: searching still works
                log.debug("loopml: could not mark stale runs: %s", exc)

    # --- artifacts -------------------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Store a local file as ``<artifact_path>/<file name>`` in the run.

        The content is stored once however often it is logged (it is addressed by its sha256).
        """
        src = Path(local_path)
        if not src.is_file():
            raise InvalidArgument(
                f"{str(src)!r} is not a file; log a folder with log_artifacts"
                if src.is_dir()
                else f"{str(src)!r} does not exist"
            )
        dest = src.name if artifact_path is None else f"{artifact_path.rstrip('/')}/{src.name}"
        return self._put(run_id, dest, src)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Store every file under a local folder, keeping relative paths.

        Raises:
            UnsafePath: a symlink in the folder points outside it.
        """
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument(f"{str(root)!r} is not a folder")
        prefix = "" if artifact_path is None else normalize_artifact_path(artifact_path) + "/"
        files = []
        for dirpath, _dirs, names in os.walk(root, followlinks=False):
            for fname in sorted(names):
                rel = Path(dirpath, fname).relative_to(root).as_posix()
                files.append((rel, confined_join(root, rel)))  # refuses symlinks out of root
        infos = []
        for rel, path in files:
            sha, size = self.artifacts.put(path)
            infos.append(ArtifactInfo(normalize_artifact_path(prefix + rel), sha, size, now_ms()))
        self.store.log_artifacts(run_id, infos)
        return infos

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactInfo:
        """Store bytes as a file of the run."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes, got {type(data).__name__}")
        return self._put(run_id, artifact_file, bytes(data))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        """Store text (UTF-8) as a file of the run, e.g. ``notes/summary.md``."""
        if not isinstance(text, str):
            raise InvalidArgument(f"text must be a str, got {type(text).__name__}")
        return self._put(run_id, artifact_file, text.encode())

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> ArtifactInfo:
        """Store a dict as JSON, or as YAML when the file ends in ``.yaml``/``.yml``."""
        if artifact_file.endswith((".yaml", ".yml")):
            from loopml._lazy import require

            yaml = require("yaml", "yaml", "log_dict to a YAML file")
            data = yaml.safe_dump(dictionary, sort_keys=False).encode()
        else:
            try:
                data = json.dumps(dictionary, indent=2, default=str).encode()
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"log_dict: cannot serialise to JSON: {exc}") from exc
        return self._put(run_id, artifact_file, data)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> ArtifactInfo:
        """Store a matplotlib figure (PNG, SVG, PDF... by extension) or a plotly figure (HTML
        or JSON)."""
        buf = io.BytesIO()
        if hasattr(figure, "savefig"):
            fmt = Path(artifact_file).suffix.lstrip(".") or "png"
            figure.savefig(buf, format=fmt, bbox_inches="tight")
        elif hasattr(figure, "to_html"):
            if artifact_file.endswith(".json"):
                buf.write(figure.to_json().encode())
            else:
                buf.write(figure.to_html(include_plotlyjs="cdn").encode())
        else:
            raise InvalidArgument(
                f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
            )
        return self._put(run_id, artifact_file, buf.getvalue())

    def _put(self, run_id: str, artifact_file: str, source: Path | bytes) -> ArtifactInfo:
        path = normalize_artifact_path(artifact_file)
        self.store.get_run(run_id)  # fail before uploading to a run that does not exist
        sha, size = self.artifacts.put(source)
        info = ArtifactInfo(path, sha, size, now_ms())
        self.store.log_artifacts(run_id, [info])
        return info

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactInfo]:
        """Files of a run under ``path`` (a folder) or the whole run."""
        return self.store.list_artifacts(run_id, path)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The content of one file of a run (its hash is verified)."""
        return self.artifacts.read(self.store.get_artifact(run_id, path).sha256)

    def read_text(self, run_id: str, path: str) -> str:
        """A text file of a run."""
        return self.read_artifact(run_id, path).decode()

    def read_dict(self, run_id: str, path: str) -> Any:
        """A JSON (or YAML) file of a run, parsed."""
        data = self.read_artifact(run_id, path)
        if path.endswith((".yaml", ".yml")):
            from loopml._lazy import require

            return require("yaml", "yaml", "read_dict of a YAML file").safe_load(data)
        return json.loads(data)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> Path:
        """Download a file or folder of a run into ``dst_path`` (a new temporary folder by
        default); returns the local path of what was asked for. Every file's hash is verified
        and every path confined to ``dst_path``."""
        import tempfile

        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="loopml-"))
        infos = self.list_artifacts(run_id, path)
        if not infos:
            from loopml.errors import ArtifactNotFound

            raise ArtifactNotFound(f"run {run_id!r} has no artifact at {path or '/'!r}")
        for info in infos:
            target = confined_join(dst, info.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.artifacts.get(info.sha256, target)
        return dst / normalize_artifact_path(path) if path not in ("", ".", "/") else dst
