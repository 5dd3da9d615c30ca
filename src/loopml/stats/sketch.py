"""A mergeable quantile sketch: Apache DataSketches' KLL doubles sketch behind a small wrapper.

KLL keeps ``O(k log(n/k))`` values and answers rank and quantile queries with a normalised rank
error of about 1.65 / k (1.3 % at the default ``k=200``, at 99 % confidence); it is exact while
``n`` is at most about ``k``. Two sketches of the same ``k`` merge into a sketch of the union with
the same guarantee, which is what lets a profile compute counts on bin edges chosen later
(another profile's edges) and quantiles of many merged chunks. The sketch ignores NaN.

The wrapper is immutable: ``update`` and ``merge`` return new sketches. Builders that stream
data keep a private, mutable KLL sketch and wrap it once at the end.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml._lazy import require
from loopml.errors import InvalidArgument

__all__ = ["DEFAULT_K", "QuantileSketch", "new_kll"]

DEFAULT_K = 200


_DS: Any = None


def _datasketches() -> Any:
    """The ``datasketches`` module (looked up once: profiles rebuild thousands of sketches)."""
    global _DS
    if _DS is None:
        _DS = require("datasketches", "stats", "a quantile sketch")
    return _DS


def new_kll(k: int = DEFAULT_K) -> Any:
    """A fresh, mutable ``datasketches.kll_doubles_sketch`` (for builders)."""
    ds = _datasketches()
    if not 8 <= k <= 65535:
        raise InvalidArgument(f"sketch k must be between 8 and 65535, not {k}")
    return ds.kll_doubles_sketch(k)


def _deserialize(data: bytes) -> Any:
    try:
        return _datasketches().kll_doubles_sketch.deserialize(data)
    except Exception as exc:  # the C++ reader raises several kinds on corrupt input
        raise InvalidArgument(f"not a serialised KLL doubles sketch ({exc})") from exc


class QuantileSketch:
    """An immutable KLL quantile sketch of the finite values of one numeric column.

    Build one with :meth:`of` (from values) or :meth:`from_bytes`; combine with :meth:`merge`
    (or :meth:`merge_all` for many). Two sketches compare equal when their serialised bytes are
    equal. A sketch read with :meth:`from_base64` (a profile loaded from JSON) is decoded on
    first use: loading thousands of window profiles to merge their counts does not pay for
    sketches nobody queries.
    """

    __slots__ = ("_bytes", "_k")

    def __init__(self, kll: Any) -> None:
        """Wrap a KLL sketch; the caller must not update ``kll`` afterwards."""
        self._k: Any = kll
        self._bytes: bytes | None = None

    @property
    def _kll(self) -> Any:
        if self._k is None:
            assert self._bytes is not None
            self._k = _deserialize(self._bytes)
        return self._k

    @classmethod
    def empty(cls, k: int = DEFAULT_K) -> QuantileSketch:
        """A sketch of no values."""
        return cls(new_kll(k))

    @classmethod
    def of(cls, values: npt.ArrayLike, k: int = DEFAULT_K) -> QuantileSketch:
        """A sketch of ``values`` (NaN is ignored)."""
        kll = new_kll(k)
        arr = np.ascontiguousarray(values, dtype=np.float64)
        if arr.size:
            kll.update(arr)
        return cls(kll)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        """Rebuild a sketch from :meth:`to_bytes` output."""
        return cls(_deserialize(data))

    @classmethod
    def from_base64(cls, text: str) -> QuantileSketch:
        """Rebuild a sketch from :meth:`to_base64` output: the base64 and the sketch's header
        are checked now, the sketch is decoded on first use."""
        try:
            raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
        except (ValueError, UnicodeEncodeError) as exc:
            raise InvalidArgument(f"sketch is not valid base64 ({exc})") from exc
        if not _looks_like_kll(raw):
            return cls.from_bytes(raw)  # raises with the reader's message
        out = cls(None)
        out._bytes = raw
        return out

    def to_bytes(self) -> bytes:
        """The sketch in DataSketches' portable binary format."""
        if self._bytes is None:
            self._bytes = bytes(self._kll.serialize())
        return self._bytes

    def to_base64(self) -> str:
        """:meth:`to_bytes` as ASCII text, for JSON."""
        return base64.b64encode(self.to_bytes()).decode("ascii")

    @property
    def k(self) -> int:
        """The accuracy parameter: larger is more accurate and bigger."""
        return int(self._kll.k)

    @property
    def n(self) -> int:
        """How many values the sketch has seen."""
        return int(self._kll.n)

    @property
    def is_exact(self) -> bool:
        """Whether the sketch still holds every value (its answers are then exact)."""
        return not bool(self._kll.is_estimation_mode())

    @property
    def rank_error(self) -> float:
        """The normalised rank error bound of a single quantile or CDF query (99 % confidence)."""
        return 0.0 if self.is_exact else float(self._kll.normalized_rank_error(False))

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of the values of both sketches."""
        out = type(self).from_bytes(self.to_bytes())
        out._kll.merge(other._kll)
        return out

    @classmethod
    def merge_all(cls, sketches: Iterable[QuantileSketch]) -> QuantileSketch:
        """One sketch of the values of all ``sketches`` (the first one's ``k``), merged into a
        single mutable sketch rather than pairwise (no copy per step)."""
        it = iter(sketches)
        try:
            first = next(it)
        except StopIteration:
            raise InvalidArgument("merge_all needs at least one sketch") from None
        kll = _deserialize(first.to_bytes())
        for other in it:
            kll.merge(other._kll)
        return cls(kll)

    def quantiles(
        self, ranks: Sequence[float] | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Approximate quantiles at normalised ``ranks`` in [0, 1] (NaN for an empty sketch)."""
        r = np.asarray(ranks, dtype=np.float64)
        if r.size and (np.nanmin(r) < 0 or np.nanmax(r) > 1):
            raise InvalidArgument(f"quantile ranks must lie in [0, 1], not {r.tolist()}")
        if self.n == 0:
            return np.full(r.shape, np.nan)
        return np.asarray(self._kll.get_quantiles(r.tolist(), True), dtype=np.float64)

    def bin_counts(
        self, inner_edges: npt.ArrayLike, total: int | None = None
    ) -> npt.NDArray[np.int64]:
        """Estimated counts in the bins that ``inner_edges`` cut the line into.

        Bin 0 is ``(-inf, e0)``, bin ``i`` is ``[e(i-1), e(i))`` and the last is ``[e(-1), inf)``:
        ``len(inner_edges) + 1`` bins, left-closed like :func:`numpy.searchsorted` with
        ``side="right"``. The estimates are rounded to integers that add up to ``total``
        (default: the sketch's ``n``) by the largest-remainder method.

        Args:
            inner_edges: strictly increasing cut points.
            total: the count to distribute (e.g. the exact number of finite values).
        """
        cuts = np.asarray(inner_edges, dtype=np.float64)
        total = self.n if total is None else int(total)
        if self.n == 0 or total == 0:
            return np.zeros(cuts.size + 1, dtype=np.int64)
        if cuts.size == 0:
            return np.array([total], dtype=np.int64)
        # inclusive=False: rank(x) counts values < x, so the bins are [e(i-1), e(i)).
        cdf = np.asarray(self._kll.get_cdf(cuts.tolist(), False), dtype=np.float64)
        pmf = np.diff(np.concatenate(([0.0], cdf[: cuts.size], [1.0])))
        return largest_remainder(np.clip(pmf, 0.0, None), total)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"QuantileSketch(k={self.k}, n={self.n}, retained={int(self._kll.num_retained)})"


def _looks_like_kll(data: bytes) -> bool:
    """The first bytes of a serialised KLL sketch: preamble ints, serial version, family 15."""
    return len(data) >= 8 and data[2] == 15


def largest_remainder(weights: npt.NDArray[np.float64], total: int) -> npt.NDArray[np.int64]:
    """Integers proportional to ``weights`` that add up to ``total`` exactly."""
    s = float(weights.sum())
    if s <= 0:
        out = np.zeros(weights.size, dtype=np.int64)
        if out.size:
            out[-1] = total
        return out
    exact = weights / s * total
    base = np.floor(exact).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:short]] += 1
    return base
