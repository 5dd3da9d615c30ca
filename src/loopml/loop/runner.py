"""The loop: one state machine per policy, advanced by :class:`LoopRunner`.

    idle ──trigger──► training ──► gating ──► canary | shadow ──► promoted
                         │            │                 └───────► rolled_back
                         └► failed    └► rejected

A cycle's outcome (promoted, rolled_back, rejected, failed) stays the policy's phase until the
next trigger starts another cycle. Every transition is recorded with its reason
(:mod:`loopml.loop.state`); a pass does everything that can be done now (train, gate, start
the rollout) and returns while the rollout gathers evidence; the next pass judges it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.entities import ModelVersion
from loopml.errors import Conflict, InvalidArgument, LoopError, ModelNotFound
from loopml.loop import live, rollout, triggers
from loopml.loop.policy import Policy, resolve_entry
from loopml.loop.state import LoopState, commit, decisions, load_state, now_ms, policy_names

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["LoopRunner", "PolicyStatus", "loop_status", "run_loop"]

_log = logging.getLogger("loopml.loop")


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LoopRunner:
    """Advance the policies' state machines.

    Args:
        policies: :class:`Policy` objects, dicts or YAML files.
        client: the store (default: the fluent API's).
        holder: this process's name in the policies' state (default: host, pid and a random
            suffix).
        lease_seconds: how long an active cycle stays this process's after its last recorded
            step; another loop takes over only after that. Longer than the longest training.

    Raises:
        InvalidArgument: a bad policy, or two policies with one name.
    """

    def __init__(
        self,
        policies: Iterable[Policy | Mapping[str, Any] | str | Path],
        *,
        client: Client | None = None,
        holder: str | None = None,
        lease_seconds: float = 3600.0,
    ) -> None:
        from loopml.client.context import get_client

        self.policies = [Policy.parse(p) for p in policies]
        if not self.policies:
            raise InvalidArgument("give at least one policy (a YAML file or a Policy)")
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"policy names must be unique, got {names}")
        if not lease_seconds > 0:
            raise InvalidArgument(f"lease_seconds must be positive, not {lease_seconds!r}")
        self.client = client or get_client()
        self.holder = holder or _holder()
        self.lease_seconds = float(lease_seconds)

    # --- one pass ------------------------------------------------------------------------------

    def run_once(self) -> dict[str, LoopState]:
        """One pass over every policy; returns each one's state after it. A policy that
        fails unexpectedly is logged and skipped (the others still run)."""
        out = {}
        for policy in self.policies:
            try:
                out[policy.name] = self.step(policy)
            except LoopError as exc:
                _log.error("policy %s: %s", policy.name, exc)
                out[policy.name] = load_state(self.client, policy.name, project=policy.project)
        return out

    def run(
        self,
        *,
        interval: float = 30.0,
        stop: threading.Event | None = None,
        max_passes: int | None = None,
        on_pass: Callable[[dict[str, LoopState]], None] | None = None,
    ) -> dict[str, LoopState]:
        """Pass over the policies every ``interval`` seconds until ``stop`` is set (or
        ``max_passes`` passes), calling ``on_pass`` with the states after each; an alert's
        ``retrain`` action in this process starts the next pass at once."""
        stop = stop or threading.Event()
        states: dict[str, LoopState] = {}
        passes = 0
        while not stop.is_set():
            states = self.run_once()
            if on_pass is not None:
                on_pass(states)
            passes += 1
            if max_passes is not None and passes >= max_passes:
                break
            deadline = time.monotonic() + interval
            while not stop.is_set() and time.monotonic() < deadline:
                if triggers.WAKE.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                    triggers.WAKE.clear()
                    break
        return states

    def step(self, policy: Policy) -> LoopState:
        """Advance one policy as far as it can go now; returns its state."""
        c = self.client
        state = load_state(c, policy.name, project=policy.project)
        if state.seq == 0:
            at = now_ms()
            marks = triggers.initial_watermarks(c, policy, at, project=policy.project)
            fresh = replace(
                state, model=policy.model, deployment=policy.deployment, watermarks=marks
            )
            what = ", ".join(t.describe() for t in policy.triggers)
            state = self._commit(fresh, "loop.created", f"policy registered; triggers: {what}")
            if state.seq == 0:
                return state
        if state.active and state.holder != self.holder:
            if not state.lease_expired(self.lease_seconds):
                return state  # another loop is on it
            _log.warning(
                "policy %s: taking over from %s (lease expired)", policy.name, state.holder
            )
        for _ in range(8):  # idle -> training -> gating -> rollout at most, in one pass
            handler = {
                "training": self._train,
                "gating": self._gate,
                "canary": self._watch,
                "shadow": self._watch,
            }.get(state.phase, self._idle)
            new = handler(policy, state)
            if new is None:
                break
            # a retry waits for the next pass; a rollout waits for evidence
            stay = new.phase == state.phase
            state = new
            if stay or not state.active or state.phase in ("canary", "shadow"):
                break
        return load_state(c, policy.name, project=policy.project)

    # --- transitions ---------------------------------------------------------------------------

    def _commit(
        self,
        state: LoopState,
        action: str,
        reason: str,
        details: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> LoopState:
        """Record a transition; on a lost race return the state unchanged (seq 0 when new)."""
        try:
            new = commit(
                self.client,
                state,
                action,
                reason,
                holder=self.holder,
                details=details,
                project=project,
            )
        except Conflict as exc:
            _log.warning("policy %s: %s", state.policy, exc)
            return state
        _log.info("policy %s: %s: %s", state.policy, action, reason)
        return new

    def _end(
        self,
        policy: Policy,
        state: LoopState,
        outcome: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> LoopState:
        ended = replace(state, phase=outcome, ended_at=now_ms())
        return self._commit(ended, f"loop.{outcome}", reason, details, policy.project)

    def _idle(self, policy: Policy, state: LoopState) -> LoopState | None:
        at = now_ms()
        if state.ended_at is not None and at - state.ended_at < policy.cooldown * 1000:
            return None
        fired = triggers.check_triggers(
            self.client,
            policy,
            dict(state.watermarks),
            state.created_at,
            at,
            project=policy.project,
        )
        if fired is None:
            return None
        started = replace(
            state,
            model=policy.model,
            deployment=policy.deployment,
            phase="training",
            cycle=state.cycle + 1,
            trigger=fired.to_dict(),
            watermarks={**state.watermarks, fired.key: fired.mark},
            version=None,
            champion=None,
            route=None,
            started_at=None,
            attempts=0,
            baseline={},
        )
        reason = f"cycle {started.cycle} started by {fired.what}"
        new = self._commit(
            started, "loop.triggered", reason, {"policy": policy.describe()}, policy.project
        )
        return new if new.seq > state.seq else None

    def _train(self, policy: Policy, state: LoopState) -> LoopState | None:
        spec = policy.train
        if state.attempts >= spec.max_attempts:
            why = (
                f"training did not finish in {state.attempts} attempt(s) (the process running it "
                "stopped, or it raised); the next trigger starts a new cycle"
            )
            return self._end(policy, state, "failed", why)
        attempt = state.attempts + 1
        claimed = self._commit(
            replace(state, attempts=attempt),
            "loop.training",
            f"training attempt {attempt} of {spec.max_attempts}: {spec.describe()}",
            None,
            policy.project,
        )
        if claimed.seq == state.seq:
            return None
        kwargs = dict(spec.params)
        if spec.data_param and state.trigger.get("dataset"):
            kwargs[spec.data_param] = state.trigger["dataset"]
        if spec.trigger_param:
            kwargs[spec.trigger_param] = dict(state.trigger)
        try:
            fn = resolve_entry(spec.entry)
            result = fn(**kwargs)
            version = model_version_of(result, self.client, policy)
        except Exception as exc:  # the user's training code: any failure ends the attempt
            why = f"training raised {type(exc).__name__}: {exc}"
            if attempt >= spec.max_attempts:
                return self._end(policy, claimed, "failed", why)
            return self._commit(
                claimed, "loop.retry", why + "; trying again", None, policy.project
            )
        return self._commit(
            replace(claimed, phase="gating", version=version),
            "loop.trained",
            f"trained models:/{policy.model}/{version}",
            None,
            policy.project,
        )

    def _gate(self, policy: Policy, state: LoopState) -> LoopState | None:
        c, project = self.client, policy.project
        assert state.version is not None
        version = state.version
        champion = _alias_version(c, policy.model, policy.champion_alias, project)
        if champion == version:
            why = f"version {version} is already {policy.model}@{policy.champion_alias}"
            return self._end(policy, state, "rejected", why)
        candidate = f"models:/{policy.model}/{version}"
        against = f"models:/{policy.model}/{champion}" if champion is not None else None
        try:
            result = policy.gate.run(candidate, against, client=c, project=project)
            c.set_model_version_gate_result(
                policy.model, version, result.to_dict(), project=project
            )
        except (
            Exception
        ) as exc:  # a gate that cannot run ends the cycle, it does not stop the loop
            return self._end(
                policy, state, "failed", f"the gate raised {type(exc).__name__}: {exc}"
            )
        gate = {"gate": result.to_dict()}
        if not result.passed:
            failed = "; ".join(f"{f.name}: {f.message}" for f in result.failures)
            vs = f" against version {champion}" if champion is not None else ""
            return self._end(
                policy, state, "rejected", f"the gate failed for {candidate}{vs}: {failed}", gate
            )
        r = policy.rollout
        try:
            c.set_model_alias(
                policy.model,
                policy.challenger_alias,
                version,
                f"loop {policy.name}: gate passed",
                project=project,
            )
            what = (
                f"{r.strategy} of {candidate} at weight {r.share:g} on {policy.deployment} "
                f"(route {r.route})"
            )
            rollout.add_route(c, policy, version, f"loop {policy.name}: {what}")
        except LoopError as exc:
            return self._end(policy, state, "failed", f"cannot start the rollout: {exc}", gate)
        baseline: dict[str, float] = {}
        if r.servers:
            baseline = live.scrape(r.servers, r.route, f"{policy.model}/{version}")
        begun = replace(
            state,
            phase=r.strategy,
            champion=champion,
            route=r.route,
            started_at=now_ms(),
            baseline=baseline,
        )
        return self._commit(begun, f"loop.{r.strategy}", f"gate passed; {what}", gate, project)

    def _watch(self, policy: Policy, state: LoopState) -> LoopState | None:
        c, project, r = self.client, policy.project, policy.rollout
        assert state.version is not None and state.started_at is not None
        uri = f"models:/{policy.model}/{state.version}"
        try:
            dep = c.get_deployment(policy.deployment, project=project)
        except LoopError as exc:
            return self._end(policy, state, "failed", f"the deployment is gone: {exc}")
        route = rollout.route_of(dep, state.route or r.route)
        if route is None or route.model_uri != uri:
            why = (
                f"route {state.route!r} of {policy.deployment} no longer serves {uri} (changed "
                "outside the loop); the rollout is abandoned"
            )
            return self._end(policy, state, "failed", why)
        at = now_ms()
        evidence = live.gather(
            c,
            policy.deployment,
            r,
            primary_route=dep.primary.name,
            version_label=f"{policy.model}/{state.version}",
            started_at=state.started_at,
            at=at,
            baseline=dict(state.baseline),
            project=project,
        )
        verdict = live.judge(r, evidence)
        facts = {"evidence": evidence.to_dict(), "checks": verdict.checks}
        if verdict.action == "wait":
            if state.holder != self.holder or state.lease_expired(self.lease_seconds / 2, at):
                return self._commit(state, "loop.lease", verdict.reason, facts, project)
            return None
        if verdict.action == "promote":
            try:
                what = rollout.promote_route(
                    c, policy, state.version, f"loop {policy.name}: {verdict.reason}"
                )
            except LoopError as exc:
                return self._end(policy, state, "failed", f"promotion failed: {exc}", facts)
            return self._end(policy, state, "promoted", f"{verdict.reason}; {what}", facts)
        rollout.remove_route(c, policy, f"loop {policy.name}: rolled back: {verdict.reason}")
        kept = (
            f"{policy.model}@{policy.champion_alias} stays at version {state.champion}"
            if state.champion is not None
            else f"{policy.model}@{policy.champion_alias} not moved"
        )
        return self._end(
            policy,
            state,
            "rolled_back",
            f"{verdict.reason}; route {route.name} removed, {kept}",
            facts,
        )


def _alias_version(c: Client, name: str, alias: str, project: str | None) -> int | None:
    try:
        return c.get_model_version_by_alias(name, alias, project=project).version
    except ModelNotFound:
        return None


def model_version_of(result: Any, client: Client, policy: Policy) -> int:
    """The version number a training entry returned (see :class:`~loopml.loop.TrainSpec`).

    Raises:
        InvalidArgument: not a model version, or one of another model.
    """
    from loopml.store.uris import parse_model_uri

    value = result
    if not isinstance(value, str | ModelVersion) and hasattr(value, "output"):
        value = value.output
    registered = getattr(value, "registered_version", None)
    if isinstance(registered, ModelVersion):
        value = registered
    if isinstance(value, str) and value.startswith("models:/"):
        name, number, _, _ = parse_model_uri(value)
        if number is None:
            value = client.resolve_model_uri(value, project=policy.project)
        else:
            value = client.get_model_version(name, number, project=policy.project)
    if not isinstance(value, ModelVersion):
        raise InvalidArgument(
            f"the training entry {policy.train.describe()} returned {type(result).__name__}, "
            "not a model version; return the ModelVersion, its models:/name/version URI, or "
            "what log_model(..., registered_model_name=...) returns"
        )
    if value.name != policy.model:
        raise InvalidArgument(
            f"the training entry registered {value.uri}, but the policy retrains "
            f"{policy.model!r}; register the model under that name"
        )
    return value.version


def run_loop(
    policies: Iterable[Policy | Mapping[str, Any] | str | Path],
    *,
    once: bool = False,
    interval: float = 30.0,
    client: Client | None = None,
    lease_seconds: float = 3600.0,
    stop: threading.Event | None = None,
) -> dict[str, LoopState]:
    """Run the loop over ``policies``: one pass with ``once``, else until ``stop`` is set.

    Returns:
        Each policy's state after the last pass.
    """
    runner = LoopRunner(policies, client=client, lease_seconds=lease_seconds)
    if once:
        return runner.run_once()
    return runner.run(interval=interval, stop=stop)


@dataclass(frozen=True)
class PolicyStatus:
    """A policy's state, its model's champion and challenger, and its latest decisions
    (``{"time", "action", "reason", "actor"}``, newest first)."""

    state: LoopState
    champion: int | None
    challenger: int | None
    decisions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        s = self.state
        return {
            "policy": s.policy,
            "model": s.model,
            "deployment": s.deployment,
            "phase": s.phase,
            "cycle": s.cycle,
            "version": s.version,
            "reason": s.reason,
            "holder": s.holder,
            "updated_at": s.updated_at,
            "started_at": s.started_at,
            "trigger": dict(s.trigger),
            "champion": self.champion,
            "challenger": self.challenger,
            "decisions": self.decisions,
        }


def loop_status(
    policy: str | None = None,
    *,
    client: Client | None = None,
    project: str | None = None,
    limit: int = 10,
) -> list[PolicyStatus]:
    """The status of one policy (by name) or of every policy with a recorded state.

    Raises:
        InvalidArgument: ``policy`` has no recorded state (the loop never ran it).
    """
    from loopml.client.context import get_client

    c = client or get_client()
    names = [policy] if policy is not None else policy_names(c, project=project)
    out = []
    for name in names:
        state = load_state(c, name, project=project)
        if state.seq == 0:
            raise InvalidArgument(
                f"policy {name!r} has no recorded state in this project; run "
                "`loopml loop run POLICY.yaml` first (known: "
                f"{policy_names(c, project=project)})"
            )
        events = decisions(c, name, limit=limit, project=project)
        recent = [
            {"time": e.timestamp, "action": e.action, "reason": e.reason, "actor": e.actor}
            for e in events
        ]
        champ = _alias_version(c, state.model, "champion", project) if state.model else None
        chall = _alias_version(c, state.model, "challenger", project) if state.model else None
        out.append(PolicyStatus(state, champ, chall, recent))
    return out
