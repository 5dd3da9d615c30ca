"""The search half of the store conformance suite.

:class:`SearchSuite` holds the tests of :meth:`~loopml.store.Store.search_runs` over a small table
of runs with known values: every operator, NaN and missing keys, the ordering rules, projects and
pagination, and the model-based comparison with the reference store
(:func:`~loopml.testing.store_suite_model.check_against_reference`).
:class:`~loopml.testing.StoreSuite` inherits it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from loopml.entities import Metric, Project, Run, Tag
from loopml.errors import InvalidArgument, InvalidFilter
from loopml.store.base import Store
from loopml.testing.store_suite_model import check_against_reference, comparable, names

__all__ = ["SearchSuite", "build_search_runs", "new_project"]

NAN, INF = math.nan, math.inf
Params = dict[str, str]


def new_project(store: Store, name: str = "proj") -> Project:
    """Create a project (a helper for tests)."""
    return store.create_project(name)


def build_search_runs(store: Store) -> dict[str, Run]:
    """Seven runs with known metrics, params, tags and attributes (see the table below)."""
    p = store.create_project("search")
    # name, start time, status, end time, user, metrics, params, tags
    table: list[tuple[str, int, str, int | None, str, dict[str, float], Params, Params]] = [
        ("alpha", 1000, "finished", 1100, "alice", {"auc": 0.9, "loss": 0.25},
            {"model": "rf", "depth": "4"}, {"team": "risk", "note": "Hello"}),
        ("Beta", 2000, "running", None, "bob", {"auc": 0.7, "loss": NAN, "val loss": 0.5},
            {"model": "xgb", "depth": "8"}, {"team": "growth"}),
        ("gamma", 3000, "failed", 3300, "Alice", {"auc": -INF, "loss": 1.5},
            {"model": "rf"}, {"team": "Risk", "note": "hello"}),
        ("delta_1", 4000, "killed", 4400, "", {"auc": INF},
            {"model": "lr", "depth": "10"}, {}),
        ("epsilon", 5000, "running", None, "carol", {},
            {}, {"team": "risk%"}),
        ("50%_off", 6000, "finished", 6600, "bob", {"auc": 0.9, "loss": 0.1},
            {"model": "RF"}, {"team": "risk"}),
    ]  # fmt: skip
    runs: dict[str, Run] = {}
    for name, start, status, end, user, metrics, params, tags in table:
        run = store.create_run(
            p.project_id, name=name, start_time=start, user=user, params=params, tags=tags
        )
        store.log_batch(run.run_id, [Metric(k, v, 0, start) for k, v in metrics.items()])
        if status != "running":
            store.update_run(run.run_id, status=status, end_time=end)
        runs[name] = run
    child = store.create_run(
        p.project_id,
        name="child",
        start_time=7000,
        user="alice",
        parent_run_id=runs["alpha"].run_id,
        params={"model": "rf"},
    )
    store.log_batch(child.run_id, [Metric("auc", 0.8, 0, 7000)])
    runs["child"] = child
    return {n: store.get_run(r.run_id) for n, r in runs.items()}


# Newest start first: the default order of every search over the table above.
ALL = ["child", "50%_off", "epsilon", "delta_1", "gamma", "Beta", "alpha"]


class SearchSuite:
    """Tests of :meth:`Store.search_runs`; mixed into :class:`~loopml.testing.StoreSuite`."""

    def _expect(self, store: Store, cases: Mapping[str, str | list[str]]) -> None:
        """Search with each filter (expected: the names, space-separated, in any order); report
        every filter whose result is wrong in one failure."""
        wrong = []
        for flt, expected in cases.items():
            want = expected.split() if isinstance(expected, str) else expected
            got = names(store.search_runs(filter=flt))
            if got != [n for n in ALL if n in want]:
                wrong.append(f"{flt!r}: expected {expected}, got {got}")
        assert not wrong, "\n".join(wrong)

    def test_search_without_filter_returns_all_newest_first(self, store: Store) -> None:
        build_search_runs(store)
        assert names(store.search_runs()) == ALL
        assert names(store.search_runs(filter="")) == ALL
        assert store.search_runs().next_page_token is None

    def test_search_on_an_empty_store_returns_nothing(self, store: Store) -> None:
        page = store.search_runs(filter="metrics.auc > 0")
        assert page.items == () and page.next_page_token is None

    def test_default_order_breaks_start_time_ties_by_run_id(self, store: Store) -> None:
        p = new_project(store)
        ids = [store.create_run(p.project_id, start_time=500).run_id for _ in range(6)]
        late = store.create_run(p.project_id, start_time=900).run_id
        assert [r.run_id for r in store.search_runs()] == [late, *sorted(ids)]

    def test_search_results_equal_get_run(self, store: Store) -> None:
        runs = build_search_runs(store)
        for found in store.search_runs():
            assert comparable(found) == comparable(runs[found.name])

    def test_filter_on_metrics(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "metrics.auc > 0.8": "alpha delta_1 50%_off",
                "metrics.auc >= 0.9": "alpha delta_1 50%_off",
                "metrics.auc < 0.8": "Beta gamma",
                "metrics.auc <= 0.8": "Beta gamma child",
                "metrics.auc = 0.9": "alpha 50%_off",
                "metrics.auc != 0.9": "Beta gamma delta_1 child",
                "metrics.auc = inf": "delta_1",
                "metrics.auc >= 1e308": "delta_1",
                "metrics.auc = -inf": "gamma",
                "metrics.auc < -1e308": "gamma",
                "m.auc > -inf": "alpha Beta delta_1 50%_off child",
                "metric.auc == 0.7": "Beta",
                "metrics.auc <> 0.7": "alpha gamma delta_1 50%_off child",
                "metrics.`val loss` = 5e-1": "Beta",
                'metrics."val loss" > 0': "Beta",
                "metrics.loss < 1": "alpha 50%_off",
                "metrics.nothing > 0": "",
            },
        )

    def test_filter_on_params(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "params.model = 'rf'": "alpha gamma child",
                "params.model = 'RF'": "50%_off",
                "params.model != 'rf'": "Beta delta_1 50%_off",
                "params.depth = '4'": "alpha",
                'p.depth = "10"': "delta_1",
                "params.model like 'r%'": "alpha gamma child",
                "params.model ilike 'r%'": "alpha gamma 50%_off child",
                "params.missing = 'rf'": "",
            },
        )

    def test_filter_on_tags(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "tags.team = 'risk'": "alpha 50%_off",
                "tags.team = 'Risk'": "gamma",
                "t.team != 'risk'": "Beta gamma epsilon",
                "tags.team like 'risk%'": "alpha epsilon 50%_off",
                "tags.team ilike 'RISK'": "alpha gamma 50%_off",
                "tags.note = 'hello'": "gamma",
                "tags.note ilike 'hello'": "alpha gamma",
            },
        )

    def test_filter_on_attributes(self, store: Store) -> None:
        runs = build_search_runs(store)
        alpha, beta = runs["alpha"], runs["Beta"]
        self._expect(
            store,
            {
                "name = 'Beta'": "Beta",
                "attributes.name = 'beta'": "",
                "name != 'alpha'": [n for n in ALL if n != "alpha"],
                "name > 'b'": "child delta_1 epsilon gamma",
                "name <= 'Beta'": "50%_off Beta",
                "user = 'alice'": "alpha child",
                "user = ''": "delta_1",
                "a.user != 'bob'": "alpha gamma delta_1 epsilon child",
                "start_time >= 3000 and start_time < 6000": "gamma delta_1 epsilon",
                "start_time = 2000": "Beta",
                "end_time > 1100": "gamma delta_1 50%_off",
                "end_time <= 1100": "alpha",
                f"run_id = '{beta.run_id}'": "Beta",
                f"attr.run_id in ('{beta.run_id}', '{alpha.run_id}')": "alpha Beta",
                f"parent_run_id = '{alpha.run_id}'": "child",
                f"project_id = '{alpha.project_id}'": ALL,
                "project_id = 'nope'": "",
            },
        )

    def test_filter_on_status_is_case_insensitive(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "status = 'running'": "Beta epsilon child",
                "status = 'RUNNING'": "Beta epsilon child",
                "status = 'Finished'": "alpha 50%_off",
                "status != 'running'": "alpha gamma delta_1 50%_off",
                "status in ('FAILED', 'killed')": "gamma delta_1",
                "status not in ('running', 'finished')": "gamma delta_1",
            },
        )

    def test_like_is_case_sensitive_and_ilike_is_not(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "name like 'alpha'": "alpha",
                "name like 'ALPHA'": "",
                "name like 'beta'": "",
                "name ilike 'ALPHA'": "alpha",
                "name ilike 'beta'": "Beta",
                "user like 'a%'": "alpha child",
                "user like 'A%'": "gamma",
                "user ilike 'a%'": "alpha gamma child",
                "user ilike '%LIC%'": "alpha gamma child",
            },
        )

    def test_like_wildcards_and_literal_characters(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "name like '%'": ALL,
                "name like 'delta_'": "",
                "name like 'delta__'": "delta_1",
                "name like '_eta'": "Beta",
                "name like '%a'": "alpha Beta gamma",
                "name like '50%'": "50%_off",
                "name like '%\\%%'": ALL,
                "name like '%ph%'": "alpha",
                "name like 'lph'": "",
            },
        )
        p = new_project(store, "literal")
        for name in ("back\\slash", "backXslash", "it's", "a.b", "a+b"):
            store.create_run(p.project_id, name=name, start_time=1)
        found = names(store.search_runs([p.project_id], "name like 'back\\\\slash'"))
        assert found == ["back\\slash"], "a backslash in a like pattern is a literal character"
        assert names(store.search_runs([p.project_id], "name = 'it''s'")) == ["it's"]
        assert names(store.search_runs([p.project_id], "name like 'it\\'s'")) == ["it's"]
        assert names(store.search_runs([p.project_id], "name like 'a.b'")) == ["a.b"]
        assert names(store.search_runs([p.project_id], "name like 'a+%'")) == ["a+b"]

    def test_in_and_not_in(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "params.model in ('rf', 'lr')": "alpha gamma delta_1 child",
                "params.model in ('RF')": "50%_off",
                "params.model not in ('rf')": "Beta delta_1 50%_off",
                "metrics.auc in (0.9, 0.7)": "alpha Beta 50%_off",
                "metrics.auc in (inf, -inf)": "gamma delta_1",
                "metrics.auc not in (0.9, inf)": "Beta gamma child",
                "tags.team in ('risk', 'growth')": "alpha Beta 50%_off",
                "name not in ('alpha', 'Beta', 'gamma')": "child 50%_off epsilon delta_1",
                "start_time in (1000, 7000)": "alpha child",
            },
        )

    def test_is_null_and_is_not_null(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "tags.team is null": "delta_1 child",
                "tags.team is not null": "alpha Beta gamma epsilon 50%_off",
                "params.depth is not null": "alpha Beta delta_1",
                "params.depth IS NULL": "gamma epsilon 50%_off child",
                "metrics.auc is null": "epsilon",
                "end_time is null": "Beta epsilon child",
                "end_time is not null": "alpha gamma delta_1 50%_off",
                "parent_run_id is not null": "child",
                "parent_run_id is null": [n for n in ALL if n != "child"],
                "user is null": "",
            },
        )

    def test_and_or_and_parentheses(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "params.model = 'rf' and metrics.auc > 0.85": "alpha",
                "params.model = 'rf' AND metrics.auc > 0.85 AND tags.team = 'risk'": "alpha",
                "(params.model = 'rf' or params.model = 'xgb') and metrics.auc >= 0.7": (
                    "alpha Beta child"
                ),
                # 'and' binds tighter than 'or'
                "params.model = 'rf' or params.model = 'xgb' and metrics.auc > 0.75": (
                    "alpha gamma child"
                ),
                "status = 'running' or metrics.auc = inf or user = 'Alice'": (
                    "Beta gamma delta_1 epsilon child"
                ),
                "((metrics.auc > 0.8) and (tags.team = 'risk' or tags.team is null))": (
                    "alpha delta_1 50%_off"
                ),
            },
        )

    def test_nan_metric_never_matches_a_comparison(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "metrics.loss >= 0": "alpha gamma 50%_off",
                "metrics.loss < inf": "alpha gamma 50%_off",
                "metrics.loss != 1.5": "alpha 50%_off",
                "metrics.loss not in (1.5)": "alpha 50%_off",
                "metrics.loss is null": "Beta delta_1 epsilon child",
                "metrics.loss is not null": "alpha gamma 50%_off",
            },
        )

    def test_nan_literal_matches_nothing(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "metrics.loss = nan": "",
                "metrics.auc != nan": "",
                "metrics.auc > nan": "",
                "metrics.auc <= NaN": "",
                "metrics.auc in (nan, 0.7)": "Beta",
            },
        )

    def test_missing_key_never_matches(self, store: Store) -> None:
        build_search_runs(store)
        self._expect(
            store,
            {
                "params.depth != '4'": "Beta delta_1",
                "params.depth not in ('4', '8')": "delta_1",
                "tags.note != 'x'": "alpha gamma",
                "tags.note not in ('hello')": "alpha",
                "metrics.loss != 0": "alpha gamma 50%_off",
                "metrics.`val loss` < 100": "Beta",
                "end_time != 0": "alpha gamma delta_1 50%_off",
            },
        )

    def test_order_by_metric_puts_missing_and_nan_last_both_ways(self, store: Store) -> None:
        build_search_runs(store)
        asc = ["gamma", "Beta", "child", "50%_off", "alpha", "delta_1", "epsilon"]
        desc = ["delta_1", "50%_off", "alpha", "child", "Beta", "gamma", "epsilon"]
        assert names(store.search_runs(order_by="metrics.auc")) == asc
        assert names(store.search_runs(order_by=["metrics.auc asc"])) == asc
        assert names(store.search_runs(order_by=["metrics.auc DESC"])) == desc
        missing_loss = ["child", "epsilon", "delta_1", "Beta"]  # Beta's loss is NaN
        loss_asc = ["50%_off", "alpha", "gamma", *missing_loss]
        loss_desc = ["gamma", "alpha", "50%_off", *missing_loss]
        assert names(store.search_runs(order_by="metrics.loss")) == loss_asc
        assert names(store.search_runs(order_by="m.loss desc")) == loss_desc

    def test_order_by_text_compares_strings_by_code_point(self, store: Store) -> None:
        build_search_runs(store)
        by_name = ["50%_off", "Beta", "alpha", "child", "delta_1", "epsilon", "gamma"]
        assert names(store.search_runs(order_by="name")) == by_name
        assert names(store.search_runs(order_by="name desc")) == by_name[::-1]
        # params are strings: '10' < '4' < '8'; runs without the param come last
        by_depth = ["delta_1", "alpha", "Beta", "child", "50%_off", "epsilon", "gamma"]
        assert names(store.search_runs(order_by="params.depth")) == by_depth
        by_team = ["epsilon", "50%_off", "alpha", "Beta", "gamma", "child", "delta_1"]
        assert names(store.search_runs(order_by="tags.team desc")) == by_team
        # the empty string is a value, not a missing one
        by_user = ["delta_1", "gamma", "child", "alpha", "50%_off", "Beta", "epsilon"]
        assert names(store.search_runs(order_by="user")) == by_user

    def test_order_by_numeric_attributes_and_several_keys(self, store: Store) -> None:
        build_search_runs(store)
        assert names(store.search_runs(order_by="start_time")) == ALL[::-1]
        assert names(store.search_runs(order_by="attributes.start_time desc")) == ALL
        by_end = ["alpha", "gamma", "delta_1", "50%_off", "child", "epsilon", "Beta"]
        assert names(store.search_runs(order_by="end_time")) == by_end
        several = ["gamma", "50%_off", "alpha", "delta_1", "child", "Beta", "epsilon"]
        got = store.search_runs(order_by=["status", "metrics.auc desc"])
        assert names(got) == several
        filtered = store.search_runs(filter="params.model = 'rf'", order_by="metrics.auc")
        assert names(filtered) == ["gamma", "child", "alpha"]

    def test_project_filter(self, store: Store) -> None:
        a, b, c = (store.create_project(n) for n in ("a", "b", "c"))
        for i, p in enumerate((a, b, b, c, c, c)):
            store.create_run(p.project_id, name=f"{p.name}{i}", start_time=i)
        assert names(store.search_runs([a.project_id])) == ["a0"]
        assert names(store.search_runs([b.project_id, c.project_id])) == [
            "c5",
            "c4",
            "c3",
            "b2",
            "b1",
        ]
        assert len(store.search_runs(None)) == 6
        assert names(store.search_runs([])) == []
        assert names(store.search_runs(["0" * 32])) == []
        only_c = store.search_runs([c.project_id], filter="start_time < 5", order_by="name")
        assert names(only_c) == ["c3", "c4"]

    def test_pagination_covers_every_run_exactly_once(self, store: Store) -> None:
        p = new_project(store)
        for i in range(23):
            run = store.create_run(p.project_id, name=f"r{i:02d}", start_time=i % 5)
            store.log_batch(run.run_id, [Metric("m", float(i % 3), 0, 0)])
        for order in (None, ["metrics.m desc"], ["start_time", "metrics.m"]):
            whole = store.search_runs(order_by=order, max_results=100)
            pages = []
            token = None
            while True:
                page = store.search_runs(order_by=order, max_results=7, page_token=token)
                pages.append(page)
                token = page.next_page_token
                if token is None:
                    break
            assert [len(pg) for pg in pages] == [7, 7, 7, 2]
            paged = [r.run_id for pg in pages for r in pg]
            assert paged == [r.run_id for r in whole]
            assert len(set(paged)) == 23
        exact = store.search_runs(max_results=23)
        assert len(exact) == 23 and exact.next_page_token is None
        first = store.search_runs(max_results=1, filter="metrics.m = 2")
        assert len(first) == 1 and first.next_page_token is not None

    def test_page_token_from_another_query_is_refused(self, store: Store) -> None:
        p = new_project(store)
        for i in range(5):
            store.create_run(p.project_id, start_time=i)
        token = store.search_runs(max_results=2, filter="start_time > 0").next_page_token
        assert token is not None
        store.search_runs(max_results=2, filter="start_time > 0", page_token=token)
        for other in (
            {"filter": "start_time > 1"},
            {"filter": "start_time > 0", "order_by": "name"},
            {"filter": "start_time > 0", "project_ids": [p.project_id]},
        ):
            with pytest.raises(InvalidArgument, match="token"):
                store.search_runs(max_results=2, page_token=token, **other)
        for garbage in ("garbage", "!!!", "eyJ4IjogMX0=", token[:-4]):
            with pytest.raises(InvalidArgument, match="token"):
                store.search_runs(max_results=2, filter="start_time > 0", page_token=garbage)

    def test_bad_search_arguments_raise_invalid_argument(self, store: Store) -> None:
        for size in (0, -1, 50_001, True, "10", None):
            with pytest.raises(InvalidArgument, match="max_results"):
                store.search_runs(max_results=size)  # type: ignore[arg-type]
        for bad_order in ("nope", "metrics.auc sideways", "metrics.auc desc extra", ""):
            with pytest.raises(InvalidFilter):
                store.search_runs(order_by=bad_order)

    def test_malformed_filter_raises_invalid_filter(self, store: Store) -> None:
        build_search_runs(store)
        for bad in (
            "metrics.auc >",
            "(metrics.auc > 1",
            "metrics.auc > 1)",
            "metrics.auc = 'high'",
            "params.model > 'a'",
            "nonsense = 1",
            "status = 'done'",
            "1=1; DROP TABLE runs; --",
            "' or 1=1 --",
            "name = 'x' or 1=1",
            "metrics.auc > 0.5; DELETE FROM runs",
        ):
            with pytest.raises(InvalidFilter):
                store.search_runs(filter=bad)
        assert len(store.search_runs()) == len(ALL), "a hostile filter changed the store"

    def test_search_sees_later_writes(self, store: Store) -> None:
        runs = build_search_runs(store)
        beta, alpha = runs["Beta"].run_id, runs["alpha"].run_id
        store.log_batch(beta, [Metric("auc", 0.95, 1, 0)], tags=[Tag("team", "risk")])
        store.delete_tag(alpha, "team")
        store.update_run(beta, status="killed", end_time=2500)
        assert names(store.search_runs(filter="metrics.auc > 0.92")) == ["delta_1", "Beta"]
        assert names(store.search_runs(filter="tags.team = 'risk'")) == ["50%_off", "Beta"]
        assert names(store.search_runs(filter="status = 'killed'")) == ["delta_1", "Beta"]
        store.delete_run(runs["delta_1"].run_id)
        assert names(store.search_runs(filter="status = 'killed'")) == ["Beta"]

    def test_matches_the_reference_store_on_a_random_workload(self, store: Store) -> None:
        check_against_reference(store, seed=0)

    def test_matches_the_reference_store_on_another_random_workload(self, store: Store) -> None:
        check_against_reference(store, seed=1, n_projects=2)
