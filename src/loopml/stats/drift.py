"""Drift statistics from binned counts (and exact ones from raw samples): numpy, and scipy for
the chi-squared and KS p-values and the exact tests (imported only then: the default tests,
Jensen-Shannon and Wasserstein, need no scipy, whose import costs 46 MB).

Every binned statistic takes two count vectors on the same bins (a reference and a current
histogram, or category counts aligned on the union of categories) and agrees with scipy on
those binned data:

* :func:`psi`: population stability index, ``sum((q - p) * ln(q / p))`` on proportions with
  empty bins raised to ``eps`` (default ``1e-4``) so the log stays finite.
* :func:`jensenshannon`: Jensen-Shannon *distance* (square root of the divergence), natural log
  by default as :func:`scipy.spatial.distance.jensenshannon` and Evidently; in [0, sqrt(ln 2)].
* :func:`chisquare`: Pearson's chi-squared test of homogeneity on the 2 x K table, as
  :func:`scipy.stats.chi2_contingency` with ``correction=False``.
* :func:`wasserstein`: Wasserstein-1 distance with each bin's mass at its midpoint, as
  :func:`scipy.stats.wasserstein_distance` on (midpoints, counts); :func:`wasserstein_normed`
  divides it by the reference standard deviation (at least 0.001), as Evidently does.
* :func:`ks_binned`: the largest gap between the two empirical CDFs at the bin edges (a lower
  bound of the exact KS statistic, equal to it when the data sit on the edges), with the
  asymptotic p-value :func:`scipy.stats.ks_2samp` uses: ``kstwo.sf(D, round(n * m / (n + m)))``.

:func:`ks_exact` and :func:`wasserstein_exact` run scipy on raw samples when asked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import InvalidArgument


def _scipy() -> tuple[Any, Any]:
    """scipy's ``special`` and ``stats`` (imported on first use: ``scipy.stats`` alone takes
    longer to import than loopml)."""
    from scipy import special, stats  # type: ignore[import-untyped]

    return special, stats


__all__ = [
    "PSI_EPSILON",
    "WASSERSTEIN_STD_FLOOR",
    "chisquare",
    "jensenshannon",
    "ks_binned",
    "ks_exact",
    "midpoints",
    "psi",
    "wasserstein",
    "wasserstein_exact",
    "wasserstein_normed",
    "wasserstein_points",
]

PSI_EPSILON = 1e-4
"""Proportion given to an empty bin in :func:`psi` (a common convention; the log needs > 0)."""

WASSERSTEIN_STD_FLOOR = 0.001
"""Smallest reference standard deviation :func:`wasserstein_normed` divides by (as Evidently)."""

Counts = npt.ArrayLike


def _pair(reference: Counts, current: Counts) -> tuple[npt.NDArray[np.float64], ...]:
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(current, dtype=np.float64)
    if p.ndim != 1 or p.shape != q.shape:
        raise InvalidArgument(
            f"reference and current counts must be 1-D and of one length, got shapes "
            f"{p.shape} and {q.shape}"
        )
    if p.size and (p.min() < 0 or q.min() < 0):
        raise InvalidArgument("counts must not be negative")
    return p, q


def _proportions(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    total = p.sum()
    return p / total if total > 0 else None


def psi(reference: Counts, current: Counts, *, eps: float = PSI_EPSILON) -> float:
    """Population stability index of two count vectors on the same bins.

    Args:
        reference: counts per bin in the reference.
        current: counts per bin in the current data.
        eps: proportion given to empty bins (on either side) so that the log is finite.

    Returns:
        PSI >= 0 (NaN when either side has no values). Rules of thumb: < 0.1 stable,
        0.1-0.25 moderate shift, > 0.25 major shift.
    """
    p, q = _pair(reference, current)
    pp, qq = _proportions(p), _proportions(q)
    if pp is None or qq is None:
        return math.nan
    pp = np.maximum(pp, eps)
    qq = np.maximum(qq, eps)
    return float(np.sum((qq - pp) * np.log(qq / pp)))


def jensenshannon(reference: Counts, current: Counts, *, base: float | None = None) -> float:
    """Jensen-Shannon distance of two count vectors (normalised to proportions).

    Args:
        reference: counts per bin or category in the reference.
        current: counts on the same bins in the current data.
        base: logarithm base; None for the natural log (scipy's and Evidently's default), 2 for
            a distance in [0, 1].

    Returns:
        The distance (NaN when either side has no values).
    """
    p, q = _pair(reference, current)
    pp, qq = _proportions(p), _proportions(q)
    if pp is None or qq is None:
        return math.nan
    m = (pp + qq) / 2.0
    js = (_rel_entr(pp, m) + _rel_entr(qq, m)) / 2.0
    if base is not None:
        js /= math.log(base)
    return math.sqrt(max(js, 0.0))


def _rel_entr(p: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> float:
    """Sum of :func:`scipy.special.rel_entr` (``p log(p / m)``, 0 where ``p`` is 0) with
    ``m > 0`` wherever ``p > 0``."""
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / m[keep])))


def chisquare(reference: Counts, current: Counts) -> tuple[float, float]:
    """Pearson's chi-squared test that both count vectors come from one distribution.

    The 2 x K contingency table (bins or categories empty on both sides dropped) is tested as
    :func:`scipy.stats.chi2_contingency` does without Yates' correction.

    Returns:
        ``(statistic, p_value)``; ``(0.0, 1.0)`` when fewer than two categories remain, and
        ``(nan, nan)`` when either side has no values.
    """
    p, q = _pair(reference, current)
    keep = (p + q) > 0
    p, q = p[keep], q[keep]
    n_ref, n_cur = p.sum(), q.sum()
    if n_ref == 0 or n_cur == 0:
        return math.nan, math.nan
    if p.size < 2:
        return 0.0, 1.0
    total = n_ref + n_cur
    col = p + q
    e_ref = col * (n_ref / total)
    e_cur = col * (n_cur / total)
    stat = float(np.sum((p - e_ref) ** 2 / e_ref) + np.sum((q - e_cur) ** 2 / e_cur))
    _, stats = _scipy()
    return stat, float(stats.chi2.sf(stat, p.size - 1))


def midpoints(edges: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Bin midpoints of ``len(edges) - 1`` bins."""
    e = np.asarray(edges, dtype=np.float64)
    return (e[:-1] + e[1:]) / 2.0


