"""Who is calling, and the one question every route asks: may they?

A :class:`Principal` is the caller of one request: a user, a service account, or the local user
of a server without ``--auth``. A :class:`Gate` authenticates requests and decides permissions;
every route of the API and the web UI asks it through :func:`loopml.server.api.authorize` or
:meth:`Gate.check`, so that deny-by-default lives in one place. :class:`OpenGate` is the gate of
single-user mode (no login, bound to localhost): one local user who may do everything.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

__all__ = ["LOCAL_USER", "Gate", "OpenGate", "Permission", "Principal", "Role"]

Permission = Literal["read", "write", "admin"]
Role = Literal["viewer", "editor", "admin"]
PrincipalKind = Literal["user", "service", "local"]


@dataclass(frozen=True)
class Principal:
    """The caller of a request.

    Attributes:
        name: the user or service account name; the actor of the audit trail.
        kind: ``user``, ``service`` (an account for serving and automation) or ``local`` (the
            single user of a server without ``--auth``).
        server_admin: may do everything in every project, and manage users.
    """

    name: str
    kind: PrincipalKind = "user"
    server_admin: bool = False


LOCAL_USER = Principal("local", "local", server_admin=True)


class Gate(Protocol):
    """Authentication and authorisation of requests (one per server)."""

    #: Whether the server asks for credentials (``--auth``).
    enabled: bool

    def authenticate(self, request: HTTPConnection) -> Principal:
        """The caller of ``request``.

        Raises:
            Unauthenticated: no credential, or one that is wrong, revoked or expired.
        """
        ...

    def check(
        self, principal: Principal, permission: Permission, project_ids: Collection[str]
    ) -> None:
        """Allow ``principal`` to ``permission`` on every project in ``project_ids`` (ids), or
        raise. An empty collection means a server-wide action: server admins only.

        Raises:
            PermissionDenied: a role does not allow it.
        """
        ...

    def readable_projects(self, principal: Principal) -> frozenset[str] | None:
        """The ids of the projects ``principal`` may read, or None for every project."""
        ...

    def grant_creator(self, principal: Principal, project_id: str) -> None:
        """Make the creator of a new project its admin."""
        ...


class OpenGate:
    """Single-user mode: no credentials, every request is the local user, everything allowed."""

    enabled = False

    def authenticate(self, request: HTTPConnection) -> Principal:
        return LOCAL_USER

    def check(
        self, principal: Principal, permission: Permission, project_ids: Collection[str]
    ) -> None:
        return None

    def readable_projects(self, principal: Principal) -> frozenset[str] | None:
        return None

    def grant_creator(self, principal: Principal, project_id: str) -> None:
        return None
