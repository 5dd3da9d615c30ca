"""Hyperparameter tuning on Optuna, every trial a tracked run: :func:`tune`.

``loopml.tune(objective, n_trials=50)`` searches with Optuna's samplers and pruners (TPE by
default), records the study as a run and each trial as its child, resumes a study by name, and
runs trials in this process, in worker processes or on Ray, all writing to one store. The
result (:class:`TuneResult`) has the best trial, every trial, parameter importance and plots;
:func:`load_study` reads a study back from the store. Nothing here imports Optuna until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.exceptions import TrialPruned as TrialPruned

    from loopml.tuning.result import TrialResult as TrialResult
    from loopml.tuning.result import TuneResult as TuneResult
    from loopml.tuning.space import Categorical as Categorical
    from loopml.tuning.space import Float as Float
    from loopml.tuning.space import Int as Int
    from loopml.tuning.study import list_studies as list_studies
    from loopml.tuning.study import load_study as load_study
    from loopml.tuning.study import tune as tune
    from loopml.tuning.trial import Trial as Trial
    from loopml.tuning.trial import current_trial as current_trial

_LAZY = {
    "TrialPruned": "optuna.exceptions",
    "TrialResult": "loopml.tuning.result",
    "TuneResult": "loopml.tuning.result",
    "Categorical": "loopml.tuning.space",
    "Float": "loopml.tuning.space",
    "Int": "loopml.tuning.space",
    "list_studies": "loopml.tuning.study",
    "load_study": "loopml.tuning.study",
    "tune": "loopml.tuning.study",
    "Trial": "loopml.tuning.trial",
    "current_trial": "loopml.tuning.trial",
}

__all__ = [
    "Categorical",
    "Float",
    "Int",
    "Trial",
    "TrialPruned",
    "TrialResult",
    "TuneResult",
    "current_trial",
    "list_studies",
    "load_study",
    "tune",
]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loopml.tuning' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
