"""Drift tests: one small protocol, five built-ins registered by name, defaults per column type.

A :class:`DriftTest` compares a reference column profile with a current one and returns a
:class:`DriftResult`. Built-ins (see :mod:`loopml.stats.drift` for the statistics):

======================  ==========================  ===========  =========================
name                    statistic                   threshold    drifted when
======================  ==========================  ===========  =========================
``"psi"``               PSI                         0.1          statistic >= threshold
``"jensenshannon"``     Jensen-Shannon distance     0.1          statistic >= threshold
``"chisquare"``         chi-squared (2 x K)         0.05         p-value < threshold
``"wasserstein"``       Wasserstein-1 / ref. std    0.1          statistic >= threshold
``"ks"``                binned KS                   0.05         p-value < threshold
======================  ==========================  ===========  =========================

The defaults follow Evidently's automatic choice: with at most 1,000 reference values, ``ks``
for numeric columns and ``chisquare`` for categorical ones; above that, ``wasserstein``
(normed) and ``jensenshannon``. A numeric column whose reference fills at most 5 bins (a
low-cardinality number, which gets one bin per value) is tested like a categorical one.

Numeric columns are compared on the reference's bins; when the current profile was binned on
other edges, its counts on the reference edges come from its quantile sketch. Categorical
columns are compared on the union of both sides' categories (a category unseen in the
reference counts 0 there), plus one ``other`` bucket when either side folded a tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loopml.errors import InvalidArgument
from loopml.stats import drift
from loopml.stats.columns import CategoricalProfile, ColumnProfile, NumericProfile

__all__ = [
    "SMALL_SAMPLE",
    "ChiSquare",
    "DriftResult",
    "DriftTest",
    "JensenShannon",
    "KS",
    "PSI",
    "Wasserstein",
    "aligned_counts",
    "default_test",
    "drift_test_names",
    "get_drift_test",
    "register_drift_test",
]

SMALL_SAMPLE = 1000
"""Reference sizes up to this get the p-value tests by default (as Evidently)."""


@dataclass(frozen=True, slots=True)
class DriftResult:
    """The outcome of one drift test on one column.

    Attributes:
        test: the test's name.
        statistic: its statistic (NaN when a side had no values to compare).
        p_value: the p-value, for hypothesis tests; None for distances.
        threshold: the threshold the decision used.
        drifted: whether the column drifted.
        note: why the test could not decide, when it could not.
    """

    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes None)."""
        stat = None if math.isnan(self.statistic) else self.statistic
        p = None if self.p_value is None or math.isnan(self.p_value) else self.p_value
        return {
            "test": self.test,
            "statistic": stat,
            "p_value": p,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "note": self.note,
        }


@runtime_checkable
class DriftTest(Protocol):
    """Decides whether one column drifted between a reference and a current profile.

    Attributes:
        name: the name it is registered and reported under.
        threshold: its default decision threshold.
    """

    @property
    def name(self) -> str:
        """The name the test is registered and reported under."""
        ...

    @property
    def threshold(self) -> float:
        """The decision threshold."""
        ...

    def __call__(self, reference: ColumnProfile, current: ColumnProfile) -> DriftResult:
        """Compare two profiles of one column.

        Raises:
            InvalidArgument: the test does not apply to this kind of column.
        """
        ...


def _category_counts(
    reference: CategoricalProfile, current: CategoricalProfile
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    ref = reference.as_dict()
    cur = current.as_dict()
    keys = list(ref)
    keys.extend(k for k in cur if k not in ref)
    r = [ref.get(k, 0) for k in keys]
    c = [cur.get(k, 0) for k in keys]
    if reference.other or current.other:
        r.append(reference.other)
        c.append(current.other)
    return np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64)


