"""Data quality checks: the :class:`Check` protocol, results, reports and the runner.

A check looks at one table (and, optionally, a reference table such as the training set) and
returns a :class:`CheckResult`. A *required* check that fails fails the step (severity
``"error"``); an optional one only warns (severity ``"warning"``). :func:`run_checks` runs a list
of checks (by default :func:`default_checks`) and gathers their results in a
:class:`CheckReport`; a check that crashes becomes an error result naming the check and the
exception, and the other checks still run.

Writing a check takes a class with ``name``, ``required`` and ``run(data, context)``, or a plain
function under the :func:`check` decorator::

    @check(name="has_positive_price", required=True)
    def positive_price(data, context):
        return bool((data["price"] > 0).all())
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload, runtime_checkable

from loopml._frames import as_pandas
from loopml.errors import DataValidationFailed, InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Check",
    "CheckContext",
    "CheckReport",
    "CheckResult",
    "FunctionCheck",
    "Severity",
    "check",
    "default_checks",
    "run_checks",
]

Severity = Literal["ok", "warning", "error"]
_SEVERITIES: tuple[Severity, ...] = ("error", "warning", "ok")
_T = TypeVar("_T")


@dataclass(frozen=True)
class CheckContext:
    """What a check may know besides the data it checks.

    Attributes:
        target: the target (label) column of ``data``, or ``None``.
        reference: another table to compare with, e.g. the training set when checking the test
            set, or ``None``.
        name: the dataset's name, for messages.
    """

    target: str | None = None
    reference: pd.DataFrame | None = None
    name: str = "data"
    # Intermediate results shared by checks of one run (row hashes, factorised columns), keyed
    # by the table they were computed from, so a reused context never serves stale values.
    _cache: dict[tuple[int, str], tuple[object, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def memo(self, data: object, key: str, compute: Callable[[], _T]) -> _T:
        """``compute()``, computed once per ``data`` object and ``key`` for this context.

        Checks use it to share expensive intermediate results (a factorised column, a sample)
        within one :func:`run_checks` call; a custom check may use it too.
        """
        slot = (id(data), key)
        hit = self._cache.get(slot)
        if hit is not None and hit[0] is data:
            return hit[1]  # type: ignore[no-any-return]
        value = compute()
        self._cache[slot] = (data, value)
        return value


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check's name.
        passed: whether the data passed.
        severity: ``"ok"`` when passed, ``"error"`` for a failed required check, ``"warning"``
            for a failed optional one. Left out, it is ``"ok"`` when passed and ``"error"``
            otherwise; :func:`run_checks` sets it from the check's ``required`` flag.
        message: one readable line naming the columns and values.
        details: JSON-safe facts behind the verdict (per column value and threshold, ...).
        columns: the affected column names.
        seconds: how long the check ran (set by :func:`run_checks`).
    """

    name: str
    passed: bool
    severity: Severity | None = None
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        severity = self.severity
        if severity is None:
            severity = "ok" if self.passed else "error"
        elif severity not in _SEVERITIES:
            raise InvalidArgument(
                f"check {self.name!r}: severity must be one of {list(_SEVERITIES)}, "
                f"not {severity!r}"
            )
        if (severity == "ok") != bool(self.passed):
            raise InvalidArgument(
                f"check {self.name!r}: severity {severity!r} contradicts passed={self.passed}; "
                "a passed check has severity 'ok', a failed one 'warning' or 'error'"
            )
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "passed", bool(self.passed))
        object.__setattr__(self, "details", json_safe(dict(self.details)))
        object.__setattr__(self, "columns", tuple(str(c) for c in self.columns))
        if not self.message:
            object.__setattr__(self, "message", "passed" if self.passed else "failed")

    @property
    def failed(self) -> bool:
        """Whether the check failed (as a warning or an error)."""
        return not self.passed

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-safe dict."""
        return {
            "name": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "message": self.message,
            "details": dict(self.details),
            "columns": list(self.columns),
            "seconds": round(self.seconds, 6),
        }


@runtime_checkable
class Check(Protocol):
    """A data quality check.

    Any object with these three members is a check: a frozen dataclass with thresholds as
    fields (like the built-ins), a plain class, or a function under :func:`check`.

    Attributes:
        name: a short snake_case name, unique within a suite.
        required: whether a failure fails the step (an error) or only warns.
    """

    @property
    def name(self) -> str: ...  # pragma: no cover

    @property
    def required(self) -> bool: ...  # pragma: no cover

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        """Check ``data`` (a pandas DataFrame) and return the result.

        ``CheckResult.severity`` may be left out: the runner sets it from ``required``.
        """
        ...  # pragma: no cover


CheckFunction = Callable[["pd.DataFrame", CheckContext], "bool | str | CheckResult | None"]


@dataclass(frozen=True)
class FunctionCheck:
    """A check made from a function by :func:`check`.

    The function takes ``(data, context)`` and returns ``True`` (or ``None``) when the data
    passes, ``False`` or a string saying what is wrong when it fails, or a full
    :class:`CheckResult`.
    """

    func: CheckFunction
    name: str
    required: bool = False
    description: str = ""

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        """Call the function and turn what it returns into a :class:`CheckResult`."""
        out = self.func(data, context)
        if type(out).__module__ == "numpy" and type(out).__name__ in ("bool", "bool_"):
            # numpy's bool, from e.g. (data["x"] > 0).all()
            out = bool(out)
        if isinstance(out, CheckResult):
            return out if out.name == self.name else replace(out, name=self.name)
        if out is None or out is True:
            return CheckResult(self.name, passed=True, message=self.description or "passed")
        if out is False:
            text = self.description or self.name.replace("_", " ")
            return CheckResult(self.name, passed=False, message=f"failed: {text}")
        if isinstance(out, str):
            return CheckResult(self.name, passed=False, message=out)
        raise InvalidArgument(
            f"check {self.name!r} returned {type(out).__name__}; return True/False, a message "
            "string (a failure), or a CheckResult"
        )

    def __call__(self, data: Any, context: CheckContext | None = None) -> CheckResult:
        """Run the check alone on any table, with the severity its ``required`` flag gives."""
        return _run_one(self, as_pandas(data), context if context is not None else CheckContext())


@overload
def check(func: CheckFunction, /) -> FunctionCheck: ...


@overload
def check(
    *, name: str | None = None, required: bool = False, description: str = ""
) -> Callable[[CheckFunction], FunctionCheck]: ...


def check(
    func: CheckFunction | None = None,
    /,
    *,
    name: str | None = None,
    required: bool = False,
    description: str = "",
) -> FunctionCheck | Callable[[CheckFunction], FunctionCheck]:
    """Turn a function ``(data, context) -> bool | str | CheckResult`` into a :class:`Check`.

    Use it bare (``@check``: the name is the function's) or with options::

        @check(name="no_negative_age", required=True)
        def no_negative_age(data, context):
            bad = int((data["age"] < 0).sum())
            return bad == 0 or f"{bad} rows have a negative 'age'"

    Args:
        func: the function (when used bare).
        name: the check's name; defaults to the function's name.
        required: whether a failure fails the step (default: it only warns).
        description: what the check verifies, used in the messages of bool results;
            defaults to the first line of the function's docstring.

    Returns:
        A :class:`FunctionCheck` (or a decorator making one).
    """

    def wrap(f: CheckFunction) -> FunctionCheck:
        if not callable(f):
            raise InvalidArgument(f"@check decorates a function, not {type(f).__name__}")
        doc = (f.__doc__ or "").strip().splitlines()
        return FunctionCheck(
            func=f,
            name=name or str(getattr(f, "__name__", "custom_check")),
            required=required,
            description=description or (doc[0].strip() if doc else ""),
        )

    return wrap(func) if func is not None else wrap


@dataclass(frozen=True)
class CheckReport:
    """The results of a suite of checks on one table.

    Attributes:
        results: one result per check, in the order the checks ran.
        name: the dataset's name.
        n_rows: rows checked.
        n_columns: columns checked.
    """

    results: tuple[CheckResult, ...]
    name: str = "data"
    n_rows: int = 0
    n_columns: int = 0

    @property
    def ok(self) -> bool:
        """Whether no required check failed (warnings do not count)."""
        return not self.failures

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The failed required checks (severity ``"error"``), crashed checks included."""
        return tuple(r for r in self.results if r.severity == "error")

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        """The failed optional checks (severity ``"warning"``)."""
        return tuple(r for r in self.results if r.severity == "warning")

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r} in this report; it has {self.names()}")

    def names(self) -> list[str]:
        """The checks' names, in order."""
        return [r.name for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict."""
        return {
            "name": self.name,
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "errors": len(self.failures),
            "warnings": len(self.warnings),
            "results": [r.to_dict() for r in self.results],
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per check: name, severity, passed, message, columns, seconds."""
        import pandas as pd

        return pd.DataFrame(
            {
                "check": [r.name for r in self.results],
                "severity": [r.severity for r in self.results],
                "passed": [r.passed for r in self.results],
                "message": [r.message for r in self.results],
                "columns": [list(r.columns) for r in self.results],
                "seconds": [r.seconds for r in self.results],
            }
        )

    def summary(self) -> str:
        """One line: the dataset, its size, and how many checks failed."""
        errors, warnings = len(self.failures), len(self.warnings)
        verdict = "passed" if self.ok else "FAILED"
        return (
            f"quality checks on {self.name!r} ({self.n_rows:,} rows x {self.n_columns} columns): "
            f"{verdict}, {_plural(errors, 'error')}, {_plural(warnings, 'warning')}, "
            f"{len(self.results) - errors - warnings} ok"
        )

    def __str__(self) -> str:
        label = {"error": "ERROR", "warning": "WARN", "ok": "ok"}
        width = max([len(r.name) for r in self.results] + [5])
        lines = [self.summary()]
        order = {s: i for i, s in enumerate(_SEVERITIES)}
        for r in sorted(self.results, key=lambda r: order[r.severity or "ok"]):
            lines.append(f"  {label[r.severity or 'ok']:<5}  {r.name:<{width}}  {r.message}")
        return "\n".join(lines)

    def raise_for_failures(self) -> CheckReport:
        """Raise :class:`~loopml.errors.DataValidationFailed` if a required check failed.

        Returns:
            The report itself when no required check failed (so calls can be chained).

        Raises:
            DataValidationFailed: naming every failed required check; ``.report`` is this
                report.
        """
        failures = self.failures
        if not failures:
            return self
        listed = "; ".join(f"{r.name}: {r.message}" for r in failures)
        raise DataValidationFailed(
            f"{_plural(len(failures), 'required quality check')} failed on {self.name!r}: "
            f"{listed}. Fix the data, or pass the check with required=False to only warn",
            report=self,
        )


def default_checks() -> list[Check]:
    """The default suite: every built-in check with its default thresholds.

    Checks that need a target or a reference (class imbalance, target leakage, train/test
    leakage) pass as skipped when :func:`run_checks` gets neither.
    """
    from loopml.data.builtin_checks import (
        ClassImbalance,
        ConstantColumns,
        DuplicateRows,
        HighCardinality,
        MinRows,
        MissingValues,
        MixedTypes,
        NearConstantColumns,
        Outliers,
    )
    from loopml.data.leakage_checks import TargetLeakage, TrainTestLeakage

    return [
        MinRows(),
        MissingValues(),
        DuplicateRows(),
        ConstantColumns(),
        NearConstantColumns(),
        HighCardinality(),
        MixedTypes(),
        Outliers(),
        ClassImbalance(),
        TargetLeakage(),
        TrainTestLeakage(),
    ]


def run_checks(
    data: Any,
    checks: Iterable[Check] | None = None,
    *,
    target: str | None = None,
    reference: Any = None,
    name: str = "data",
    raise_on_failure: bool = False,
) -> CheckReport:
    """Run quality checks on a table.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a dict of columns.
        checks: the checks to run; ``None`` runs :func:`default_checks`.
        target: the target (label) column, if any; enables class imbalance and target leakage.
        reference: another table (the training set, when ``data`` is the test set); enables
            train/test leakage.
        name: the dataset's name, used in messages.
        raise_on_failure: raise :class:`~loopml.errors.DataValidationFailed` when a required
            check fails, instead of only reporting it.

    Returns:
        A :class:`CheckReport` with one result per check.

    Raises:
        InvalidData: ``data`` or ``reference`` is not a table.
        InvalidArgument: ``target`` is not a column of ``data``, two columns share a name, or
            an item of ``checks`` is not a check.
        DataValidationFailed: with ``raise_on_failure``, when a required check failed.
    """
    frame = as_pandas(data, what=f"the data {name!r}")
    ref = None if reference is None else as_pandas(reference, what="the reference data")
    if target is not None and target not in frame.columns:
        raise InvalidArgument(
            f"target column {target!r} is not in {name!r}; its columns are "
            f"{_some([str(c) for c in frame.columns])}"
        )
    repeated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if repeated:
        raise InvalidArgument(
            f"{name!r} has several columns named {_some([str(c) for c in repeated])}; "
            "rename them so that every column name is unique"
        )
    suite = default_checks() if checks is None else list(checks)
    for c in suite:
        if not isinstance(c, Check):
            raise InvalidArgument(
                f"{c!r} is not a check: a check has 'name', 'required' and "
                "'run(data, context)' (or decorate a function with @check)"
            )
    context = CheckContext(target=target, reference=ref, name=name)
    results = tuple(_run_one(c, frame, context) for c in suite)
    report = CheckReport(results, name=name, n_rows=len(frame), n_columns=frame.shape[1])
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _run_one(chk: Check, data: pd.DataFrame, context: CheckContext) -> CheckResult:
    name = str(getattr(chk, "name", type(chk).__name__))
    required = bool(getattr(chk, "required", False))
    start = time.perf_counter()
    try:
        out = chk.run(data, context)
        if not isinstance(out, CheckResult):
            raise InvalidArgument(f"run() returned {type(out).__name__}, not a CheckResult")
    except Exception as exc:  # a broken check must not hide the others' results
        seconds = time.perf_counter() - start
        return CheckResult(
            name,
            passed=False,
            severity="error",
            message=f"check {name!r} crashed: {type(exc).__name__}: {exc}",
            details={"crashed": True, "exception": type(exc).__name__, "error": str(exc)},
            seconds=seconds,
        )
    seconds = time.perf_counter() - start
    severity: Severity = "ok" if out.passed else ("error" if required else "warning")
    return replace(out, name=name, severity=severity, seconds=seconds)


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and non-finite floats made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return json_safe(item())
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return json_safe(tolist())
    return str(value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _some(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
