"""The model-based half of the store conformance suite.

:func:`check_against_reference` replays a seeded random workload on a store and on the in-memory
reference store and asserts they answer every read and every search the same way. It finds the
disagreements no hand-written example thought of: ties, NaN, collation, NULL semantics.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loopml.entities import Environment, Metric, Param, Run, RunStatus, Tag
from loopml.errors import LoopError
from loopml.store.base import Store
from loopml.store.memory import InMemoryStore

__all__ = ["all_runs", "check_against_reference", "comparable", "names"]

NAN, INF = math.nan, math.inf


def names(runs: Sequence[Run] | Any) -> list[str]:
    """The names of ``runs`` in order."""
    return [r.name for r in runs]


def all_runs(store: Store, **kwargs: Any) -> list[Run]:
    """Every run a search returns, following page tokens."""
    out: list[Run] = []
    token: str | None = None
    while True:
        page = store.search_runs(page_token=token, **kwargs)
        out.extend(page.items)
        token = page.next_page_token
        if token is None:
            return out


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def comparable(run: Run, id_to_name: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A run as plain data; ids become names when ``id_to_name`` is given, NaN becomes 'nan'."""

    def fix(v: float) -> float | str:
        return "nan" if math.isnan(v) else v

    out = {
        "name": run.name,
        "status": RunStatus(run.status),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "user": run.user,
        "params": dict(run.params),
        "tags": dict(run.tags),
        "metrics": {k: fix(v) for k, v in run.metrics.items()},
        "environment_id": run.environment_id,
        "parent": run.parent_run_id,
        "project": run.project_id,
        "run_id": run.run_id,
    }
    if id_to_name is not None:
        out["parent"] = id_to_name.get(run.parent_run_id or "", run.parent_run_id)
        out["project"] = id_to_name[run.project_id]
        del out["run_id"]
    return out


_METRIC_KEYS = ("acc", "loss", "val loss", "a.b")
_METRIC_VALUES = (-1.5, 0.0, 0.25, 1.0, 2.0, 1e10, NAN, INF, -INF)
_TEXT_KEYS = ("model", "lr", "x/y")
_TEXT_VALUES = ("rf", "RF", "xgb", "", "10", "9", "it's", "a_b", "a%b", "Ünï", "b\\s")
_LIKE_PATTERNS = ("%", "r%", "R%", "%f", "_f", "a_b", "a\\%b", "%i%", "_n%", "x%", "%\\\\s")
_USERS = ("alice", "Alice", "bob", "", "Ünï")
_NAME_PREFIXES = ("run", "Run", "RUN", "trial", "a_b", "50%", "ß")
_ENVS = (
    Environment(python_version="3.11.4", packages={"numpy": "1.26"}, seed=1),
    Environment(python_version="3.12.0", git_commit="abc", git_dirty=False),
)


def _num(rng: random.Random, pool: Sequence[float]) -> str:
    return repr(rng.choice(pool))  # repr gives 'inf', '-inf' and 'nan', which the filter parses


def _random_comparison(rng: random.Random, starts: Sequence[int]) -> str:
    kind = rng.choice(
        ("metric", "metric", "param", "tag", "name", "user", "time", "status", "null")
    )
    if kind == "metric":
        key = f"metrics.`{rng.choice(_METRIC_KEYS)}`"
        op = rng.choice(("=", "!=", "<", "<=", ">", ">=", "in", "not in"))
        values: Sequence[float] = (*_METRIC_VALUES, 0.5, -INF)
        if op in ("in", "not in"):
            return f"{key} {op} ({', '.join(_num(rng, values) for _ in range(rng.randint(1, 3)))})"
        return f"{key} {op} {_num(rng, values)}"
    if kind in ("param", "tag", "name", "user"):
        key = {
            "param": f"params.`{rng.choice(_TEXT_KEYS)}`",
            "tag": f"tags.`{rng.choice(_TEXT_KEYS)}`",
            "name": "name",
            "user": "user",
        }[kind]
        ops = ["=", "!=", "like", "ilike", "in", "not in"]
        if kind in ("name", "user"):
            ops += ["<", ">=", ">"]
        op = rng.choice(ops)
        pool = _USERS + _TEXT_VALUES if kind == "user" else _TEXT_VALUES + _NAME_PREFIXES
        if op in ("like", "ilike"):
            return f"{key} {op} {_quote(rng.choice(_LIKE_PATTERNS))}"
        if op in ("in", "not in"):
            return f"{key} {op} ({', '.join(_quote(rng.choice(pool)) for _ in range(2))})"
        return f"{key} {op} {_quote(rng.choice(pool))}"
    if kind == "time":
        key = rng.choice(("start_time", "end_time"))
        op = rng.choice(("=", "!=", "<", "<=", ">", ">="))
        value = rng.choice(starts) if starts and rng.random() < 0.7 else rng.randint(0, 10**6)
        return f"{key} {op} {value}"
    if kind == "status":
        statuses = [s.value for s in RunStatus]
        pick = [rng.choice(statuses).upper() if rng.random() < 0.3 else rng.choice(statuses)]
        op = rng.choice(("=", "!=", "in", "not in"))
        if op in ("in", "not in"):
            pick.append(rng.choice(statuses))
            return f"status {op} ({', '.join(_quote(s) for s in pick)})"
        return f"status {op} {_quote(pick[0])}"
    key = rng.choice(
        (
            f"metrics.`{rng.choice(_METRIC_KEYS)}`",
            f"params.`{rng.choice(_TEXT_KEYS)}`",
            f"tags.`{rng.choice(_TEXT_KEYS)}`",
            "end_time",
            "parent_run_id",
        )
    )
    return f"{key} {rng.choice(('is null', 'is not null'))}"


