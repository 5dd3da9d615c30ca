"""Leakage checks: rows shared between a table and its reference (train/test leakage), and
single features that predict the target suspiciously well (target leakage).

Both are required by default: either makes a model's evaluation meaningless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.data import _check_utils as u
from loopml.data.checks import CheckContext, CheckResult

__all__ = ["TargetLeakage", "TrainTestLeakage"]

_ID_NAME = re.compile(r"(^|[^a-z0-9])(id|uuid|guid|key|index)$|^(id|uuid|guid)([^a-z0-9]|$)", re.I)


@dataclass(frozen=True, kw_only=True)
class TrainTestLeakage:
    """At most ``max_share`` of the rows also appear in ``context.reference`` (the training set
    when checking the test set), compared over the columns both share, the target left out.

    The default, 5%, is Deepchecks' (train-test samples mix); lower it to 0 to refuse any
    shared row. Rows are matched by a 64-bit hash of their values; columns whose types differ
    between the two tables are compared as floats (both numeric) or as text.
    """

    max_share: float = 0.05
    name: str = "train_test_leakage"
    required: bool = True

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        ref = context.reference
        if ref is None:
            return u.skipped(self.name, "no reference data given")
        shared = [c for c in data.columns if c in ref.columns and c != context.target]
        if not shared:
            return u.skipped(self.name, "the data and the reference share no column")
        left, right, cast = _aligned(data[shared], ref[shared])
        rows, keys = u.matching_rows(left, right, shared)
        count = len(rows)
        frac = u.share(count, len(data))
        examples = [u.show(i) for i in data.index[rows[:5]]]
        details = {
            "shared_rows": count,
            "distinct_shared_rows": len(np.unique(keys)),
            "share": frac,
            "threshold": self.max_share,
            "compared_columns": len(shared),
            "cast_columns": cast,
            "examples": examples,
            "method": "64-bit row hash",
        }
        what = f"{count:,} rows of {context.name!r} ({u.pct(frac)}) also appear in the reference"
        if frac <= self.max_share:
            return CheckResult(
                self.name,
                True,
                message=what if count else "no row also appears in the reference",
                details=details,
            )
        return CheckResult(
            self.name,
            False,
            message=(
                f"{what}, more than {u.pct(self.max_share)}; e.g. rows {', '.join(examples)}; "
                "split before deduplicating, or drop the shared rows"
            ),
            details=details,
        )


def _aligned(
    left: pd.DataFrame, right: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The two tables with each column of differing type cast to a common one."""
    cast: list[str] = []
    left_cols: dict[str, pd.Series] = {}
    right_cols: dict[str, pd.Series] = {}
    for c in left.columns:
        a, b = left[c], right[c]
        if a.dtype != b.dtype:
            cast.append(str(c))
            if u.kind(a) in ("numeric", "bool") and u.kind(b) in ("numeric", "bool"):
                a, b = a.astype("float64"), b.astype("float64")
            else:
                a, b = a.astype(str), b.astype(str)
        left_cols[c], right_cols[c] = a, b
    if not cast:
        return left, right, cast
    return pd.DataFrame(left_cols), pd.DataFrame(right_cols), cast


