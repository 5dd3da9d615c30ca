"""Datasets, their immutable versions, and the versions a run used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
