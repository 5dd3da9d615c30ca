"""The dataset half of the metadata store contract.

:class:`DatasetStore` is an abstract mixin that :class:`~loopml.store.Store` inherits: datasets,
their immutable versions, and the inputs of runs (which dataset versions a run used, and as
what). It follows the same template as the rest of the contract: public methods validate their
arguments (:mod:`loopml.store.validation`) and call protected ``_methods`` that each backend
implements and that may assume valid input.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.entities import Dataset, DatasetInput, DatasetVersion, now_ms
from loopml.errors import DatasetNotFound, InvalidArgument
from loopml.store import validation

__all__ = ["DatasetStore"]


class DatasetStore(abc.ABC):
    """Datasets, dataset versions and run inputs (mixed into :class:`~loopml.store.Store`).

    Contract, on top of the store-wide one (thread and process safety, immutable entities, one
    transaction per write, validation before storage):

    * **Names.** A dataset is named within its project (``project_id`` is the project's id);
      names are case-sensitive and contain no ``/`` or ``@`` (see
      :func:`~loopml.store.validation.check_dataset_name`).
    * **Versions are immutable** and numbered 1, 2, 3... per dataset. A version is identified by
      its content ``digest``: logging content whose digest the dataset already has returns that
      version and creates nothing. Concurrent writers (threads or processes) never produce two
      versions with one number or one digest. Versions are never deleted; deleting the run that
      logged a version sets its ``run_id`` to None.
    * **Inputs** record that a run used a dataset version in a role; logging the same
      ``(run, version, role)`` again is a no-op. Deleting a run deletes its inputs.
    * **Errors.** An unknown dataset or version raises :class:`~loopml.errors.DatasetNotFound`;
      an unknown project :class:`~loopml.errors.ProjectNotFound`; an unknown run
      :class:`~loopml.errors.RunNotFound`; a bad argument (or an ambiguous digest prefix)
      :class:`~loopml.errors.InvalidArgument`.
    """

    def create_dataset_version(
        self,
        project_id: str,
        name: str,
        *,
        digest: str,
        blob: str,
        size_bytes: int,
        num_rows: int,
        num_columns: int,
        schema: Mapping[str, Any] | None = None,
        profile_blob: str | None = None,
        source: str = "",
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Record a dataset version, creating the dataset on first use (idempotent by digest).

        Args:
            project_id: the project's id.
            name: the dataset's name in the project.
            digest: the content hash (64 lowercase hex) the data layer computed.
            blob: sha256 of the stored Parquet file in the artifact store.
            size_bytes: size of that file. num_rows, num_columns: its shape.
            schema: the data contract, a JSON-ready dict.
            profile_blob: sha256 of the profile's JSON blob.
            source: where the data came from (a path, a URL, ``sql: <query>``).
            run_id: the run that logged it.
            metadata: JSON-ready facts about how it was made (e.g. a split's seed).
            description: the dataset's description; when not empty it replaces the stored one.

        Returns:
            ``(version, True)`` for a new version numbered one above the dataset's highest, or
            ``(existing, False)`` when the dataset already has a version with this digest (the
            other arguments are then ignored: versions are immutable).

        Raises:
            ProjectNotFound: the project does not exist.
            RunNotFound: ``run_id`` names no run.
            InvalidArgument: a bad name, digest, count, schema, metadata or source.
        """
        validation.check_name(project_id, "project id")
        validation.check_dataset_name(name)
        validation.check_sha256(digest, "dataset digest")
        validation.check_sha256(blob, "dataset blob")
        if profile_blob is not None:
            validation.check_sha256(profile_blob, "dataset profile_blob")
        sizes = (
            validation.check_int(size_bytes, "size_bytes", minimum=0),
            validation.check_int(num_rows, "num_rows", minimum=0),
            validation.check_int(num_columns, "num_columns", minimum=0),
        )
        schema_ = None if schema is None else validation.check_json_dict(schema, "schema")
        meta = {} if metadata is None else validation.check_json_dict(metadata, "metadata")
        validation.check_source(source)
        if run_id is not None:
            validation.check_run_id(run_id)
        validation.check_name(description, "dataset description", allow_empty=True)
        return self._create_dataset_version(
            project_id,
            name,
            description,
            DatasetVersion(
                id="",  # the backend assigns the id, the dataset and the number
                dataset_id="",
                project_id=project_id,
                name=name,
                version=0,
                digest=digest,
                blob=blob,
                size_bytes=sizes[0],
                num_rows=sizes[1],
                num_columns=sizes[2],
                schema=schema_,
                profile_blob=profile_blob,
                source=source,
                run_id=run_id,
                metadata=meta,
                created_at=now_ms(),
            ),
        )

    def get_dataset(self, project_id: str, name: str) -> Dataset:
        """A dataset with its latest version number and number of versions.

        Raises:
            DatasetNotFound: the project has no dataset with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        return self._get_dataset(project_id, validation.check_dataset_name(name))

    def list_datasets(self, project_id: str) -> list[Dataset]:
        """The datasets of a project, by name.

        Raises:
            ProjectNotFound: the project does not exist.
        """
        return self._list_datasets(validation.check_name(project_id, "project id"))

    def update_dataset(self, project_id: str, name: str, *, description: str) -> Dataset:
        """Change a dataset's description; returns the dataset as stored.

        Raises:
            DatasetNotFound: the project has no dataset with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        validation.check_dataset_name(name)
        validation.check_name(description, "dataset description", allow_empty=True)
        return self._update_dataset(project_id, name, description)

    def list_dataset_versions(self, project_id: str, name: str) -> list[DatasetVersion]:
        """Every version of a dataset, newest (highest number) first.

        Raises:
            DatasetNotFound: the project has no dataset with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        return self._list_dataset_versions(project_id, validation.check_dataset_name(name))

    def get_dataset_version(
        self, project_id: str, name: str, version: int | str = "latest"
    ) -> DatasetVersion:
        """One version of a dataset.

        Args:
            project_id: the project's id.
            name: the dataset's name.
            version: a number (``3`` or ``"3"``), ``"latest"``, or a prefix of at least 8 hex
                characters of the content digest.

        Raises:
            DatasetNotFound: no such dataset, or it has no such version.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a malformed version, or a digest prefix two versions share.
        """
        validation.check_name(project_id, "project id")
        validation.check_dataset_name(name)
        selector = validation.check_dataset_version(version)
        number = selector if isinstance(selector, int) else None
        prefix = selector if isinstance(selector, str) else None
        return self._get_dataset_version(project_id, name, number, prefix)

    def get_dataset_version_by_id(self, version_id: str) -> DatasetVersion:
        """A dataset version by its id (``DatasetVersion.id``).

        Raises:
            DatasetNotFound: no version has this id.
        """
        return self._get_dataset_version_by_id(
            validation.check_id(version_id, "dataset version id")
        )

    def log_inputs(self, run_id: str, inputs: Sequence[tuple[str, str]]) -> None:
        """Record that a run used dataset versions: ``(dataset_version_id, role)`` pairs.

        All or nothing, and idempotent per ``(run, version, role)``: a pair logged again keeps
        its first time. One version may be logged in several roles.

        Raises:
            RunNotFound: the run does not exist.
            DatasetNotFound: a version id names no version (nothing is written).
            InvalidArgument: a malformed id or role.
        """
        validation.check_run_id(run_id)
        given: object = inputs  # checked: callers outside mypy pass anything
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
            raise InvalidArgument(
                f"inputs must be a list of (dataset_version_id, role) pairs, got "
                f"{type(given).__name__}"
            )
        pairs: dict[tuple[str, str], None] = {}
        for item in given:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise InvalidArgument(
                    f"each input must be a (dataset_version_id, role) pair, got {item!r:.80}"
                )
            version_id = validation.check_id(item[0], "dataset version id")
            pairs[version_id, validation.check_role(item[1])] = None
        self._log_inputs(run_id, list(pairs), now_ms())

    def get_run_inputs(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions a run used, by dataset name, version number, then role.

        Raises:
            RunNotFound: the run does not exist.
        """
        return self._get_run_inputs(validation.check_run_id(run_id))

    def get_dataset_version_runs(self, version_id: str) -> list[DatasetInput]:
        """The runs that used a dataset version, in the order they logged it (then by run id
        and role).

        Raises:
            DatasetNotFound: no version has this id.
        """
        return self._get_dataset_version_runs(
            validation.check_id(version_id, "dataset version id")
        )

    # --- what implementations provide ----------------------------------------------------------

    @abc.abstractmethod
    def _create_dataset_version(
        self, project_id: str, name: str, description: str, draft: DatasetVersion
    ) -> tuple[DatasetVersion, bool]:
        """Store ``draft`` with a new id, its dataset's id and the next number (see the public
        method), or return the version with ``draft.digest``."""

    @abc.abstractmethod
    def _get_dataset(self, project_id: str, name: str) -> Dataset: ...

    @abc.abstractmethod
    def _list_datasets(self, project_id: str) -> list[Dataset]: ...

    @abc.abstractmethod
    def _update_dataset(self, project_id: str, name: str, description: str) -> Dataset: ...

    @abc.abstractmethod
    def _list_dataset_versions(self, project_id: str, name: str) -> list[DatasetVersion]: ...

    @abc.abstractmethod
    def _get_dataset_version(
        self, project_id: str, name: str, number: int | None, digest_prefix: str | None
    ) -> DatasetVersion:
        """The version numbered ``number``, the one whose digest starts with ``digest_prefix``
        (InvalidArgument when several do), or the latest when both are None."""

    @abc.abstractmethod
    def _get_dataset_version_by_id(self, version_id: str) -> DatasetVersion: ...

    @abc.abstractmethod
    def _log_inputs(self, run_id: str, inputs: list[tuple[str, str]], created_at: int) -> None: ...

    @abc.abstractmethod
    def _get_run_inputs(self, run_id: str) -> list[DatasetInput]: ...

    @abc.abstractmethod
    def _get_dataset_version_runs(self, version_id: str) -> list[DatasetInput]: ...


def ambiguous_prefix(name: str, prefix: str, matches: Sequence[DatasetVersion]) -> InvalidArgument:
    """The error for a digest prefix that several versions of a dataset share."""
    listed = ", ".join(f"{v.version} ({v.digest[:12]})" for v in matches)
    return InvalidArgument(
        f"digest prefix {prefix!r} of dataset {name!r} matches several versions: {listed}; "
        "give more characters of the digest or the version number"
    )


def missing_version(version_id: str) -> DatasetNotFound:
    """The error for an unknown dataset version id."""
    return DatasetNotFound(
        version_id,
        message=f"dataset version {version_id!r} does not exist; take the id from "
        "DatasetVersion.id (list versions with `loopml data show NAME`)",
    )
