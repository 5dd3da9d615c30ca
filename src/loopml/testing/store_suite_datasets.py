"""The dataset half of the store conformance suite.

:class:`DatasetSuite` checks the :class:`~loopml.store.datasets.DatasetStore` contract: datasets
created on first use, versions numbered per dataset and idempotent by content digest, every form
of version selector, run inputs and lineage both ways, the errors, the validation, and
concurrent writers. :class:`~loopml.testing.StoreSuite` inherits it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import pytest

from loopml.entities import Dataset, DatasetInput, DatasetVersion, Project, now_ms
from loopml.errors import DatasetNotFound, InvalidArgument, ProjectNotFound, RunNotFound
from loopml.store.base import Store, new_id

__all__ = ["DatasetSuite", "digest_of"]


def digest_of(text: str) -> str:
    """A sha256 hex digest standing for some content (tests need many distinct ones)."""
    return hashlib.sha256(text.encode()).hexdigest()


def _project(store: Store, name: str = "proj") -> Project:
    return store.get_or_create_project(name)


def _log(
    store: Store, project: Project, name: str, content: str, **kwargs: Any
) -> tuple[DatasetVersion, bool]:
    args: dict[str, Any] = {
        "digest": digest_of(content),
        "blob": digest_of("blob:" + content),
        "size_bytes": 100,
        "num_rows": 10,
        "num_columns": 3,
    }
    args.update(kwargs)
    return store.create_dataset_version(project.project_id, name, **args)


def _in_threads(n: int, work: Callable[[int], object]) -> list[object]:
    """``work(i)`` on n threads released together; each result or exception."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # the caller checks what each thread raised
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung (a deadlock in the store?)"
    return results


SCHEMA = {
    "columns": [
        {"name": "age", "type": "integer", "nullable": False, "min": 0, "max": 120},
        {"name": "plan", "type": "categorical", "categories": ["a", "b", None]},
        {"name": "score", "type": "float", "range": [-1.5, 2.5e10]},
    ],
    "target": "churned",
    "unicode": "Ünïcødé",
    "nested": {"deep": {"deeper": [1, [2, 3], {"x": True}]}},
}


