"""The model registry through the client: register versions, resolve ``models:/`` URIs, move
aliases (and roll them back), read the audit trail, and follow lineage both ways.

Every change is attributed to :func:`~loopml.client.context.current_actor` (``LOOPML_USER``,
else the login name) in the audit trail. Every method takes ``project`` (default: the client's
project, ``LOOPML_PROJECT``).

URIs: ``models:/<name>/<version>``, ``models:/<name>@<alias>`` and ``models:/<name>/latest``
(the highest version that is ``ready``, not archived).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopml.entities import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    Project,
    RegisteredModel,
    Run,
)
from loopml.errors import AlreadyExists, InvalidArgument, ModelNotFound, RunNotFound
from loopml.store.registry import check_alias, check_model_name, check_version
from loopml.store.uris import parse_model_uri as parse_model_uri

if TYPE_CHECKING:
    from loopml.config import Settings
    from loopml.store.base import Store

__all__ = ["RegistryMethods", "parse_model_uri"]

_HISTORY_LIMIT = 10_000  # alias events read to find where an alias pointed before


def _actor() -> str:
    # Imported here: loopml.client.context imports the Client, which imports this module.
    from loopml.client.context import current_actor

    return current_actor()


class RegistryMethods:
    """The model-registry methods of :class:`~loopml.Client` (a mixin: it needs ``store``,
    ``settings`` and the client's project-id cache)."""

    @property
    def store(self) -> Store:  # pragma: no cover - Client provides it
        raise NotImplementedError

    settings: Settings

    if TYPE_CHECKING:

        def _cached_project_id(self, name: str, lookup: Callable[[str], Project]) -> str: ...

        def get_run(self, run_id: str) -> Run: ...

    def _model_project_id(self, project: str | None, *, create: bool = False) -> str:
        """The project's id (``create``: creating the project when it does not exist)."""
        lookup = self.store.get_or_create_project if create else self.store.get_project
        return self._cached_project_id(project or self.settings.project, lookup)

    # --- registered models -----------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> RegisteredModel:
        """Register a model name (the project is created when missing).

        Raises:
            AlreadyExists: the project has a model with this name.
        """
        pid = self._model_project_id(project, create=True)
        return self.store.create_registered_model(
            pid, name, description=description, tags=tags, actor=_actor()
        )

    def get_registered_model(self, name: str, *, project: str | None = None) -> RegisteredModel:
        """A registered model, with its tags, aliases and latest version number.

        Raises:
            ModelNotFound: no such model.
        """
        return self.store.get_registered_model(self._model_project_id(project), name)

    def list_registered_models(self, *, project: str | None = None) -> list[RegisteredModel]:
        """The registered models of a project, by name."""
        return self.store.list_registered_models(self._model_project_id(project))

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> RegisteredModel:
        """Change a model's description and set tags (given keys are set or replaced)."""
        return self.store.update_registered_model(
            self._model_project_id(project),
            name,
            description=description,
            tags=tags,
            actor=_actor(),
        )

    def delete_registered_model(self, name: str, *, project: str | None = None) -> None:
        """Delete a model with its versions and aliases (the audit trail keeps its history)."""
        self.store.delete_registered_model(self._model_project_id(project), name, actor=_actor())

    # --- versions ------------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        flavor: str,
        signature: Mapping[str, Any] | None = None,
        manifest_digest: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> ModelVersion:
        """Register a new version of a model, registering the model (and creating the project)
        first when needed; safe when other processes register the same model at once.

        Args:
            name: the model's name.
            source: where the model files are, e.g. ``runs:/<run_id>/model``.
            run_id: the run that trained it (lineage).
            flavor: how to load it (``sklearn``, ``onnx``...).
            signature: its input and output schema, a JSON-ready dict.
            manifest_digest: sha256 of the model's manifest file.
            description: free text. tags: string labels.
            project: the project (default: the client's).

        Returns:
            The new version, numbered one above the model's latest.
        """
        pid = self._model_project_id(project, create=True)
        actor = _actor()

        def create() -> ModelVersion:
            return self.store.create_model_version(
                pid,
                name,
                source=source,
                run_id=run_id,
                flavor=flavor,
                signature=signature,
                manifest_digest=manifest_digest,
                description=description,
                tags=tags,
                actor=actor,
            )

        try:
            return create()
        except ModelNotFound:
            try:
                self.store.create_registered_model(pid, name, actor=actor)
            except AlreadyExists:
                pass  # another process registered it meanwhile: use theirs
            return create()

    def get_model_version(
        self, name: str, version: int, *, project: str | None = None
    ) -> ModelVersion:
        """One version of a model.

        Raises:
            ModelNotFound: no such model or version.
        """
        return self.store.get_model_version(self._model_project_id(project), name, version)

    def get_model_version_by_alias(
        self, name: str, alias: str, *, project: str | None = None
    ) -> ModelVersion:
        """The version an alias points at.

        Raises:
            ModelNotFound: no such model or alias.
        """
        return self.store.get_model_version_by_alias(self._model_project_id(project), name, alias)

    def resolve_model_uri(self, uri: str, *, project: str | None = None) -> ModelVersion:
        """The version a ``models:/`` URI names (see :func:`parse_model_uri`); ``latest`` is the
        highest version that is ``ready``.

        Raises:
            InvalidArgument: a malformed URI.
            ModelNotFound: no such model, version or alias, or no ready version for ``latest``.
        """
        name, version, alias, _latest = parse_model_uri(uri)
        if version is not None:
            return self.get_model_version(name, version, project=project)
        if alias is not None:
            return self.get_model_version_by_alias(name, alias, project=project)
        ready = [
            v
            for v in self.list_model_versions(name, project=project)
            if v.status is ModelVersionStatus.READY
        ]
        if not ready:
            raise ModelNotFound(
                name,
                "latest",
                message=f"model {name!r} has no ready version, so {uri.strip()!r} names nothing; "
                "register one, or set an archived version back to ready",
            )
        return ready[-1]

    def list_model_versions(
        self, name: str | None = None, *, run_id: str | None = None, project: str | None = None
    ) -> list[ModelVersion]:
        """Versions of one model (or of every model), optionally only those ``run_id`` trained;
        by name, then version ascending."""
        return self.store.list_model_versions(self._model_project_id(project), name, run_id=run_id)

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        status: ModelVersionStatus | str | None = None,
        project: str | None = None,
    ) -> ModelVersion:
        """Change a version's description or status (``ready``, ``archived``) and set tags."""
        return self.store.update_model_version(
            self._model_project_id(project),
            name,
            version,
            description=description,
            tags=tags,
            status=status,
            actor=_actor(),
        )

    def set_model_version_gate_result(
        self,
        name: str,
        version: int,
        result: Mapping[str, Any],
        *,
        project: str | None = None,
    ) -> ModelVersion:
        """Record the outcome of a release gate on a version (a JSON-ready dict)."""
        return self.store.set_model_version_gate_result(
            self._model_project_id(project), name, version, result, actor=_actor()
        )

    # --- aliases -------------------------------------------------------------------------------

    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int,
        reason: str = "",
        *,
        project: str | None = None,
    ) -> AuditEvent:
        """Point an alias (``champion``) at a version, creating or moving it; returns the
        ``alias.set`` audit event.

        Raises:
            ModelNotFound: no such model or version.
        """
        return self.store.set_model_alias(
            self._model_project_id(project), name, alias, version, actor=_actor(), reason=reason
        )

    def delete_model_alias(
        self, name: str, alias: str, reason: str = "", *, project: str | None = None
    ) -> AuditEvent:
        """Remove an alias; returns the ``alias.delete`` audit event.

        Raises:
            ModelNotFound: no such model or alias.
        """
        return self.store.delete_model_alias(
            self._model_project_id(project), name, alias, actor=_actor(), reason=reason
        )

    def alias_history(
        self, name: str, alias: str, *, project: str | None = None
    ) -> list[AuditEvent]:
        """Every ``alias.set`` and ``alias.delete`` event of an alias, newest first."""
        check_model_name(name)
        check_alias(alias)
        return self.search_audit_events(
            object_type="alias",
            object_name=f"{name}@{alias}",
            max_results=_HISTORY_LIMIT,
            project=project,
        )

    def rollback_alias(
        self,
        name: str,
        alias: str,
        to_version: int | None = None,
        reason: str = "",
        *,
        project: str | None = None,
    ) -> AuditEvent:
        """Move an alias back to the version it pointed at before its latest move (found in
        the audit trail), or to ``to_version``; returns the ``alias.set`` audit event.

        The move only happens if the alias still points where it did when the history was
        read; if another move came in between, nothing changes and Conflict is raised.

        Raises:
            ModelNotFound: no such model or alias, or ``to_version`` does not exist.
            InvalidArgument: the alias has no earlier version (it was set only once since it
                was created) and no ``to_version`` is given.
            Conflict: the alias moved while rolling back; read it again and retry.
        """
        pid = self._model_project_id(project)
        current = self.store.get_model_version_by_alias(pid, name, alias).version
        target = check_version(to_version) if to_version is not None else None
        if target is None:
            target = _version_before(self.alias_history(name, alias, project=project), current)
        if target is None:
            raise InvalidArgument(
                f"alias {alias!r} of model {name!r} points at version {current} and has not "
                "pointed anywhere else since it was set; there is nothing to roll back to "
                "(pass to_version, or see alias_history)"
            )
        return self.store.set_model_alias(
            pid,
            name,
            alias,
            target,
            actor=_actor(),
            reason=reason or f"rollback from version {current} to {target}",
            expected_version=current,
        )

    # --- audit trail and lineage ---------------------------------------------------------------

    def search_audit_events(
        self,
        *,
        object_type: str | None = None,
        object_name: str | None = None,
        action: str | None = None,
        since: int | None = None,
        max_results: int = 100,
        project: str | None = None,
    ) -> list[AuditEvent]:
        """Audit events of a project, newest first (see
        :meth:`~loopml.store.Store.search_audit_events` for the filters)."""
        return self.store.search_audit_events(
            self._model_project_id(project),
            object_type=object_type,
            object_name=object_name,
            action=action,
            since=since,
            max_results=max_results,
        )

    def model_lineage(
        self, name: str, version: int, *, project: str | None = None
    ) -> dict[str, Any]:
        """Where a model version came from.

        Returns:
            ``{"model_version": ModelVersion, "run": Run | None, "inputs": [DatasetInput]}``:
            the run that trained it (None when it has none, or the run was deleted) and the
            dataset versions that run used, with their roles.
        """
        mv = self.get_model_version(name, version, project=project)
        run, inputs = None, []
        if mv.run_id is not None:
            try:
                run = self.get_run(mv.run_id)
                inputs = self.store.get_run_inputs(mv.run_id)
            except RunNotFound:  # deleted since the version was read
                run, inputs = None, []
        return {"model_version": mv, "run": run, "inputs": inputs}

    def model_versions_for_dataset(
        self, dataset_name: str, version: int | str, *, project: str | None = None
    ) -> list[ModelVersion]:
        """The model versions trained by runs that used a dataset version (in any role), in the
        same project; by model name, then version.

        Args:
            dataset_name: the dataset's name.
            version: its version: a number, ``"latest"`` or a digest prefix.
            project: the project of the dataset and the models.

        Raises:
            DatasetNotFound: no such dataset or version.
        """
        pid = self._model_project_id(project)
        dv = self.store.get_dataset_version(pid, dataset_name, version)
        run_ids = dict.fromkeys(u.run_id for u in self.store.get_dataset_version_runs(dv.id))
        found: dict[tuple[str, int], ModelVersion] = {}
        for run_id in run_ids:
            for mv in self.store.list_model_versions(pid, run_id=run_id):
                found[mv.name, mv.version] = mv
        return [found[key] for key in sorted(found)]


def _version_before(history: list[AuditEvent], current: int) -> int | None:
    """The version an alias pointed at before its latest move to ``current``, from its events
    (newest first); None when it has not pointed anywhere else since it was (re)created."""
    for event in history:
        if event.action != "alias.set":
            return None  # deleted: nothing before the re-creation counts
        version, previous = event.details.get("version"), event.details.get("previous")
        if version != current or previous is None:
            return None
        if previous != current:
            return int(previous)
        # A set to the version it already had is not a move: look further back.
    return None
