"""Reproducible splits: random, stratified and by time; logged parts that rebuild exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loopml
from loopml.data import splits
from loopml.data.datasets import load_dataset, log_dataset
from loopml.data.splits import rebuild_split, split_dataset, split_frame
from loopml.errors import InvalidArgument, InvalidData


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 1000
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "label": rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1]),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.permutation(n), unit="h"),
        }
    )


def _ids(split: splits.Split, part: str) -> list[int]:
    return split[part]["id"].tolist()


def test_the_same_seed_gives_the_same_rows(frame: pd.DataFrame) -> None:
    a = split_frame(frame, seed=3)
    b = split_frame(frame.copy(), seed=3)
    c = split_frame(frame, seed=4)
    assert _ids(a, "train") == _ids(b, "train") and _ids(a, "test") == _ids(b, "test")
    assert _ids(a, "test") != _ids(c, "test")
    assert a.spec == {
        "fractions": {"train": 0.8, "test": 0.2},
        "rows": 1000,
        "method": "random",
        "seed": 3,
    }
    # parts keep the source order and reset their index
    assert _ids(a, "train") == sorted(_ids(a, "train"))
    assert list(a["test"].index) == list(range(200))


def test_parts_cover_every_row_once(frame: pd.DataFrame) -> None:
    s = split_frame(frame, fractions={"train": 0.6, "validation": 0.25, "test": 0.15}, seed=1)
    sizes = {name: len(part) for name, part in s.frames.items()}
    assert sizes == {"train": 600, "validation": 250, "test": 150}
    ids = [i for part in s.frames for i in _ids(s, part)]
    assert sorted(ids) == list(range(1000))
    three = split_frame(frame, fractions=(0.7, 0.2, 0.1))
    assert list(three.frames) == ["train", "validation", "test"]
    assert list(split_frame(frame, fractions=[0.5, 0.5]).frames) == ["train", "test"]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 200),
    shares=st.lists(st.integers(1, 20), min_size=2, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_sizes_add_up_and_follow_the_fractions(n: int, shares: list[int], seed: int) -> None:
    if n < len(shares):
        n = len(shares)
    total = sum(shares)
    fractions = {f"p{i}": s / total for i, s in enumerate(shares)}
    fractions[f"p{len(shares) - 1}"] = 1 - sum(list(fractions.values())[:-1])
    frame = pd.DataFrame({"id": np.arange(n)})
    s = split_frame(frame, fractions=fractions, seed=seed)
    sizes = [len(s[p]) for p in fractions]
    assert sum(sizes) == n
    for size, share in zip(sizes, fractions.values(), strict=True):
        assert abs(size - share * n) < 1  # largest remainder: within one row
    assert sorted(i for p in fractions for i in _ids(s, p)) == list(range(n))


def test_stratified_parts_keep_the_class_shares(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.loc[::97, "label"] = None  # missing labels are a class of their own
    s = split_frame(frame, fractions=(0.7, 0.15, 0.15), seed=9, stratify="label")
    assert s.spec["method"] == "stratified" and s.spec["stratify"] == "label"
    counts = frame["label"].value_counts(dropna=False)
    for part, share in (("train", 0.7), ("validation", 0.15), ("test", 0.15)):
        got = s[part]["label"].value_counts(dropna=False)
        for cls, total in counts.items():
            assert abs(got.get(cls, 0) - share * total) < 1, (part, cls)
    assert sum(len(p) for p in s.frames.values()) == len(frame)


def test_a_time_split_puts_the_oldest_rows_first(frame: pd.DataFrame) -> None:
    s = split_frame(frame, fractions=(0.6, 0.2, 0.2), time_column="when")
    assert s.spec == {
        "fractions": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "rows": 1000,
        "method": "time",
        "time_column": "when",
    }
    assert s["train"]["when"].max() < s["validation"]["when"].min()
    assert s["validation"]["when"].max() < s["test"]["when"].min()
    assert [len(p) for p in s.frames.values()] == [600, 200, 200]
    # ties keep their order, and the seed does not matter
    ties = pd.DataFrame({"id": range(6), "day": [2, 1, 1, 2, 1, 2]})
    t = split_frame(ties, fractions=(0.5, 0.5), time_column="day", seed=1)
    assert _ids(t, "train") == [1, 2, 4] and _ids(t, "test") == [0, 3, 5]
    assert _ids(split_frame(ties, fractions=(0.5, 0.5), time_column="day", seed=2), "train") == [
        1,
        2,
        4,
    ]


def test_a_time_split_on_zoned_times_text_and_missing_times() -> None:
    days = ["2024-01-03", "2024-01-01", None, "2024-01-02", "2024-01-05", "2024-01-04"]
    zoned = pd.DataFrame({"id": range(6), "t": pd.to_datetime(days).tz_localize("Europe/Paris")})
    naive = zoned.assign(t=zoned["t"].dt.tz_localize(None))
    text = zoned.assign(t=days)
    for frame in (zoned, naive, text):
        s = split_frame(frame, fractions=(0.5, 0.5), time_column="t")
        assert _ids(s, "train") == [0, 1, 3] and _ids(s, "test") == [2, 4, 5]  # NaT last
    mixed = pd.DataFrame({"id": range(3), "t": [1, "2024-01-01", 2.5]})
    with pytest.raises(InvalidData, match="cannot sort the time column 't'"):
        split_frame(mixed, fractions=(0.5, 0.5), time_column="t")


def test_bad_arguments(frame: pd.DataFrame) -> None:
    bad_fractions = [
        {"train": 0.8, "test": 0.3},
        {"train": 1.0},
        {"train": 0.0, "test": 1.0},
        (0.5,),
        (0.25, 0.25, 0.25, 0.25),
    ]
    for fractions in bad_fractions:
        with pytest.raises(InvalidArgument, match="fractions"):
            split_frame(frame, fractions=fractions)
    with pytest.raises(InvalidArgument, match="column 'nope' is not in the data"):
        split_frame(frame, stratify="nope")
    with pytest.raises(InvalidArgument, match="column 'nope'"):
        split_frame(frame, time_column="nope")
    with pytest.raises(InvalidArgument, match="not both"):
        split_frame(frame, stratify="label", time_column="when")
    with pytest.raises(InvalidArgument, match="seed must be an integer"):
        split_frame(frame, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="seed"):
        split_frame(frame, seed=True)
    with pytest.raises(InvalidData, match="cannot split 2 rows into 3 parts"):
        split_frame(frame.iloc[:2], fractions=(0.4, 0.3, 0.3))


def test_split_dataset_logs_parts_that_rebuild_exactly(
    frame: pd.DataFrame, client: loopml.Client
) -> None:
    source = log_dataset(frame, "events", client=client)
    s = split_dataset("datasets:/events/1", seed=2, stratify="label", client=client)
    assert set(s.versions) == {"train", "test"}
    train = s.versions["train"]
    assert (train.name, train.version, train.num_rows) == ("events-train", 1, 800)
    spec = train.metadata["split"]
    assert spec["source"] == source.uri and spec["source_digest"] == source.digest
    assert spec["part"] == "train" and spec["seed"] == 2 and spec["stratify"] == "label"
    for part, version in s.versions.items():
        rebuilt = rebuild_split(version.uri, client=client)
        pd.testing.assert_frame_equal(rebuilt, s[part])
        pd.testing.assert_frame_equal(
            load_dataset(version, client=client), s[part], check_dtype=False
        )
    # splitting again reuses every version
    again = split_dataset(source, seed=2, stratify="label", client=client)
    assert again.versions == s.versions


def test_split_dataset_from_a_frame_and_without_logging(
    frame: pd.DataFrame, client: loopml.Client
) -> None:
    with pytest.raises(InvalidArgument, match="name the dataset"):
        split_dataset(frame, client=client)
    s = split_dataset(frame, name="ev", time_column="when", fractions=(0.5, 0.5), client=client)
    assert [v.uri for v in s.versions.values()] == ["datasets:/ev-train/1", "datasets:/ev-test/1"]
    assert client.get_dataset_version("ev").num_rows == 1000  # the whole table, logged first
    pd.testing.assert_frame_equal(rebuild_split("datasets:/ev-test/1", client=client), s["test"])
    dry = split_dataset(frame, name="dry", log=False, client=client)
    assert dry.versions == {} and len(dry["train"]) == 800
    assert "dry" not in {d.name for d in client.list_datasets()}


def test_split_parts_are_run_inputs_in_their_roles(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.client import context

    monkeypatch.setenv("LOOPML_ARTIFACT_URI", str(tmp_path / "art"))
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPML_FLUSH_INTERVAL", "3600")
    monkeypatch.setenv("LOOPML_HEARTBEAT_INTERVAL", "3600")
    monkeypatch.delenv("LOOPML_PROJECT", raising=False)
    monkeypatch.setattr(context, "_project", None)
    loopml.set_tracking_uri(f"sqlite:///{tmp_path}/t.db")
    try:
        with loopml.start_run() as run:
            split_dataset(frame, name="ev", fractions=(0.6, 0.2, 0.2), seed=1)
        with loopml.start_run() as quiet:
            split_dataset(frame, name="ev", seed=1, record_inputs=False)
        c = loopml.get_client()
        roles = {(i.dataset_version.name, i.role) for i in c.get_run_inputs(run.run_id)}
        assert roles == {
            ("ev-train", "train"),
            ("ev-validation", "validation"),
            ("ev-test", "test"),
        }
        assert c.get_run_inputs(quiet.run_id) == []
    finally:
        client = context.peek_client()
        loopml.set_tracking_uri(None)
        if client is not None:
            client.close()


def test_rebuild_split_detects_a_changed_split(
    frame: pd.DataFrame, client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = split_dataset(frame, name="ev", seed=2, client=client)
    test = s.versions["test"]
    real = splits.split_frame

    def drifted(*args: object, **kwargs: object) -> splits.Split:
        kwargs["seed"] = 99  # as if the split code had changed
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(splits, "split_frame", drifted)
    with pytest.raises(InvalidData, match=r"rebuilding datasets:/ev-test/1 .* other rows"):
        rebuild_split(test, client=client)
    monkeypatch.undo()
    with pytest.raises(InvalidArgument, match="not made by split_dataset"):
        rebuild_split("datasets:/ev/1", client=client)
