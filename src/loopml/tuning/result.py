"""What a study found: :class:`TuneResult` (returned by ``loopml.tune`` and
``loopml.tuning.load_study``) and its :class:`TrialResult` s."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from loopml.errors import NotFound

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.importance import BaseImportanceEvaluator
    from optuna.trial import FrozenTrial

__all__ = ["TrialResult", "TuneResult", "new_study"]


def new_study(name: str, direction: str, sampler: Any = None, pruner: Any = None) -> optuna.Study:
    """An in-memory Optuna study, created without Optuna's "new study created" log line."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, logging.WARNING))
    try:
        return optuna.create_study(
            study_name=name,
            direction="maximize" if direction == "maximize" else "minimize",
            sampler=sampler,
            pruner=pruner,
        )
    finally:
        optuna.logging.set_verbosity(level)


def _ms(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class TrialResult:
    """One trial of a study.

    Attributes:
        number: its number in the study (0, 1, ...).
        state: ``complete``, ``pruned``, ``fail``, ``interrupted`` (its process stopped) or
            ``running``.
        value: the objective's value (a pruned trial: its last intermediate value), or None.
        params: the params it ran with.
        run_id: its run (None for a number that was sampled but never started).
        intermediate_values: reported values by step.
        user_attrs: what ``Trial.set_user_attr`` attached.
        start_time, end_time: milliseconds since the epoch (None when unknown).
    """

    number: int
    state: str
    value: float | None
    params: Mapping[str, Any]
    run_id: str | None
    intermediate_values: Mapping[int, float]
    user_attrs: Mapping[str, Any]
    start_time: int | None = None
    end_time: int | None = None

    @property
    def duration_ms(self) -> int | None:
        """Wall time of the trial, or None."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


class TuneResult:
    """A study and its trials: the best one, all of them, parameter importance and plots.

    Attributes:
        study_name: the study's name (and its run's name).
        project: the project it lives in.
        run_id: the study's run; every trial's run is its child.
        direction: ``minimize`` or ``maximize``.
        metric: the name of the objective's value in the trial runs.
    """

    def __init__(
        self,
        *,
        study_name: str,
        project: str,
        run_id: str,
        direction: str,
        metric: str,
        trials: list[FrozenTrial],
        run_ids: Mapping[int, str],
        states: Mapping[int, str] | None = None,
        study: optuna.Study | None = None,
    ) -> None:
        self.study_name = study_name
        self.project = project
        self.run_id = run_id
        self.direction = direction
        self.metric = metric
        self._frozen = trials
        self._run_ids = dict(run_ids)
        self._states = dict(states or {})
        self._study = study
        self._trials: list[TrialResult] | None = None

    # --- trials --------------------------------------------------------------------------------

    @property
    def trials(self) -> list[TrialResult]:
        """Every trial, by number."""
        if self._trials is None:
            self._trials = [self._result(t) for t in self._frozen]
        return list(self._trials)

    def _result(self, t: FrozenTrial) -> TrialResult:
        state = self._states.get(t.number) or t.state.name.lower()
        return TrialResult(
            number=t.number,
            state=state,
            value=t.value,
            params=MappingProxyType(dict(t.params)),
            run_id=self._run_ids.get(t.number),
            intermediate_values=MappingProxyType(dict(t.intermediate_values)),
            user_attrs=MappingProxyType(dict(t.user_attrs)),
            start_time=_ms(t.datetime_start),
            end_time=_ms(t.datetime_complete),
        )

    def count(self, state: str) -> int:
        """How many trials are in ``state`` (``complete``, ``pruned``, ``fail`` ...)."""
        return sum(t.state == state for t in self.trials)

    @property
    def best_trial(self) -> TrialResult:
        """The completed trial with the best value (the first one on ties).

        Raises:
            NotFound: no trial completed.
        """
        best: TrialResult | None = None
        maximize = self.direction == "maximize"
        for t in self.trials:
            if t.state != "complete" or t.value is None:
                continue
            if best is None or (t.value > best.value if maximize else t.value < best.value):  # type: ignore[operator]
                best = t
        if best is None:
            raise NotFound(
                f"no trial of study {self.study_name!r} completed "
                f"({len(self._frozen)} trial(s): {self._summary()}); look at the failed "
                "trials' loopml.error tags with `loopml tune show`"
            )
        return best

    @property
    def best_params(self) -> dict[str, Any]:
        """The params of the best trial."""
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        """The value of the best trial."""
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_run_id(self) -> str:
        """The run of the best trial."""
        run_id = self.best_trial.run_id
        assert run_id is not None
        return run_id

    def _summary(self) -> str:
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"

    # --- Optuna --------------------------------------------------------------------------------

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (in memory), for anything Optuna offers."""
        if self._study is None:
            study = new_study(self.study_name, self.direction)
            study.add_trials(self._frozen)
            self._study = study
        return self._study

    def importance(
        self,
        evaluator: str | BaseImportanceEvaluator | None = None,
        params: list[str] | None = None,
    ) -> dict[str, float]:
        """Each param's importance (shares that add up to 1), largest first.

        Args:
            evaluator: ``fanova`` (the default; seeded), ``ped-anova`` (the default without
                scikit-learn), ``mean-decrease-impurity``, or an Optuna evaluator.
            params: only these params.

        Raises:
            InvalidArgument: fewer than two completed trials.
        """
        from loopml.tuning.importance import param_importances

        return param_importances(self.study, evaluator, params)

    def plot(self, kind: str = "history", **options: Any) -> Any:
        """A plotly figure: ``history``, ``importance``, ``parallel`` or ``intermediate`` (see
        :func:`loopml.tuning.plots.figure` for the options).

        Raises:
            MissingExtra: plotly is not installed (``pip install 'loopml[plots]'``).
        """
        from loopml.tuning.plots import figure

        return figure(self.study, kind, metric=self.metric, **options)

    def plot_optimization_history(self) -> Any:
        """The value of every trial and the best so far, by trial number."""
        return self.plot("history")

    def plot_param_importances(
        self, evaluator: str | BaseImportanceEvaluator | None = None
    ) -> Any:
        """The importance of each param, as bars."""
        return self.plot("importance", evaluator=evaluator)

    def plot_parallel_coordinate(self, params: list[str] | None = None) -> Any:
        """Params and value of every completed trial, one line each."""
        return self.plot("parallel", params=params)

    # --- tables --------------------------------------------------------------------------------

    def to_pandas(self) -> pd.DataFrame:
        """One row per trial: number, state, value, duration, run id, then ``params.*``."""
        from loopml._lazy import require

        pandas = require("pandas", "pandas", "TuneResult.to_pandas()")
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {
                "number": t.number,
                "state": t.state,
                "value": t.value,
                "duration_ms": t.duration_ms,
                "run_id": t.run_id,
            }
            row.update({f"params.{k}": v for k, v in t.params.items()})
            rows.append(row)
        frame: pd.DataFrame = pandas.DataFrame(rows)
        return frame

    def __len__(self) -> int:
        return len(self._frozen)

    def __repr__(self) -> str:
        try:
            best = f", best_value={self.best_value!r}"
        except NotFound:
            best = ""
        return (
            f"TuneResult(study_name={self.study_name!r}, trials={len(self)} "
            f"({self._summary()}){best})"
        )
