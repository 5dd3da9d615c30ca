"""The in-memory store: the reference implementation of the :class:`Store` contract.

Everything lives in dicts behind one lock; nothing survives the process. It is what the SQL store
is checked against, and handy in notebooks and tests (``loopml.Client("memory://")``).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from loopml.entities import (
    ArtifactInfo,
    AuditEvent,
    Dataset,
    DatasetInput,
    DatasetVersion,
    Environment,
    Metric,
    MetricHistory,
    ModelVersion,
    ModelVersionStatus,
    Param,
    Project,
    RegisteredModel,
    Run,
    RunStatus,
    Tag,
    now_ms,
)
from loopml.errors import (
    AlreadyExists,
    ArtifactNotFound,
    DatasetNotFound,
    ModelNotFound,
    ParamConflict,
    ProjectNotFound,
    RunNotFound,
)
from loopml.store import registry as reg
from loopml.store import search
from loopml.store.base import (
    FAILURE_REASON_TAG,
    Store,
    environment_id,
    missing_environment,
    new_id,
)
from loopml.store.datasets import ambiguous_prefix, missing_version
from loopml.store.memory_auth import InMemoryAuthStore
from loopml.store.memory_deployments import InMemoryDeploymentStore
from loopml.store.memory_leases import InMemoryLeaseStore
from loopml.store.memory_monitors import InMemoryMonitorStore

__all__ = ["InMemoryStore"]


@dataclass
class _RunState:
    run: Run
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    latest: dict[str, tuple[int, int, int, float]] = field(default_factory=dict)
    history: dict[str, list[tuple[int, int, int, float]]] = field(default_factory=dict)
    artifacts: dict[str, ArtifactInfo] = field(default_factory=dict)
    inputs: dict[tuple[str, str], int] = field(default_factory=dict)  # (version id, role) -> ms


@dataclass
class _DatasetState:
    dataset: Dataset  # latest_version and num_versions are filled in on read
    versions: list[DatasetVersion] = field(default_factory=list)  # by number: versions[n - 1]


@dataclass
class _ModelState:
    model: RegisteredModel  # aliases and latest_version are filled in on read
    versions: list[ModelVersion] = field(default_factory=list)  # by number: versions[n - 1]
    aliases: dict[str, int] = field(default_factory=dict)


class InMemoryStore(InMemoryDeploymentStore, InMemoryMonitorStore, InMemoryLeaseStore, Store):
    """A thread-safe store in process memory."""

    def __init__(self, uri: str = "memory://") -> None:
        self.uri = uri
        self._lock = threading.RLock()
        self._projects: dict[str, Project] = {}
        self._runs: dict[str, _RunState] = {}
        self._envs: dict[str, Environment] = {}
        self._datasets: dict[tuple[str, str], _DatasetState] = {}  # by (project id, name)
        self._versions: dict[str, DatasetVersion] = {}  # by id
        self._models: dict[tuple[str, str], _ModelState] = {}  # by (project id, name)
        self._audit: list[AuditEvent] = []  # in the order written
        self._seq = 0  # logging order, the last tie-break of "latest"
        self._init_deployments()
        self._init_monitors()
        self._init_leases()
        self._auth: InMemoryAuthStore | None = None

    @property
    def auth(self) -> InMemoryAuthStore:
        """Accounts, API tokens and roles of ``loopml server --auth``, in this process."""
        with self._lock:
            if self._auth is None:
                self._auth = InMemoryAuthStore()
            return self._auth

    # --- projects ------------------------------------------------------------------------------

    def _create_project(self, name: str, description: str, created_at: int) -> Project:
        with self._lock:
            if any(p.name == name for p in self._projects.values()):
                raise AlreadyExists(
                    f"project {name!r} already exists; use it or pick another name"
                )
            project = Project(new_id(), name, description, created_at)
            self._projects[project.project_id] = project
            return project

    def _get_project(self, name_or_id: str) -> Project:
        with self._lock:
            for p in self._projects.values():
                if p.name == name_or_id:
                    return p
            if name_or_id in self._projects:
                return self._projects[name_or_id]
        raise ProjectNotFound(name_or_id)

    def list_projects(self) -> list[Project]:
        with self._lock:
            return sorted(self._projects.values(), key=lambda p: p.name)

    # --- runs ----------------------------------------------------------------------------------

    def _state(self, run_id: str) -> _RunState:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFound(run_id) from None

    def _snapshot(self, st: _RunState) -> Run:
        return replace(
            st.run,
            params=MappingProxyType(dict(st.params)),
            tags=MappingProxyType(dict(st.tags)),
            metrics=MappingProxyType({k: v[3] for k, v in st.latest.items()}),
        )

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
    ) -> Run:
        with self._lock:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            if parent_run_id is not None:
                self._state(parent_run_id)
            env_id = None
            if environment is not None:
                env_id = environment_id(environment)
                # A copy: the caller's packages mapping may be a plain dict it changes later.
                self._envs.setdefault(env_id, Environment.from_dict(environment.to_dict()))
            run = Run(
                run_id=run_id,
                project_id=project_id,
                name=name,
                status=RunStatus.RUNNING,
                start_time=start_time,
                parent_run_id=parent_run_id,
                user=user,
                heartbeat_at=start_time,
                environment_id=env_id,
            )
            st = _RunState(run, {p.key: p.value for p in params}, {t.key: t.value for t in tags})
            self._runs[run_id] = st
            return self._snapshot(st)

    def _get_run(self, run_id: str) -> Run:
        with self._lock:
            return self._snapshot(self._state(run_id))

    def _update_run(
        self, run_id: str, status: RunStatus | None, end_time: int | None, name: str | None
    ) -> None:
        with self._lock:
            st = self._state(run_id)
            run = st.run
            if status is not None:
                run = replace(
                    run, status=status, end_time=None if not status.is_terminal else run.end_time
                )
            if end_time is not None:
                run = replace(run, end_time=end_time)
            if name is not None:
                run = replace(run, name=name)
            st.run = run

    def _delete_run(self, run_id: str) -> None:
        with self._lock:
            self._state(run_id)
            del self._runs[run_id]
            for ds in self._datasets.values():  # a version outlives the run that logged it
                for i, v in enumerate(ds.versions):
                    if v.run_id == run_id:
                        ds.versions[i] = self._versions[v.id] = replace(v, run_id=None)
            for ms in self._models.values():  # and so does a model version
                for i, mv in enumerate(ms.versions):
                    if mv.run_id == run_id:
                        ms.versions[i] = replace(mv, run_id=None)

    def _log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
    ) -> None:
        with self._lock:
            st = self._state(run_id)
            for p in params:
                old = st.params.get(p.key)
                if old is not None and old != p.value:
                    raise ParamConflict(
                        f"param {p.key!r} of run {run_id!r} is already {old!r}; it cannot become "
                        f"{p.value!r} (params are logged once: log a new run, or use a tag)"
                    )
            for p in params:
                st.params[p.key] = p.value
            for t in tags:
                st.tags[t.key] = t.value
            for m in metrics:
                self._seq += 1
                point = (m.step, m.timestamp, self._seq, m.value)
                st.history.setdefault(m.key, []).append(point)
                old_point = st.latest.get(m.key)
                if old_point is None or point[:3] > old_point[:3]:
                    st.latest[m.key] = point

    def _delete_tag(self, run_id: str, key: str) -> None:
        with self._lock:
            self._state(run_id).tags.pop(key, None)

    def _get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        with self._lock:
            points = sorted(self._state(run_id).history.get(key, []), key=lambda p: p[:3])
        return MetricHistory.from_arrays(
            key,
            [p[0] for p in points],
            [p[1] for p in points],
            [p[3] for p in points],
            sort=False,
        )

    def _heartbeat(self, run_ids: list[str], at: int) -> None:
        with self._lock:
            for rid in run_ids:
                st = self._runs.get(rid)
                if st is not None:
                    st.run = replace(st.run, heartbeat_at=at)

    def _fail_stale_runs(self, older_than: int, now: int) -> list[str]:
        with self._lock:
            stale = []
            for rid, st in self._runs.items():
                last = (
                    st.run.heartbeat_at if st.run.heartbeat_at is not None else st.run.start_time
                )
                if st.run.status is RunStatus.RUNNING and last < older_than:
                    st.run = replace(st.run, status=RunStatus.FAILED, end_time=last)
                    st.tags[FAILURE_REASON_TAG] = "lost heartbeat: the process stopped reporting"
                    stale.append(rid)
            return sorted(stale)

    def _search_runs(
        self,
        project_ids: tuple[str, ...] | None,
        expr: search.Expr | None,
        order: tuple[search.OrderBy, ...],
        limit: int,
        offset: int,
    ) -> list[Run]:
        with self._lock:
            runs = [
                self._snapshot(st)
                for st in self._runs.values()
                if project_ids is None or st.run.project_id in project_ids
            ]
        found = [r for r in runs if search.matches(r, expr)]
        return search.sort_runs(found, order)[offset : offset + limit]

    def _get_environment(self, environment_id: str) -> Environment:
        with self._lock:
            env = self._envs.get(environment_id)
        if env is None:
            raise missing_environment(environment_id)
        return env

    # --- artifact index --------------------------------------------------------------------------

    def _log_artifacts(self, run_id: str, infos: list[ArtifactInfo]) -> None:
        with self._lock:
            st = self._state(run_id)
            for info in infos:
                st.artifacts[info.path] = info

    def _list_artifacts(self, run_id: str, folder: str) -> list[ArtifactInfo]:
        with self._lock:
            arts = list(self._state(run_id).artifacts.values())
        if folder:
            arts = [a for a in arts if a.path == folder or a.path.startswith(folder + "/")]
        return sorted(arts, key=lambda a: a.path)

    def _get_artifact(self, run_id: str, path: str) -> ArtifactInfo:
        with self._lock:
            info = self._state(run_id).artifacts.get(path)
        if info is None:
            raise ArtifactNotFound(
                f"run {run_id!r} has no artifact {path!r}; list them with "
                f"`loopml runs show {run_id}`"
            )
        return info

    # --- datasets --------------------------------------------------------------------------------

    def _dataset_state(self, project_id: str, name: str) -> _DatasetState:
        ds = self._datasets.get((project_id, name))
        if ds is None:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            raise DatasetNotFound(name)
        return ds

    @staticmethod
    def _dataset(ds: _DatasetState) -> Dataset:
        return replace(ds.dataset, latest_version=len(ds.versions), num_versions=len(ds.versions))

    @staticmethod
    def _version(v: DatasetVersion) -> DatasetVersion:
        """A copy whose dicts the caller may change without changing the store."""
        return replace(v, schema=copy.deepcopy(v.schema), metadata=copy.deepcopy(v.metadata))

    def _create_dataset_version(
        self, project_id: str, name: str, description: str, draft: DatasetVersion
    ) -> tuple[DatasetVersion, bool]:
        with self._lock:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            if draft.run_id is not None:
                self._state(draft.run_id)
            ds = self._datasets.get((project_id, name))
            if ds is None:
                dataset = Dataset(new_id(), project_id, name, description, draft.created_at)
                ds = self._datasets[project_id, name] = _DatasetState(dataset)
            elif description:
                ds.dataset = replace(ds.dataset, description=description)
            for v in ds.versions:
                if v.digest == draft.digest:
                    return self._version(v), False
            version = replace(
                draft, id=new_id(), dataset_id=ds.dataset.id, version=len(ds.versions) + 1
            )
            ds.versions.append(version)
            self._versions[version.id] = version
            return self._version(version), True

    def _get_dataset(self, project_id: str, name: str) -> Dataset:
        with self._lock:
            return self._dataset(self._dataset_state(project_id, name))

    def _list_datasets(self, project_id: str) -> list[Dataset]:
        with self._lock:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            found = [
                self._dataset(ds) for (pid, _), ds in self._datasets.items() if pid == project_id
            ]
        return sorted(found, key=lambda d: d.name)

    def _update_dataset(self, project_id: str, name: str, description: str) -> Dataset:
        with self._lock:
            ds = self._dataset_state(project_id, name)
            ds.dataset = replace(ds.dataset, description=description)
            return self._dataset(ds)

    def _list_dataset_versions(self, project_id: str, name: str) -> list[DatasetVersion]:
        with self._lock:
            return [
                self._version(v) for v in reversed(self._dataset_state(project_id, name).versions)
            ]

    def _get_dataset_version(
        self, project_id: str, name: str, number: int | None, digest_prefix: str | None
    ) -> DatasetVersion:
        with self._lock:
            versions = self._dataset_state(project_id, name).versions
            if digest_prefix is not None:
                found = [v for v in versions if v.digest.startswith(digest_prefix)]
                if len(found) > 1:
                    raise ambiguous_prefix(name, digest_prefix, found)
                if not found:
                    raise DatasetNotFound(name, digest_prefix)
                return self._version(found[0])
            if number is None:
                return self._version(versions[-1])
            if number > len(versions):
                raise DatasetNotFound(name, number)
            return self._version(versions[number - 1])

    def _get_dataset_version_by_id(self, version_id: str) -> DatasetVersion:
        with self._lock:
            v = self._versions.get(version_id)
            if v is None:
                raise missing_version(version_id)
            return self._version(v)

    def _log_inputs(self, run_id: str, inputs: list[tuple[str, str]], created_at: int) -> None:
        with self._lock:
            st = self._state(run_id)
            for version_id, _ in inputs:
                if version_id not in self._versions:
                    raise missing_version(version_id)
            for key in inputs:
                st.inputs.setdefault(key, created_at)

    def _get_run_inputs(self, run_id: str) -> list[DatasetInput]:
        with self._lock:
            found = [
                DatasetInput(run_id, self._version(self._versions[vid]), role, at)
                for (vid, role), at in self._state(run_id).inputs.items()
            ]
        return sorted(
            found, key=lambda i: (i.dataset_version.name, i.dataset_version.version, i.role)
        )

    def _get_dataset_version_runs(self, version_id: str) -> list[DatasetInput]:
        with self._lock:
            version = self._versions.get(version_id)
            if version is None:
                raise missing_version(version_id)
            found = [
                DatasetInput(rid, self._version(version), role, at)
                for rid, st in self._runs.items()
                for (vid, role), at in st.inputs.items()
                if vid == version_id
            ]
        return sorted(found, key=lambda i: (i.created_at, i.run_id, i.role))

    # --- model registry --------------------------------------------------------------------------

    def _model_state(self, project_id: str, name: str) -> _ModelState:
        ms = self._models.get((project_id, name))
        if ms is None:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            raise ModelNotFound(name)
        return ms

    def _model_version_state(self, ms: _ModelState, version: int) -> ModelVersion:
        if version > len(ms.versions):
            raise ModelNotFound(ms.model.name, version)
        return ms.versions[version - 1]

    @staticmethod
    def _model(ms: _ModelState) -> RegisteredModel:
        return replace(
            ms.model,
            tags=MappingProxyType(dict(ms.model.tags)),
            aliases=MappingProxyType(dict(sorted(ms.aliases.items()))),
            latest_version=len(ms.versions),
        )

    @staticmethod
    def _model_version(ms: _ModelState, v: ModelVersion) -> ModelVersion:
        """A copy with its aliases, whose dicts the caller may change without changing the
        store."""
        return replace(
            v,
            tags=MappingProxyType(dict(v.tags)),
            signature=copy.deepcopy(v.signature),
            gate_result=copy.deepcopy(v.gate_result),
            aliases=tuple(sorted(a for a, n in ms.aliases.items() if n == v.version)),
        )

    def _audited(self, ms: _ModelState | None, event: AuditEvent) -> None:
        """Record an event of a change to ``ms`` (under the lock, with the change)."""
        self._audit.append(event)
        if ms is not None:
            ms.model = replace(ms.model, updated_at=event.timestamp)

    def _create_registered_model(
        self, project_id: str, name: str, description: str, tags: dict[str, str], actor: str
    ) -> RegisteredModel:
        with self._lock:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            if (project_id, name) in self._models:
                raise AlreadyExists(
                    f"model {name!r} is already registered in this project; add a version to "
                    "it, or pick another name"
                )
            now = now_ms()
            model = RegisteredModel(
                project_id, name, description, dict(tags), created_at=now, updated_at=now
            )
            ms = self._models[project_id, name] = _ModelState(model)
            facts = {"description": description, "tags": dict(tags)}
            self._audited(ms, reg.model_event(project_id, name, "model.create", actor, facts, now))
            return self._model(ms)

    def _get_registered_model(self, project_id: str, name: str) -> RegisteredModel:
        with self._lock:
            return self._model(self._model_state(project_id, name))

    def _list_registered_models(self, project_id: str) -> list[RegisteredModel]:
        with self._lock:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            found = [self._model(ms) for (pid, _), ms in self._models.items() if pid == project_id]
        return sorted(found, key=lambda m: m.name)

    def _update_registered_model(
        self,
        project_id: str,
        name: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
    ) -> RegisteredModel:
        with self._lock:
            ms = self._model_state(project_id, name)
            if description is None and not tags:
                return self._model(ms)
            old = ms.model
            details = reg.changes(description, tags, None, old.description, old.tags)
            ms.model = replace(
                old,
                description=old.description if description is None else description,
                tags={**old.tags, **(tags or {})},
            )
            self._audited(
                ms, reg.model_event(project_id, name, "model.update", actor, details, _clock(ms))
            )
            return self._model(ms)

    def _delete_registered_model(self, project_id: str, name: str, actor: str) -> None:
        with self._lock:
            ms = self._model_state(project_id, name)
            del self._models[project_id, name]
            facts = {"versions": len(ms.versions), "aliases": dict(sorted(ms.aliases.items()))}
            event = reg.model_event(project_id, name, "model.delete", actor, facts, _clock(ms))
            self._audited(None, event)

    def _create_model_version(self, draft: ModelVersion) -> ModelVersion:
        with self._lock:
            ms = self._model_state(draft.project_id, draft.name)
            if draft.run_id is not None:
                self._state(draft.run_id)
            version = replace(
                draft,
                version=len(ms.versions) + 1,
                tags=dict(draft.tags),
                status=ModelVersionStatus.READY,
                aliases=(),
                gate_result=None,
                created_at=_clock(ms),
            )
            ms.versions.append(version)
            self._audited(ms, reg.version_created(version))
            return self._model_version(ms, version)

    def _get_model_version(self, project_id: str, name: str, version: int) -> ModelVersion:
        with self._lock:
            ms = self._model_state(project_id, name)
            return self._model_version(ms, self._model_version_state(ms, version))

    def _list_model_versions(
        self, project_id: str, name: str | None, run_id: str | None
    ) -> list[ModelVersion]:
        with self._lock:
            if name is not None:
                models = [self._model_state(project_id, name)]
            elif project_id not in self._projects:
                raise ProjectNotFound(project_id)
            else:
                models = [ms for (pid, _), ms in self._models.items() if pid == project_id]
            found = [
                self._model_version(ms, v)
                for ms in models
                for v in ms.versions
                if run_id is None or v.run_id == run_id
            ]
        return sorted(found, key=lambda v: (v.name, v.version))

    def _update_model_version(
        self,
        project_id: str,
        name: str,
        version: int,
        description: str | None,
        tags: dict[str, str] | None,
        status: ModelVersionStatus | None,
        actor: str,
    ) -> ModelVersion:
        with self._lock:
            ms = self._model_state(project_id, name)
            old = self._model_version_state(ms, version)
            if description is None and not tags and status is None:
                return self._model_version(ms, old)
            details = reg.changes(description, tags, status, old.description, old.tags, old.status)
            new = replace(
                old,
                description=old.description if description is None else description,
                tags={**old.tags, **(tags or {})},
                status=old.status if status is None else status,
            )
            ms.versions[version - 1] = new
            event = reg.version_event(
                project_id, name, version, "model_version.update", actor, details, _clock(ms)
            )
            self._audited(ms, event)
            return self._model_version(ms, new)

    def _set_model_version_gate_result(
        self, project_id: str, name: str, version: int, result: dict[str, Any], actor: str
    ) -> ModelVersion:
        with self._lock:
            ms = self._model_state(project_id, name)
            new = replace(self._model_version_state(ms, version), gate_result=result)
            ms.versions[version - 1] = new
            facts = {"version": version, "result": result}
            event = reg.version_event(
                project_id, name, version, "model_version.gate", actor, facts, _clock(ms)
            )
            self._audited(ms, event)
            return self._model_version(ms, new)

    def _set_model_alias(
        self,
        project_id: str,
        name: str,
        alias: str,
        version: int,
        actor: str,
        reason: str,
        expected_version: int | None,
    ) -> AuditEvent:
        with self._lock:
            ms = self._model_state(project_id, name)
            self._model_version_state(ms, version)
            previous = ms.aliases.get(alias)
            if expected_version is not None and previous != expected_version:
                raise reg.alias_moved(name, alias, previous, expected_version)
            ms.aliases[alias] = version
            event = reg.alias_event(
                project_id, name, alias, version, previous, actor, reason, _clock(ms)
            )
            self._audited(ms, event)
            return _copy_event(event)

    def _delete_model_alias(
        self, project_id: str, name: str, alias: str, actor: str, reason: str
    ) -> AuditEvent:
        with self._lock:
            ms = self._model_state(project_id, name)
            previous = ms.aliases.pop(alias, None)
            if previous is None:
                raise reg.missing_alias(name, alias)
            event = reg.alias_event(
                project_id, name, alias, None, previous, actor, reason, _clock(ms)
            )
            self._audited(ms, event)
            return _copy_event(event)

    def _get_model_version_by_alias(self, project_id: str, name: str, alias: str) -> ModelVersion:
        with self._lock:
            ms = self._model_state(project_id, name)
            version = ms.aliases.get(alias)
            if version is None:
                raise reg.missing_alias(name, alias)
            return self._model_version(ms, ms.versions[version - 1])

    def _log_audit_event(self, event: AuditEvent) -> AuditEvent:
        with self._lock:
            if event.project_id not in self._projects:
                raise ProjectNotFound(event.project_id)
            self._audit.append(event)
        return _copy_event(event)

    def _search_audit_events(
        self,
        project_id: str,
        object_type: str | None,
        object_name: str | None,
        action: str | None,
        since: int | None,
        limit: int,
    ) -> list[AuditEvent]:
        with self._lock:
            if project_id not in self._projects:
                raise ProjectNotFound(project_id)
            found = [
                (e.timestamp, seq, e)
                for seq, e in enumerate(self._audit)
                if e.project_id == project_id
                and (object_type is None or e.object_type == object_type)
                and (object_name is None or e.object_name == object_name)
                and (action is None or e.action == action)
                and (since is None or e.timestamp >= since)
            ]
        found.sort(key=lambda f: (f[0], f[1]), reverse=True)
        return [_copy_event(e) for _, _, e in found[:limit]]


def _clock(ms: _ModelState) -> int:
    """The time of a change to a model: now, but never before its last change (the clock may
    step back), so that its audit events sort in the order they happened."""
    return max(now_ms(), ms.model.updated_at)


def _copy_event(event: AuditEvent) -> AuditEvent:
    """A copy whose details the caller may change without changing the store."""
    return replace(event, details=copy.deepcopy(dict(event.details)))
