"""Profiles of tables too big for memory: two passes over chunks, exact counts.

The first pass (:class:`EdgeFinder`) feeds each numeric column to a KLL sketch and takes
quantile edges from it; the second (a :class:`~loopml.stats.ProfileBuilder` with those edges)
counts exactly on them. :func:`profile_chunks` runs both over a function that yields chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np

from loopml._frames import as_pandas
from loopml.errors import InvalidArgument
from loopml.stats._build import column_kind, discrete_edges, numeric_values, quantile_edges
from loopml.stats.columns import DEFAULT_CATEGORY_CAP
from loopml.stats.dataset import DatasetProfile, EdgesArg, ProfileBuilder, edges_by_column
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
        frame = as_pandas(chunk, what="the chunk to find edges in")
        for col in frame.columns:
            name = str(col)
            series = frame[col]
            kind = column_kind(series, name in self._categorical)
            if kind not in ("numeric", "datetime"):
                continue
            values, _ = numeric_values(series, kind)
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


def profile_chunks(
    chunks: Callable[[], Iterable[Any]],
    *,
    edges: EdgesArg = None,
    bins: int = 20,
    target: str | None = None,
    categorical: Collection[str] | None = None,
    category_cap: int = DEFAULT_CATEGORY_CAP,
    sketch_k: int = DEFAULT_K,
) -> DatasetProfile:
    """Profile a table too big for memory, chunk by chunk, with exact counts.

    Without ``edges`` it reads the chunks twice: once to find quantile edges (:class:`EdgeFinder`)
    and once to count on them (:class:`ProfileBuilder`). With ``edges`` for every numeric
    column, once.

    Args:
        chunks: a function returning a fresh iterable of chunks each time it is called (for
            example ``lambda: pq.ParquetFile(path).iter_batches(65536)``).
        edges, bins, target, categorical, category_cap, sketch_k: as for :func:`profile`.
    """
    fixed = edges_by_column(edges)
    if edges is None:
        finder = EdgeFinder(bins=bins, categorical=categorical, sketch_k=sketch_k)
        for chunk in chunks():
            finder.update(chunk)
        fixed = {**finder.result(), **fixed}
    builder = ProfileBuilder(
        edges=fixed,
        bins=bins,
        target=target,
        categorical=categorical,
        category_cap=category_cap,
        sketch_k=sketch_k,
    )
    for chunk in chunks():
        builder.update(chunk)
    return builder.result()
