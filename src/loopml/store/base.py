"""The metadata store contract.

:class:`Store` is the one interface every metadata backend implements: :class:`InMemoryStore`
(the reference), :class:`SqlStore` (SQLite and PostgreSQL) and, later, a REST store that talks to
``loopml server``. The conformance suite in :mod:`loopml.testing` runs against all of them.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence

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
from loopml.errors import InvalidArgument, NotFound, ProjectNotFound
from loopml.store import search, validation
from loopml.store.datasets import DatasetStore
from loopml.store.deployments import DeploymentStore
from loopml.store.leases import LeaseStore
from loopml.store.monitors import MonitorStore
from loopml.store.registry import RegistryStore

__all__ = ["DEFAULT_PROJECT", "Store", "environment_id", "new_id"]

DEFAULT_PROJECT = "default"
FAILURE_REASON_TAG = "loopml.failure_reason"


def new_id() -> str:
    """A new object id: 32 lowercase hex characters."""
    return uuid.uuid4().hex


_last_environment: tuple[Environment, str] | None = None


def environment_id(env: Environment) -> str:
    """The content address of an environment: sha256 of its canonical JSON.

    The last result is memoised by identity: a process passes the same captured environment to
    every run it starts, and hashing a few hundred package versions each time would show.
    """
    global _last_environment
    last = _last_environment
    if last is not None and last[0] is env:
        return last[1]
    canonical = json.dumps(env.to_dict(), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    _last_environment = (env, digest)
    return digest


def _page_token(offset: int, query_key: str) -> str:
    raw = json.dumps({"offset": offset, "query": query_key}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str | None, query_key: str) -> int:
    """The offset a page token stands for; refuses tokens made for another query."""
    if token is None or token == "":
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
        same_query = data["query"] == query_key
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(
            f"page token {token!r:.60} is malformed; pass the next_page_token of a previous page"
        ) from exc
    if not same_query or offset < 0:
        raise InvalidArgument(
            "page token belongs to a different search (filter, order or projects changed); "
            "start again without a page token"
        )
    return offset


class Store(DatasetStore, RegistryStore, DeploymentStore, MonitorStore, LeaseStore):
    """The metadata store: projects, runs, params, metrics, tags, environments, artifact index,
    datasets (their versions and the runs that used them), the model registry, the audit
    trail, deployments with the index of their prediction logs, and monitoring (monitors, their
    results, alerts and their deliveries, and the index of ground-truth labels).

    The dataset methods (``create_dataset_version``, ``get_dataset_version``, ``log_inputs``...)
    and their contract live in the :class:`~loopml.store.datasets.DatasetStore` mixin; the
    registry's (``create_model_version``, ``set_model_alias``, ``search_audit_events``...) in
    the :class:`~loopml.store.registry.RegistryStore` mixin; the serving side's
    (``create_deployment``, ``add_prediction_segment``, ``list_window_profiles``...) in the
    :class:`~loopml.store.deployments.DeploymentStore` mixin; monitoring's (``create_monitor``,
    ``add_monitor_result``, ``add_alert``, ``add_label_segment``...) in the
    :class:`~loopml.store.monitors.MonitorStore` mixin; the leases of leader election
    (``acquire_lease``, ``release_lease``, ``get_lease``) in the
    :class:`~loopml.store.leases.LeaseStore` mixin. This class inherits them, to keep this
    module readable.

    Contract (every implementation; the conformance suite checks it):

    * **Thread safety.** Every method may be called from many threads at once. The SQL store is
      also safe across processes: on SQLite many processes may write one file and never see
      "database is locked".
    * **Immutability.** Methods return new entity objects; a returned entity never changes.
      A later write shows in the next read, not in objects already returned.
    * **Atomicity.** Each write method is one transaction: it happens whole or not at all. When a
      write method returns, the data is committed (and, on SQL stores, survives a crash of the
      writing process).
    * **Validation.** Public methods check their arguments (see :mod:`loopml.store.validation`)
      and raise :class:`~loopml.errors.InvalidArgument` before touching storage. Implementations
      implement the protected ``_methods`` and may assume valid input.
    * **Errors.** Missing objects raise :class:`~loopml.errors.ProjectNotFound`,
      :class:`~loopml.errors.RunNotFound`, :class:`~loopml.errors.ArtifactNotFound`,
      :class:`~loopml.errors.DatasetNotFound`, :class:`~loopml.errors.ModelNotFound`,
      :class:`~loopml.errors.DeploymentNotFound`, :class:`~loopml.errors.MonitorNotFound` or
      :class:`~loopml.errors.AlertNotFound`; a param re-logged with another value raises
      :class:`~loopml.errors.ParamConflict`, and an alias, deployment or monitor that changed
      before its compare-and-set :class:`~loopml.errors.Conflict`; a duplicate project, model,
      deployment or monitor name raises :class:`~loopml.errors.AlreadyExists`; backend
      failures raise :class:`~loopml.errors.StoreError`. Nothing else escapes.
    * **Metrics.** A metric point is ``(key, value, step, timestamp)``. Every logged point is
      kept (history), including duplicates; NaN and +/-inf are stored faithfully. ``Run.metrics``
      holds the latest point per key: the highest step, then the latest timestamp, then the last
      logged.
    * **Params** are write-once: logging the same value again is a no-op, another value raises
      :class:`~loopml.errors.ParamConflict`. **Tags** are last-write-wins.
    * **Search** returns runs in the requested order, then newest start time first, then by run
      id, so the order is total. Page tokens are offsets: runs written between two pages can
      shift a later page (order by ``start_time`` to page through a store being written to).
    """

    #: The URI this store was opened with (passwords masked).
    uri: str = ""

    # --- projects ------------------------------------------------------------------------------

    def create_project(self, name: str, description: str = "") -> Project:
        """Create a project.

        Raises:
            InvalidArgument: the name is empty, too long or not a string.
            AlreadyExists: a project with this name exists.
        """
        validation.check_name(name, "project name")
        validation.check_name(description, "project description", allow_empty=True)
        return self._create_project(name, description, now_ms())

    def get_project(self, name_or_id: str) -> Project:
        """Get a project by name (or by id).

        Raises:
            ProjectNotFound: no project has this name or id.
        """
        validation.check_name(name_or_id, "project")
        return self._get_project(name_or_id)

    def get_or_create_project(self, name: str) -> Project:
        """Get the project with this name, creating it when it does not exist (race-safe)."""
        from loopml.errors import AlreadyExists

        try:
            return self.get_project(name)
        except ProjectNotFound:
            try:
                return self.create_project(name)
            except AlreadyExists:
                return self.get_project(name)

    @abc.abstractmethod
    def list_projects(self) -> list[Project]:
        """All projects, ordered by name."""

    # --- runs ----------------------------------------------------------------------------------

    def create_run(
        self,
        project_id: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        user: str = "",
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        environment: Environment | None = None,
    ) -> Run:
        """Create a run in status ``running``, with its first tags, params and environment.

        Args:
            project_id: the project's id (``Project.project_id``).
            name: a display name; a readable one is generated when None.
            parent_run_id: the parent of a nested run.
            user: who started it.
            start_time: milliseconds since the epoch (default now).
            tags: first tags. params: first params. environment: where it runs (stored once
                per distinct content and referenced by ``Run.environment_id``).

        Raises:
            ProjectNotFound: the project does not exist.
            RunNotFound: the parent run does not exist.
            InvalidArgument: a bad name, key or value.
        """
        validation.check_name(project_id, "project id")
        run_name = _run_name() if name is None else validation.check_name(name, "run name")
        if parent_run_id is not None:
            validation.check_run_id(parent_run_id)
        validation.check_name(user, "user", allow_empty=True)
        start = now_ms() if start_time is None else validation.check_int(start_time, "start_time")
        _, ps, ts = validation.check_batch(
            (),
            [Param(k, v) for k, v in validation.check_mapping(params, "params").items()],
            [Tag(k, v) for k, v in validation.check_mapping(tags, "tags").items()],
        )
        if environment is not None and not isinstance(environment, Environment):
            raise InvalidArgument(f"environment must be an Environment, got {type(environment)}")
        return self._create_run(
            new_id(), project_id, run_name, parent_run_id, user, start, ps, ts, environment
        )

    def get_run(self, run_id: str) -> Run:
        """Get a run with its params, tags and latest metrics.

        Raises:
            RunNotFound: no run has this id.
        """
        return self._get_run(validation.check_run_id(run_id))

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> None:
        """Change a run's status, end time or name (read it back with :meth:`get_run`).

        Setting a terminal status without an ``end_time`` sets it to now; setting ``running``
        clears the end time (a resumed run).

        Raises:
            RunNotFound: no run has this id.
            InvalidArgument: an unknown status.
        """
        validation.check_run_id(run_id)
        new_status: RunStatus | None = None
        if status is not None:
            try:
                new_status = RunStatus(status)
            except ValueError as exc:
                allowed = ", ".join(s.value for s in RunStatus)
                raise InvalidArgument(
                    f"unknown run status {status!r}; use one of {allowed}"
                ) from exc
        if name is not None:
            validation.check_name(name, "run name")
        if end_time is not None:
            validation.check_int(end_time, "end_time", minimum=0)
        elif new_status is not None and new_status.is_terminal:
            end_time = now_ms()
        self._update_run(run_id, new_status, end_time, name)

    def delete_run(self, run_id: str) -> None:
        """Delete a run with its params, metrics, tags and artifact index (blobs are kept).

        Raises:
            RunNotFound: no run has this id.
        """
        self._delete_run(validation.check_run_id(run_id))

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric] = (),
        params: Iterable[Param] = (),
        tags: Iterable[Tag] = (),
    ) -> None:
        """Log metrics, params and tags to a run in one transaction.

        Raises:
            RunNotFound: no run has this id.
            ParamConflict: a param already has another value (nothing of the batch is written).
            InvalidArgument: a bad key or value.
        """
        validation.check_run_id(run_id)
        ms, ps, ts = validation.check_batch(metrics, params, tags)
        if ms or ps or ts:
            self._log_batch(run_id, ms, ps, ts)
        else:
            self._get_run(run_id)  # an empty batch still names a run that must exist

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run (no error when the tag is absent).

        Raises:
            RunNotFound: no run has this id.
        """
        validation.check_run_id(run_id)
        self._delete_tag(run_id, validation.check_key(key, "tag key"))

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        """Every point of one metric, ordered by step, then timestamp, then logging order.

        The result is columnar (numpy arrays ``steps``, ``timestamps``, ``values``) and also a
        sequence of :class:`Metric`; an unknown key gives an empty history.

        Raises:
            RunNotFound: no run has this id.
        """
        validation.check_run_id(run_id)
        return self._get_metric_history(run_id, validation.check_key(key, "metric key"))

    def heartbeat(self, run_ids: Sequence[str], at: int | None = None) -> None:
        """Record that the process running these runs is alive (unknown ids are ignored)."""
        if isinstance(run_ids, str | bytes) or not isinstance(run_ids, Iterable):
            raise InvalidArgument(f"run_ids must be a list of run ids, got {run_ids!r:.80}")
        ids = [validation.check_run_id(r) for r in run_ids]
        if ids:
            self._heartbeat(ids, now_ms() if at is None else validation.check_int(at, "at"))

    def fail_stale_runs(self, older_than: int) -> list[str]:
        """Mark ``running`` runs whose last heartbeat (or start) is before ``older_than`` as
        ``failed``, tagged ``loopml.failure_reason``. Returns their ids."""
        return self._fail_stale_runs(validation.check_int(older_than, "older_than"), now_ms())

    def search_runs(
        self,
        project_ids: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page:
        """Runs that match ``filter`` (see :mod:`loopml.store.search`), one page at a time.

        Args:
            project_ids: restrict to these projects (ids); None searches all projects.
            filter: e.g. ``"metrics.auc > 0.9 and params.model = 'rf'"``.
            order_by: e.g. ``["metrics.auc desc"]``; ties break by start time (newest first),
                then run id.
            max_results: page size, 1..50,000.
            page_token: ``next_page_token`` of the previous page.

        Raises:
            InvalidFilter: the filter or order does not parse.
            InvalidArgument: a bad page size or token.
        """
        expr = search.parse_filter(filter)
        order = search.parse_order_by(order_by)
        limit = validation.check_max_results(max_results)
        if isinstance(project_ids, str):
            raise InvalidArgument(
                f"project_ids must be a list of project ids, got the string {project_ids!r}; "
                f"write [{project_ids!r}]"
            )
        if page_token is not None and not isinstance(page_token, str):
            raise InvalidArgument(
                f"page_token must be the string next_page_token of a previous page, got "
                f"{type(page_token).__name__}"
            )
        pids = None if project_ids is None else tuple(project_ids)
        if pids is not None:
            for pid in pids:
                validation.check_name(pid, "project id")
        query_key = hashlib.sha256(repr((pids, expr, order)).encode()).hexdigest()[:16]
        offset = decode_page_token(page_token, query_key)
        runs = self._search_runs(pids, expr, order, limit + 1, offset)
        more = len(runs) > limit
        token = _page_token(offset + limit, query_key) if more else None
        return Page(tuple(runs[:limit]), token)

    def get_environment(self, environment_id: str) -> Environment:
        """An environment by id (``Run.environment_id``).

        Raises:
            NotFound: no environment has this id.
        """
        validation.check_name(environment_id, "environment id")
        return self._get_environment(environment_id)

    # --- artifact index --------------------------------------------------------------------------

    def log_artifacts(self, run_id: str, infos: Sequence[ArtifactInfo]) -> None:
        """Record files logged to a run (path in the run, blob sha256, size); a path logged
        again points at its new content.

        Raises:
            RunNotFound: no run has this id.
        """
        validation.check_run_id(run_id)
        from loopml.store.paths import normalize_artifact_path

        checked = []
        for info in infos:
            if not isinstance(info, ArtifactInfo):
                raise InvalidArgument(f"expected an ArtifactInfo, got {type(info).__name__}")
            path = normalize_artifact_path(info.path)
            validation.check_int(info.size, "artifact size", minimum=0)
            checked.append(ArtifactInfo(path, info.sha256, info.size, info.created_at or now_ms()))
        if checked:
            self._log_artifacts(run_id, checked)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactInfo]:
        """Files of a run whose path is ``prefix`` or lies under the folder ``prefix``, by path.

        Raises:
            RunNotFound: no run has this id.
        """
        validation.check_run_id(run_id)
        from loopml.store.paths import normalize_artifact_path

        folder = normalize_artifact_path(prefix) if prefix not in ("", ".", "/") else ""
        return self._list_artifacts(run_id, folder)

    def get_artifact(self, run_id: str, path: str) -> ArtifactInfo:
        """One file of a run.

        Raises:
            RunNotFound: no run has this id.
            ArtifactNotFound: the run has no file at this path.
        """
        validation.check_run_id(run_id)
        from loopml.store.paths import normalize_artifact_path

        return self._get_artifact(run_id, normalize_artifact_path(path))

    def close(self) -> None:  # an optional hook: most stores hold nothing to release
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what implementations provide ----------------------------------------------------------

    @abc.abstractmethod
    def _create_project(self, name: str, description: str, created_at: int) -> Project: ...

    @abc.abstractmethod
    def _get_project(self, name_or_id: str) -> Project: ...

    @abc.abstractmethod
    def _create_run(
        self,
        run_id: str,
        project_id: str,
        name: str,
        parent_run_id: str | None,
        user: str,
        start_time: int,
        params: list[Param],
        tags: list[Tag],
        environment: Environment | None,
    ) -> Run: ...

    @abc.abstractmethod
    def _get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def _update_run(
        self, run_id: str, status: RunStatus | None, end_time: int | None, name: str | None
    ) -> None: ...

    @abc.abstractmethod
    def _delete_run(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def _log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
    ) -> None: ...

    @abc.abstractmethod
    def _delete_tag(self, run_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def _get_metric_history(self, run_id: str, key: str) -> MetricHistory: ...

    @abc.abstractmethod
    def _heartbeat(self, run_ids: list[str], at: int) -> None: ...

    @abc.abstractmethod
    def _fail_stale_runs(self, older_than: int, now: int) -> list[str]: ...

    @abc.abstractmethod
    def _search_runs(
        self,
        project_ids: tuple[str, ...] | None,
        expr: search.Expr | None,
        order: tuple[search.OrderBy, ...],
        limit: int,
        offset: int,
    ) -> list[Run]: ...

    @abc.abstractmethod
    def _get_environment(self, environment_id: str) -> Environment: ...

    @abc.abstractmethod
    def _log_artifacts(self, run_id: str, infos: list[ArtifactInfo]) -> None: ...

    @abc.abstractmethod
    def _list_artifacts(self, run_id: str, folder: str) -> list[ArtifactInfo]: ...

    @abc.abstractmethod
    def _get_artifact(self, run_id: str, path: str) -> ArtifactInfo: ...


_ADJECTIVES = (
    "amber brave calm clever crisp daring eager fancy gentle happy jolly keen lively lucky "
    "merry nimble proud quick quiet rapid shiny silent sunny swift tidy vivid witty zesty"
).split()
_NOUNS = (
    "badger cobra crane dingo eagle falcon ferret gecko heron ibis jaguar koala lemur lynx "
    "marten newt otter panda puffin quail raven salmon tiger turtle walrus wombat yak zebra"
).split()


def _run_name() -> str:
    """A readable default run name such as ``swift-otter-042``."""
    n = uuid.uuid4().int
    return f"{_ADJECTIVES[n % 26]}-{_NOUNS[(n >> 8) % 26]}-{(n >> 16) % 1000:03d}"


def missing_environment(environment_id: str) -> NotFound:
    """The error for an unknown environment id."""
    return NotFound(
        f"environment {environment_id!r} does not exist; take the id from Run.environment_id"
    )
