"""Datasets: versioned by content, checked against their data contract and for quality, profiled.

The data layer sits beside tracking: it logs dataset versions to the metadata and artifact stores
through :class:`loopml.Client`, and builds on :mod:`loopml.schema` (data contracts) and
:mod:`loopml.stats` (mergeable profiles and drift statistics). Names load lazily: importing
``loopml.data`` imports no pandas or pyarrow until a function is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.data.builtin_checks import ClassImbalance as ClassImbalance
    from loopml.data.builtin_checks import ConstantColumns as ConstantColumns
    from loopml.data.builtin_checks import DuplicateRows as DuplicateRows
    from loopml.data.builtin_checks import HighCardinality as HighCardinality
    from loopml.data.builtin_checks import MinRows as MinRows
    from loopml.data.builtin_checks import MissingValues as MissingValues
    from loopml.data.builtin_checks import MixedTypes as MixedTypes
    from loopml.data.builtin_checks import NearConstantColumns as NearConstantColumns
    from loopml.data.builtin_checks import Outliers as Outliers
    from loopml.data.checks import Check as Check
    from loopml.data.checks import CheckContext as CheckContext
    from loopml.data.checks import CheckReport as CheckReport
    from loopml.data.checks import CheckResult as CheckResult
    from loopml.data.checks import FunctionCheck as FunctionCheck
    from loopml.data.checks import check as check
    from loopml.data.checks import default_checks as default_checks
    from loopml.data.checks import run_checks as run_checks
    from loopml.data.datasets import dataset_profile as dataset_profile
    from loopml.data.datasets import dataset_schema as dataset_schema
    from loopml.data.datasets import get_dataset as get_dataset
    from loopml.data.datasets import load_dataset as load_dataset
    from loopml.data.datasets import log_dataset as log_dataset
    from loopml.data.diff import DatasetDiff as DatasetDiff
    from loopml.data.diff import diff_datasets as diff_datasets
    from loopml.data.drift_checks import TypeDrift as TypeDrift
    from loopml.data.leakage_checks import TargetLeakage as TargetLeakage
    from loopml.data.leakage_checks import TrainTestLeakage as TrainTestLeakage
    from loopml.data.sources import SqlQuery as SqlQuery
    from loopml.data.splits import Split as Split
    from loopml.data.splits import rebuild_split as rebuild_split
    from loopml.data.splits import split_dataset as split_dataset
    from loopml.data.splits import split_frame as split_frame

_LAZY = {
    "dataset_profile": "loopml.data.datasets",
    "dataset_schema": "loopml.data.datasets",
    "get_dataset": "loopml.data.datasets",
    "load_dataset": "loopml.data.datasets",
    "log_dataset": "loopml.data.datasets",
    "Split": "loopml.data.splits",
    "rebuild_split": "loopml.data.splits",
    "split_dataset": "loopml.data.splits",
    "split_frame": "loopml.data.splits",
    "SqlQuery": "loopml.data.sources",
    "Check": "loopml.data.checks",
    "CheckContext": "loopml.data.checks",
    "CheckReport": "loopml.data.checks",
    "CheckResult": "loopml.data.checks",
    "FunctionCheck": "loopml.data.checks",
    "check": "loopml.data.checks",
    "default_checks": "loopml.data.checks",
    "run_checks": "loopml.data.checks",
    "ClassImbalance": "loopml.data.builtin_checks",
    "ConstantColumns": "loopml.data.builtin_checks",
    "DuplicateRows": "loopml.data.builtin_checks",
    "HighCardinality": "loopml.data.builtin_checks",
    "MinRows": "loopml.data.builtin_checks",
    "MissingValues": "loopml.data.builtin_checks",
    "MixedTypes": "loopml.data.builtin_checks",
    "NearConstantColumns": "loopml.data.builtin_checks",
    "Outliers": "loopml.data.builtin_checks",
    "TargetLeakage": "loopml.data.leakage_checks",
    "TypeDrift": "loopml.data.drift_checks",
    "DatasetDiff": "loopml.data.diff",
    "diff_datasets": "loopml.data.diff",
    "TrainTestLeakage": "loopml.data.leakage_checks",
}

__all__ = [
    "Check",
    "CheckContext",
    "CheckReport",
    "CheckResult",
    "ClassImbalance",
    "ConstantColumns",
    "DatasetDiff",
    "DuplicateRows",
    "FunctionCheck",
    "HighCardinality",
    "MinRows",
    "MissingValues",
    "MixedTypes",
    "NearConstantColumns",
    "Outliers",
    "Split",
    "SqlQuery",
    "TargetLeakage",
    "TrainTestLeakage",
    "TypeDrift",
    "check",
    "dataset_profile",
    "dataset_schema",
    "default_checks",
    "diff_datasets",
    "get_dataset",
    "load_dataset",
    "log_dataset",
    "rebuild_split",
    "run_checks",
    "split_dataset",
    "split_frame",
]


def __getattr__(name: str) -> Any:
    try:
        module = importlib.import_module(_LAZY[name])
    except KeyError:
        raise AttributeError(f"module 'loopml.data' has no attribute {name!r}") from None
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
