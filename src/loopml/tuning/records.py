"""How a study is kept in the metadata store, and how it is read back.

A study is a run (named after the study, tagged ``loopml.tune.role = study``) whose children are
its trials (``loopml.tune.role = trial``). Everything Optuna needs to rebuild a trial is in its
run's tags, so that a study can be resumed, inspected and plotted from the store alone:

==============================  ============================================================
tag (on a trial's run)          value
==============================  ============================================================
``loopml.tune.study``           the study's name
``loopml.tune.trial``           the trial's number (0, 1, ...)
``loopml.tune.state``           ``running``, ``complete``, ``pruned``, ``fail`` or
                                ``interrupted`` (failed because the tuning process stopped)
``loopml.tune.value``           the final value, exactly (``repr`` of the float)
``loopml.tune.params``          JSON: each param's Optuna distribution and internal value
``loopml.tune.steps``           how many intermediate values were reported
``loopml.tune.user_attrs``      JSON of ``Trial.set_user_attr`` values
==============================  ============================================================

Intermediate values are the points of the trial's metric series (step = the reported step); the
final value is the series' last point too, and the run's metric. The study's run carries the
direction, the metric, the sampler and pruner names, the space and the process tuning it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.entities import Run, RunStatus
from loopml.errors import Conflict, NotFound, ProjectNotFound

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

    from loopml.client import Client

__all__ = [
    "TAG_ROLE",
    "TrialRecord",
    "check_not_running",
    "driver_tag",
    "find_study",
    "frozen_trials",
    "list_studies",
    "load_trials",
    "mark_interrupted",
    "params_tag",
]

TAG_ROLE = "loopml.tune.role"
TAG_STUDY = "loopml.tune.study"
TAG_TRIAL = "loopml.tune.trial"
TAG_STATE = "loopml.tune.state"
TAG_VALUE = "loopml.tune.value"
TAG_PARAMS = "loopml.tune.params"
TAG_STEPS = "loopml.tune.steps"
TAG_USER_ATTRS = "loopml.tune.user_attrs"
TAG_DIRECTION = "loopml.tune.direction"
TAG_METRIC = "loopml.tune.metric"
TAG_SAMPLER = "loopml.tune.sampler"
TAG_PRUNER = "loopml.tune.pruner"
TAG_SPACE = "loopml.tune.space"
TAG_DRIVER = "loopml.tune.driver"
TAG_BEST_TRIAL = "loopml.tune.best_trial"
TAG_BEST_RUN = "loopml.tune.best_run_id"
TAG_N_TRIALS = "loopml.tune.trials"
FAILURE_REASON_TAG = "loopml.failure_reason"
_MAX_TAG = 8000

STATES = ("running", "complete", "pruned", "fail", "interrupted")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _project_name(client: Client, project_id: str) -> str:
    return client.get_project(project_id).name


def find_study(client: Client, project: str, name: str) -> Run | None:
    """The run of study ``name`` in ``project``, or None."""
    where = f"tags.`{TAG_ROLE}` = 'study' and tags.`{TAG_STUDY}` = {_quote(name)}"
    try:
        page = client.search_runs(project, where, max_results=1)
    except ProjectNotFound:
        return None
    return page.items[0] if page.items else None


def list_studies(client: Client, project: str | None) -> list[Run]:
    """The runs of every study in ``project`` (every project when None), newest first."""
    return list(client.iter_runs(project, f"tags.`{TAG_ROLE}` = 'study'"))


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A trial as the store has it: its run, and what its tags say."""

    number: int
    run: Run
    state: str
    value: float | None
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    intermediate: dict[int, float]
    user_attrs: dict[str, Any]


def load_trials(client: Client, study: Run, *, intermediate: bool = True) -> list[TrialRecord]:
    """Every trial of a study, by number.

    Args:
        intermediate: read the intermediate values too (one metric-history read per trial that
            reported any).
    """
    from optuna.distributions import json_to_distribution

    metric = study.tags.get(TAG_METRIC, "value")
    where = f"parent_run_id = {_quote(study.run_id)} and tags.`{TAG_ROLE}` = 'trial'"
    out = []
    for run in client.iter_runs(_project_name(client, study.project_id), where):
        try:
            number = int(run.tags[TAG_TRIAL])
        except (KeyError, ValueError):
            continue  # not written by loopml.tune: not part of the study
        params: dict[str, Any] = {}
        dists: dict[str, BaseDistribution] = {}
        for name, entry in json.loads(run.tags.get(TAG_PARAMS) or "{}").items():
            dist = json_to_distribution(json.dumps(entry["distribution"]))
            dists[name] = dist
            params[name] = dist.to_external_repr(entry["internal"])
        state = run.tags.get(TAG_STATE, "running")
        if state == "running" and run.status.is_terminal:
            state = "interrupted" if run.status is RunStatus.KILLED else "fail"
        raw_value = run.tags.get(TAG_VALUE)
        value = float(raw_value) if raw_value not in (None, "") else None
        steps: dict[int, float] = {}
        if intermediate and int(run.tags.get(TAG_STEPS) or 0) > 0:
            history = client.get_metric_history(run.run_id, metric)
            for step, v in zip(history.steps.tolist(), history.values.tolist(), strict=True):
                steps.setdefault(int(step), float(v))  # the first point of a step is the report
        attrs = json.loads(run.tags.get(TAG_USER_ATTRS) or "{}")
        out.append(TrialRecord(number, run, state, value, params, dists, steps, attrs))
    out.sort(key=lambda r: (r.number, r.run.start_time))
    unique: dict[int, TrialRecord] = {}
    for record in out:
        unique.setdefault(record.number, record)
    return list(unique.values())


