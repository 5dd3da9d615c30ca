"""Profiles of tables too big for memory: two passes over chunks, exact counts.

:func:`profile_chunks` makes the first pass with a builder that computes everything but the
numeric histograms (sorting each chunk once for its KLL sketch, moments and min/max) and takes
quantile edges from each column's sketch at the end; the second pass reads the numeric columns
again and counts them exactly on those edges (a sort and a ``searchsorted`` per chunk, no
sketch). :class:`EdgeFinder` is the first half on its own: edges to hand a
:class:`~loopml.stats.ProfileBuilder`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from loopml.errors import InvalidArgument
from loopml.stats._build import (
    Acc,
    CategoricalAcc,
    Kind,
    NumericAcc,
    column_kind,
    count_on_edges,
    discrete_edges,
    numeric_values,
    quantile_edges,
    table_columns,
)
from loopml.stats.columns import DEFAULT_CATEGORY_CAP, NumericProfile
from loopml.stats.dataset import DatasetProfile, EdgesArg, ProfileBuilder
from loopml.stats.sketch import DEFAULT_K, new_kll

__all__ = ["EdgeFinder", "profile_chunks"]


class EdgeFinder:
    """First pass of a two-pass profile: quantile edges per numeric column, from KLL sketches.

    Feed it every chunk with :meth:`update`, then pass :meth:`result` as ``edges=`` to a
    :class:`ProfileBuilder` for the second pass, which counts exactly on those edges. A column
    with at most ``bins`` distinct values gets one bin per value, as :func:`profile` does.
    """

    def __init__(
        self,
        *,
        bins: int = 20,
        categorical: Collection[str] | None = None,
        sketch_k: int = DEFAULT_K,
    ) -> None:
        if bins < 1:
            raise InvalidArgument(f"bins must be at least 1, not {bins}")
        self._bins = bins
        self._categorical = frozenset(
            [categorical] if isinstance(categorical, str) else categorical or ()
        )
        self._k = sketch_k
        self._sketches: dict[str, Any] = {}
        self._distinct: dict[str, np.ndarray[Any, np.dtype[np.float64]] | None] = {}

    def update(self, chunk: Any) -> EdgeFinder:
        """Add a chunk; returns the finder."""
        names, columns, _ = table_columns(
            chunk, what="the chunk to find edges in", categorical=self._categorical
        )
        for name, column in zip(names, columns, strict=True):
            kind = column_kind(column, name in self._categorical)
            if kind not in ("numeric", "datetime"):
                continue
            values, _ = numeric_values(column, kind)
            values = values[np.isfinite(values)]
            if name not in self._sketches:
                self._sketches[name] = new_kll(self._k)
                self._distinct[name] = np.empty(0)
            if values.size == 0:
                continue
            self._sketches[name].update(np.sort(values))
            seen = self._distinct[name]
            if seen is not None:
                both = np.union1d(seen, np.unique(values))
                self._distinct[name] = both if both.size <= self._bins else None
        return self

    def result(self) -> dict[str, tuple[float, ...]]:
        """Edges per numeric column that had finite values."""
        out: dict[str, tuple[float, ...]] = {}
        for name, kll in self._sketches.items():
            if kll.n == 0:
                continue
            distinct = self._distinct[name]
            if distinct is not None:
                out[name] = discrete_edges(distinct)
                continue
            probs = np.linspace(0.0, 1.0, self._bins + 1)
            qs = np.asarray(kll.get_quantiles(probs.tolist(), True), dtype=np.float64)
            qs[0], qs[-1] = kll.get_min_value(), kll.get_max_value()
            out[name] = quantile_edges(np.maximum.accumulate(qs))
        return out


class _FirstPass(ProfileBuilder):
    """A builder whose numeric columns without given edges keep no histogram: the edges come
    from each column's whole sketch at the end, and :func:`profile_chunks` counts on them in a
    second pass."""

    def _new_acc(self, name: str, kind: Kind) -> Acc:
        if kind == "categorical" or kind == "boolean":
            return CategoricalAcc(name, kind, self._cap)
        edges = self._edges.get(name)
        return NumericAcc(name, kind, edges, self._bins, self._k, defer_edges=edges is None)

    def deferred(self) -> dict[str, tuple[NumericAcc, tuple[float, ...]]]:
        """The deferred numeric columns and their edges (from their sketches)."""
        out: dict[str, tuple[NumericAcc, tuple[float, ...]]] = {}
        for name, acc in (self._accs or {}).items():
            if isinstance(acc, NumericAcc) and acc.defer_edges:
                out[name] = (acc, acc.sketch_edges())
        return out


def profile_chunks(
    chunks: Callable[[], Iterable[Any]],
    *,
    edges: EdgesArg = None,
    bins: int = 20,
    target: str | None = None,
    categorical: Collection[str] | None = None,
    category_cap: int = DEFAULT_CATEGORY_CAP,
    sketch_k: int = DEFAULT_K,
    recount: Callable[[list[str]], Iterable[Any]] | None = None,
) -> DatasetProfile:
    """Profile a table too big for memory, chunk by chunk, with exact counts.

    Without ``edges`` it reads the chunks twice: the first pass computes everything but the
    numeric histograms and takes each numeric column's quantile edges from its KLL sketch (one
    bin per value for a column of at most ``bins`` distinct values); the second counts the
    numeric columns exactly on those edges. With ``edges`` for every numeric column, once.

    Args:
        chunks: a function returning a fresh iterable of chunks each time it is called (for
            example ``lambda: pq.ParquetFile(path).iter_batches(65536)``).
        edges, bins, target, categorical, category_cap, sketch_k: as for :func:`profile`.
        recount: for the second pass, a function returning the chunks with only the named
            columns (default: ``chunks()``, every column); lets a file reader skip the others.
    """
    first = (ProfileBuilder if edges is not None else _FirstPass)(
        edges=edges,
        bins=bins,
        target=target,
        categorical=categorical,
        category_cap=category_cap,
        sketch_k=sketch_k,
    )
    for chunk in chunks():
        first.update(chunk)
    if not isinstance(first, _FirstPass):
        return first.result()
    found = first.deferred()
    deferred = {n: e for n, (_, e) in found.items() if e}  # columns with finite values
    kinds = {n: acc.kind for n, (acc, _) in found.items()}
    counts = {n: np.zeros(len(e) - 1, dtype=np.int64) for n, e in deferred.items()}
    if deferred:
        names = list(deferred)
        again = recount(names) if recount is not None else chunks()
        forced = frozenset([categorical] if isinstance(categorical, str) else categorical or ())
        for chunk in again:
            chunk_names, columns, _ = table_columns(
                chunk, what="the chunk to profile", categorical=forced
            )
            for name, column in zip(chunk_names, columns, strict=True):
                if name in counts:
                    values, _ = numeric_values(column, kinds[name])
                    counts[name] += count_on_edges(values, deferred[name])
    result = first.result()
    cols = tuple(
        replace(c, edges=deferred[c.name], counts=tuple(int(x) for x in counts[c.name]))
        if c.name in deferred and isinstance(c, NumericProfile)
        else c
        for c in result.columns
    )
    return replace(result, columns=cols)
