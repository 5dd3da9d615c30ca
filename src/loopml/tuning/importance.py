"""Which params mattered: Optuna's importance evaluators over a study's completed trials.

The default is fANOVA (a random forest's functional ANOVA, Hutter et al. 2014), seeded so that the
same trials give the same numbers; it needs scikit-learn, a loopml dependency. Without
scikit-learn, PED-ANOVA (Watanabe et al. 2023), which needs nothing else and is much cheaper.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import optuna
    from optuna.importance import BaseImportanceEvaluator

__all__ = ["EVALUATORS", "evaluator", "param_importances", "require_completed"]

#: Names accepted for ``evaluator=``.
EVALUATORS = ("fanova", "ped-anova", "mean-decrease-impurity")


def evaluator(name: str | BaseImportanceEvaluator | None = None) -> BaseImportanceEvaluator:
    """An importance evaluator by name (``fanova``, ``ped-anova``, ``mean-decrease-impurity``),
    the default (None), or one passed through.

    Raises:
        InvalidArgument: an unknown name or type.
    """
    from optuna import importance

    if name is not None and not isinstance(name, str):
        if isinstance(name, importance.BaseImportanceEvaluator):
            return name
        raise InvalidArgument(
            f"evaluator must be one of {', '.join(EVALUATORS)} or an Optuna importance "
            f"evaluator, got {type(name).__name__}"
        )
    if name is None:
        try:
            import sklearn  # noqa: F401 - fANOVA's forest
        except ImportError:
            name = "ped-anova"
        else:
            name = "fanova"
    key = name.lower().replace("_", "-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA is marked experimental in some versions
        if key == "fanova":
            return importance.FanovaImportanceEvaluator(seed=0)
        if key in ("ped-anova", "pedanova"):
            return importance.PedAnovaImportanceEvaluator()
        if key in ("mean-decrease-impurity", "mdi"):
            return importance.MeanDecreaseImpurityImportanceEvaluator(seed=0)
    raise InvalidArgument(
        f"unknown importance evaluator {name!r}; use one of {', '.join(EVALUATORS)}"
    )


def param_importances(
    study: optuna.Study,
    evaluator_: str | BaseImportanceEvaluator | None = None,
    params: list[str] | None = None,
) -> dict[str, float]:
    """Each param's share of the objective's variance over completed trials, largest first
    (they add up to 1).

    Raises:
        InvalidArgument: fewer than two completed trials, or params that no completed trial
            has.
    """
    from optuna import importance

    require_completed(study)
    chosen = evaluator(evaluator_)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result: dict[str, Any] = importance.get_param_importances(
                study, evaluator=chosen, params=params
            )
    except (ValueError, RuntimeError) as exc:
        raise InvalidArgument(f"cannot compute parameter importance: {exc}") from exc
    return {k: float(v) for k, v in result.items()}


def require_completed(study: optuna.Study) -> None:
    """Raise :class:`InvalidArgument` unless at least two trials of ``study`` completed."""
    from optuna.trial import TrialState

    done = sum(t.state is TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    if done < 2:
        raise InvalidArgument(
            f"parameter importance needs at least 2 completed trials; study "
            f"{study.study_name!r} has {done}"
        )
