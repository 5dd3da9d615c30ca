"""Datasets on the SQL store: the :class:`~loopml.store.datasets.DatasetStore` half of
:class:`~loopml.store.sql.SqlStore`, as a mixin.

Creating a version is one write transaction that serialises on its dataset: SQLite holds the
write lock from the first statement (``BEGIN IMMEDIATE``), PostgreSQL locks the dataset's row
(``SELECT ... FOR UPDATE``) before it looks for the digest and the highest number. Two writers of
one dataset therefore run one after the other and the second sees the first's version; the
unique constraints on ``(dataset_id, version)`` and ``(dataset_id, digest)`` stand behind that,
and a transaction that still hits one is retried. None of this is a hot path, so it is plain
SQLAlchemy Core with the statements built once per process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.entities import Dataset, DatasetInput, DatasetVersion
from loopml.errors import DatasetNotFound, ProjectNotFound, RunNotFound, StoreError
from loopml.store.base import new_id
from loopml.store.datasets import ambiguous_prefix, missing_version
from loopml.store.sql.tables import dataset_versions, datasets, projects, run_inputs, runs

__all__ = ["SqlDatasetStore"]

_RETRIES = 5  # attempts of a version write that lost a race to a unique constraint

_dv, _ds, _ri = dataset_versions.c, datasets.c, run_inputs.c

# A version with its dataset's name and project: every read of versions starts from this.
_VERSION_COLUMNS = (
    _dv.id,
    _dv.dataset_id,
    _ds.project_id,
    _ds.name,
    _dv.version,
    _dv.digest,
    _dv.blob,
    _dv.size_bytes,
    _dv.num_rows,
    _dv.num_columns,
    _dv.schema,
    _dv.profile_blob,
    _dv.source,
    _dv.run_id,
    _dv.metadata,
    _dv.created_at,
)
_WITH_DATASET = dataset_versions.join(datasets, _dv.dataset_id == _ds.id)
_VERSIONS = sa.select(*_VERSION_COLUMNS).select_from(_WITH_DATASET)

_OF_DATASET = _VERSIONS.where(
    _ds.project_id == sa.bindparam("project_id"), _ds.name == sa.bindparam("name")
)
_BY_ID = _VERSIONS.where(_dv.id == sa.bindparam("id"))
_BY_DIGEST = _VERSIONS.where(
    _dv.dataset_id == sa.bindparam("dataset_id"), _dv.digest == sa.bindparam("digest")
)

# A dataset with its highest version number and number of versions.
_DATASETS = (
    sa.select(
        _ds.id,
        _ds.project_id,
        _ds.name,
        _ds.description,
        _ds.created_at,
        sa.func.coalesce(sa.func.max(_dv.version), 0).label("latest_version"),
        sa.func.count(_dv.id).label("num_versions"),
    )
    .select_from(datasets.outerjoin(dataset_versions, _dv.dataset_id == _ds.id))
    .group_by(_ds.id, _ds.project_id, _ds.name, _ds.description, _ds.created_at)
)
_DATASETS_OF = _DATASETS.where(_ds.project_id == sa.bindparam("project_id"))
_DATASET = _DATASETS_OF.where(_ds.name == sa.bindparam("name"))

_PROJECT_EXISTS = sa.select(projects.c.project_id).where(
    projects.c.project_id == sa.bindparam("project_id")
)
_RUN_EXISTS = sa.select(runs.c.run_id).where(runs.c.run_id == sa.bindparam("run_id"))
_DATASET_EXISTS = sa.select(_ds.id).where(
    _ds.project_id == sa.bindparam("project_id"), _ds.name == sa.bindparam("name")
)
_LOCK_DATASET = (
    sa.select(_ds.id, _ds.description)
    .where(_ds.project_id == sa.bindparam("project_id"), _ds.name == sa.bindparam("name"))
    .with_for_update()  # PostgreSQL: writers of one dataset queue here (SQLite ignores it)
)
_MAX_VERSION = sa.select(sa.func.max(_dv.version)).where(
    _dv.dataset_id == sa.bindparam("dataset_id")
)
_VERSION_IDS = sa.select(_dv.id).where(_dv.id.in_(sa.bindparam("ids", expanding=True)))
_INPUTS_OF_RUN = (
    sa.select(*_VERSION_COLUMNS, _ri.role, _ri.created_at.label("used_at"))
    .select_from(_WITH_DATASET.join(run_inputs, _ri.version_id == _dv.id))
    .where(_ri.run_id == sa.bindparam("run_id"))
)
_RUNS_OF_VERSION = sa.select(_ri.run_id, _ri.role, _ri.created_at).where(
    _ri.version_id == sa.bindparam("id")
)


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        dataset_id=row.dataset_id,
        project_id=row.project_id,
        name=row.name,
        version=row.version,
        digest=row.digest,
        blob=row.blob,
        size_bytes=row.size_bytes,
        num_rows=row.num_rows,
        num_columns=row.num_columns,
        schema=None if row.schema is None else json.loads(row.schema),
        profile_blob=row.profile_blob,
        source=row.source,
        run_id=row.run_id,
        metadata=json.loads(row.metadata),
        created_at=row.created_at,
    )


def _dataset(row: Any) -> Dataset:
    return Dataset(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        latest_version=int(row.latest_version),
        num_versions=int(row.num_versions),
    )


def _missing(
    conn: Connection, project_id: str, name: str, version: str | int | None = None
) -> Exception:
    """The error for a dataset read that found nothing: which of project, dataset or version
    is missing (checked only on this, the unhappy, path)."""
    if conn.execute(_PROJECT_EXISTS, {"project_id": project_id}).first() is None:
        return ProjectNotFound(project_id)
    found = conn.execute(_DATASET_EXISTS, {"project_id": project_id, "name": name}).first()
    if found is None or version is None:
        return DatasetNotFound(name)
    return DatasetNotFound(name, version)


class SqlDatasetStore:
    """The dataset methods of :class:`~loopml.store.sql.SqlStore` (mixed into it)."""

    if TYPE_CHECKING:
        _insert: Callable[..., Any]

        def _write(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _read(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _integrity(self, exc: BaseException) -> bool: ...

    def _create_dataset_version(
        self, project_id: str, name: str, description: str, draft: DatasetVersion
    ) -> tuple[DatasetVersion, bool]:
        add_dataset = (
            self._insert(datasets)
            .values(
                id=sa.bindparam("id"),
                project_id=sa.bindparam("project_id"),
                name=sa.bindparam("name"),
                description=sa.bindparam("description"),
                created_at=sa.bindparam("created_at"),
            )
            .on_conflict_do_nothing(index_elements=[_ds.project_id, _ds.name])
        )
        key = {"project_id": project_id, "name": name}

        def tx(conn: Connection) -> tuple[DatasetVersion, bool]:
            if conn.execute(_PROJECT_EXISTS, key).first() is None:
                raise ProjectNotFound(project_id)
            if (
                draft.run_id is not None
                and conn.execute(_RUN_EXISTS, {"run_id": draft.run_id}).first() is None
            ):
                raise RunNotFound(draft.run_id)
            conn.execute(
                add_dataset,
                {
                    **key,
                    "id": new_id(),
                    "description": description,
                    "created_at": draft.created_at,
                },
            )
            ds = conn.execute(_LOCK_DATASET, key).one()
            if description and description != ds.description:
                conn.execute(
                    datasets.update().where(_ds.id == ds.id).values(description=description)
                )
            same = conn.execute(_BY_DIGEST, {"dataset_id": ds.id, "digest": draft.digest}).first()
            if same is not None:
                return _version(same), False
            top = conn.execute(_MAX_VERSION, {"dataset_id": ds.id}).scalar()
            version_id = new_id()
            conn.execute(
                dataset_versions.insert().values(
                    id=version_id,
                    dataset_id=ds.id,
                    version=(top or 0) + 1,
                    digest=draft.digest,
                    blob=draft.blob,
                    size_bytes=draft.size_bytes,
                    num_rows=draft.num_rows,
                    num_columns=draft.num_columns,
                    schema=_dump(draft.schema),
                    profile_blob=draft.profile_blob,
                    source=draft.source,
                    run_id=draft.run_id,
                    metadata=_dump(draft.metadata),
                    created_at=draft.created_at,
                )
            )
            return _version(conn.execute(_BY_ID, {"id": version_id}).one()), True

        for attempt in range(_RETRIES):
            try:
                return self._write(tx)  # type: ignore[no-any-return]
            except StoreError as exc:
                # Only a lost race gets here (the dataset row lock prevents it on PostgreSQL,
                # the write lock on SQLite); run the transaction again to see the winner.
                if not self._integrity(exc) or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_dataset(self, project_id: str, name: str) -> Dataset:
        def tx(conn: Connection) -> Dataset:
            row = conn.execute(_DATASET, {"project_id": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, name)
            return _dataset(row)

        return self._read(tx)  # type: ignore[no-any-return]

    def _list_datasets(self, project_id: str) -> list[Dataset]:
        def tx(conn: Connection) -> list[Dataset]:
            rows = conn.execute(_DATASETS_OF, {"project_id": project_id}).all()
            if (
                not rows
                and conn.execute(_PROJECT_EXISTS, {"project_id": project_id}).first() is None
            ):
                raise ProjectNotFound(project_id)
            return [_dataset(r) for r in rows]

        # Sorted here, not in SQL: PostgreSQL would sort by its collation, not by code point.
        return sorted(self._read(tx), key=lambda d: d.name)

    def _update_dataset(self, project_id: str, name: str, description: str) -> Dataset:
        key = {"project_id": project_id, "name": name}

        def tx(conn: Connection) -> Dataset:
            conn.execute(
                datasets.update()
                .where(_ds.project_id == project_id, _ds.name == name)
                .values(description=description)
            )
            row = conn.execute(_DATASET, key).first()
            if row is None:
                raise _missing(conn, project_id, name)
            return _dataset(row)

        return self._write(tx)  # type: ignore[no-any-return]

    def _list_dataset_versions(self, project_id: str, name: str) -> list[DatasetVersion]:
        def tx(conn: Connection) -> list[DatasetVersion]:
            stmt = _OF_DATASET.order_by(_dv.version.desc())
            rows = conn.execute(stmt, {"project_id": project_id, "name": name}).all()
            if not rows:
                raise _missing(conn, project_id, name)
            return [_version(r) for r in rows]

        return self._read(tx)  # type: ignore[no-any-return]

    def _get_dataset_version(
        self, project_id: str, name: str, number: int | None, digest_prefix: str | None
    ) -> DatasetVersion:
        key = {"project_id": project_id, "name": name}
        if digest_prefix is not None and len(digest_prefix) == 64:
            stmt = _OF_DATASET.where(_dv.digest == digest_prefix)
        elif digest_prefix is not None:
            stmt = _OF_DATASET.where(
                sa.func.substr(_dv.digest, 1, len(digest_prefix)) == digest_prefix
            ).order_by(_dv.version)
        elif number is not None:
            stmt = _OF_DATASET.where(_dv.version == number)
        else:
            stmt = _OF_DATASET.order_by(_dv.version.desc()).limit(1)

        def tx(conn: Connection) -> DatasetVersion:
            rows = conn.execute(stmt, key).all()
            if not rows:
                raise _missing(conn, project_id, name, digest_prefix or number or "latest")
            if len(rows) > 1:
                raise ambiguous_prefix(name, digest_prefix or "", [_version(r) for r in rows])
            return _version(rows[0])

        return self._read(tx)  # type: ignore[no-any-return]

    def _get_dataset_version_by_id(self, version_id: str) -> DatasetVersion:
        def tx(conn: Connection) -> DatasetVersion:
            row = conn.execute(_BY_ID, {"id": version_id}).first()
            if row is None:
                raise missing_version(version_id)
            return _version(row)

        return self._read(tx)  # type: ignore[no-any-return]

    def _log_inputs(self, run_id: str, inputs: list[tuple[str, str]], created_at: int) -> None:
        add = self._insert(run_inputs).on_conflict_do_nothing()
        rows = [
            {"run_id": run_id, "version_id": vid, "role": role, "created_at": created_at}
            for vid, role in inputs
        ]

        def tx(conn: Connection) -> None:
            if conn.execute(_RUN_EXISTS, {"run_id": run_id}).first() is None:
                raise RunNotFound(run_id)
            wanted = list(dict.fromkeys(vid for vid, _ in inputs))
            found = {r.id for r in conn.execute(_VERSION_IDS, {"ids": wanted})}
            for vid in wanted:
                if vid not in found:
                    raise missing_version(vid)
            if rows:
                conn.execute(add, rows)

        self._write(tx)

    def _get_run_inputs(self, run_id: str) -> list[DatasetInput]:
        def tx(conn: Connection) -> list[DatasetInput]:
            if conn.execute(_RUN_EXISTS, {"run_id": run_id}).first() is None:
                raise RunNotFound(run_id)
            rows = conn.execute(_INPUTS_OF_RUN, {"run_id": run_id}).all()
            return [DatasetInput(run_id, _version(r), r.role, r.used_at) for r in rows]

        found: Sequence[DatasetInput] = self._read(tx)
        return sorted(
            found, key=lambda i: (i.dataset_version.name, i.dataset_version.version, i.role)
        )

    def _get_dataset_version_runs(self, version_id: str) -> list[DatasetInput]:
        def tx(conn: Connection) -> list[DatasetInput]:
            row = conn.execute(_BY_ID, {"id": version_id}).first()
            if row is None:
                raise missing_version(version_id)
            return [
                DatasetInput(r.run_id, _version(row), r.role, r.created_at)
                for r in conn.execute(_RUNS_OF_VERSION, {"id": version_id})
            ]

        found: Sequence[DatasetInput] = self._read(tx)
        return sorted(found, key=lambda i: (i.created_at, i.run_id, i.role))
