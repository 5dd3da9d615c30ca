"""Bootstrap confidence intervals of a metric, and of the difference between two models.

Resampling rows with replacement and scoring each resample answers "how sure are we of this
number?", and, when two models are scored on the *same* resamples, "is the challenger really
better than the champion?" (a paired bootstrap, which cancels the noise the two share).

Nothing is predicted again and nothing loops over resamples in Python: a block of resamples is a
matrix of row indices, turned into a matrix ``W`` of how often each row was drawn (one row of
``W`` per resample), and every metric is written as sums over rows weighted by ``W``:

* counts (accuracy, precision, recall, F1, log loss, Brier, RMSE, MAE, MAPE, R²) are one matrix
  product ``W @ values``;
* ROC AUC is the Mann-Whitney statistic over score groups (ties count half), and PR AUC
  (average precision) the precision at each score group weighted by its positives, both from
  cumulative sums of ``W`` in score order;
* the maximum and the median absolute error come from ``W > 0`` and from cumulative counts of
  ``W`` in residual order.

Each statistic equals the sklearn metric of the resampled rows (the tests check this). Blocks
are sized to keep ``W`` near 32 MB, so memory stays flat however many resamples are drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from loopml.errors import InvalidArgument
from loopml.models.evaluation.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    greater_is_better,
)
from loopml.models.evaluation.predictions import CLASSIFICATION, Predictions

__all__ = [
    "BootstrapInterval",
    "PairedDelta",
    "bootstrap_ci",
    "bootstrap_metrics",
    "exact_metrics",
    "metric_on_weights",
    "paired_bootstrap_delta",
]

_BLOCK_CELLS = 4_000_000  # cells of one block of W (float64: 32 MB)

Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile bootstrap confidence interval.

    Attributes:
        metric: the metric's name.
        estimate: the metric on all rows.
        low: the ``alpha / 2`` quantile of the resampled values.
        high: the ``1 - alpha / 2`` quantile.
        alpha: one minus the confidence level (0.05: a 95% interval).
        n_resamples: how many resamples were drawn.
        seed: the seed of the resampling (the same seed gives the same interval).
        std_error: the standard deviation of the resampled values.
        valid_resamples: resamples in which the metric is defined (ROC AUC is not, in a resample
            with a single class); the interval uses only these.
    """

    metric: str
    estimate: float
    low: float
    high: float
    alpha: float
    n_resamples: int
    seed: int
    std_error: float
    valid_resamples: int

    def to_dict(self) -> dict[str, Any]:
        """The interval as a JSON-ready dict."""
        return asdict(self)

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        level = f"{(1 - self.alpha) * 100:g}%"
        return (
            f"{self.metric} {self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] "
            f"({level} bootstrap CI, {self.valid_resamples} resamples, seed {self.seed})"
        )


@dataclass(frozen=True)
class PairedDelta(BootstrapInterval):
    """A paired bootstrap interval of ``metric(this model) - metric(the other)``.

    Attributes:
        probability_better: the share of resamples in which this model scores better than the
            other (a higher value, or lower for a loss).
    """

    probability_better: float = float("nan")

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero (the difference is unlikely to be noise)."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        level = f"{(1 - self.alpha) * 100:g}%"
        return (
            f"delta {self.metric} {self.estimate:+.4g} [{self.low:+.4g}, {self.high:+.4g}] "
            f"({level} paired bootstrap CI, better in {self.probability_better:.1%} of "
            f"{self.valid_resamples} resamples)"
        )


def bootstrap_ci(
    p: Predictions, metric: str, *, n: int = 1000, seed: int = 0, alpha: float = 0.05
) -> BootstrapInterval:
    """A percentile bootstrap confidence interval of ``metric`` on ``p``'s rows.

    Args:
        p: the predictions.
        metric: a metric of the task (``accuracy``, ``roc_auc``, ``rmse``...).
        n: the number of resamples.
        seed: the resampling seed.
        alpha: one minus the confidence level.

    Raises:
        InvalidArgument: an unknown metric, one the predictions cannot give (``roc_auc``
            without probabilities), or a bad ``n`` or ``alpha``.
    """
    _check(n, alpha)
    stat = _statistic(p, metric)
    values = np.concatenate([stat(w) for w in _weights(len(p), n, seed)])
    return _interval(
        BootstrapInterval, metric, float(stat(np.ones((1, len(p))))[0]), values, n, seed, alpha
    )


