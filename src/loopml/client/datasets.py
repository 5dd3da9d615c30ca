"""Dataset metadata through the client: resolve ``datasets:/`` URIs, list, record lineage.

The data layer (:mod:`loopml.data`) hashes, stores and profiles the data itself; these methods are
the explicit, by-id side every layer above the client can use (the registry, serving and
monitoring resolve a training set's version the same way).

URIs: ``datasets:/<name>/<version>`` (a number, or a prefix of at least 8 hex characters of the
content digest), ``datasets:/<name>@latest`` and ``datasets:/<name>`` (the latest version).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from loopml.entities import Dataset, DatasetInput, DatasetVersion, Project
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.config import Settings
    from loopml.store.base import Store

__all__ = ["DatasetMethods", "parse_dataset_uri"]

SCHEME = "datasets:/"
_URI = re.compile(r"datasets:/+(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?/?")


def parse_dataset_uri(uri: str) -> tuple[str, str]:
    """Split ``datasets:/name/3``, ``datasets:/name@latest`` or ``datasets:/name`` into
    ``(name, version)`` (``version`` is ``"latest"`` unless given).

    Raises:
        InvalidArgument: not a dataset URI, or an alias other than ``latest``.
    """
    match = _URI.fullmatch(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise InvalidArgument(
            f"{uri!r} is not a dataset URI; write datasets:/NAME/VERSION, datasets:/NAME@latest "
            "or datasets:/NAME"
        )
    alias = match.group("alias")
    if alias is not None and alias != "latest":
        raise InvalidArgument(
            f"dataset URI {uri!r} names the alias {alias!r}; datasets have only @latest (use a "
            "version number or digest prefix: datasets:/NAME/3)"
        )
    return match.group("name"), match.group("version") or "latest"


class DatasetMethods:
    """The dataset methods of :class:`~loopml.Client` (a mixin: it needs ``store``,
    ``settings`` and the client's project-id cache)."""

    @property
    def store(self) -> Store:  # pragma: no cover - Client provides it
        raise NotImplementedError

    settings: Settings

    def _cached_project_id(
        self, name: str, lookup: Callable[[str], Project]
    ) -> str:  # pragma: no cover - Client provides it
        raise NotImplementedError

    def _existing_project_id(self, project: str | None) -> str:
        return self._cached_project_id(project or self.settings.project, self.store.get_project)

    def get_dataset_version(
        self,
        dataset: str | DatasetVersion,
        version: int | str | None = None,
        *,
        project: str | None = None,
    ) -> DatasetVersion:
        """Resolve a dataset version.

        Args:
            dataset: a ``datasets:/`` URI, a dataset name, or a version (returned as is).
            version: with a name: a number, ``"latest"`` (default) or a digest prefix.
            project: the project (default: ``LOOPML_PROJECT``).

        Raises:
            DatasetNotFound: no such dataset or version.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a malformed URI, name or version.
        """
        if isinstance(dataset, DatasetVersion):
            return dataset
        if not isinstance(dataset, str):
            raise InvalidArgument(
                f"dataset must be a datasets:/ URI or a name, not {type(dataset).__name__}"
            )
        if dataset.startswith("datasets:"):
            if version is not None:
                raise InvalidArgument(
                    f"{dataset!r} already names a version; pass either a URI or a name + version"
                )
            name, selector = parse_dataset_uri(dataset)
        else:
            name, selector = dataset, "latest" if version is None else str(version)
        return self.store.get_dataset_version(self._existing_project_id(project), name, selector)

    def get_dataset(self, name: str, *, project: str | None = None) -> Dataset:
        """A dataset (its latest version number and how many versions it has)."""
        return self.store.get_dataset(self._existing_project_id(project), name)

    def list_datasets(self, *, project: str | None = None) -> list[Dataset]:
        """The datasets of a project, by name."""
        return self.store.list_datasets(self._existing_project_id(project))

    def list_dataset_versions(
        self, name: str, *, project: str | None = None
    ) -> list[DatasetVersion]:
        """The versions of a dataset, newest first."""
        return self.store.list_dataset_versions(self._existing_project_id(project), name)

    def log_inputs(self, run_id: str, inputs: Sequence[tuple[DatasetVersion | str, str]]) -> None:
        """Record that a run used dataset versions, each in a role (``train``, ``test``...).

        Args:
            run_id: the run.
            inputs: ``(version, role)`` pairs; a version is a :class:`DatasetVersion` or a
                ``datasets:/`` URI.
        """
        resolved = [
            (self.get_dataset_version(v).id if isinstance(v, str) else v.id, role)
            for v, role in inputs
        ]
        self.store.log_inputs(run_id, resolved)

    def get_run_inputs(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions a run used, with their roles."""
        return self.store.get_run_inputs(run_id)

    def get_dataset_version_runs(self, dataset: str | DatasetVersion) -> list[DatasetInput]:
        """The runs that used a dataset version, with their roles (lineage the other way)."""
        return self.store.get_dataset_version_runs(self.get_dataset_version(dataset).id)