@dataclass(frozen=True, kw_only=True)
class TargetLeakage:
    """No single feature predicts the target suspiciously well.

    Each feature is scored alone, on a sample of ``sample_size`` rows:

    * classification target, numeric feature: for two classes, the ROC AUC of the raw value
      (rank-based; ``max(auc, 1 - auc)``), flagged above ``max_auc``; for more classes, the
      held-out skill (below) of predicting the class of the nearest value seen in training;
    * classification target, categorical feature: the accuracy of predicting each category's
      majority class, learnt on half the sample and measured on the other half, as *skill*
      over always predicting the commonest class (0: no better, 1: perfect), flagged above
      ``max_skill``;
    * regression target: ``|Spearman correlation|`` for a numeric feature, flagged above
      ``max_spearman``; for a categorical one, the held-out R² of per-category means, flagged
      above ``max_r2``.

    Missing values count as a value of their own (a feature that is missing exactly when the
    target is positive leaks too). Id-like columns (unique text, or unique integers named like
    an id or forming a consecutive range) are left out.
    """

    max_auc: float = 0.99
    max_skill: float = 0.99
    max_spearman: float = 0.99
    max_r2: float = 0.98
    max_classes: int = 20
    sample_size: int = 100_000
    top: int = 5
    name: str = "target_leakage"
    required: bool = True

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        target = context.target
        if target is None:
            return u.skipped(self.name, "no target given")
        classify = u.looks_categorical(context, data, target, self.max_classes)
        positions = u.sample_positions(context, data, self.sample_size)
        frame = data if positions is None else data.iloc[positions]
        frame = frame[frame[target].notna()]
        if len(frame) < 10:
            return u.skipped(self.name, f"target {target!r} has fewer than 10 values")
        id_like = [c for c in frame.columns if c != target and _id_like(data, frame, c)]
        features = [
            c
            for c in frame.columns
            if c != target and c not in id_like and u.kind(frame[c]) != "other"
        ]
        y_codes, _ = u.factorize(frame[target])
        n_classes = int(y_codes.max()) + 1
        y_num = None if classify else u.as_float(frame[target])
        half = np.arange(len(frame)) % 2 == 0  # the sample is in random order: halves are random
        scores: dict[str, dict[str, Any]] = {}
        for c in features:
            scores[c] = self._score(frame[c], classify, n_classes, y_codes, y_num, half)
        flagged = [c for c, s in scores.items() if s["score"] > s["threshold"]]
        flagged.sort(key=lambda c: -scores[c]["score"])
        ranked = sorted(scores, key=lambda c: -scores[c]["score"])[: self.top]
        details = {
            "target": target,
            "task": "classification" if classify else "regression",
            "top": {c: scores[c] for c in ranked},
            "flagged": flagged,
            "excluded_id_like": id_like,
            "rows_used": len(frame),
            "sampled": positions is not None,
        }
        if not flagged:
            best = (
                f"; best single feature {ranked[0]!r} "
                f"({scores[ranked[0]]['metric']} {scores[ranked[0]]['score']:.3f})"
                if ranked
                else ""
            )
            return CheckResult(
                self.name,
                True,
                message=f"no feature predicts {target!r} suspiciously well{best}",
                details=details,
            )
        items = [
            f"{c!r} ({scores[c]['metric']} {scores[c]['score']:.3f} > {scores[c]['threshold']:g})"
            for c in flagged
        ]
        return CheckResult(
            self.name,
            False,
            message=(
                f"{u.plural(len(flagged), 'feature predicts', 'features predict')} target "
                f"{target!r} suspiciously well: "
                f"{u.listing(items)}; drop any that is only known after the target"
            ),
            details=details,
            columns=tuple(flagged),
        )

    def _score(
        self,
        x: pd.Series,
        classify: bool,
        n_classes: int,
        y_codes: np.ndarray,
        y_num: np.ndarray | None,
        half: np.ndarray,
    ) -> dict[str, Any]:
        numeric = u.kind(x) in ("numeric", "bool", "datetime")
        if classify:
            if numeric and n_classes == 2:
                return _metric("auc", _auc(_fill(u.as_float(x)), y_codes == 1), self.max_auc)
            if numeric and x.nunique(dropna=False) > self.max_classes:
                skill = _nearest_skill(_fill(u.as_float(x)), y_codes, n_classes, half)
            else:
                skill = _skill(_codes(x), y_codes, n_classes, half)
            return _metric("skill", skill, self.max_skill)
        assert y_num is not None
        if numeric:
            rho = _spearman(_fill(u.as_float(x)), y_num)
            return _metric("spearman", abs(rho), self.max_spearman)
        return _metric("r2", _r2(_codes(x), y_num, half), self.max_r2)