def _random_filter(rng: random.Random, starts: Sequence[int], depth: int = 0) -> str:
    if depth >= 2 or rng.random() < 0.5:
        return _random_comparison(rng, starts)
    parts = [_random_filter(rng, starts, depth + 1) for _ in range(rng.randint(2, 3))]
    joined = f" {rng.choice(('and', 'or', 'AND'))} ".join(parts)
    return f"({joined})" if rng.random() < 0.5 else joined


def _random_order(rng: random.Random) -> list[str]:
    keys = (
        *(f"metrics.`{k}`" for k in _METRIC_KEYS),
        *(f"params.`{k}`" for k in _TEXT_KEYS),
        *(f"tags.`{k}`" for k in _TEXT_KEYS),
        "name",
        "user",
        "status",
        "start_time",
        "end_time",
    )
    return [
        f"{rng.choice(keys)}{rng.choice(('', ' asc', ' desc'))}" for _ in range(rng.randint(0, 2))
    ]


Op = Callable[[Store, dict[str, str]], Any]


class _Replay:
    """Applies each operation to both stores and checks they agree on the outcome or the error.

    Each store has its own map from run (and project) names to ids, since ids are random.
    """

    def __init__(self, store: Store, ref: Store) -> None:
        self.stores = (store, ref)
        self.ids: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.log: list[str] = []

    def names_of(self, i: int) -> dict[str, str]:
        return {v: k for k, v in self.ids[i].items()}

    def both(self, what: str, op: Op) -> list[Any]:
        self.log.append(what)
        outcomes: list[tuple[str, Any]] = []
        for store, ids in zip(self.stores, self.ids, strict=True):
            try:
                outcomes.append(("ok", op(store, ids)))
            except LoopError as exc:
                outcomes.append(("error", type(exc).__name__))
        (got, got_value), (ref, ref_value) = outcomes
        if got == "error" or ref == "error":
            recent = "\n  ".join(self.log[-15:])
            assert (got, got_value) == (ref, ref_value), (
                f"{what}: the store gave {got} {got_value}, the reference {ref} {ref_value}; "
                f"the last operations were:\n  {recent}"
            )
        return [value for _, value in outcomes]


def _random_mapping(rng: random.Random, values: Sequence[str]) -> dict[str, str]:
    return {rng.choice(_TEXT_KEYS): rng.choice(values) for _ in range(rng.randint(0, 2))}


