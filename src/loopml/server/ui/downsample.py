"""Downsampling metric series for charts: min and max per bucket, so spikes survive.

A run may log a million points of one metric; a chart needs about two thousand. The series is
cut into ``points // 2`` buckets of consecutive points, and each bucket keeps its minimum and
its maximum (in step order), so the drawn envelope is exact and no outlier disappears.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["minmax_downsample"]

Array = np.ndarray[Any, Any]


def minmax_downsample(x: Array, y: Array, points: int) -> tuple[Array, Array]:
    """At most ``points`` of ``(x, y)``: each bucket's minimum and maximum, in order.

    NaN values are dropped first; ``points`` below 2 is treated as 2.
    """
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    n = len(y)
    points = max(2, points)
    if n <= points:
        return x, y
    buckets = points // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    # argmin/argmax per bucket through reduceat on values, then indices by a second pass
    mins = np.minimum.reduceat(y, starts)
    maxs = np.maximum.reduceat(y, starts)
    bucket_of = np.repeat(np.arange(buckets), np.diff(edges))
    is_min = y == mins[bucket_of]
    is_max = y == maxs[bucket_of]
    # the first index in each bucket that reaches the bucket's min (max)
    min_idx = _first_per_bucket(is_min, bucket_of, buckets)
    max_idx = _first_per_bucket(is_max, bucket_of, buckets)
    idx = np.unique(np.concatenate((min_idx, max_idx)))
    return x[idx], y[idx]


def _first_per_bucket(flags: Array, bucket_of: Array, buckets: int) -> Array:
    hits = np.flatnonzero(flags)
    first = np.full(buckets, -1, dtype=np.int64)
    # reversed assignment leaves the smallest index of each bucket
    first[bucket_of[hits[::-1]]] = hits[::-1]
    return first[first >= 0]
