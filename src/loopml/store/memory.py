"""The in-memory store: the reference implementation of the :class:`Store` contract.

Everything lives in dicts behind one lock; nothing survives the process. It is what the SQL store
is checked against, and handy in notebooks and tests (``loopml.Client("memory://")``).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from loopml.entities import (
    ArtifactInfo,
    Dataset,
    DatasetInput,
    DatasetVersion,
    Environment,
    Metric,
    MetricHistory,
    Param,
    Project,
    Run,
    RunStatus,
    Tag,
)
from loopml.errors import (
    AlreadyExists,
    ArtifactNotFound,
    DatasetNotFound,
    ParamConflict,
    ProjectNotFound,
    RunNotFound,
)
from loopml.store import search
from loopml.store.base import (
    FAILURE_REASON_TAG,
    Store,
    environment_id,
    missing_environment,
    new_id,
)
from loopml.store.datasets import ambiguous_prefix, missing_version

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


class InMemoryStore(Store):
    """A thread-safe store in process memory."""

    def __init__(self, uri: str = "memory://") -> None:
        self.uri = uri
        self._lock = threading.RLock()
        self._projects: dict[str, Project] = {}
        self._runs: dict[str, _RunState] = {}
        self._envs: dict[str, Environment] = {}
        self._datasets: dict[tuple[str, str], _DatasetState] = {}  # by (project id, name)
        self._versions: dict[str, DatasetVersion] = {}  # by id
        self._seq = 0  # logging order, the last tie-break of "latest"

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