def check_against_reference(
    store: Store, *, seed: int = 0, n_ops: int = 300, n_searches: int = 80, n_projects: int = 3
) -> None:
    """Replay a seeded random workload on ``store`` and on a fresh ``InMemoryStore``; assert both
    give the same errors, runs, metric histories and search results.

    The workload creates runs (nested, with tags, params and environments), logs batches (with
    NaN, infinities, tied steps and timestamps, and conflicting params), updates statuses, deletes
    tags and runs. Then it compares every run, every metric history, and ``n_searches`` searches
    with random filters, orders, project lists and page sizes. Runs get unique names and unique
    start times, so results compare by name and every order is fully determined; end times are
    always explicit. ``store`` must be empty.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    replay = _Replay(store, InMemoryStore())
    projects = [f"proj-{i}" for i in range(n_projects)]
    for project in projects:

        def create_project(s: Store, ids: dict[str, str], name: str = project) -> None:
            ids[name] = s.create_project(name).project_id

        replay.both(f"create_project {project}", create_project)
    starts = rng.sample(range(1_000, 1_000_000, 7), n_ops)
    live: list[str] = []
    parents: set[str] = set()
    for k in range(n_ops):
        op = rng.choices(("create", "log", "update", "untag", "delete"), (4, 7, 2, 1, 0.5))[0]
        target = rng.choice(live) if live else ""
        if op == "create" or not live:
            name = f"{rng.choice(_NAME_PREFIXES)}-{k:03d}"
            parent = rng.choice(live) if live and rng.random() < 0.2 else None
            project = rng.choice(projects)
            kwargs: dict[str, Any] = {
                "name": name,
                "start_time": starts[k],
                "user": rng.choice(_USERS),
                "tags": _random_mapping(rng, _TEXT_VALUES),
                "params": _random_mapping(rng, _TEXT_VALUES),
                "environment": rng.choice((None, *_ENVS)),
            }

            def create(
                s: Store, ids: dict[str, str], pr: str = project, pa: str | None = parent,
                kw: dict[str, Any] = kwargs,
            ) -> None:  # fmt: skip
                parent_id = None if pa is None else ids[pa]
                ids[kw["name"]] = s.create_run(ids[pr], parent_run_id=parent_id, **kw).run_id

            replay.both(f"create_run {project} parent={parent} {kwargs}", create)
            live.append(name)
            if parent is not None:
                parents.add(parent)
        elif op == "log":
            metrics = [
                Metric(
                    rng.choice(_METRIC_KEYS),
                    rng.choice(_METRIC_VALUES),
                    rng.randint(0, 4),
                    rng.randint(0, 3),
                )
                for _ in range(rng.randint(0, 4))
            ]
            params = [
                Param(rng.choice(_TEXT_KEYS), rng.choice(_TEXT_VALUES[:4]))
                for _ in range(rng.randint(0, 1))
            ]
            tags = [Tag(k, v) for k, v in _random_mapping(rng, _TEXT_VALUES).items()]

            def log(
                s: Store, ids: dict[str, str], t: str = target, m: list[Metric] = metrics,
                p: list[Param] = params, tg: list[Tag] = tags,
            ) -> None:  # fmt: skip
                s.log_batch(ids[t], m, p, tg)

            replay.both(f"log_batch {target} {metrics} {params} {tags}", log)
        elif op == "update":
            status = rng.choice(list(RunStatus))
            end = None if status is RunStatus.RUNNING else rng.randint(0, 10**6)

            def update(
                s: Store, ids: dict[str, str], t: str = target, st: RunStatus = status,
                e: int | None = end,
            ) -> None:  # fmt: skip
                s.update_run(ids[t], status=st, end_time=e)

            replay.both(f"update_run {target} {status} end_time={end}", update)
        elif op == "untag":
            key = rng.choice(_TEXT_KEYS)

            def untag(s: Store, ids: dict[str, str], t: str = target, kk: str = key) -> None:
                s.delete_tag(ids[t], kk)

            replay.both(f"delete_tag {target} {key}", untag)
        elif target not in parents:  # what becomes of a deleted parent's children is open

            def delete(s: Store, ids: dict[str, str], t: str = target) -> None:
                s.delete_run(ids[t])

            replay.both(f"delete_run {target}", delete)
            live.remove(target)
    _compare_reads(replay, live)
    _compare_searches(replay, rng, projects, starts, n_searches)


def _compare_reads(replay: _Replay, live: list[str]) -> None:
    names_of = (replay.names_of(0), replay.names_of(1))
    for name in live:

        def get(s: Store, ids: dict[str, str], n: str = name) -> Run:
            return s.get_run(ids[n])

        got, ref = replay.both(f"get_run {name}", get)
        assert comparable(got, names_of[0]) == comparable(ref, names_of[1]), name
        for key in _METRIC_KEYS:

            def history(s: Store, ids: dict[str, str], n: str = name, k: str = key) -> Any:
                return [
                    (m.step, m.timestamp, repr(m.value)) for m in s.get_metric_history(ids[n], k)
                ]

            got_h, ref_h = replay.both(f"get_metric_history {name} {key}", history)
            assert got_h == ref_h, f"history of {key!r} in run {name}"


def _compare_searches(
    replay: _Replay, rng: random.Random, projects: list[str], starts: Sequence[int], n: int
) -> None:
    names_of = (replay.names_of(0), replay.names_of(1))
    for _ in range(n):
        flt = _random_filter(rng, starts) if rng.random() < 0.9 else None
        order = _random_order(rng)
        chosen = (
            rng.sample(projects, rng.randint(0, len(projects))) if rng.random() < 0.3 else None
        )
        size = rng.choice((1000, 1000, 7))

        def search(
            s: Store, ids: dict[str, str], f: str | None = flt, o: list[str] = order,
            c: list[str] | None = chosen, sz: int = size,
        ) -> list[Run]:  # fmt: skip
            pids = None if c is None else [ids[p] for p in c]
            return all_runs(s, project_ids=pids, filter=f, order_by=o, max_results=sz)

        got, ref = replay.both(f"search {flt!r} order={order} projects={chosen}", search)
        got_names = [names_of[0][r.run_id] for r in got]
        ref_names = [names_of[1][r.run_id] for r in ref]
        assert got_names == ref_names, (
            f"search_runs(filter={flt!r}, order_by={order}, projects={chosen}) differs from the "
            f"reference store:\n  store:     {got_names}\n  reference: {ref_names}"
        )