def aligned_counts(
    reference: ColumnProfile, current: ColumnProfile
) -> tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Both columns' counts on the same bins: ``(edges or None, reference, current)``.

    Numeric: the reference's bins, its outer edges widened to both sides' min and max (so that
    midpoints span the data); the current's counts rebinned through its sketch if its edges
    differ. Categorical: the union of categories (plus ``other``); ``edges`` is None.

    Raises:
        InvalidArgument: one column is numeric and the other categorical.
    """
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        if not reference.edges:
            if not current.edges:
                return None, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
            base = current
        else:
            base = reference
        edges = np.asarray(base.edges, dtype=np.float64)
        ref = (
            reference.counts_on(base.edges)
            if reference.finite
            else np.zeros(edges.size - 1, np.int64)
        )
        cur = (
            current.counts_on(base.edges) if current.finite else np.zeros(edges.size - 1, np.int64)
        )
        lows = [x for x in (reference.min, current.min) if x is not None]
        highs = [x for x in (reference.max, current.max) if x is not None]
        edges = edges.copy()
        if lows and edges.size > 2:
            edges[0] = min(edges[0], *lows)
        if highs and edges.size > 2:
            edges[-1] = max(edges[-1], *highs)
        return edges, ref, cur
    if isinstance(reference, CategoricalProfile) and isinstance(current, CategoricalProfile):
        r, c = _category_counts(reference, current)
        return None, r, c
    raise InvalidArgument(
        f"column {reference.name!r} is {reference.kind} in the reference but {current.kind} "
        "in the current data; they cannot be compared"
    )


def _empty(
    name: str, threshold: float, reference: ColumnProfile, current: ColumnProfile
) -> DriftResult | None:
    r = reference.finite if isinstance(reference, NumericProfile) else reference.count
    c = current.finite if isinstance(current, NumericProfile) else current.count
    if r and c:
        return None
    side = "reference" if not r else "current data"
    return DriftResult(
        name,
        math.nan,
        None,
        threshold,
        False,
        f"column {reference.name!r} has no values in the {side}",
    )


@dataclass(frozen=True, slots=True)
class PSI:
    """Population stability index on the reference bins or the category union."""

    threshold: float = 0.1
    eps: float = drift.PSI_EPSILON
    name: str = "psi"

    def __call__(self, reference: ColumnProfile, current: ColumnProfile) -> DriftResult:
        """Compare two profiles of one column."""
        if (res := _empty(self.name, self.threshold, reference, current)) is not None:
            return res
        _, r, c = aligned_counts(reference, current)
        stat = drift.psi(r, c, eps=self.eps)
        return DriftResult(self.name, stat, None, self.threshold, stat >= self.threshold)


@dataclass(frozen=True, slots=True)
class JensenShannon:
    """Jensen-Shannon distance (natural log, as scipy and Evidently; ``base=2`` for [0, 1])."""

    threshold: float = 0.1
    base: float | None = None
    name: str = "jensenshannon"

    def __call__(self, reference: ColumnProfile, current: ColumnProfile) -> DriftResult:
        """Compare two profiles of one column."""
        if (res := _empty(self.name, self.threshold, reference, current)) is not None:
            return res
        _, r, c = aligned_counts(reference, current)
        stat = drift.jensenshannon(r, c, base=self.base)
        return DriftResult(self.name, stat, None, self.threshold, stat >= self.threshold)


@dataclass(frozen=True, slots=True)
class ChiSquare:
    """Chi-squared test of homogeneity; drifted when the p-value is below the threshold."""

    threshold: float = 0.05
    name: str = "chisquare"

    def __call__(self, reference: ColumnProfile, current: ColumnProfile) -> DriftResult:
        """Compare two profiles of one column."""
        if (res := _empty(self.name, self.threshold, reference, current)) is not None:
            return res
        _, r, c = aligned_counts(reference, current)
        stat, p = drift.chisquare(r, c)
        return DriftResult(self.name, stat, p, self.threshold, p < self.threshold)


def _numeric_only(test: str, reference: ColumnProfile, current: ColumnProfile) -> None:
    for side in (reference, current):
        if not isinstance(side, NumericProfile):
            raise InvalidArgument(
                f"drift test {test!r} applies to numeric columns; column {side.name!r} is "
                f"{side.kind}: use 'jensenshannon', 'psi' or 'chisquare'"
            )


def bin_points(
    column: NumericProfile, edges: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Where each bin's mass sits: the bin's median from the column's sketch, kept in the bin."""
    total = counts.sum()
    mids = (edges[:-1] + edges[1:]) / 2.0
    if total == 0:
        return mids
    cum = np.cumsum(counts) / total
    ranks = np.clip((np.concatenate(([0.0], cum[:-1])) + cum) / 2.0, 0.0, 1.0)
    points = column.sketch.quantiles(ranks)
    points = np.clip(points, edges[:-1], edges[1:])
    return np.where(counts > 0, points, mids)


