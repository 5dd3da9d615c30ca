"""The model registry: registered models, their versions, and the audit trail of changes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.entities._common import _EMPTY


class ModelVersionStatus(enum.StrEnum):
    """Whether a model version may be used: ``ready`` (the default) or ``archived`` (kept for the
    record; ``models:/NAME/latest`` skips it)."""

    READY = "ready"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model of a project; its content lives in immutable :class:`ModelVersion` s.

    ``aliases`` maps each alias (``champion``, ``challenger``...) to the version it points at,
    ``latest_version`` is the highest version number (0 when there is none). ``updated_at``
    changes with the model, its versions and its aliases.
    """

    project_id: str
    name: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    aliases: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    latest_version: int = 0
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, auto-numbered version of a registered model.

    ``source`` is where the model files are (an artifact URI such as ``runs:/<run_id>/model``),
    ``manifest_digest`` the sha256 of its manifest file (loading checks it), ``run_id`` the run
    that trained it (None once that run is deleted), ``signature`` its input and output schema
    and ``gate_result`` the outcome of its latest release gate (JSON-ready dicts, fresh on
    every read: treat them as read-only). ``description``, ``tags`` and ``status`` may change;
    the rest never does. ``aliases`` are the aliases pointing at it, sorted.
    """

    project_id: str
    name: str
    version: int
    source: str
    run_id: str | None = None
    flavor: str = ""
    signature: Mapping[str, Any] | None = None
    manifest_digest: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    status: ModelVersionStatus = ModelVersionStatus.READY
    aliases: tuple[str, ...] = ()
    gate_result: Mapping[str, Any] | None = None
    created_at: int = 0
    created_by: str = ""

    @property
    def uri(self) -> str:
        """The URI naming this version: ``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which object, when, and why: one entry of the audit trail.

    ``action`` names the change (``alias.set``, ``model_version.create``...), ``object_type``
    and ``object_name`` the object (``alias`` / ``churn@champion``, ``model_version`` /
    ``churn/3``), ``details`` the facts of the change (a JSON-ready dict, fresh on every read),
    and ``origin`` where the call came from (``local``, or a client address behind a server).
    Events are never changed or deleted, and outlive the objects they name.
    """

    id: str
    project_id: str
    timestamp: int
    actor: str
    action: str
    object_type: str
    object_name: str
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    origin: str = "local"
