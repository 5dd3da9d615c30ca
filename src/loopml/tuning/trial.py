"""One trial, on whichever side runs the objective: the :class:`Trial` handed to it and the
function that runs it.

A :class:`Trial` has Optuna's trial API (``suggest_float``, ``report``, ``should_prune`` ...) but
holds no Optuna object: every call goes through a :class:`Channel` to the study's owner (the
:class:`~loopml.tuning.driver.Driver`), directly when the objective runs in the tuning process,
over a pipe or socket when it runs in a worker process or a Ray task. So samplers and pruners see
one study however the trials are spread, and this module imports no Optuna (workers that never
touch Optuna never load it).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from loopml.errors import InvalidArgument, NoActiveRun

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.tuning.space import Dimension

__all__ = [
    "Channel",
    "Outcome",
    "Style",
    "Ticket",
    "Trial",
    "call_style",
    "current_trial",
    "run_trial",
]

log = logging.getLogger("loopml")

Style = Literal["trial", "params", "kwargs", "kwargs+trial"]
_current: contextvars.ContextVar[Trial | None] = contextvars.ContextVar(
    "loopml_tuning_trial", default=None
)


class Channel(Protocol):
    """How a :class:`Trial` reaches the study's owner."""

    def call(self, number: int, method: str, args: tuple[Any, ...]) -> Any:
        """Run ``method`` (``suggest_float``, ``report``, ``should_prune`` ...) on trial
        ``number`` of the study and return its result (or raise its error)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a worker needs to run one trial: its number, its run (fields of
    :class:`~loopml.entities.Run`, picklable) and the params already fixed (a declarative space
    samples them all before the objective starts)."""

    number: int
    run: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a trial ended.

    Attributes:
        state: ``complete``, ``pruned`` or ``fail``.
        value: the objective's value (``complete`` only).
        error: a one-line description of the failure, for the run's ``loopml.error`` tag.
        caught: the failure is one of ``tune(catch=...)``: the study goes on.
        interrupted: the trial was stopped by Ctrl+C or a signal, not by its own error.
        exception: the exception, pickled when it crossed a process boundary (or None).
    """

    state: Literal["complete", "pruned", "fail"]
    value: float | None = None
    error: str | None = None
    caught: bool = False
    interrupted: bool = False
    exception: bytes | None = None


class Trial:
    """The trial an objective receives: Optuna's trial API, recorded as a loopml run.

    Every ``suggest_*`` call samples from the study's sampler (and returns the same value when a
    name is suggested again); :meth:`report` logs an intermediate value as a point of the trial
    run's metric series and hands it to the pruner; :meth:`should_prune` asks the pruner.
    ``loopml.log_metric`` and friends inside the objective write to the trial's run.

    Attributes:
        number: the trial's number in the study (0, 1, ...).
        run_id: the id of the trial's run.
    """

    def __init__(
        self,
        number: int,
        run_id: str,
        channel: Channel,
        client: Client,
        metric: str,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.number = number
        self.run_id = run_id
        self._channel = channel
        self._client = client
        self._metric = metric
        self._params: dict[str, Any] = dict(params or {})
        self._steps: set[int] = set()
        self._user_attrs: dict[str, Any] = {}

    # --- sampling ------------------------------------------------------------------------------

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """A float in ``[low, high]`` (on a log scale with ``log=True``; on a grid with
        ``step``)."""
        value = self._channel.call(self.number, "suggest_float", (name, low, high, step, log))
        self._params[name] = value
        return float(value)

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """An int in ``[low, high]`` (both included)."""
        value = self._channel.call(self.number, "suggest_int", (name, low, high, step, log))
        self._params[name] = value
        return int(value)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """One of ``choices`` (None, bool, int, float or str)."""
        value = self._channel.call(self.number, "suggest_categorical", (name, tuple(choices)))
        self._params[name] = value
        return value

    def suggest(self, name: str, dimension: Dimension) -> Any:
        """A value of a :mod:`loopml.tuning.space` dimension (``Float``, ``Int``,
        ``Categorical``)."""
        from loopml.tuning.space import Categorical, Float, Int

        if isinstance(dimension, Float):
            return self.suggest_float(
                name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
            )
        if isinstance(dimension, Int):
            return self.suggest_int(
                name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
            )
        if isinstance(dimension, Categorical):
            return self.suggest_categorical(name, dimension.choices)
        raise InvalidArgument(
            f"suggest({name!r}, ...) takes a Float, Int or Categorical, got "
            f"{type(dimension).__name__}"
        )

    @property
    def params(self) -> dict[str, Any]:
        """The params sampled so far (a copy)."""
        return dict(self._params)

    # --- pruning -------------------------------------------------------------------------------

    def report(self, value: float, step: int) -> None:
        """Report an intermediate value (e.g. the validation loss after epoch ``step``).

        It becomes the point ``step`` of the trial run's metric series and is what pruners
        judge. A step reported twice keeps its first value (as in Optuna).

        Raises:
            TypeError: ``value`` is not a number or ``step`` not an int.
            ValueError: ``step`` is negative.
        """
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"report: value must be a number, got {type(value).__name__} {value!r:.60}"
            ) from None
        if isinstance(step, bool) or not isinstance(step, int):
            try:
                step = int(step)
            except (TypeError, ValueError):
                raise TypeError(
                    f"report: step must be an int, got {type(step).__name__} {step!r:.60}"
                ) from None
        if step < 0:
            raise ValueError(f"report: step must be >= 0, got {step}")
        if step in self._steps:
            log.warning(
                "loopml: trial %d reported step %d twice; the second value is ignored",
                self.number,
                step,
            )
            return
        self._steps.add(step)
        self._client.log_metrics(self.run_id, {self._metric: value}, step=step)
        self._channel.call(self.number, "report", (value, step))

    def should_prune(self) -> bool:
        """Whether the pruner says to stop this trial now (then ``raise optuna.TrialPruned()``,
        also available as ``loopml.tuning.TrialPruned``)."""
        return bool(self._channel.call(self.number, "should_prune", ()))

    # --- extra attributes ----------------------------------------------------------------------

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-serialisable value to the trial (kept with the study, reloaded on
        resume)."""
        import json

        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"set_user_attr({key!r}, ...): the value must be JSON-serialisable: {exc}"
            ) from exc
        self._channel.call(self.number, "set_user_attr", (key, value))
        self._user_attrs[key] = value

    @property
    def user_attrs(self) -> dict[str, Any]:
        """Attributes set with :meth:`set_user_attr` in this trial."""
        return dict(self._user_attrs)

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, run_id={self.run_id!r}, params={self._params!r})"


