"""A policy's state, kept as its own audit trail: every decision is an audit event
(``object_type: loop``, ``object_name``: the policy) whose details hold the whole state after
it. A restarted loop reads the newest one and continues (a canary started at T with version 7
is still judged from T).

Two loops must not act on one policy. Each event carries a sequence number one above the state
it was decided from; when two processes write the same number, the first written wins and the
other backs off without acting (:func:`commit`). While a cycle is active its holder owns a
lease (the newest event's time plus ``lease_seconds``), renewed as it waits; another process
takes over only once the lease has run out.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from loopml.errors import Conflict

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import AuditEvent

__all__ = [
    "ACTIVE",
    "OBJECT_TYPE",
    "OUTCOMES",
    "LoopState",
    "commit",
    "decisions",
    "load_state",
    "now_ms",
    "policy_names",
]

OBJECT_TYPE = "loop"
"""The audit trail's object type of the loop's events."""
ACTIVE = ("training", "gating", "canary", "shadow")
"""Phases of a cycle in progress."""
OUTCOMES = ("promoted", "rolled_back", "rejected", "failed")
"""How a cycle ends (the next trigger starts another)."""
_LEASE = "loop.lease"


def now_ms() -> int:
    """The time in ms since the epoch."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class LoopState:
    """Where a policy is.

    Attributes:
        policy: the policy's name.
        model, deployment: the policy's model and deployment.
        phase: ``idle`` (no cycle yet), a phase of :data:`ACTIVE`, or the last cycle's outcome
            (:data:`OUTCOMES`).
        seq: the number of the event that recorded this state (0: never recorded).
        cycle: the current (or last) cycle's number.
        holder: the loop process acting on the active cycle.
        updated_at: when the state was recorded (ms).
        created_at: when the policy's first state was recorded (ms).
        reason: why the state is what it is.
        trigger: what started the cycle (``{"kind", "what", ...}``).
        version: the challenger's model version (once trained).
        champion: the champion's version when the cycle started its rollout.
        route: the deployment route of the rollout.
        started_at: when the rollout started (ms).
        attempts: training attempts in this cycle.
        baseline: the servers' counters when the rollout started (for exact error rates).
        watermarks: per trigger, what it has already acted on (alert time, cron time,
            dataset version).
        ended_at: when the last cycle ended (ms), for the cooldown.
        run_id: the tracked run of the cycle.
    """

    policy: str
    model: str = ""
    deployment: str = ""
    phase: str = "idle"
    seq: int = 0
    cycle: int = 0
    holder: str = ""
    updated_at: int = 0
    created_at: int = 0
    reason: str = ""
    trigger: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    champion: int | None = None
    route: str | None = None
    started_at: int | None = None
    attempts: int = 0
    baseline: dict[str, float] = field(default_factory=dict)
    watermarks: dict[str, Any] = field(default_factory=dict)
    ended_at: int | None = None
    run_id: str | None = None

    @property
    def active(self) -> bool:
        """Whether a cycle is in progress."""
        return self.phase in ACTIVE

    def lease_expired(self, lease_seconds: float, at: int | None = None) -> bool:
        """Whether the holder's lease on an active cycle has run out."""
        return (at or now_ms()) - self.updated_at > lease_seconds * 1000

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form kept in the audit event."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        """Read back :meth:`to_dict` (unknown keys, from newer versions, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _events(
    client: Client, policy: str, project: str | None, limit: int = 200
) -> list[AuditEvent]:
    return client.search_audit_events(
        object_type=OBJECT_TYPE, object_name=policy, max_results=limit, project=project
    )


def load_state(client: Client, policy: str, *, project: str | None = None) -> LoopState:
    """The policy's state: that of its newest valid event (a fresh ``idle`` state when it has
    none). Of several events with one sequence number, the first written counts."""
    events = [e for e in _events(client, policy, project) if "state" in e.details]
    best: AuditEvent | None = None
    for event in events:  # newest first: the last one seen per seq is the first written
        seq = int(event.details.get("seq", 0))
        if best is None or seq > int(best.details.get("seq", 0)):
            best = event
        elif seq == int(best.details.get("seq", 0)):
            best = event
    if best is None:
        return LoopState(policy)
    state = LoopState.from_dict(dict(best.details["state"]))
    return replace(state, seq=int(best.details.get("seq", 0)), updated_at=best.timestamp)


def commit(
    client: Client,
    state: LoopState,
    action: str,
    reason: str,
    *,
    holder: str,
    details: dict[str, Any] | None = None,
    project: str | None = None,
) -> LoopState:
    """Record ``state`` as the policy's next state (``action`` is the event's, e.g.
    ``loop.promoted``), with its reason; returns it as recorded.

    Raises:
        Conflict: another process recorded a state with the same sequence number first (or
            since): this one must not act on the policy now.
    """
    seq = state.seq + 1
    at = now_ms()
    new = replace(
        state,
        seq=seq,
        holder=holder,
        reason=reason,
        updated_at=at,
        created_at=state.created_at or at,
    )
    facts = {"seq": seq, "state": new.to_dict(), "holder": holder, **(details or {})}
    client.store.log_audit_event(
        client.project_id(project),
        actor=_actor(),
        action=action,
        object_type=OBJECT_TYPE,
        object_name=state.policy,
        reason=reason[:2000],
        details=facts,
    )
    stored = load_state(client, state.policy, project=project)
    if stored.seq != seq or stored.holder != holder:
        raise Conflict(
            f"another loop ({stored.holder or 'unknown'}) recorded the state of policy "
            f"{state.policy!r} first; this one leaves it alone"
        )
    return replace(new, updated_at=stored.updated_at)


def renew(
    client: Client, state: LoopState, *, holder: str, project: str | None = None
) -> LoopState:
    """Renew the holder's lease on an active cycle (the same state, one event later)."""
    return commit(
        client, state, _LEASE, state.reason or "lease renewed", holder=holder, project=project
    )


def decisions(
    client: Client, policy: str, *, limit: int = 20, project: str | None = None
) -> list[AuditEvent]:
    """The policy's recorded decisions, newest first (lease renewals left out)."""
    events = _events(client, policy, project, limit=max(limit * 4, 50))
    return [e for e in events if e.action != _LEASE][:limit]


def policy_names(client: Client, *, project: str | None = None) -> list[str]:
    """The policies with a recorded state in the project, sorted."""
    events = client.search_audit_events(object_type=OBJECT_TYPE, max_results=5000, project=project)
    return sorted({e.object_name for e in events})


def _actor() -> str:
    from loopml.client.context import current_actor

    return current_actor()