def wasserstein(edges: npt.ArrayLike, reference: Counts, current: Counts) -> float:
    """Wasserstein-1 distance of two histograms on ``edges``, each bin's mass at its midpoint.

    Equal to ``scipy.stats.wasserstein_distance(mid, mid, reference, current)`` with ``mid`` the
    midpoints; computed as the area between the two CDFs, in O(bins).

    Returns:
        The distance in the data's units (NaN when either side has no values).
    """
    p, q = _pair(reference, current)
    e = np.asarray(edges, dtype=np.float64)
    if e.size != p.size + 1:
        raise InvalidArgument(f"{p.size} bins need {p.size + 1} edges, got {e.size}")
    pp, qq = _proportions(p), _proportions(q)
    if pp is None or qq is None:
        return math.nan
    mid = midpoints(e)
    gap = np.abs(np.cumsum(pp) - np.cumsum(qq))[:-1]
    return float(np.sum(gap * np.diff(mid)))


def wasserstein_points(
    reference_points: npt.ArrayLike,
    reference: Counts,
    current_points: npt.ArrayLike,
    current: Counts,
) -> float:
    """Wasserstein-1 distance of two weighted point sets (each bin's mass at its own point).

    Exactly :func:`scipy.stats.wasserstein_distance` with weights. Profiles place each bin's
    mass at the bin's median (from the column's sketch), which is much closer to the exact
    distance than midpoints when the outer bins are wide.
    """
    p, q = _pair(reference, current)
    u = np.asarray(reference_points, dtype=np.float64)
    v = np.asarray(current_points, dtype=np.float64)
    if u.shape != p.shape or v.shape != q.shape:
        raise InvalidArgument("each side needs one point per count")
    n, m = p.sum(), q.sum()
    if n == 0 or m == 0:
        return math.nan
    # The area between the two CDFs, which step at the sorted union of the points.
    points = np.concatenate([u, v])
    order = np.argsort(points, kind="mergesort")
    at = points[order]
    mass = np.concatenate([p / n, -q / m])[order]
    gap = np.abs(np.cumsum(mass)[:-1])
    return float(np.sum(gap * np.diff(at)))


def wasserstein_normed(
    edges: npt.ArrayLike,
    reference: Counts,
    current: Counts,
    reference_std: float,
    *,
    floor: float = WASSERSTEIN_STD_FLOOR,
) -> float:
    """:func:`wasserstein` divided by ``max(reference_std, floor)`` (Evidently's normed variant).

    Evidently divides by ``numpy.std`` of the reference (``ddof=0``); pass the same.
    """
    return wasserstein(edges, reference, current) / max(float(reference_std), floor)


def ks_binned(reference: Counts, current: Counts) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test from counts on shared bins.

    The statistic is the largest gap between the two cumulative proportions at the bin edges;
    the p-value is the asymptotic one of :func:`scipy.stats.ks_2samp` (``method="asymp"``) for
    samples of sizes ``n = sum(reference)`` and ``m = sum(current)``.

    Returns:
        ``(statistic, p_value)``, ``(nan, nan)`` when either side has no values.
    """
    p, q = _pair(reference, current)
    n, m = p.sum(), q.sum()
    if n == 0 or m == 0:
        return math.nan, math.nan
    d = float(np.max(np.abs(np.cumsum(p) / n - np.cumsum(q) / m)))
    # scipy rounds the effective size; below 1 (one value a side) it returns NaN, we use 1.
    en = max(float(np.round(n * m / (n + m))), 1.0)
    _, stats = _scipy()
    return d, float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def ks_exact(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[float, float]:
    """Exact two-sample KS test on raw values (NaN dropped), via :func:`scipy.stats.ks_2samp`."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    _, stats = _scipy()
    res = stats.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def wasserstein_exact(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Wasserstein-1 distance of raw values (NaN dropped), via scipy."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return math.nan
    _, stats = _scipy()
    return float(stats.wasserstein_distance(a, b))
