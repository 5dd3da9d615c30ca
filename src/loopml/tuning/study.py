"""``loopml.tune``: hyperparameter search on Optuna, every trial a tracked run.

::

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        depth = trial.suggest_int("depth", 2, 10)
        return train_and_score(lr, depth)


    result = loopml.tune(objective, n_trials=50)
    result.best_params, result.best_value, result.best_run_id

The tuning process owns the Optuna study (see :mod:`loopml.tuning.driver`); trials run here, in
threads, in worker processes or on Ray (:mod:`loopml.tuning.parallel`). The study is kept in the
store (:mod:`loopml.tuning.records`), so running ``tune`` again with the same ``study_name``
continues it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopml.entities import Run, RunStatus
from loopml.errors import AlreadyExists, InvalidArgument
from loopml.store.validation import check_key, check_name
from loopml.tuning import records as rec
from loopml.tuning.result import TuneResult, new_study
from loopml.tuning.space import Dimension, check_space, describe, to_distributions
from loopml.tuning.trial import call_style

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["list_studies", "load_study", "tune"]

EXECUTORS = ("local", "processes", "ray")
SAMPLERS = ("tpe", "random", "cmaes", "qmc", "gp")
PRUNERS = ("median", "hyperband", "successive-halving", "none")


def _check_positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{what} must be a positive int, got {value!r:.60}")
    return value


def _catch_types(catch: object) -> tuple[type[BaseException], ...]:
    items = catch if isinstance(catch, (tuple, list)) else (catch,)
    for c in items:
        if not (isinstance(c, type) and issubclass(c, Exception)):
            raise InvalidArgument(
                f"catch takes exception classes (e.g. catch=(ValueError,)), got {c!r:.60}"
            )
    return tuple(items)


def _sampler(sampler: object, seed: int | None) -> Any:
    import optuna

    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler  # it keeps its own seed
    name = "tpe" if sampler is None else sampler
    if not isinstance(name, str) or name.lower() not in SAMPLERS:
        raise InvalidArgument(
            f"sampler must be an Optuna sampler or one of {', '.join(SAMPLERS)}, got "
            f"{sampler!r:.60}"
        )
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
        "gp": optuna.samplers.GPSampler,
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some samplers are marked experimental
        return classes[name.lower()](seed=seed)


def _pruner(pruner: object) -> Any:
    import optuna

    if pruner is None:
        return optuna.pruners.MedianPruner()  # Optuna's default
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    key = pruner.lower().replace("_", "-") if isinstance(pruner, str) else None
    if key not in PRUNERS:
        raise InvalidArgument(
            f"pruner must be an Optuna pruner or one of {', '.join(PRUNERS)}, got {pruner!r:.60}"
        )
    return {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
        "none": optuna.pruners.NopPruner,
    }[key]()


def _project(client: Client, project: str | None, outer: Run | None) -> str:
    if project is not None:
        return check_name(project, "project")
    if outer is not None:
        return client.get_project(outer.project_id).name
    from loopml.client import context

    return context.get_project() or client.settings.project


def tune(
    objective: Callable[..., Any],
    space: Mapping[str, Dimension | Any] | None = None,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    direction: str = "minimize",
    metric: str = "value",
    sampler: Any = None,
    pruner: Any = None,
    study_name: str | None = None,
    project: str | None = None,
    n_jobs: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    resume: bool = True,
    seed: int | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = (),
    client: Client | None = None,
) -> TuneResult:
    """Search for the params that minimise (or maximise) ``objective``; every trial is a run.

    Two ways to write the objective:

    * ``objective(trial)``: sample with ``trial.suggest_float("lr", 1e-4, 1e-1, log=True)``,
      ``trial.suggest_int``, ``trial.suggest_categorical`` (Optuna's trial API); report
      intermediate values with ``trial.report(value, step)`` and stop early when
      ``trial.should_prune()`` says so (``raise optuna.TrialPruned()``).
    * with ``space={"lr": Float(1e-4, 1e-1, log=True), "depth": Int(2, 10)}``: every param is
      sampled before the objective runs, which gets them as ``objective(params)`` (a dict), or
      as keyword arguments when its parameters are named after them (``def objective(lr,
      depth)``); it can still report through :func:`loopml.tuning.current_trial`.

    The study is a run named ``study_name`` (tagged ``loopml.tune.role = study``, its
    environment captured once); each trial is a child run named ``<study>/trial-<n>`` with its
    params, its reported values as the points of the metric ``metric`` (step = the reported
    step), its final value as that metric's last point, and its state (finished; pruned:
    ``killed``, tagged ``loopml.tune.state = pruned``; failed). ``loopml.log_metric`` inside the
    objective writes to the trial's run. The study's run gets ``best_value`` (one point per
    improvement, step = trial number).

    Args:
        objective: returns the value to optimise (a float). Exceptions fail the trial and stop
            the study (unless listed in ``catch``); a returned NaN or None fails the trial only.
        space: a declarative search space (see above), or None.
        n_trials: the study's total number of trials: resuming a study with 30 ended trials
            and ``n_trials=50`` runs 20 more (trials interrupted by a crash do not count).
        timeout: stop starting trials after this many seconds (running ones finish).
        direction: ``minimize`` or ``maximize``.
        metric: the name of the objective's value in the runs (e.g. ``val_loss``).
        sampler: an Optuna sampler, or ``tpe`` (the default), ``random``, ``cmaes``, ``qmc``,
            ``gp``.
        pruner: an Optuna pruner, or ``median`` (the default, as in Optuna), ``hyperband``,
            ``successive-halving``, ``none``.
        study_name: the study's name; a new unique one when None.
        project: where the runs go (default: the active run's project, else the current one).
        n_jobs: trials at once.
        executor: ``local`` (this process; ``n_jobs`` threads), ``processes`` (``n_jobs`` new
            worker processes) or ``ray`` (``n_jobs`` Ray tasks). ``processes`` and ``ray``
            need a picklable objective (cloudpickle) and a store they can open (not
            ``memory://``).
        ray_address: the Ray cluster to use (default: the one ``ray.init`` finds or starts).
        resume: continue the study named ``study_name`` if it exists (False: it is an error).
        seed: seed the default (or named) sampler, for a repeatable search (a sampler object
            keeps its own seed: ``TPESampler(seed=...)``).
        catch: exception types that fail a trial without stopping the study.
        client: the client to use (default: the fluent API's).

    Returns:
        A :class:`~loopml.tuning.TuneResult` with every trial of the study (earlier sessions
        included).

    Raises:
        InvalidArgument: a bad argument, or an objective that cannot be sent to workers.
        AlreadyExists: the study exists and ``resume`` is False.
        Conflict: another live process is tuning the study.
    """
    if not callable(objective):
        raise InvalidArgument(
            f"objective must be a function, got {type(objective).__name__}; write "
            "def objective(trial): ... and pass it (not its result)"
        )
    dims = check_space(space) if space is not None else None
    if n_trials is not None:
        _check_positive_int(n_trials, "n_trials")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise InvalidArgument(f"timeout must be a positive number of seconds, got {timeout!r}")
    if n_trials is None and timeout is None:
        raise InvalidArgument("give n_trials, timeout or both (e.g. n_trials=50)")
    if not isinstance(direction, str) or direction.lower() not in ("minimize", "maximize"):
        raise InvalidArgument(
            f"direction must be 'minimize' or 'maximize', got {direction!r:.60} "
            "(loopml.tune optimises one value)"
        )
    direction = direction.lower()
    check_key(metric, "metric")
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    _check_positive_int(n_jobs, "n_jobs (or -1 for one per CPU)")
    if executor not in EXECUTORS:
        raise InvalidArgument(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if ray_address is not None and executor != "ray":
        raise InvalidArgument("ray_address is for executor='ray'")
    if study_name is not None:
        check_name(study_name, "study_name")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidArgument(f"seed must be an int, got {seed!r:.60}")
    catch_types = _catch_types(catch)
    style = call_style(objective, None if dims is None else list(dims))

    sampler_obj = _sampler(sampler, seed)
    pruner_obj = _pruner(pruner)
    from loopml import tracking

    if client is None:
        client = tracking.get_client()
        active = tracking.active_run()
        outer = active.run if active is not None else None
    else:
        outer = None
    project_name = _project(client, project, outer)
    config: dict[str, Any] = {}
    if executor != "local":
        from loopml.tuning.parallel import check_picklable

        uri = client._tracking_uri  # unmasked: workers open the store themselves
        if uri.startswith("memory://"):
            raise InvalidArgument(
                f"executor={executor!r} runs trials in other processes, which cannot see an "
                "in-memory store; use a SQLite file or PostgreSQL (LOOPML_TRACKING_URI)"
            )
        config = {
            "objective": check_picklable(objective),
            "catch": check_picklable(catch_types, "catch list"),
            "tracking_uri": uri,
            "artifact_uri": client.artifact_uri,
            "project": project_name,
            "style": style,
            "metric": metric,
        }

    name = study_name or f"{getattr(objective, '__name__', 'study')}-{secrets.token_hex(3)}"
    name = check_name(name.strip("<>") or "study", "study_name")
    existing = rec.find_study(client, project_name, name) if study_name is not None else None
    records: list[rec.TrialRecord] = []
    if existing is not None:
        if not resume:
            raise AlreadyExists(
                f"study {name!r} already exists in project {project_name!r}; pass resume=True "
                "to continue it, or choose another study_name"
            )
        rec.check_not_running(client, existing, name)
        for tag, wanted in ((rec.TAG_DIRECTION, direction), (rec.TAG_METRIC, metric)):
            if existing.tags.get(tag, wanted) != wanted:
                raise InvalidArgument(
                    f"study {name!r} was tuned with {tag.rsplit('.', 1)[-1]}="
                    f"{existing.tags[tag]!r}, not {wanted!r}; resume it with the same value "
                    "or choose another study_name"
                )
        records = rec.mark_interrupted(client, rec.load_trials(client, existing))
    counted = sum(r.state in ("complete", "pruned", "fail") for r in records)
    budget = None if n_trials is None else max(0, n_trials - counted)

    study = new_study(name, direction, sampler_obj, pruner_obj)
    frozen = rec.frozen_trials(records)
    if frozen:
        study.add_trials(frozen)
    run_ids = {r.number: r.run.run_id for r in records}
    states = {r.number: r.state for r in records if r.state == "interrupted"}
    if existing is not None and budget == 0:
        return _result(name, project_name, existing.run_id, direction, metric, study, run_ids, {})

    tags = {
        rec.TAG_ROLE: "study",
        rec.TAG_STUDY: name,
        rec.TAG_DIRECTION: direction,
        rec.TAG_METRIC: metric,
        rec.TAG_SAMPLER: type(sampler_obj).__name__,
        rec.TAG_PRUNER: type(pruner_obj).__name__,
        rec.TAG_DRIVER: rec.driver_tag(),
        "loopml.tune.executor": f"{executor} x{n_jobs}",
    }
    if dims is not None:
        tags[rec.TAG_SPACE] = json.dumps(describe(dims))[:8000]
    if existing is None:
        study_run = client.create_run(
            project_name,
            name=name,
            parent_run_id=None if outer is None else outer.run_id,
            tags=tags,
        )
    else:
        study_run = existing
        client.store.update_run(existing.run_id, status=RunStatus.RUNNING)
        client.set_tags(existing.run_id, tags)
        client.buffer.track(existing.run_id)
    best = None
    try:
        best = study.best_value if any(t.state.name == "COMPLETE" for t in frozen) else None
    except ValueError:
        best = None

    from loopml.tuning.driver import Driver

    driver = Driver(
        client,
        study,
        study_run_id=study_run.run_id,
        project=project_name,
        study_name=name,
        metric=metric,
        distributions=None if dims is None else to_distributions(dims),
        budget=budget,
        deadline=None if timeout is None else time.monotonic() + float(timeout),
        best=best,
    )
    _run(driver, study_run, client, objective, style, catch_types, executor, n_jobs, config,
         ray_address, budget)  # fmt: skip
    run_ids.update(driver.run_ids)
    for number in driver.run_ids:
        states.pop(number, None)
    return _result(name, project_name, study_run.run_id, direction, metric, study, run_ids, states)


def _run(
    driver: Any,
    study_run: Run,
    client: Client,
    objective: Callable[..., Any],
    style: Any,
    catch: tuple[type[BaseException], ...],
    executor: str,
    n_jobs: int,
    config: dict[str, Any],
    ray_address: str | None,
    budget: int | None,
) -> None:
    """Run the trials inside the study's run, then end it as it went."""
    from loopml._progress import progress
    from loopml.client import context
    from loopml.tracking import ActiveRun
    from loopml.tuning import parallel

    active = ActiveRun(study_run, client)
    token = context.active_runs.set((*context.active_runs.get(), active))
    status = RunStatus.FINISHED
    error: BaseException | None = None
    try:
        # A bar on stderr when it is a terminal (and LOOPML_PROGRESS is not 0), else nothing.
        with progress(f"tuning {driver.study_name}", total=budget, unit="trials") as bar:
            driver.on_trial = bar.advance
            if executor == "local":
                parallel.run_local(driver, objective, style, catch, n_jobs)
            elif executor == "processes":
                parallel.run_processes(driver, config, n_jobs)
            else:
                parallel.run_ray(driver, config, n_jobs, ray_address)
        if driver.errors:
            error = driver.errors[0][1]
    except (KeyboardInterrupt, SystemExit):  # Ctrl+C, or SIGTERM through loopml's handler
        status = RunStatus.KILLED
        driver.abandon("interrupted: tuning was stopped (Ctrl+C or a signal)")
        raise
    except BaseException as exc:
        error = exc
        driver.abandon(f"interrupted: tuning stopped on an error: {exc}")
    finally:
        context.active_runs.reset(token)
        if error is not None:
            status = RunStatus.FAILED
        _finish(driver, client, study_run.run_id, status, error)
    if error is not None:
        if driver.errors and error is driver.errors[0][1]:
            error.add_note(
                f"raised by trial {driver.errors[0][0]} of study {driver.study_name!r}; pass "
                "catch=(SomeError,) to record such failures and go on"
            )
        raise error


def _finish(
    driver: Any, client: Client, run_id: str, status: RunStatus, error: BaseException | None
) -> None:
    from loopml.tracking.fluent import ERROR_TAG

    study = driver.study
    tags: dict[str, Any] = {rec.TAG_N_TRIALS: len(study.get_trials(deepcopy=False))}
    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        tags[rec.TAG_BEST_TRIAL] = best.number
        best_run = driver.run_ids.get(best.number)
        if best_run is not None:
            tags[rec.TAG_BEST_RUN] = best_run
    if error is not None:
        tags[ERROR_TAG] = f"{type(error).__name__}: {error}"[:8000]
    client.set_tags(run_id, tags)
    client.end_run(run_id, status)


def _result(
    name: str,
    project: str,
    run_id: str,
    direction: str,
    metric: str,
    study: Any,
    run_ids: dict[int, str],
    states: dict[int, str],
) -> TuneResult:
    return TuneResult(
        study_name=name,
        project=project,
        run_id=run_id,
        direction=direction,
        metric=metric,
        trials=study.get_trials(deepcopy=False),
        run_ids=run_ids,
        states=states,
        study=study,
    )


def load_study(
    name: str, *, project: str | None = None, client: Client | None = None
) -> TuneResult:
    """A study as the store has it (finished, running or interrupted), without running it.

    Raises:
        NotFound: no study has this name in the project.
    """
    from loopml import tracking

    check_name(name, "study name")
    client = client or tracking.get_client()
    proj = _project(client, project, None)
    study_run = rec.get_study(client, name, proj)
    records = rec.load_trials(client, study_run)
    direction = study_run.tags.get(rec.TAG_DIRECTION, "minimize")
    return TuneResult(
        study_name=name,
        project=proj,
        run_id=study_run.run_id,
        direction=direction,
        metric=study_run.tags.get(rec.TAG_METRIC, "value"),
        trials=rec.frozen_trials(records),
        run_ids={r.number: r.run.run_id for r in records},
        states={r.number: r.state for r in records if r.state in ("interrupted", "running")},
    )


def list_studies(*, project: str | None = None, client: Client | None = None) -> list[Run]:
    """The runs of the studies in a project (the current one by default), newest first."""
    from loopml import tracking

    client = client or tracking.get_client()
    return rec.list_studies(client, _project(client, project, None))