@dataclass(frozen=True, slots=True)
class Wasserstein:
    """Wasserstein-1 distance of the binned columns, divided by the reference std if ``normed``.

    Each bin's mass sits at the bin's median (from each side's sketch); see
    :func:`loopml.stats.drift.wasserstein_points`.
    """

    threshold: float = 0.1
    normed: bool = True
    name: str = "wasserstein"

    def __call__(self, reference: ColumnProfile, current: ColumnProfile) -> DriftResult:
        """Compare two profiles of one numeric column."""
        _numeric_only(self.name, reference, current)
        assert isinstance(reference, NumericProfile)
        if (res := _empty(self.name, self.threshold, reference, current)) is not None:
            return res
        assert isinstance(current, NumericProfile)
        edges, r, c = aligned_counts(reference, current)
        assert edges is not None
        stat = drift.wasserstein_points(
            bin_points(reference, edges, r), r, bin_points(current, edges, c), c
        )
        if self.normed:
            std = reference.moments.population_std or 0.0
            stat /= max(std, drift.WASSERSTEIN_STD_FLOOR)
        return DriftResult(self.name, stat, None, self.threshold, stat >= self.threshold)


@dataclass(frozen=True, slots=True)
class KS:
    """Binned two-sample Kolmogorov-Smirnov test; drifted when the p-value is below threshold."""

    threshold: float = 0.05
    name: str = "ks"

    def __call__(self, reference: ColumnProfile, current: ColumnProfile) -> DriftResult:
        """Compare two profiles of one numeric column."""
        _numeric_only(self.name, reference, current)
        if (res := _empty(self.name, self.threshold, reference, current)) is not None:
            return res
        _, r, c = aligned_counts(reference, current)
        stat, p = drift.ks_binned(r, c)
        return DriftResult(self.name, stat, p, self.threshold, p < self.threshold)


_REGISTRY: dict[str, DriftTest] = {}


def register_drift_test(test: DriftTest, *, replace: bool = False) -> DriftTest:
    """Make ``test`` available by its name (``tests={"col": "name"}``); returns it.

    Raises:
        InvalidArgument: the name is taken and ``replace`` is False.
    """
    if not isinstance(test, DriftTest):
        raise InvalidArgument(
            f"{test!r} is not a drift test: it needs a name, a threshold and a "
            "__call__(reference, current) returning a DriftResult"
        )
    if test.name in _REGISTRY and not replace:
        raise InvalidArgument(
            f"a drift test named {test.name!r} is already registered; pass replace=True to "
            "replace it"
        )
    _REGISTRY[test.name] = test
    return test


def get_drift_test(name: str | DriftTest) -> DriftTest:
    """The registered test called ``name`` (a test object is returned as is).

    Raises:
        InvalidArgument: no test has that name.
    """
    if not isinstance(name, str):
        if isinstance(name, DriftTest):
            return name
        raise InvalidArgument(f"expected a drift test name or DriftTest, not {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidArgument(
            f"unknown drift test {name!r}; known tests: {drift_test_names()}"
        ) from None


def drift_test_names() -> list[str]:
    """Names of the registered drift tests, sorted."""
    return sorted(_REGISTRY)


for _test in (PSI(), JensenShannon(), ChiSquare(), Wasserstein(), KS()):
    register_drift_test(_test)


def default_test(reference: ColumnProfile) -> DriftTest:
    """The test used for a column when none is named (see the module docstring)."""
    if isinstance(reference, NumericProfile):
        small = reference.finite <= SMALL_SAMPLE
        if sum(1 for c in reference.counts if c) <= 5:
            return _REGISTRY["chisquare"] if small else _REGISTRY["jensenshannon"]
        return _REGISTRY["ks"] if small else _REGISTRY["wasserstein"]
    return (
        _REGISTRY["chisquare"] if reference.count <= SMALL_SAMPLE else _REGISTRY["jensenshannon"]
    )