class DatasetSuite:
    """Tests of datasets and run inputs; mixed into :class:`~loopml.testing.StoreSuite`."""

    # --- creating versions ---------------------------------------------------------------------

    def test_create_dataset_version_stores_every_field(self, store: Store) -> None:
        p = _project(store)
        run = store.create_run(p.project_id)
        before = now_ms()
        v, created = store.create_dataset_version(
            p.project_id,
            "churn",
            digest=digest_of("c1"),
            blob=digest_of("b1"),
            size_bytes=123_456_789_012,
            num_rows=1_000_000,
            num_columns=25,
            schema=SCHEMA,
            profile_blob=digest_of("profile"),
            source="sql: SELECT *\nFROM customers WHERE plan = 'a'",
            run_id=run.run_id,
            metadata={"split": {"kind": "random", "seed": 42, "fractions": [0.8, 0.2]}},
            description="customers who left",
        )
        assert created is True
        assert isinstance(v, DatasetVersion) and len(v.id) == 32
        expected = {
            "project_id": p.project_id,
            "name": "churn",
            "version": 1,
            "digest": digest_of("c1"),
            "blob": digest_of("b1"),
            "size_bytes": 123_456_789_012,
            "num_rows": 1_000_000,
            "num_columns": 25,
            "schema": SCHEMA,
            "profile_blob": digest_of("profile"),
            "source": "sql: SELECT *\nFROM customers WHERE plan = 'a'",
            "run_id": run.run_id,
            "metadata": {"split": {"kind": "random", "seed": 42, "fractions": [0.8, 0.2]}},
        }
        read = [
            store.get_dataset_version(p.project_id, "churn", 1),
            store.get_dataset_version_by_id(v.id),
            store.list_dataset_versions(p.project_id, "churn")[0],
        ]
        for got in [v, *read]:
            assert {k: getattr(got, k) for k in expected} == expected
            assert before <= got.created_at <= now_ms()
            assert got == v
        assert list(v.schema or {}) == list(SCHEMA)  # key order is kept: column order matters
        assert v.uri == "datasets:/churn/1"
        ds = store.get_dataset(p.project_id, "churn")
        assert ds == Dataset(
            v.dataset_id, p.project_id, "churn", "customers who left", ds.created_at, 1, 1
        )
        assert before <= ds.created_at <= now_ms()

    def test_defaults_of_a_version(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "x")
        assert (v.schema, v.profile_blob, v.source, v.run_id, v.metadata) == (
            None,
            None,
            "",
            None,
            {},
        )
        assert store.get_dataset(p.project_id, "d").description == ""

    def test_versions_are_numbered_per_dataset(self, store: Store) -> None:
        p = _project(store)
        a = [_log(store, p, "a", f"a{i}")[0].version for i in range(3)]
        b = [_log(store, p, "b", f"b{i}")[0].version for i in range(2)]
        assert (a, b) == ([1, 2, 3], [1, 2])
        assert [v.version for v in store.list_dataset_versions(p.project_id, "a")] == [3, 2, 1]
        got = store.get_dataset(p.project_id, "a")
        assert (got.latest_version, got.num_versions) == (3, 3)

    def test_same_digest_reuses_the_version(self, store: Store) -> None:
        p = _project(store)
        first, created = _log(store, p, "d", "same", source="a.csv", metadata={"k": 1})
        _log(store, p, "d", "other")
        again, created_again = _log(
            store, p, "d", "same", source="b.parquet", num_rows=99, metadata={"k": 2}
        )
        assert (created, created_again) == (True, False)
        assert again == first  # versions are immutable: the new arguments are ignored
        assert (again.source, again.num_rows, again.metadata) == ("a.csv", 10, {"k": 1})
        assert len(store.list_dataset_versions(p.project_id, "d")) == 2

    def test_same_digest_in_another_dataset_or_project_is_a_new_version(
        self, store: Store
    ) -> None:
        p, q = _project(store, "p"), _project(store, "q")
        v1, _ = _log(store, p, "a", "content")
        v2, c2 = _log(store, p, "b", "content")
        v3, c3 = _log(store, q, "a", "content")
        assert c2 and c3
        assert len({v1.id, v2.id, v3.id}) == 3 and len({v1.dataset_id, v3.dataset_id}) == 2
        assert (v2.version, v3.version, v3.project_id) == (1, 1, q.project_id)

    def test_description_is_set_by_a_non_empty_description(self, store: Store) -> None:
        p = _project(store)
        _log(store, p, "d", "1", description="first")
        _log(store, p, "d", "2")
        assert store.get_dataset(p.project_id, "d").description == "first"
        _log(store, p, "d", "1", description="second")  # even when the version is reused
        assert store.get_dataset(p.project_id, "d").description == "second"

    def test_update_dataset(self, store: Store) -> None:
        p = _project(store)
        _log(store, p, "d", "1")
        updated = store.update_dataset(p.project_id, "d", description="new words")
        assert updated.description == "new words" and updated.latest_version == 1
        assert store.get_dataset(p.project_id, "d") == updated
        assert store.update_dataset(p.project_id, "d", description="").description == ""
        with pytest.raises(DatasetNotFound, match="'nope'"):
            store.update_dataset(p.project_id, "nope", description="x")

    def test_returned_dicts_do_not_reach_the_store(self, store: Store) -> None:
        p = _project(store)
        schema: dict[str, Any] = {"columns": [{"name": "a"}]}
        metadata: dict[str, Any] = {"seed": 1}
        v, _ = _log(store, p, "d", "x", schema=schema, metadata=metadata)
        schema["columns"].append({"name": "b"})  # the caller's dicts were copied
        metadata["seed"] = 2
        assert v.schema is not None
        v.schema["columns"].append({"name": "c"})  # and so are the returned ones
        v.metadata["seed"] = 3
        again = store.get_dataset_version_by_id(v.id)
        assert again.schema == {"columns": [{"name": "a"}]} and again.metadata == {"seed": 1}

    def test_tuples_become_lists(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "x", schema={"range": (1, 2)}, metadata={"t": ((1,), [2])})
        for got in (v, store.get_dataset_version_by_id(v.id)):
            assert got.schema == {"range": [1, 2]} and got.metadata == {"t": [[1], [2]]}

    # --- reading -------------------------------------------------------------------------------

    def test_list_datasets_by_name(self, store: Store) -> None:
        p, q = _project(store, "p"), _project(store, "q")
        assert store.list_datasets(p.project_id) == []
        for name in ("b", "Alpha", "a-z", "_x", "a"):
            _log(store, p, name, name)
        _log(store, p, "b", "b2")
        _log(store, q, "other", "o")
        listed = store.list_datasets(p.project_id)
        assert [d.name for d in listed] == ["Alpha", "_x", "a", "a-z", "b"]
        assert [d.latest_version for d in listed] == [1, 1, 1, 1, 2]
        assert [d.num_versions for d in listed] == [1, 1, 1, 1, 2]
        assert all(d.project_id == p.project_id for d in listed)
        assert [d.name for d in store.list_datasets(q.project_id)] == ["other"]

    def test_every_form_of_version(self, store: Store) -> None:
        p = _project(store)
        versions = [_log(store, p, "d", f"content-{i}")[0] for i in range(3)]
        v2 = versions[1]

        def get(selector: Any) -> DatasetVersion:
            return store.get_dataset_version(p.project_id, "d", selector)

        assert get(2) == v2 and get("2") == v2 and get(" 2 ") == v2
        assert get("latest") == versions[2] and get("LATEST") == versions[2]
        assert store.get_dataset_version(p.project_id, "d") == versions[2]  # default: latest
        assert get(v2.digest) == v2
        assert get(v2.digest[:8]) == v2 and get(v2.digest[:20]) == v2
        assert get(v2.digest[:12].upper()) == v2
        assert get(2.0) == v2

    def test_latest_follows_new_versions(self, store: Store) -> None:
        p = _project(store)
        _log(store, p, "d", "1")
        assert store.get_dataset_version(p.project_id, "d", "latest").version == 1
        _log(store, p, "d", "2")
        assert store.get_dataset_version(p.project_id, "d", "latest").version == 2
        _log(store, p, "d", "1")  # reusing version 1 does not make it the latest
        assert store.get_dataset_version(p.project_id, "d", "latest").version == 2

    def test_ambiguous_digest_prefix_raises_invalid_argument(self, store: Store) -> None:
        p = _project(store)
        a, b = "abcdef01" + "0" * 56, "abcdef01" + "1" * 56  # made up: they share 8 characters
        va, _ = _log(store, p, "d", "a", digest=a)
        vb, _ = _log(store, p, "d", "b", digest=b)
        with pytest.raises(InvalidArgument, match=r"abcdef01.*several versions: 1 .*, 2 "):
            store.get_dataset_version(p.project_id, "d", "abcdef01")
        assert store.get_dataset_version(p.project_id, "d", "abcdef010") == va
        assert store.get_dataset_version(p.project_id, "d", "abcdef011") == vb

    def test_digest_prefix_of_digits_only(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "a", digest="12345678" + "9" * 56)
        for i in range(2, 4):
            _log(store, p, "d", f"v{i}")
        # Eight or more digits are a digest prefix, not the version 12345678.
        assert store.get_dataset_version(p.project_id, "d", "12345678") == v
        assert store.get_dataset_version(p.project_id, "d", "3").version == 3

    def test_unknown_versions_raise_dataset_not_found(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "x")
        for selector in (2, "7", "deadbeef", "f" * 64):
            with pytest.raises(DatasetNotFound, match="dataset 'd'") as info:
                store.get_dataset_version(p.project_id, "d", selector)
            assert info.value.version is not None
        with pytest.raises(DatasetNotFound, match="'missing'") as info2:
            store.get_dataset_version(p.project_id, "missing", 1)
        assert info2.value.version is None
        with pytest.raises(DatasetNotFound):
            store.get_dataset_version(p.project_id, "D", "latest")  # names are case-sensitive
        with pytest.raises(DatasetNotFound, match=v.id[::-1]):
            store.get_dataset_version_by_id(v.id[::-1])

    def test_unknown_dataset_and_project(self, store: Store) -> None:
        p = _project(store)
        _log(store, p, "d", "x")
        missing = new_id()
        calls: tuple[Callable[[], object], ...] = (
            lambda: store.get_dataset(p.project_id, "nope"),
            lambda: store.list_dataset_versions(p.project_id, "nope"),
            lambda: store.get_dataset_version(p.project_id, "nope", "latest"),
        )
        for call in calls:
            with pytest.raises(DatasetNotFound, match="'nope'"):
                call()
        calls = (
            lambda: store.get_dataset(missing, "d"),
            lambda: store.list_datasets(missing),
            lambda: store.list_dataset_versions(missing, "d"),
            lambda: store.get_dataset_version(missing, "d", 1),
            lambda: store.update_dataset(missing, "d", description=""),
            lambda: _log(store, Project(missing, "ghost"), "d", "y"),
        )
        for call in calls:
            with pytest.raises(ProjectNotFound, match=missing):
                call()
        assert [d.name for d in store.list_datasets(p.project_id)] == ["d"]

    def test_create_with_unknown_run_raises_and_writes_nothing(self, store: Store) -> None:
        p = _project(store)
        missing = new_id()
        with pytest.raises(RunNotFound, match=missing):
            _log(store, p, "d", "x", run_id=missing)
        assert store.list_datasets(p.project_id) == []

    # --- inputs and lineage --------------------------------------------------------------------

    def test_log_inputs_and_read_them_both_ways(self, store: Store) -> None:
        p = _project(store)
        train, _ = _log(store, p, "train", "t")
        test, _ = _log(store, p, "test", "s")
        ref, _ = _log(store, p, "train", "t2")
        r1, r2 = store.create_run(p.project_id), store.create_run(p.project_id)
        before = now_ms()
        store.log_inputs(r1.run_id, [(train.id, "train"), (test.id, "test"), (ref.id, "train")])
        store.log_inputs(r2.run_id, [(train.id, "reference"), (train.id, "my-role_2")])
        inputs = store.get_run_inputs(r1.run_id)
        assert all(isinstance(i, DatasetInput) and i.run_id == r1.run_id for i in inputs)
        assert [(i.dataset_version, i.role) for i in inputs] == [
            (test, "test"),
            (train, "train"),
            (ref, "train"),
        ]
        assert all(before <= i.created_at <= now_ms() for i in inputs)
        users = store.get_dataset_version_runs(train.id)
        assert sorted((u.run_id, u.role) for u in users) == sorted(
            [(r1.run_id, "train"), (r2.run_id, "my-role_2"), (r2.run_id, "reference")]
        )
        assert all(u.dataset_version == train for u in users)
        keys = [(u.created_at, u.run_id, u.role) for u in users]
        assert keys == sorted(keys)  # in the order they were logged, then by run id and role
        assert users[0].created_at <= users[1].created_at == users[2].created_at
        assert store.get_dataset_version_runs(test.id)[0].role == "test"
        assert store.get_run_inputs(store.create_run(p.project_id).run_id) == []

    def test_log_inputs_is_idempotent(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "x")
        run = store.create_run(p.project_id)
        store.log_inputs(run.run_id, [(v.id, "train"), (v.id, "train")])
        first = store.get_run_inputs(run.run_id)
        store.log_inputs(run.run_id, [(v.id, "train")])
        store.log_inputs(run.run_id, [])
        assert store.get_run_inputs(run.run_id) == first and len(first) == 1
        assert len(store.get_dataset_version_runs(v.id)) == 1

    def test_log_inputs_errors_write_nothing(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "x")
        run = store.create_run(p.project_id)
        missing = new_id()
        with pytest.raises(RunNotFound, match=missing):
            store.log_inputs(missing, [(v.id, "train")])
        with pytest.raises(RunNotFound):
            store.log_inputs(missing, [])
        with pytest.raises(DatasetNotFound, match=missing):
            store.log_inputs(run.run_id, [(v.id, "train"), (missing, "test")])
        assert store.get_run_inputs(run.run_id) == []
        with pytest.raises(RunNotFound):
            store.get_run_inputs(missing)
        with pytest.raises(DatasetNotFound, match=missing):
            store.get_dataset_version_runs(missing)

    def test_deleting_a_run_keeps_the_versions_it_logged(self, store: Store) -> None:
        p = _project(store)
        run = store.create_run(p.project_id)
        other = store.create_run(p.project_id)
        v, _ = _log(store, p, "d", "x", run_id=run.run_id)
        store.log_inputs(run.run_id, [(v.id, "train")])
        store.log_inputs(other.run_id, [(v.id, "test")])
        store.delete_run(run.run_id)
        kept = store.get_dataset_version_by_id(v.id)
        assert kept.run_id is None and kept.digest == v.digest
        assert [(i.run_id, i.role) for i in store.get_dataset_version_runs(v.id)] == [
            (other.run_id, "test")
        ]
        assert store.get_dataset(p.project_id, "d").num_versions == 1

    # --- validation ----------------------------------------------------------------------------

    def test_arguments_are_validated(self, store: Store) -> None:
        p = _project(store)
        good = _log(store, p, "d", "ok")[0]

        def bad(match: str, **kwargs: Any) -> None:
            name = kwargs.pop("name", "d")
            with pytest.raises(InvalidArgument, match=match):
                _log(store, p, name, "new", **kwargs)

        for name in ("", "a/b", "a@b", " a", "x" * 257, "a\nb", 5):
            bad("dataset name", name=name)
        for digest in ("A" * 64, "a" * 63, "g" * 64, "", None, 12):
            bad("dataset digest", digest=digest)
        bad("dataset blob", blob="z")
        bad("profile_blob", profile_blob="abc")
        for field in ("size_bytes", "num_rows", "num_columns"):
            bad(field, **{field: -1})
            bad(field, **{field: "10"})
            bad(field, **{field: True})
        bad("schema", schema=[1, 2])
        bad("schema", schema={"a": {1, 2}})
        bad("schema", schema={"a": float("nan")})
        bad(r"metadata\['when'\]", metadata={"when": object()})
        bad("metadata.*key", metadata={1: "x"})
        bad("source", source="x" * 20_000)
        bad("source", source=b"bytes")
        bad("run id", run_id="nope")
        bad("description", description="d" * 300)
        assert store.list_dataset_versions(p.project_id, "d") == [good]

    def test_version_selectors_are_validated(self, store: Store) -> None:
        p = _project(store)
        _log(store, p, "d", "x")
        selectors: tuple[Any, ...] = (0, -1, "0", "v1", "abc", "abcdefg", "1.5", "", True, None)
        for selector in (*selectors, 1.5, "a" * 65):
            with pytest.raises(InvalidArgument, match="dataset version"):
                store.get_dataset_version(p.project_id, "d", selector)
        for bad_id in ("", "x", "A" * 32, 7):
            with pytest.raises(InvalidArgument, match="dataset version id"):
                store.get_dataset_version_by_id(bad_id)  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument, match="dataset version id"):
                store.get_dataset_version_runs(bad_id)  # type: ignore[arg-type]

    def test_inputs_are_validated(self, store: Store) -> None:
        p = _project(store)
        v, _ = _log(store, p, "d", "x")
        run = store.create_run(p.project_id)
        for role in ("", "Train", "1st", "a b", "x" * 33, "train!", None):
            with pytest.raises(InvalidArgument, match="dataset role"):
                store.log_inputs(run.run_id, [(v.id, role)])  # type: ignore[list-item]
        for inputs in ("train", [v.id], [(v.id,)], [(v.id, "train", 1)], None):
            with pytest.raises(InvalidArgument, match="input"):
                store.log_inputs(run.run_id, inputs)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="dataset version id"):
            store.log_inputs(run.run_id, [("nope", "train")])
        with pytest.raises(InvalidArgument, match="run id"):
            store.log_inputs("nope", [(v.id, "train")])
        assert store.get_run_inputs(run.run_id) == []

    # --- concurrency ---------------------------------------------------------------------------

    def test_concurrent_new_contents_get_distinct_numbers(self, store: Store) -> None:
        p = _project(store)
        n = 8
        results = _in_threads(n, lambda i: _log(store, p, "race", f"content-{i}"))
        assert not [r for r in results if isinstance(r, Exception)], results
        versions = [r[0] for r in results if isinstance(r, tuple)]
        assert sorted(v.version for v in versions) == list(range(1, n + 1))
        assert all(r[1] is True for r in results if isinstance(r, tuple))
        assert len({v.dataset_id for v in versions}) == 1
        listed = store.list_dataset_versions(p.project_id, "race")
        assert [v.version for v in listed] == list(range(n, 0, -1))
        assert {v.id for v in listed} == {v.id for v in versions}

    def test_concurrent_same_content_makes_one_version(self, store: Store) -> None:
        p = _project(store)
        results = _in_threads(8, lambda i: _log(store, p, "same", "one content"))
        assert not [r for r in results if isinstance(r, Exception)], results
        pairs = [r for r in results if isinstance(r, tuple)]
        assert [created for _, created in pairs].count(True) == 1
        assert len({v.id for v, _ in pairs}) == 1 and pairs[0][0].version == 1
        assert store.get_dataset(p.project_id, "same").num_versions == 1

    def test_concurrent_mixed_contents(self, store: Store) -> None:
        p = _project(store)
        results = _in_threads(8, lambda i: _log(store, p, "mixed", f"content-{i % 3}"))
        assert not [r for r in results if isinstance(r, Exception)], results
        pairs = [r for r in results if isinstance(r, tuple)]
        assert [created for _, created in pairs].count(True) == 3
        by_digest = {v.digest: v.version for v, _ in pairs}
        assert sorted(by_digest.values()) == [1, 2, 3]
        for v, _ in pairs:
            assert by_digest[v.digest] == v.version