def _when(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000)


def frozen_trials(records: Iterable[TrialRecord]) -> list[FrozenTrial]:
    """Optuna trials for the records, numbered as recorded; a number with no record (the
    process stopped between sampling and starting the run) becomes a failed trial, so that new
    trials keep numbers that were never used."""
    from optuna.trial import FrozenTrial, TrialState

    states = {
        "complete": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
        "fail": TrialState.FAIL,
        "interrupted": TrialState.FAIL,
        "running": TrialState.FAIL,  # in the store; to a resumed study it failed
    }
    by_number = {r.number: r for r in records}
    out = []
    now = dt.datetime.now()
    for number in range(max(by_number, default=-1) + 1):
        r = by_number.get(number)
        if r is None:
            out.append(
                FrozenTrial(number, TrialState.FAIL, None, now, now, {}, {}, {}, {}, {}, number)
            )
            continue
        state = states[r.state]
        value = r.value if state in (TrialState.COMPLETE, TrialState.PRUNED) else None
        if state is TrialState.COMPLETE and value is None:
            state = TrialState.FAIL
        start = _when(r.run.start_time)
        end = _when(r.run.end_time) or start
        out.append(
            FrozenTrial(
                number=number,
                state=state,
                value=value,
                datetime_start=start,
                datetime_complete=end,
                params=r.params,
                distributions=r.distributions,
                user_attrs=r.user_attrs,
                system_attrs={},
                intermediate_values=r.intermediate,
                trial_id=number,
            )
        )
    return out


def params_tag(
    params: Mapping[str, Any], distributions: Mapping[str, BaseDistribution]
) -> str | None:
    """The ``loopml.tune.params`` tag value, or None when it would not fit in a tag (a
    categorical with thousands of choices); such a trial resumes without its params."""
    from optuna.distributions import distribution_to_json

    data = {
        name: {
            "distribution": json.loads(distribution_to_json(dist)),
            "internal": dist.to_internal_repr(params[name]),
        }
        for name, dist in distributions.items()
        if name in params
    }
    text = json.dumps(data, separators=(",", ":"))
    return text if len(text) <= _MAX_TAG else None


def mark_interrupted(client: Client, records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """Mark the trials still ``running`` in the store (their process died) as failed, tagged
    ``interrupted``; returns the records as they are now."""
    from dataclasses import replace

    out = []
    for r in records:
        if r.state != "running":
            out.append(r)
            continue
        reason = "interrupted: the tuning process stopped before the trial ended"
        client.set_tags(r.run.run_id, {TAG_STATE: "interrupted", FAILURE_REASON_TAG: reason})
        if not r.run.status.is_terminal:
            client.store.update_run(r.run.run_id, status=RunStatus.FAILED)
        out.append(replace(r, state="interrupted"))
    return out


def driver_tag() -> str:
    """Who is tuning: ``host:pid:process start time``."""
    import psutil

    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.3f}"


def check_not_running(client: Client, study: Run, name: str) -> None:
    """Refuse to resume a study another live process is tuning.

    Raises:
        Conflict: the study's run is ``running`` and the process in its driver tag is alive
            (on this host), or its heartbeat is recent (on another host).
    """
    if study.status is not RunStatus.RUNNING:
        return
    import psutil

    from loopml.entities import now_ms

    host, _, rest = study.tags.get(TAG_DRIVER, "").partition(":")
    pid_text, _, started = rest.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            alive = f"{psutil.Process(int(pid_text)).create_time():.3f}" == started
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            alive = False
        if not alive:
            return
        where = f"process {pid_text} on this host"
    else:
        age = (now_ms() - (study.heartbeat_at or study.start_time)) / 1000
        if age > client.settings.heartbeat_timeout:
            return
        where = f"a process on {host or 'another host'} (heartbeat {age:.0f} s ago)"
    raise Conflict(
        f"study {name!r} is being tuned by {where}; wait for it to finish, or tune under "
        "another study_name"
    )


def get_study(client: Client, name: str, project: str | None = None) -> Run:
    """The run of study ``name``.

    Raises:
        NotFound: no study has this name in the project.
    """
    proj = project or client.settings.project
    run = find_study(client, proj, name)
    if run is None:
        raise NotFound(
            f"study {name!r} does not exist in project {proj!r}; list studies with "
            "`loopml tune list` (is it in another project? pass --project)"
        )
    return run
