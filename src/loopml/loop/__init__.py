"""The continuous-training loop: a declarative :class:`Policy` per model (triggers, training
entry, release gate, rollout and its success criteria), and a runner that takes each policy from
a trigger to a retrained, gated, gradually rolled-out model, then promotes it or rolls it back,
recording every decision with its reason in the audit trail.

Start with :func:`run_loop` (or ``loopml loop run POLICY.yaml``) and :func:`loop_status`.
Nothing heavy loads until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.loop.live import Evidence as Evidence
    from loopml.loop.live import Verdict as Verdict
    from loopml.loop.policy import AccuracyCriterion as AccuracyCriterion
    from loopml.loop.policy import Criteria as Criteria
    from loopml.loop.policy import Policy as Policy
    from loopml.loop.policy import Rollout as Rollout
    from loopml.loop.policy import TrainSpec as TrainSpec
    from loopml.loop.policy import Trigger as Trigger
    from loopml.loop.runner import LoopRunner as LoopRunner
    from loopml.loop.runner import PolicyStatus as PolicyStatus
    from loopml.loop.runner import loop_status as loop_status
    from loopml.loop.runner import run_loop as run_loop
    from loopml.loop.state import LoopState as LoopState

_LAZY = {
    "Evidence": "loopml.loop.live",
    "Verdict": "loopml.loop.live",
    "AccuracyCriterion": "loopml.loop.policy",
    "Criteria": "loopml.loop.policy",
    "Policy": "loopml.loop.policy",
    "Rollout": "loopml.loop.policy",
    "TrainSpec": "loopml.loop.policy",
    "Trigger": "loopml.loop.policy",
    "LoopRunner": "loopml.loop.runner",
    "PolicyStatus": "loopml.loop.runner",
    "loop_status": "loopml.loop.runner",
    "run_loop": "loopml.loop.runner",
    "LoopState": "loopml.loop.state",
}

__all__ = [
    "AccuracyCriterion",
    "Criteria",
    "Evidence",
    "LoopRunner",
    "LoopState",
    "Policy",
    "PolicyStatus",
    "Rollout",
    "TrainSpec",
    "Trigger",
    "Verdict",
    "loop_status",
    "run_loop",
]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loopml.loop' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