def _metric(name: str, score: float, threshold: float) -> dict[str, Any]:
    return {"metric": name, "score": float(score), "threshold": threshold}


def _id_like(data: pd.DataFrame, sample: pd.DataFrame, column: str) -> bool:
    s = sample[column]
    k = u.kind(s)
    integer = k == "numeric" and s.dtype.kind in "iu"
    if k not in ("categorical",) and not integer:
        return False
    if len(np.unique(u.factorize(s, na_code=False)[0])) < len(s):
        return False
    if k == "categorical" or _ID_NAME.search(str(column)):
        return True
    full = data[column]
    return bool(
        full.notna().all()
        and int(full.max()) - int(full.min()) + 1 == len(full)
        and full.is_unique
    )


def _fill(x: np.ndarray) -> np.ndarray:
    """Missing values as a value of their own, below every other one."""
    missing = np.isnan(x)
    if not missing.any():
        return x
    present = x[~missing]
    low = float(present.min()) - 1.0 if len(present) else 0.0
    return np.where(missing, low, x)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = np.argsort(x, kind="quicksort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _auc(x: np.ndarray, positive: np.ndarray) -> float:
    """``max(AUC, 1 - AUC)`` of ``x`` as a score for ``positive`` (Mann-Whitney U)."""
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if not n1 or not n0:
        return 0.5
    r = _ranks(x)
    auc = (float(r[positive].sum()) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    return max(auc, 1.0 - auc)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = _ranks(x), _ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom else 0.0


def _codes(x: pd.Series) -> np.ndarray:
    """Category codes with missing values as a category of their own."""
    codes, _ = u.factorize(x, na_code=False)
    return codes


def _nearest_skill(x: np.ndarray, y: np.ndarray, k: int, train: np.ndarray) -> float:
    """Held-out accuracy of the nearest training value's class (1-NN on one feature), as skill
    over the majority baseline. Its error is at most twice the best possible one, so a
    feature that separates the classes scores close to 1."""
    order = np.argsort(x[train], kind="stable")
    xs, ys = x[train][order], y[train][order]
    xt, yt = x[~train], y[~train]
    right = np.clip(np.searchsorted(xs, xt), 0, len(xs) - 1)
    left = np.clip(right - 1, 0, len(xs) - 1)
    nearest = np.where(np.abs(xt - xs[left]) <= np.abs(xs[right] - xt), left, right)
    accuracy = float(np.mean(ys[nearest] == yt))
    overall = int(np.argmax(np.bincount(y[train], minlength=k)))
    return _as_skill(accuracy, float(np.mean(yt == overall)))


def _as_skill(accuracy: float, baseline: float) -> float:
    if baseline >= 1.0:
        return 0.0
    return max(0.0, (accuracy - baseline) / (1.0 - baseline))


def _skill(codes: np.ndarray, y: np.ndarray, k: int, train: np.ndarray) -> float:
    """Held-out accuracy of per-category majority classes, as skill over the majority baseline."""
    test = ~train
    n_cat = int(codes.max()) + 1
    table = np.bincount(codes[train] * k + y[train], minlength=n_cat * k).reshape(n_cat, k)
    overall = int(np.argmax(np.bincount(y[train], minlength=k)))
    seen = table.sum(axis=1) > 0
    majority = np.where(seen, table.argmax(axis=1), overall)
    accuracy = float(np.mean(majority[codes[test]] == y[test]))
    return _as_skill(accuracy, float(np.mean(y[test] == overall)))


def _r2(codes: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    """Held-out R² of predicting ``y`` by its per-category mean."""
    test = ~train
    n_cat = int(codes.max()) + 1
    sums = np.bincount(codes[train], weights=y[train], minlength=n_cat)
    counts = np.bincount(codes[train], minlength=n_cat)
    overall = float(y[train].mean())
    means = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    residual = float(((y[test] - means[codes[test]]) ** 2).sum())
    total = float(((y[test] - overall) ** 2).sum())
    return max(0.0, 1.0 - residual / total) if total else 0.0
