"""Reproducible splits: random (seeded, optionally stratified) or by a time column.

A split is a pure function of the source rows (in their stored order) and its spec, so it can be
rebuilt exactly: each part logged by :func:`split_dataset` stores the spec and the source
version in its metadata, and :func:`rebuild_split` draws the same rows again and checks that they
hash to the part's version.

Random splits shuffle row positions with NumPy's PCG64 generator seeded by ``seed`` and cut the
shuffled positions by the fractions; stratified splits do the same within each class of the
stratify column (classes in sorted order, one generator for all), so every part keeps the class
shares. Time splits sort rows by the time column (ties keep their order, rows without a time go
last) and cut by the fractions: the first part is the oldest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml._frames import as_pandas, is_table
from loopml.errors import InvalidArgument, InvalidData

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion

__all__ = ["Split", "rebuild_split", "split_dataset", "split_frame"]

DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.8, "test": 0.2}


@dataclass(frozen=True)
class Split:
    """The parts of a split, the spec that rebuilds them, and their versions once logged.

    Attributes:
        frames: part name -> its rows (a DataFrame, source order kept within a part).
        spec: JSON-ready description of the split (method, seed, fractions, columns, source).
        versions: part name -> its logged :class:`~loopml.entities.DatasetVersion` (empty when
            the parts were not logged).
    """

    frames: dict[str, pd.DataFrame]
    spec: dict[str, Any]
    versions: dict[str, DatasetVersion] = field(default_factory=dict)

    def __getitem__(self, part: str) -> pd.DataFrame:
        return self.frames[part]


def _fractions(fractions: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    if isinstance(fractions, Mapping):
        out = {str(k): float(v) for k, v in fractions.items()}
    else:
        names = ("train", "test") if len(fractions) == 2 else ("train", "validation", "test")
        if len(fractions) not in (2, 3):
            raise InvalidArgument(
                "give fractions as a mapping {'train': 0.8, 'test': 0.2} or as 2 or 3 numbers"
            )
        out = dict(zip(names, map(float, fractions), strict=True))
    if len(out) < 2 or any(not (0 < v < 1) for v in out.values()):
        raise InvalidArgument(
            f"fractions {out} must name at least two parts, each strictly between 0 and 1"
        )
    if abs(sum(out.values()) - 1.0) > 1e-9:
        raise InvalidArgument(f"fractions {out} must add up to 1, not {sum(out.values()):g}")
    return out


def _cuts(n: int, fractions: dict[str, float]) -> list[int]:
    """Boundaries of each part in 0..n (largest remainder, so sizes add up to n)."""
    shares = np.array(list(fractions.values())) * n
    sizes = np.floor(shares).astype(np.int64)
    order = np.argsort(-(shares - sizes), kind="stable")
    sizes[order[: n - int(sizes.sum())]] += 1
    return [0, *np.cumsum(sizes).tolist()]


def split_frame(
    frame: pd.DataFrame,
    *,
    fractions: Mapping[str, float] | Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    stratify: str | None = None,
    time_column: str | None = None,
) -> Split:
    """Split a DataFrame reproducibly (see the module docstring for how).

    Args:
        frame: the rows to split.
        fractions: part name -> share of rows (``{"train": 0.8, "test": 0.2}``), or 2 or 3
            numbers for train/test or train/validation/test.
        seed: the random seed (random and stratified splits).
        stratify: keep the shares of this column's classes in every part.
        time_column: split by time instead: the oldest rows go to the first part.

    Raises:
        InvalidArgument: bad fractions, an unknown column, or both stratify and time_column.
    """
    frame = as_pandas(frame)
    parts = _fractions(fractions)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise InvalidArgument(f"seed must be an integer, not {seed!r}")
    for col in (stratify, time_column):
        if col is not None and col not in frame.columns:
            names = ", ".join(map(str, frame.columns))
            raise InvalidArgument(f"column {col!r} is not in the data; its columns are {names}")
    if stratify is not None and time_column is not None:
        raise InvalidArgument("split either by time_column or with stratify, not both")
    n = len(frame)
    if n < len(parts):
        raise InvalidData(f"cannot split {n} rows into {len(parts)} parts")
    spec: dict[str, Any] = {"fractions": parts, "rows": n}
    if time_column is not None:
        order = _time_order(frame[time_column])
        cuts = _cuts(n, parts)
        positions = {name: order[cuts[i] : cuts[i + 1]] for i, name in enumerate(parts)}
        spec.update(method="time", time_column=time_column)
    else:
        rng = np.random.default_rng(int(seed))
        groups: list[np.ndarray[Any, Any]]
        if stratify is not None:
            codes, _ = _codes(frame[stratify])
            groups = [np.flatnonzero(codes == c) for c in np.unique(codes)]
        else:
            groups = [np.arange(n)]
        chosen: dict[str, list[np.ndarray[Any, Any]]] = {name: [] for name in parts}
        for members in groups:
            shuffled = members[rng.permutation(len(members))]
            cuts = _cuts(len(members), parts)
            for i, name in enumerate(parts):
                chosen[name].append(shuffled[cuts[i] : cuts[i + 1]])
        positions = {name: np.concatenate(chosen[name]) for name in parts}
        spec.update(method="stratified" if stratify else "random", seed=int(seed))
        if stratify is not None:
            spec["stratify"] = stratify
    frames = {
        name: frame.iloc[np.sort(pos)].reset_index(drop=True) for name, pos in positions.items()
    }
    return Split(frames=frames, spec=spec)


def _time_order(column: pd.Series[Any]) -> np.ndarray[Any, Any]:
    """Row positions from oldest to newest: ties keep their order, missing times come last.

    pandas sorts what NumPy cannot: time-zone-aware columns (object arrays to NumPy, where NaT
    compares false with everything) and text with missing values.
    """
    try:
        ordered = column.reset_index(drop=True).sort_values(kind="stable", na_position="last")
    except TypeError as exc:
        raise InvalidData(
            f"cannot sort the time column {column.name!r}: {exc}; give it one type "
            "(e.g. pd.to_datetime(df[col]))"
        ) from exc
    return ordered.index.to_numpy()


def _codes(column: pd.Series[Any]) -> tuple[np.ndarray[Any, Any], Any]:
    import pandas as pd

    codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=False)
    return codes, uniques


def split_dataset(
    dataset: Any,
    *,
    name: str | None = None,
    fractions: Mapping[str, float] | Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    stratify: str | None = None,
    time_column: str | None = None,
    log: bool = True,
    record_inputs: bool = True,
    project: str | None = None,
    client: Client | None = None,
) -> Split:
    """Split a dataset and log each part as a version of ``<name>-<part>``.

    Args:
        dataset: a logged version (``datasets:/churn/3``, a
            :class:`~loopml.entities.DatasetVersion`) or a table (logged first as ``name``).
        name: the base name of the parts (default: the dataset's name).
        fractions, seed, stratify, time_column: as :func:`split_frame`.
        log: log the parts (default True); False only splits.
        record_inputs: with an active run, record each part as an input in the role of its
            part name (``train``, ``test``...).
        project: the project (default: the current one).
        client: the client (default: the fluent API's).

    Returns:
        The :class:`Split`, with ``versions`` filled when logged.
    """
    from loopml.client import context
    from loopml.data.datasets import get_dataset, load_dataset, log_dataset

    c = client if client is not None else context.get_client()
    if is_table(dataset):
        if name is None:
            raise InvalidArgument("name the dataset: split_dataset(df, name='churn')")
        source = log_dataset(dataset, name, project=project, client=c) if log else None
        frame = as_pandas(dataset)
    else:
        source = get_dataset(dataset, project=project, client=c)
        frame = load_dataset(source, client=c)
        name = name or source.name
    result = split_frame(
        frame, fractions=fractions, seed=seed, stratify=stratify, time_column=time_column
    )
    if not log or source is None:
        return result
    spec = {**result.spec, "source": source.uri, "source_digest": source.digest}
    run_id = context.active_run_id()
    versions = {}
    for part, part_frame in result.frames.items():
        versions[part] = log_dataset(
            part_frame,
            f"{name}-{part}",
            project=project,
            metadata={"split": {**spec, "part": part}},
            role=part if record_inputs and run_id is not None else None,
            client=c,
        )
    return Split(frames=result.frames, spec=spec, versions=versions)


def rebuild_split(
    dataset: str | DatasetVersion, *, project: str | None = None, client: Client | None = None
) -> pd.DataFrame:
    """Draw a logged split part again from its source version and check it is the same data.

    Raises:
        InvalidArgument: the version is not a split part.
        InvalidData: the rebuilt rows do not hash to the part's version.
    """
    from loopml.client import context
    from loopml.data.datasets import get_dataset, load_dataset
    from loopml.data.digest import ContentHasher

    c = client if client is not None else context.get_client()
    part_version = get_dataset(dataset, project=project, client=c)
    spec = part_version.metadata.get("split")
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{part_version.uri} was not made by split_dataset()")
    source = get_dataset(spec["source"], project=project, client=c)
    frame = load_dataset(source, client=c)
    again = split_frame(
        frame,
        fractions=spec["fractions"],
        seed=int(spec.get("seed", 0)),
        stratify=spec.get("stratify"),
        time_column=spec.get("time_column"),
    )[spec["part"]]
    import pyarrow as pa

    table = pa.Table.from_pandas(again, preserve_index=False)
    hasher = ContentHasher(table.schema)
    hasher.update(table)
    if hasher.hexdigest() != part_version.digest:
        raise InvalidData(
            f"rebuilding {part_version.uri} from {source.uri} gave other rows than were logged "
            "(was the split code changed?)"
        )
    return again