def current_trial() -> Trial:
    """The trial running in this thread (for an objective written ``objective(params)`` that
    wants to :meth:`~Trial.report`).

    Raises:
        NoActiveRun: no trial is running here.
    """
    trial = _current.get()
    if trial is None:
        raise NoActiveRun(
            "no tuning trial is running in this thread or context; call "
            "loopml.tuning.current_trial() inside an objective run by loopml.tune"
        )
    return trial


def call_style(objective: Callable[..., Any], keys: Sequence[str] | None) -> Style:
    """How ``objective`` is called: with the :class:`Trial` (no space), with the params as a
    dict, or with the params as keyword arguments (when it names every param of the space), plus
    ``trial=`` when it also has a ``trial`` parameter."""
    if keys is None:
        return "trial"
    try:
        sig = inspect.signature(objective)
    except (TypeError, ValueError):  # some builtins and C callables
        return "params"
    ps = sig.parameters
    required = [
        p.name
        for p in ps.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required == ["trial"] and "trial" not in keys:
        return "trial"
    kinds = {p.kind for p in ps.values()}
    takes_all = all(k in ps for k in keys) or (
        inspect.Parameter.VAR_KEYWORD in kinds
        and not any(
            p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name not in keys
            and p.name != "trial"
            for p in ps.values()
        )
    )
    if takes_all and (len(keys) > 1 or list(ps) != ["params"]):
        return "kwargs+trial" if "trial" in ps and "trial" not in keys else "kwargs"
    return "params"


def _is_pruned(exc: BaseException) -> bool:
    """Whether ``exc`` is Optuna's TrialPruned (Optuna is loaded if the objective raised it)."""
    module = sys.modules.get("optuna.exceptions")
    return module is not None and isinstance(exc, module.TrialPruned)


def _as_value(result: object) -> tuple[float | None, str | None]:
    """The objective's return value as a float, or the reason it is not one."""
    if result is None:
        return None, "the objective returned None; return the number to optimise"
    if isinstance(result, bool):
        return None, f"the objective returned the bool {result}; return a number"
    try:
        value = float(result)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, (
            f"the objective returned {type(result).__name__} {result!r:.60}, not a number; "
            "return the value to optimise as a float"
        )
    if math.isnan(value):
        return None, "the objective returned nan"
    return value, None


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:8000]


def run_trial(
    objective: Callable[..., Any],
    style: Style,
    ticket: Ticket,
    channel: Channel,
    client: Client,
    metric: str,
    catch: tuple[type[BaseException], ...] = (),
) -> tuple[Outcome, BaseException | None]:
    """Run the objective for one trial, inside the trial's run, and say how it ended.

    The trial's run is the active run while the objective runs (``loopml.log_metric`` lands
    there) and the trial is :func:`current_trial`. Returns the outcome and the exception the
    objective raised, if any (pruning is not an exception here).
    """
    from loopml.client import context
    from loopml.entities import Run
    from loopml.tracking import ActiveRun

    fields = dict(ticket.run)
    for key in ("params", "tags", "metrics"):
        fields[key] = MappingProxyType(dict(fields.get(key) or {}))
    run = Run(**fields)
    trial = Trial(ticket.number, run.run_id, channel, client, metric, ticket.params)
    active = ActiveRun(run, client)
    run_token = context.active_runs.set((*context.active_runs.get(), active))
    trial_token = _current.set(trial)
    try:
        if style == "trial":
            result = objective(trial)
        elif style == "params":
            result = objective(dict(ticket.params))
        elif style == "kwargs":
            result = objective(**ticket.params)
        else:
            result = objective(trial=trial, **ticket.params)
    except BaseException as exc:
        if _is_pruned(exc):
            return Outcome("pruned"), None
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        caught = not interrupted and isinstance(exc, catch)
        return Outcome("fail", error=_error_text(exc), caught=caught, interrupted=interrupted), exc
    finally:
        _current.reset(trial_token)
        context.active_runs.reset(run_token)
    value, problem = _as_value(result)
    if problem is not None:
        # Optuna records such a trial as failed and goes on; so do we.
        log.warning("loopml: trial %d failed: %s", ticket.number, problem)
        return Outcome("fail", error=problem, caught=True), None
    return Outcome("complete", value=value), None
