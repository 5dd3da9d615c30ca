"""The model-registry half of the metadata store contract, with the audit trail.

:class:`RegistryStore` is an abstract mixin that :class:`~loopml.store.Store` inherits:
registered models, their immutable auto-numbered versions, aliases that point at versions, and
the audit events every change writes. It follows the template of the rest of the contract:
public methods validate their arguments and call protected ``_methods`` that each backend
implements and that may assume valid input. The helpers at the bottom (:func:`new_event` and
the ``*_details`` functions) build the audit events, so that every backend records the same
facts in the same shape.
"""

from __future__ import annotations

import abc
import contextvars
import re
import uuid
from collections.abc import Mapping
from typing import Any

from loopml.entities import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    Tag,
    now_ms,
)
from loopml.errors import Conflict, InvalidArgument, ModelNotFound
from loopml.store import validation

__all__ = [
    "AUDIT_ORIGIN",
    "RegistryStore",
    "alias_event",
    "alias_moved",
    "changes",
    "check_alias",
    "check_model_name",
    "check_version",
    "missing_alias",
    "model_event",
    "new_event",
    "version_created",
    "version_event",
]

#: Where the changes of this context come from, for the audit events the store writes itself:
#: ``local``, or (set by ``loopml server`` for each request) the client's address.
AUDIT_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar(
    "loopml_audit_origin", default="local"
)

MAX_DESCRIPTION_LENGTH = 16_384
MAX_REASON_LENGTH = 4_096
MAX_SOURCE_LENGTH = 16_384
# Audit fields an index covers: short enough for a PostgreSQL B-tree entry (about 2.7 kB) even
# in four-byte characters.
MAX_OBJECT_NAME_LENGTH = 512
MAX_ACTION_LENGTH = 64
MAX_ALIAS_LENGTH = 64

_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # text may hold newlines and tabs


# --- validation ------------------------------------------------------------------------------


def check_model_name(value: object) -> str:
    """A model name: a display name (see :func:`~loopml.store.validation.check_name`) without
    ``/``, ``@`` or surrounding spaces, so that ``models:/<name>/<version>`` and
    ``models:/<name>@<alias>`` parse back to it."""
    name = validation.check_name(value, "model name")
    if "/" in name or "@" in name or name != name.strip():
        raise InvalidArgument(
            f"model name {name!r:.80} cannot contain '/' or '@' or start or end with a space "
            "(they separate the parts of a models:/ URI); use e.g. 'churn-classifier'"
        )
    return name


def check_alias(value: object) -> str:
    """An alias name such as ``champion``: letters, digits, ``_`` and ``-``, at most 64, not only
    digits (that would read as a version) and not ``latest`` (``models:/NAME/latest``)."""
    if (
        not isinstance(value, str)
        or not _ALIAS_RE.match(value)
        or len(value) > MAX_ALIAS_LENGTH
        or value.isdigit()
        or value.lower() == "latest"
    ):
        raise InvalidArgument(
            f"alias {value!r:.80} is not valid: use letters, digits, '_' and '-' (at most "
            f"{MAX_ALIAS_LENGTH}), not only digits and not 'latest'; e.g. 'champion'"
        )
    return value


def check_version(value: object) -> int:
    """A model version number: an int of at least 1."""
    return validation.check_int(value, "model version", minimum=1)


