"""Evaluation: score a model on labelled data, overall and per slice, with its latency, memory
and size, and record the result on a run.

:func:`evaluate` predicts every row once and derives everything from those predictions:
classification or regression metrics (computed with scikit-learn), per-slice metrics, plots, and
an :class:`EvaluationResult` that keeps the predictions, so that bootstrap confidence intervals
(:meth:`EvaluationResult.bootstrap_ci`) and champion-challenger comparisons on the same rows
(:meth:`EvaluationResult.paired_bootstrap_delta`) need no new predictions. Heavy libraries
(scikit-learn's metrics, matplotlib, psutil) load on first use.
"""

from __future__ import annotations

from loopml.models.evaluation.bootstrap import BootstrapInterval as BootstrapInterval
from loopml.models.evaluation.bootstrap import PairedDelta as PairedDelta
from loopml.models.evaluation.evaluate import evaluate as evaluate
from loopml.models.evaluation.metrics import greater_is_better as greater_is_better
from loopml.models.evaluation.predictions import Predictions as Predictions
from loopml.models.evaluation.result import EvaluationResult as EvaluationResult

__all__ = [
    "BootstrapInterval",
    "EvaluationResult",
    "PairedDelta",
    "Predictions",
    "evaluate",
    "greater_is_better",
]