def paired_bootstrap_delta(
    a: Predictions,
    b: Predictions,
    metric: str,
    *,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedDelta:
    """A paired bootstrap interval of ``metric(a) - metric(b)``, both scored on the same resamples.

    Args:
        a: this model's predictions (e.g. the challenger's).
        b: the other model's predictions on the same rows (e.g. the champion's).
        metric: a metric both can give.
        n: the number of resamples.
        seed: the resampling seed.
        alpha: one minus the confidence level.

    Raises:
        InvalidArgument: the two were not evaluated on the same rows (the same targets in the
            same order), or as for :func:`bootstrap_ci`.
    """
    _check(n, alpha)
    if not a.same_rows(b):
        raise InvalidArgument(
            f"a paired bootstrap needs both evaluations on the same rows, but one has "
            f"{len(a)} {a.task} rows and the other {len(b)} {b.task} rows, or their targets "
            "differ; evaluate both models on the same data"
        )
    stat_a, stat_b = _statistic(a, metric), _statistic(b, metric)
    deltas = np.concatenate([stat_a(w) - stat_b(w) for w in _weights(len(a), n, seed)])
    ones = np.ones((1, len(a)))
    estimate = float(stat_a(ones)[0] - stat_b(ones)[0])
    interval = _interval(PairedDelta, metric, estimate, deltas, n, seed, alpha)
    valid = deltas[np.isfinite(deltas)]
    sign = 1.0 if greater_is_better(metric) else -1.0
    better = float(np.mean(sign * valid > 0)) if valid.size else float("nan")
    return PairedDelta(**{**asdict(interval), "probability_better": better})


def exact_metrics(p: Predictions) -> dict[str, float]:
    """Every metric :func:`bootstrap_ci` can resample, on all of ``p``'s rows.

    The same statistics as the bootstrap's with every row drawn once: equal to sklearn's
    metrics (to rounding), in one numpy pass each and without sklearn's per-call checks, which
    cost more than the metric on small inputs. Slices are scored with it. Metrics that are not
    defined for the rows (ROC AUC with one class, R² of one row) are left out.
    """
    ones = np.ones((1, len(p)))
    out = {}
    cache: dict[Any, Any] = {}
    for name in bootstrap_metrics(p):
        if name == "r2" and len(p) < 2:
            continue
        value = float(_statistic(p, name, cache)(ones)[0])
        if np.isfinite(value):
            out[name] = value
    return out


def bootstrap_metrics(p: Predictions) -> tuple[str, ...]:
    """The metrics :func:`bootstrap_ci` can resample for ``p``."""
    if p.task != CLASSIFICATION:
        return REGRESSION_METRICS
    binary_only = {"precision", "recall", "f1", "brier_score"}
    with_proba = {"roc_auc", "pr_auc", "log_loss", "brier_score"}
    return tuple(
        name
        for name in CLASSIFICATION_METRICS
        if (p.is_binary or name not in binary_only)
        and (not p.is_binary or not name.endswith(("_macro", "_weighted")))
        and (p.proba is not None or name not in with_proba)
    )


def metric_on_weights(p: Predictions, metric: str, weights: np.ndarray) -> np.ndarray:
    """``metric`` of each resample described by a row of ``weights`` (how often each row of
    ``p`` is drawn); NaN where it is not defined."""
    return _statistic(p, metric)(np.atleast_2d(np.asarray(weights, dtype=np.float64)))


# --- resampling ---------------------------------------------------------------------------------


def _check(n: int, alpha: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgument(f"n (the number of resamples) must be a positive integer, not {n!r}")
    if not 0 < alpha < 1:
        raise InvalidArgument(
            f"alpha must be between 0 and 1 (0.05: a 95% interval), not {alpha!r}"
        )


def _weights(n_rows: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of resamples, as counts of how often each row is drawn (one resample per row)."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _BLOCK_CELLS // max(n_rows, 1)))
    done = 0
    while done < n_resamples:
        b = min(block, n_resamples - done)
        idx = rng.integers(0, n_rows, size=(b, n_rows))
        idx += (np.arange(b) * n_rows)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n_rows).reshape(b, n_rows).astype(np.float64)
        done += b


def _interval(
    kind: type[BootstrapInterval],
    metric: str,
    estimate: float,
    values: np.ndarray,
    n: int,
    seed: int,
    alpha: float,
) -> BootstrapInterval:
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        low = high = std = float("nan")
    else:
        low, high = (float(q) for q in np.quantile(valid, [alpha / 2, 1 - alpha / 2]))
        std = float(np.std(valid, ddof=1)) if valid.size > 1 else 0.0
    return kind(metric, estimate, low, high, alpha, n, seed, std, int(valid.size))


# --- statistics of weighted rows ----------------------------------------------------------------


def _statistic(p: Predictions, metric: str, cache: dict[Any, Any] | None = None) -> Statistic:
    """A function of a weight block (resamples x rows) giving ``metric`` of each resample.

    ``cache`` shares what several metrics of the same predictions need (sort orders, one-hot
    labels) between calls.
    """
    available = bootstrap_metrics(p)
    if metric not in available:
        raise InvalidArgument(
            f"cannot bootstrap {metric!r} for this {_kind(p)}; choose one of "
            f"{', '.join(available)}"
        )
    if p.task == CLASSIFICATION:
        return _classification_statistic(p, metric, {} if cache is None else cache)
    return _regression_statistic(p, metric)


def _kind(p: Predictions) -> str:
    if p.task != CLASSIFICATION:
        return "regression"
    what = "binary classification" if p.is_binary else "multiclass classification"
    return what + (" without probabilities" if p.proba is None else "")


def _dot(w: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``w @ values`` for a vector of values, without BLAS: OpenBLAS's threaded matrix-vector
    product can be 100 times slower than a plain loop on a busy machine."""
    return np.asarray(np.einsum("bn,n->b", w, values))


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _classification_statistic(p: Predictions, metric: str, cache: dict[Any, Any]) -> Statistic:
    assert p.true_codes is not None and p.pred_codes is not None
    y, pred, n = p.true_codes, p.pred_codes, len(p)
    if metric == "accuracy":
        correct = (y == pred).astype(np.float64)
        return lambda w: _dot(w, correct) / w.sum(axis=1)
    if metric in ("precision", "recall", "f1"):
        pos = p.positive_index
        t, q = y == pos, pred == pos
        cols = np.column_stack([t & q, q, t]).astype(np.float64)

        def binary(w: np.ndarray) -> np.ndarray:
            tp, pp, ap = (w @ cols).T
            if metric == "precision":
                return _ratio(tp, pp)
            if metric == "recall":
                return _ratio(tp, ap)
            return _ratio(2 * tp, pp + ap)

        return binary
    if metric.endswith(("_macro", "_weighted")):
        if "one-hot" not in cache:
            cache["one-hot"] = _one_hot(p)
        return _averaged_statistic(metric, *cache["one-hot"])
    assert p.proba is not None
    proba = p.proba.astype(np.float64)
    if metric == "log_loss":
        eps = np.finfo(p.proba.dtype).eps
        losses = -np.log(np.clip(proba[np.arange(n), y], eps, 1 - eps))
        return lambda w: _dot(w, losses) / w.sum(axis=1)
    if metric == "brier_score":
        pos = p.positive_index
        sq = (proba[:, pos] - (y == pos)) ** 2
        return lambda w: _dot(w, sq) / w.sum(axis=1)
    curve = _roc_auc if metric == "roc_auc" else _average_precision
    columns = [p.positive_index] if p.is_binary else range(len(p.classes))
    for c in columns:
        if ("ranked", c) not in cache:
            cache[("ranked", c)] = _ranked(y == c, proba[:, c])
    if p.is_binary:
        groups = cache[("ranked", p.positive_index)]
        return lambda w: curve(*groups(w))
    per_class = [cache[("ranked", c)] for c in columns]

    def one_vs_rest(w: np.ndarray) -> np.ndarray:
        scores = np.vstack([curve(*groups(w)) for groups in per_class])  # classes x resamples
        defined = np.isfinite(scores)
        total = np.where(defined, scores, 0.0).sum(axis=0)
        return _ratio(total, defined.sum(axis=0).astype(np.float64), np.nan)

    return one_vs_rest


def _one_hot(p: Predictions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows x classes indicators: correct predictions, predicted classes, true classes."""
    assert p.true_codes is not None and p.pred_codes is not None
    rows, k = np.arange(len(p)), len(p.classes)
    truth = np.zeros((len(p), k))
    truth[rows, p.true_codes] = 1.0
    said = np.zeros((len(p), k))
    said[rows, p.pred_codes] = 1.0
    return truth * (p.true_codes == p.pred_codes)[:, None], said, truth


def _averaged_statistic(
    metric: str, hits: np.ndarray, said: np.ndarray, truth: np.ndarray
) -> Statistic:
    """Macro or support-weighted precision, recall or F1 over the labels present."""
    name, average = metric.rsplit("_", 1)

    def averaged(w: np.ndarray) -> np.ndarray:
        tp, pp, ap = w @ hits, w @ said, w @ truth
        if name == "precision":
            per = _ratio(tp, pp)
        elif name == "recall":
            per = _ratio(tp, ap)
        else:
            per = _ratio(2 * tp, pp + ap)
        if average == "weighted":
            return _ratio((per * ap).sum(axis=1), ap.sum(axis=1), np.nan)
        present = (pp + ap) > 0
        return _ratio((per * present).sum(axis=1), present.sum(axis=1).astype(np.float64), np.nan)

    return averaged


def _ranked(
    truth: np.ndarray, scores: np.ndarray
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A function of a weight block giving, per score group (ascending, ties together), the
    weight of the positives and of the negatives in each resample."""
    order = np.argsort(scores)  # ties are summed, so any order of them will do
    ranked = scores[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    positive = truth[order].astype(np.float64)

    ties = len(starts) < len(ranked)

    def groups(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ws = w[:, order]
        pos = ws * positive
        if ties:
            pos, ws = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(ws, starts, axis=1)
        ws -= pos  # now the negatives' weights
        return pos, ws

    return groups


def _roc_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _ratio(wins, pos.sum(axis=1) * neg.sum(axis=1), np.nan)


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Average precision: the precision at each threshold, weighted by the recall it adds."""
    pos, neg = pos[:, ::-1], neg[:, ::-1]  # highest scores first
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    precision = _ratio(tp, tp + fp)
    return _ratio((pos * precision).sum(axis=1), pos.sum(axis=1), np.nan)


def _regression_statistic(p: Predictions, metric: str) -> Statistic:
    y, residual = p.y_true, p.y_true - p.y_pred
    size = np.abs(residual)
    if metric == "rmse":
        sq = residual**2
        return lambda w: np.sqrt(_dot(w, sq) / w.sum(axis=1))
    if metric == "mae":
        return lambda w: _dot(w, size) / w.sum(axis=1)
    if metric == "mape":
        nonzero = (y != 0).astype(np.float64)
        share = _ratio(size, np.abs(y))
        return lambda w: _ratio(_dot(w, share), _dot(w, nonzero), np.nan)
    if metric == "r2":
        centred = y - y.mean()  # the total sum of squares without cancellation
        cols = np.column_stack([residual**2, centred, centred**2])

        def r2(w: np.ndarray) -> np.ndarray:
            sse, s1, s2 = (w @ cols).T
            sst = s2 - s1**2 / w.sum(axis=1)
            out = 1.0 - _ratio(sse, sst, np.nan)
            # sklearn (force_finite): a constant target scores 1 when fitted exactly, else 0
            flat = sst <= 1e-12 * np.maximum(s2, 1.0)
            out[flat] = np.where(sse[flat] == 0, 1.0, 0.0)
            return out

        return r2
    if metric == "max_error":
        return lambda w: np.where(w > 0, size, 0.0).max(axis=1)
    order = np.argsort(size)
    ranked = size[order]

    def median(w: np.ndarray) -> np.ndarray:
        counts = np.cumsum(w[:, order], axis=1)
        total = counts[:, -1:]
        lower = ranked[np.argmax(counts >= np.ceil(total / 2), axis=1)]
        upper = ranked[np.argmax(counts >= np.floor(total / 2) + 1, axis=1)]
        return np.asarray((lower + upper) / 2, dtype=np.float64)

    return median