def _check_text(
    value: object, what: str, limit: int, *, allow_empty: bool = True, one_line: bool = False
) -> str:
    """Free text (a description, a reason, a URI) of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} {value!r:.80}")
    if not allow_empty and not value.strip():
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidArgument(f"{what} is {len(value)} characters long; the limit is {limit}")
    if _CONTROL_RE.search(value) or (one_line and ("\n" in value or "\t" in value)):
        raise InvalidArgument(f"{what} {value!r:.80} contains control characters; remove them")
    return value


def _check_tags(tags: object) -> dict[str, str]:
    """Tags: a dict of keys to string values (see :func:`~loopml.store.validation.check_tag`)."""
    checked = validation.check_mapping(tags, "tags")
    return {t.key: t.value for t in (validation.check_tag(Tag(k, v)) for k, v in checked.items())}


def _check_status(value: object) -> ModelVersionStatus:
    if isinstance(value, str) and value in ModelVersionStatus._value2member_map_:
        return ModelVersionStatus(value)
    allowed = ", ".join(s.value for s in ModelVersionStatus)
    raise InvalidArgument(f"unknown model version status {value!r:.40}; use one of {allowed}")


def _check_actor(actor: object) -> str:
    return validation.check_name(actor, "actor")


def _check_short_key(value: object, what: str) -> str:
    """An audit action or object type: a key (see :func:`~loopml.store.validation.check_key`)
    of at most 64 characters, e.g. ``alias.set`` or ``model_version``."""
    key = validation.check_key(value, what)
    if len(key) > MAX_ACTION_LENGTH:
        raise InvalidArgument(
            f"{what} {key[:40]!r}... is {len(key)} characters long; the limit is "
            f"{MAX_ACTION_LENGTH}"
        )
    return key


class RegistryStore(abc.ABC):
    """Registered models, model versions, aliases and audit events (mixed into
    :class:`~loopml.store.Store`).

    Contract, on top of the store-wide one (thread and process safety, immutable entities, one
    transaction per write, validation before storage):

    * **Names.** A model is named within its project (``project_id`` is the project's id); names
      are case-sensitive and contain no ``/`` or ``@`` (:func:`check_model_name`). Aliases are
      like ``champion`` (:func:`check_alias`).
    * **Versions** are numbered 1, 2, 3... per model and never renumbered: concurrent writers
      (threads or processes, on SQLite and PostgreSQL) never get one number twice. Their
      source, run, flavor, signature and manifest digest never change; description, tags,
      status and gate result may. Deleting the run a version came from sets its ``run_id`` to
      None. Versions go only with their model.
    * **Aliases** point at one existing version each; setting an alias that exists moves it.
    * **Audit.** Every change (create, update, delete, new version, gate result, alias set or
      deleted) writes an :class:`~loopml.entities.AuditEvent` in the same transaction as the
      change: both happen or neither does. Events are never changed or deleted, also when their
      model is. Their ``timestamp`` is taken when the change is made, under the lock that
      orders changes of one model, and is never earlier than the model's last change, so a
      model's events sort (newest first, then latest written first) in the order they
      happened, even when the writers' clocks disagree.
    * **Errors.** An unknown model, version or alias raises :class:`~loopml.errors.ModelNotFound`
      (``version`` is the number, ``"@alias"`` or None for the model itself); an unknown
      project :class:`~loopml.errors.ProjectNotFound`; an unknown run
      :class:`~loopml.errors.RunNotFound`; a duplicate model name
      :class:`~loopml.errors.AlreadyExists`; a bad argument
      :class:`~loopml.errors.InvalidArgument`; an alias that moved since the caller read it
      (``expected_version``) :class:`~loopml.errors.Conflict`.
    """

    # --- registered models ---------------------------------------------------------------------

    def create_registered_model(
        self,
        project_id: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        actor: str,
    ) -> RegisteredModel:
        """Register a model name in a project (audited as ``model.create``).

        Args:
            project_id: the project's id.
            name: the model's name.
            description: free text. tags: string labels.
            actor: who makes the change (for the audit trail).

        Raises:
            AlreadyExists: the project has a model with this name.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, description, tag or actor.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        _check_text(description, "model description", MAX_DESCRIPTION_LENGTH)
        return self._create_registered_model(
            project_id, name, description, _check_tags(tags), _check_actor(actor)
        )

    def get_registered_model(self, project_id: str, name: str) -> RegisteredModel:
        """A registered model with its tags, aliases and latest version number.

        Raises:
            ModelNotFound: the project has no model with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        return self._get_registered_model(project_id, check_model_name(name))

    def list_registered_models(self, project_id: str) -> list[RegisteredModel]:
        """The registered models of a project, by name.

        Raises:
            ProjectNotFound: the project does not exist.
        """
        return self._list_registered_models(validation.check_name(project_id, "project id"))

    def update_registered_model(
        self,
        project_id: str,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str,
    ) -> RegisteredModel:
        """Change a model's description and set tags (given keys are set or replaced, others
        kept); audited as ``model.update`` when anything is given. Returns the model as stored.

        Raises:
            ModelNotFound: the project has no model with this name.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad description, tag or actor.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        if description is not None:
            _check_text(description, "model description", MAX_DESCRIPTION_LENGTH)
        return self._update_registered_model(
            project_id, name, description, _check_tags(tags) or None, _check_actor(actor)
        )

    def delete_registered_model(self, project_id: str, name: str, *, actor: str) -> None:
        """Delete a model with its versions and aliases (audited as ``model.delete``; its
        earlier audit events stay). The name may then be registered again, from version 1.

        Raises:
            ModelNotFound: the project has no model with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        self._delete_registered_model(project_id, check_model_name(name), _check_actor(actor))

    # --- versions ------------------------------------------------------------------------------

    def create_model_version(
        self,
        project_id: str,
        name: str,
        *,
        source: str,
        run_id: str | None = None,
        flavor: str,
        signature: Mapping[str, Any] | None = None,
        manifest_digest: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        actor: str,
    ) -> ModelVersion:
        """Register a new version of a model, numbered one above its latest (audited as
        ``model_version.create``). The version is ``ready``.

        Args:
            project_id: the project's id.
            name: the registered model (it must exist).
            source: where the model files are, e.g. ``runs:/<run_id>/model``.
            run_id: the run that trained it (lineage).
            flavor: how to load it (``sklearn``, ``onnx``...).
            signature: its input and output schema, a JSON-ready dict.
            manifest_digest: sha256 (64 lowercase hex) of the model's manifest file.
            description: free text. tags: string labels.
            actor: who registers it (stored as ``created_by``).

        Raises:
            ModelNotFound: the model is not registered.
            ProjectNotFound: the project does not exist.
            RunNotFound: ``run_id`` names no run.
            InvalidArgument: a bad argument.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        _check_text(source, "model version source", MAX_SOURCE_LENGTH, allow_empty=False)
        if run_id is not None:
            validation.check_run_id(run_id)
        validation.check_key(flavor, "model flavor")
        sig = None if signature is None else validation.check_json_dict(signature, "signature")
        validation.check_sha256(manifest_digest, "manifest_digest")
        _check_text(description, "model version description", MAX_DESCRIPTION_LENGTH)
        draft = ModelVersion(
            project_id=project_id,
            name=name,
            version=0,  # the backend assigns the number and the time
            source=source,
            run_id=run_id,
            flavor=flavor,
            signature=sig,
            manifest_digest=manifest_digest,
            description=description,
            tags=_check_tags(tags),
            created_by=_check_actor(actor),
        )
        return self._create_model_version(draft)

    def get_model_version(self, project_id: str, name: str, version: int) -> ModelVersion:
        """One version of a model.

        Raises:
            ModelNotFound: no such model, or it has no such version.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        return self._get_model_version(project_id, name, check_version(version))

    def list_model_versions(
        self, project_id: str, name: str | None = None, *, run_id: str | None = None
    ) -> list[ModelVersion]:
        """Versions of one model (or of every model of the project when ``name`` is None),
        optionally only those trained by ``run_id``; by name, then version ascending.

        Raises:
            ModelNotFound: ``name`` names no model.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        if name is not None:
            check_model_name(name)
        if run_id is not None:
            validation.check_run_id(run_id)
        return self._list_model_versions(project_id, name, run_id)

    def update_model_version(
        self,
        project_id: str,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        status: ModelVersionStatus | str | None = None,
        actor: str,
    ) -> ModelVersion:
        """Change a version's description or status and set tags (given keys are set or
        replaced); audited as ``model_version.update`` when anything is given.

        Raises:
            ModelNotFound: no such model or version.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad description, tag, status or actor.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        number = check_version(version)
        if description is not None:
            _check_text(description, "model version description", MAX_DESCRIPTION_LENGTH)
        new_status = None if status is None else _check_status(status)
        return self._update_model_version(
            project_id,
            name,
            number,
            description,
            _check_tags(tags) or None,
            new_status,
            _check_actor(actor),
        )

    def set_model_version_gate_result(
        self, project_id: str, name: str, version: int, result: Mapping[str, Any], *, actor: str
    ) -> ModelVersion:
        """Store the outcome of a release gate as the version's ``gate_result`` (replacing an
        earlier one); audited as ``model_version.gate`` with the result in its details.

        Raises:
            ModelNotFound: no such model or version.
            ProjectNotFound: the project does not exist.
            InvalidArgument: the result is not a JSON-ready dict.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        number = check_version(version)
        checked = validation.check_json_dict(result, "gate result")
        return self._set_model_version_gate_result(
            project_id, name, number, checked, _check_actor(actor)
        )

    # --- aliases -------------------------------------------------------------------------------

    def set_model_alias(
        self,
        project_id: str,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str = "",
        expected_version: int | None = None,
    ) -> AuditEvent:
        """Point an alias at a version, creating or moving it; the alias and its ``alias.set``
        audit event (details: ``alias``, ``version``, ``previous``) are one transaction.

        Args:
            project_id: the project's id.
            name: the model.
            alias: e.g. ``champion``.
            version: the version to point at (it must exist).
            actor: who moves it. reason: why (kept in the audit event).
            expected_version: when given, move the alias only if it still points at this
                version (compare-and-set: a rollback that raced another move fails).

        Returns:
            The audit event written.

        Raises:
            ModelNotFound: no such model or version.
            ProjectNotFound: the project does not exist.
            Conflict: the alias does not point at ``expected_version``.
            InvalidArgument: a bad alias, version, actor or reason.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        check_alias(alias)
        number = check_version(version)
        expected = None if expected_version is None else check_version(expected_version)
        _check_text(reason, "reason", MAX_REASON_LENGTH)
        return self._set_model_alias(
            project_id, name, alias, number, _check_actor(actor), reason, expected
        )

    def delete_model_alias(
        self, project_id: str, name: str, alias: str, *, actor: str, reason: str = ""
    ) -> AuditEvent:
        """Remove an alias (audited as ``alias.delete``, details: ``alias``, ``previous``).

        Returns:
            The audit event written.

        Raises:
            ModelNotFound: no such model, or it has no such alias (``version`` is ``"@alias"``).
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        check_alias(alias)
        _check_text(reason, "reason", MAX_REASON_LENGTH)
        return self._delete_model_alias(project_id, name, alias, _check_actor(actor), reason)

    def get_model_version_by_alias(self, project_id: str, name: str, alias: str) -> ModelVersion:
        """The version an alias points at.

        Raises:
            ModelNotFound: no such model, or it has no such alias (``version`` is ``"@alias"``).
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        check_model_name(name)
        return self._get_model_version_by_alias(project_id, name, check_alias(alias))

    # --- audit trail ---------------------------------------------------------------------------

    def log_audit_event(
        self,
        project_id: str,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_name: str,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
        origin: str = "local",
    ) -> AuditEvent:
        """Record an event of the audit trail (the registry writes its own; this is for other
        changes: a deployment, a project's settings...). Returns it, timestamped now.

        Args:
            project_id: the project's id.
            actor: who did it. action: what, e.g. ``deployment.update``.
            object_type: e.g. ``deployment``. object_name: which one.
            reason: why. details: the facts, a JSON-ready dict.
            origin: where the call came from (``local``, or a client's address).

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field.
        """
        validation.check_name(project_id, "project id")
        facts = {} if details is None else validation.check_json_dict(details, "details")
        event = new_event(
            project_id,
            _check_actor(actor),
            _check_short_key(action, "audit action"),
            _check_short_key(object_type, "audit object type"),
            _check_text(
                object_name,
                "audit object name",
                MAX_OBJECT_NAME_LENGTH,
                allow_empty=False,
                one_line=True,
            ),
            facts,
            timestamp=now_ms(),
            reason=_check_text(reason, "reason", MAX_REASON_LENGTH),
            origin=validation.check_name(origin, "origin"),
        )
        return self._log_audit_event(event)

    def search_audit_events(
        self,
        project_id: str,
        *,
        object_type: str | None = None,
        object_name: str | None = None,
        action: str | None = None,
        since: int | None = None,
        max_results: int = 100,
    ) -> list[AuditEvent]:
        """Audit events of a project, newest first (then latest written first).

        Args:
            project_id: the project's id.
            object_type, object_name, action: only events with these values.
            since: only events at or after this time (ms since the epoch).
            max_results: at most this many (1..50,000).

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad filter or limit.
        """
        validation.check_name(project_id, "project id")
        if object_type is not None:
            _check_short_key(object_type, "audit object type")
        if object_name is not None:
            _check_text(object_name, "audit object name", MAX_OBJECT_NAME_LENGTH, one_line=True)
        if action is not None:
            _check_short_key(action, "audit action")
        start = None if since is None else validation.check_int(since, "since", minimum=0)
        limit = validation.check_max_results(max_results)
        return self._search_audit_events(
            project_id, object_type, object_name, action, start, limit
        )

    # --- what implementations provide ----------------------------------------------------------

    @abc.abstractmethod
    def _create_registered_model(
        self, project_id: str, name: str, description: str, tags: dict[str, str], actor: str
    ) -> RegisteredModel: ...

    @abc.abstractmethod
    def _get_registered_model(self, project_id: str, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def _list_registered_models(self, project_id: str) -> list[RegisteredModel]: ...

    @abc.abstractmethod
    def _update_registered_model(
        self,
        project_id: str,
        name: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
    ) -> RegisteredModel:
        """Apply the changes given (None: unchanged); no audit event when nothing is given."""

    @abc.abstractmethod
    def _delete_registered_model(self, project_id: str, name: str, actor: str) -> None: ...

    @abc.abstractmethod
    def _create_model_version(self, draft: ModelVersion) -> ModelVersion:
        """Store ``draft`` with the next number of its model and the time now."""

    @abc.abstractmethod
    def _get_model_version(self, project_id: str, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def _list_model_versions(
        self, project_id: str, name: str | None, run_id: str | None
    ) -> list[ModelVersion]: ...

    @abc.abstractmethod
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
        """Apply the changes given (None: unchanged); no audit event when nothing is given."""

    @abc.abstractmethod
    def _set_model_version_gate_result(
        self, project_id: str, name: str, version: int, result: dict[str, Any], actor: str
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def _set_model_alias(
        self,
        project_id: str,
        name: str,
        alias: str,
        version: int,
        actor: str,
        reason: str,
        expected_version: int | None,
    ) -> AuditEvent: ...

    @abc.abstractmethod
    def _delete_model_alias(
        self, project_id: str, name: str, alias: str, actor: str, reason: str
    ) -> AuditEvent: ...

    @abc.abstractmethod
    def _get_model_version_by_alias(
        self, project_id: str, name: str, alias: str
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def _log_audit_event(self, event: AuditEvent) -> AuditEvent:
        """Store ``event`` as given (ProjectNotFound when its project does not exist)."""

    @abc.abstractmethod
    def _search_audit_events(
        self,
        project_id: str,
        object_type: str | None,
        object_name: str | None,
        action: str | None,
        since: int | None,
        limit: int,
    ) -> list[AuditEvent]: ...


# --- audit events: one shape for every backend ---------------------------------------------------


def new_event(
    project_id: str,
    actor: str,
    action: str,
    object_type: str,
    object_name: str,
    details: Mapping[str, Any],
    *,
    timestamp: int,
    reason: str = "",
    origin: str | None = None,
) -> AuditEvent:
    """A new audit event with a fresh id (32 hex characters, like every object id); its origin
    is :data:`AUDIT_ORIGIN`'s value unless given."""
    return AuditEvent(
        uuid.uuid4().hex,
        project_id,
        timestamp,
        actor,
        action,
        object_type,
        object_name,
        reason,
        dict(details),
        AUDIT_ORIGIN.get() if origin is None else origin,
    )


def model_event(
    project_id: str, name: str, action: str, actor: str, details: Mapping[str, Any], at: int
) -> AuditEvent:
    """A ``model.*`` event (``model.create``, ``model.update``, ``model.delete``)."""
    return new_event(project_id, actor, action, "model", name, details, timestamp=at)


def version_event(
    project_id: str,
    name: str,
    version: int,
    action: str,
    actor: str,
    details: Mapping[str, Any],
    at: int,
) -> AuditEvent:
    """A ``model_version.*`` event, on the object ``<name>/<version>``."""
    return new_event(
        project_id, actor, action, "model_version", f"{name}/{version}", details, timestamp=at
    )


def version_created(version: ModelVersion) -> AuditEvent:
    """The ``model_version.create`` event of a new version."""
    facts = {
        "version": version.version,
        "source": version.source,
        "run_id": version.run_id,
        "flavor": version.flavor,
        "manifest_digest": version.manifest_digest,
    }
    return version_event(
        version.project_id,
        version.name,
        version.version,
        "model_version.create",
        version.created_by,
        facts,
        version.created_at,
    )


def alias_event(
    project_id: str,
    name: str,
    alias: str,
    version: int | None,
    previous: int | None,
    actor: str,
    reason: str,
    at: int,
) -> AuditEvent:
    """``alias.set`` (details: ``alias``, ``version``, ``previous`` or None) when ``version``
    is given, else ``alias.delete`` (details: ``alias``, ``previous``), on ``<name>@<alias>``."""
    action = "alias.delete" if version is None else "alias.set"
    details: dict[str, Any] = {"alias": alias}
    if version is not None:
        details["version"] = version
    details["previous"] = previous
    return new_event(
        project_id, actor, action, "alias", f"{name}@{alias}", details, timestamp=at, reason=reason
    )


def changes(
    description: str | None,
    tags: Mapping[str, str] | None,
    status: ModelVersionStatus | None,
    old_description: str,
    old_tags: Mapping[str, str],
    old_status: ModelVersionStatus | None = None,
) -> dict[str, Any]:
    """The details of an update event: what was given, and what it replaced (``previous``)."""
    new: dict[str, Any] = {}
    previous: dict[str, Any] = {}
    if description is not None:
        new["description"], previous["description"] = description, old_description
    if tags:
        new["tags"] = dict(tags)
        previous["tags"] = {k: old_tags.get(k) for k in tags}
    if status is not None:
        new["status"] = status.value
        previous["status"] = None if old_status is None else old_status.value
    return {**new, "previous": previous}


def alias_moved(name: str, alias: str, current: int | None, expected: int) -> Conflict:
    """The error for a compare-and-set of an alias that moved meanwhile."""
    where = "is not set" if current is None else f"points at version {current}"
    return Conflict(
        f"alias {alias!r} of model {name!r} {where}, not version {expected} as expected: it "
        "moved meanwhile; read it again (alias_history) and retry"
    )


def missing_alias(name: str, alias: str) -> ModelNotFound:
    """The error for an alias a model does not have."""
    return ModelNotFound(name, "@" + alias)
