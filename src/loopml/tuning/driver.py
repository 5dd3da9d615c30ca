"""The :class:`Driver`: the one owner of a study while it is being tuned.

The tuning process holds the Optuna study (in-memory storage, ask-and-tell) and hands out trials;
whoever runs an objective (this thread, other threads, worker processes, Ray tasks) asks it for a
trial, sends it every ``suggest_*``, ``report`` and ``should_prune`` call, and tells it how the
trial ended. So the sampler sees every trial, pruning decisions are made against every reported
value, and only this process writes a trial's params, state and final value to the store (the
objective's own metrics are written by the process that runs it).

Per trial the store sees three transactions: the run's creation (with the params already known),
one batch with the final value, params, and tags, and the status. Intermediate values go through
the metric buffer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.entities import Metric, RunStatus, Tag, now_ms
from loopml.errors import InvalidArgument
from loopml.tuning import records as rec
from loopml.tuning.trial import Outcome, Ticket

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

    from loopml.client import Client

__all__ = ["Driver"]

log = logging.getLogger("loopml")
ERROR_TAG = "loopml.error"
_SUGGEST = ("suggest_float", "suggest_int", "suggest_categorical")


@dataclass
class _Live:
    """A trial that has been handed out and not told yet."""

    trial: optuna.Trial
    run_id: str
    written: set[str] = field(default_factory=set)  # params already in the store
    steps: int = 0
    last_step: int | None = None


class Driver:
    """Hands out the trials of one study and records them (thread-safe).

    Args:
        client: where trial runs go.
        study: the Optuna study (in-memory), with the trials of earlier sessions added.
        study_run_id, project, study_name: the study's run, its project and its name.
        metric: the key of the objective's value in the trial runs.
        distributions: the declarative space (sampled whole before the objective runs), or
            None for define-by-run objectives.
        budget: how many more trials to start (None: no limit).
        deadline: ``time.monotonic()`` after which no trial starts (None: none).
        best: the best value of earlier sessions.
    """

    def __init__(
        self,
        client: Client,
        study: optuna.Study,
        *,
        study_run_id: str,
        project: str,
        study_name: str,
        metric: str,
        distributions: Mapping[str, BaseDistribution] | None,
        budget: int | None,
        deadline: float | None,
        best: float | None = None,
    ) -> None:
        self.client = client
        self.study = study
        self.study_run_id = study_run_id
        self.project = project
        self.study_name = study_name
        self.metric = metric
        self.run_ids: dict[int, str] = {}
        self.errors: list[tuple[int, BaseException]] = []  # uncaught failures, by trial
        self.started = 0
        self.finished = 0
        self._dists = dict(distributions) if distributions is not None else None
        self._budget = budget
        self._deadline = deadline
        self._lock = threading.RLock()
        self._live: dict[int, _Live] = {}
        self._stopped = False
        self._best = best
        self._maximize = study.direction.name == "MAXIMIZE"
        self.on_trial: Callable[[], None] | None = None  # called after each trial is recorded

    # --- handing out trials --------------------------------------------------------------------

    def stop(self) -> None:
        """Start no more trials (the running ones finish)."""
        with self._lock:
            self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def ask(self) -> Ticket | None:
        """The next trial to run, with its run created; None when the budget, the time or an
        error says to stop."""
        with self._lock:
            if self._stopped:
                return None
            if self._budget is not None and self.started >= self._budget:
                return None
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._stopped = True
                return None
            self.started += 1
            trial = self.study.ask(self._dists)
            number = trial.number
            fixed = dict(trial.params) if self._dists is not None else {}
        tags = {
            rec.TAG_ROLE: "trial",
            rec.TAG_STUDY: self.study_name,
            rec.TAG_TRIAL: number,
            rec.TAG_STATE: "running",
        }
        if fixed:
            text = rec.params_tag(fixed, trial.distributions)
            if text is not None:
                tags[rec.TAG_PARAMS] = text
        try:
            run = self.client.create_run(
                self.project,
                name=f"{self.study_name}/trial-{number}",
                parent_run_id=self.study_run_id,
                tags=tags,
                params=fixed,
                capture_environment=False,
            )
        except BaseException:
            with self._lock:
                self.study.tell(trial, state=_state("fail"))
                self._stopped = True
            raise
        with self._lock:
            self._live[number] = _Live(trial, run.run_id, written=set(fixed))
            self.run_ids[number] = run.run_id
        fields = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
        for key in ("params", "tags", "metrics"):
            fields[key] = dict(fields[key])
        fields["status"] = run.status.value
        return Ticket(number, fields, fixed)

    # --- calls from a running trial ------------------------------------------------------------

    def call(self, number: int, method: str, args: tuple[Any, ...]) -> Any:
        """Run a :class:`~loopml.tuning.trial.Trial` method on the Optuna trial ``number``."""
        live = self._live.get(number)
        if live is None:
            raise InvalidArgument(f"trial {number} is not running; it cannot be changed now")
        if method in _SUGGEST:
            with self._lock:
                if method == "suggest_float":
                    name, low, high, step, log_ = args
                    return live.trial.suggest_float(name, low, high, step=step, log=log_)
                if method == "suggest_int":
                    name, low, high, step, log_ = args
                    return live.trial.suggest_int(name, low, high, step=step, log=log_)
                name, choices = args
                return live.trial.suggest_categorical(name, choices)
        if method == "report":
            value, step = args
            with self._lock:
                live.trial.report(value, step)
                live.steps += 1
                live.last_step = step if live.last_step is None else max(live.last_step, step)
            self._write_new_params(live)
            return None
        if method == "should_prune":
            with self._lock:
                return live.trial.should_prune()
        if method == "set_user_attr":
            key, value = args
            with self._lock:
                live.trial.set_user_attr(key, value)
            return None
        raise InvalidArgument(f"unknown trial method {method!r}")

    def _write_new_params(self, live: _Live) -> None:
        """Params suggested since the last write: logged at the first report, so that a long
        trial shows its params while it runs."""
        with self._lock:
            new = {k: v for k, v in live.trial.params.items() if k not in live.written}
            live.written.update(new)
        if new:
            self.client.log_params(live.run_id, new)

    # --- the end of a trial --------------------------------------------------------------------

    def tell(self, number: int, outcome: Outcome, exc: BaseException | None = None) -> None:
        """Record how trial ``number`` ended: in the study, then in its run.

        An uncaught failure (``exc``, or ``outcome.caught`` False) stops the study; the error is
        kept in :attr:`errors` for the caller to raise.
        """
        with self._lock:
            live = self._live.pop(number, None)
            if live is None:
                return  # told already (a worker's end raced with a teardown)
            state = outcome.state
            value = outcome.value
            if state == "complete":
                assert value is not None
                frozen = self.study.tell(live.trial, value)
            else:
                frozen = self.study.tell(live.trial, state=_state(state))
                value = frozen.value  # a pruned trial keeps its last intermediate value
            self.finished += 1
            improved = (
                frozen.state.name == "COMPLETE"
                and value is not None
                and (
                    self._best is None
                    or (value > self._best if self._maximize else value < self._best)
                )
            )
            if improved:
                self._best = value
            if state == "fail" and not outcome.caught:
                self._stopped = True
                if exc is not None or not outcome.interrupted:
                    self.errors.append((number, exc or RuntimeError(outcome.error or "failed")))
            params = {k: v for k, v in frozen.params.items() if k not in live.written}
            dists = dict(frozen.distributions)
            user_attrs = dict(frozen.user_attrs)
            all_params = dict(frozen.params)
        self._record(live, outcome, state, value, params, all_params, dists, user_attrs)
        if improved:
            assert value is not None
            self.client.log_metrics(self.study_run_id, {"best_value": value}, step=number)
        if self.on_trial is not None:
            self.on_trial()

    def _record(
        self,
        live: _Live,
        outcome: Outcome,
        state: str,
        value: float | None,
        params: dict[str, Any],
        all_params: dict[str, Any],
        dists: dict[str, BaseDistribution],
        user_attrs: dict[str, Any],
    ) -> None:
        shown = "interrupted" if outcome.interrupted else state
        tags = [Tag(rec.TAG_STATE, shown), Tag(rec.TAG_STEPS, str(live.steps))]
        if value is not None:
            tags.append(Tag(rec.TAG_VALUE, repr(float(value))))
        text = rec.params_tag(all_params, dists)
        if text is not None:
            tags.append(Tag(rec.TAG_PARAMS, text))
        if user_attrs:
            tags.append(Tag(rec.TAG_USER_ATTRS, json.dumps(user_attrs, default=str)))
        if outcome.error:
            tags.append(Tag(ERROR_TAG, outcome.error))
        metrics = []
        if state == "complete" and value is not None:
            step = live.last_step if live.last_step is not None else 0
            metrics.append(Metric(self.metric, value, step, now_ms()))
        client = self.client
        # Intermediate values buffered in this process go first: the final value is the last
        # point of the series.
        client.flush(live.run_id)
        client.log_batch(live.run_id, metrics, params, tags)
        if state == "complete":
            status = RunStatus.FINISHED
        elif state == "pruned" or outcome.interrupted:
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        client.end_run(live.run_id, status)

    def abandon(self, reason: str) -> None:
        """End every trial still out (the tuning is being torn down): killed, ``interrupted``."""
        with self._lock:
            numbers = list(self._live)
        for number in numbers:
            try:
                self.tell(number, Outcome("fail", error=reason, caught=True, interrupted=True))
            except Exception as exc:  # the store may be what failed: keep tearing down
                log.warning("loopml: could not record trial %d as interrupted: %s", number, exc)

    @property
    def best(self) -> float | None:
        """The best value so far (earlier sessions included)."""
        return self._best


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return {"pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[name]
