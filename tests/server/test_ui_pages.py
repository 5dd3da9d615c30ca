"""The web UI's pages through FastAPI's TestClient on a seeded SQLite store: every page renders,
hostile strings stay escaped, the runs table filters, sorts and pages, metric series are
downsampled keeping their extremes, and promotion obeys roles and the form token."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from test_ui_seed import HOSTILE, MANY_POINTS, Seeded, seed

from loopml.server.app import create_app
from loopml.server.settings import ServerSettings
from loopml.server.ui.downsample import minmax_downsample
from loopml.server.ui.pages_ops import layers
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.sql import SqlStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

BASE = "http://localhost"


class World:
    def __init__(self, root: Path) -> None:
        self.store = SqlStore(f"sqlite:///{root / 'ui.db'}")
        self.artifacts = FsspecArtifactStore(str(root / "art"))
        self.seeded: Seeded = seed(self.store, self.artifacts)
        settings = ServerSettings(
            host="127.0.0.1", auth=False, allowed_hosts=(), allowed_origins=()
        )
        self.app = create_app(settings, store=self.store, artifacts=self.artifacts)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("ui"))
    yield made
    made.store.close()


@pytest.fixture(scope="module")
def ui(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, base_url=BASE) as client:
        yield client


def _pages(s: Seeded) -> list[str]:
    p = f"/projects/{s.project}"
    return [
        "/",
        p,
        f"{p}/runs",
        f"/runs/{s.run_id}",
        f"/runs/{s.big_run_id}",
        f"/runs/{s.hostile_run_id}",
        f"{p}/compare?runs={s.run_id},{s.big_run_id},{s.hostile_run_id}",
        f"{p}/datasets",
        f"{p}/datasets/customers",
        f"{p}/datasets/customers/1",
        f"{p}/models",
        f"{p}/models/{s.model}",
        f"{p}/deployments",
        f"{p}/deployments/churn-api",
        f"{p}/monitoring",
        f"{p}/monitoring/churn-drift",
        f"{p}/pipelines",
        f"{p}/pipelines/{s.pipeline_run_id}",
        f"{p}/audit",
        f"{p}/audit?object_type=model&action=alias.set&since=2020-01-01",
    ]


def _no_raw_hostile(html: str) -> None:
    for bad in HOSTILE:
        assert bad not in html
    assert "<img src=x" not in html
    assert "<script>alert" not in html


def test_every_page_renders_and_escapes(ui: TestClient, world: World) -> None:
    for path in _pages(world.seeded):
        response = ui.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        _no_raw_hostile(response.text)


def test_hostile_strings_are_shown_escaped(ui: TestClient, world: World) -> None:
    html = ui.get(f"/runs/{world.seeded.hostile_run_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    model = ui.get(f"/projects/churn/models/{world.seeded.model}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in model


def test_pages_have_no_inline_script(ui: TestClient, world: World) -> None:
    for path in _pages(world.seeded):
        html = ui.get(path).text
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"<[a-z][^>]*\son[a-z]+=", html), path


def test_project_page_links_every_section(ui: TestClient) -> None:
    html = ui.get("/projects/churn").text
    for section in (
        "runs",
        "datasets",
        "models",
        "deployments",
        "monitoring",
        "pipelines",
        "audit",
    ):
        assert f'href="/projects/churn/{section}"' in html


def _run_names(html: str) -> list[str]:
    return re.findall(r'<a href="/runs/[0-9a-f]+">(run-\d\d)</a>', html)


def test_runs_table_sorts_filters_and_pages(ui: TestClient) -> None:
    asc = ui.get(
        "/projects/churn/runs", params={"order": "metrics.auc asc", "filter": "name like 'run-%'"}
    )
    assert asc.status_code == 200
    names = _run_names(asc.text)
    assert names == [f"run-{i:02d}" for i in range(12)]
    desc = ui.get(
        "/projects/churn/runs", params={"order": "metrics.auc desc", "filter": "name like 'run-%'"}
    )
    assert _run_names(desc.text) == names[::-1]
    only = ui.get("/projects/churn/runs", params={"filter": "params.model = 'rf'"})
    assert sorted(_run_names(only.text)) == [f"run-{i:02d}" for i in range(1, 12, 2)]
    first = ui.get(
        "/projects/churn/runs",
        params={"order": "name asc", "size": 25, "filter": "name like 'run-%'"},
    )
    assert "Next page" not in first.text
    cols = ui.get("/projects/churn/runs", params={"columns": "params.lr,metrics.loss,tags.team"})
    assert "params.lr" in cols.text and "metrics.loss" in cols.text and "risk" in cols.text


def test_runs_pagination_with_page_tokens(ui: TestClient, world: World) -> None:
    pid = world.seeded.project_id
    extra = [world.store.create_run(pid, name=f"page-{i:03d}") for i in range(60)]
    try:
        seen: list[str] = []
        url = "/projects/churn/runs?filter=name+like+%27page-%25%27&order=name+asc&size=25"
        while url:
            html = ui.get(url).text
            seen += re.findall(r">(page-\d{3})</a>", html)
            found = re.search(r'class="next" href="([^"]+)"', html)
            url = found.group(1).replace("&amp;", "&") if found else ""
        assert seen == [f"page-{i:03d}" for i in range(60)]
    finally:
        for run in extra:
            world.store.delete_run(run.run_id)


def test_bad_input_gives_400_pages(ui: TestClient) -> None:
    bad = ui.get("/projects/churn/runs", params={"filter": "metrics.auc >>> <b>x</b>"})
    assert bad.status_code == 400
    assert "<b>x</b>" not in bad.text
    assert ui.get("/projects/churn/runs", params={"columns": "bogus"}).status_code == 400
    assert ui.get("/projects/churn/runs", params={"size": 7}).status_code == 400
    assert ui.get("/projects/churn/runs", params={"page_token": "garbage"}).status_code == 400
    assert ui.get("/projects/churn/compare").status_code == 400
    assert ui.get("/projects/churn/audit", params={"since": "yesterday"}).status_code == 400


def test_missing_things_give_404_pages(ui: TestClient, world: World) -> None:
    xss = quote(HOSTILE[1], safe="")  # no slash: a %2F would not reach the UI's routes
    for path in (
        f"/projects/{xss}",
        f"/projects/{xss}/runs",
        "/runs/" + "0" * 32,
        f"/runs/{xss}",
        "/projects/churn/models/nope",
        "/projects/churn/datasets/nope",
        "/projects/churn/datasets/customers/9",
        "/projects/churn/deployments/nope",
        "/projects/churn/monitoring/nope",
        f"/projects/churn/pipelines/{world.seeded.run_id}",
    ):
        response = ui.get(path)
        assert response.status_code in (404, 400), (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        _no_raw_hostile(response.text)


def test_metric_endpoint_downsamples(ui: TestClient, world: World) -> None:
    url = f"/ui/api/runs/{world.seeded.big_run_id}/metric"
    data = ui.get(url, params={"key": "curve", "points": 500}).json()
    assert data["total"] == MANY_POINTS
    assert 2 <= len(data["steps"]) <= 500
    assert max(data["values"]) == 100.0 and min(data["values"]) == -100.0
    assert 54_321 in data["steps"] and 77_777 in data["steps"]
    assert data["steps"] == sorted(data["steps"])
    small = ui.get(url, params={"key": "auc"}).json()
    assert small["steps"] == [0] and small["total"] == 1
    assert ui.get(url, params={"key": "curve", "points": 10**6}).status_code == 400
    assert ui.get("/ui/api/runs/" + "0" * 32 + "/metric", params={"key": "x"}).status_code == 404


def test_minmax_downsample_keeps_extremes() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=10_001)
    x = np.arange(len(y))
    for points in (2, 3, 100, 2000):
        xs, ys = minmax_downsample(x, y, points)
        assert len(xs) <= max(points, 2)
        assert ys.max() == y.max() and ys.min() == y.min()
    xs, ys = minmax_downsample(x[:10], y[:10], 100)
    assert list(xs) == list(range(10))
    nan = np.array([1.0, np.nan, 3.0])
    assert list(minmax_downsample(np.arange(3), nan, 10)[1]) == [1.0, 3.0]


def test_static_files(ui: TestClient) -> None:
    plotly = ui.get("/static/plotly.min.js")
    assert plotly.status_code == 200
    assert "max-age=31536000" in plotly.headers["cache-control"]
    assert ui.get("/static/ui/ui.js").headers["content-type"].startswith("text/javascript")
    assert ui.get("/static/ui/ui.css").status_code == 200
    assert ui.get("/static/ui/..%2Fpages_ops.py").status_code == 404


def test_pipeline_layers() -> None:
    graph = {"load": [], "features": ["load"], "fit": ["features", "load"], "x": ["gone"]}
    assert layers(graph) == [["load", "x"], ["features"], ["fit"]]
    assert layers({"a": ["b"], "b": ["a"]}) in ([["b"], ["a"]], [["a"], ["b"]])


def _form(ui: TestClient) -> tuple[str, str]:
    html = ui.get("/projects/churn/models/churn").text
    token = re.search(r'name="csrf" value="([^"]+)"', html)
    assert token is not None
    return token.group(1), html


def test_promote_and_roll_back(ui: TestClient, world: World) -> None:
    token, html = _form(ui)
    assert "Roll back to v1" in html
    moved = ui.post(
        "/projects/churn/models/churn/aliases",
        data={"csrf": token, "alias": "champion", "version": "3", "reason": "ui test"},
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    assert (
        world.store.get_registered_model(world.seeded.project_id, "churn").aliases["champion"] == 3
    )
    back = ui.post(
        "/projects/churn/models/churn/aliases",
        data={"csrf": token, "alias": "champion", "version": "2", "expected": "3"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    stale = ui.post(
        "/projects/churn/models/churn/aliases",
        data={"csrf": token, "alias": "champion", "version": "1", "expected": "3"},
    )
    assert stale.status_code == 409
    assert (
        world.store.get_registered_model(world.seeded.project_id, "churn").aliases["champion"] == 2
    )


def test_promote_needs_the_form_token(ui: TestClient, world: World) -> None:
    _form(ui)
    forged = ui.post(
        "/projects/churn/models/churn/aliases",
        data={"csrf": "x" * 43, "alias": "champion", "version": "1"},
    )
    assert forged.status_code == 403
    assert (
        world.store.get_registered_model(world.seeded.project_id, "churn").aliases["champion"] != 1
    )


def test_deployment_page_charts_latency_from_the_prediction_log(
    ui: TestClient, world: World
) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.entities import PredictionSegment

    project = world.store.get_project("churn")
    latencies = [float(v) for v in range(1, 101)]  # p50 = 50.5, p99 ~ 99
    table = pa.table({"route": ["primary"] * 100, "latency_ms": pa.array(latencies, pa.float32())})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    sha, size = world.artifacts.put(buffer.getvalue())
    world.store.create_deployment(
        project.project_id,
        "latency-api",
        [{"name": "primary", "model_uri": "models:/m/1", "role": "primary"}],
        actor="t",
    )
    world.store.add_prediction_segment(
        PredictionSegment(
            "f" * 32,
            project.project_id,
            "latency-api",
            1_000,
            61_000,
            100,
            f"sha256:{sha}",
            digest=sha,
            size_bytes=size,
            routes=("primary",),
        )
    )
    page = ui.get("/projects/churn/deployments/latency-api")
    assert page.status_code == 200
    assert 'id="latency"' in page.text
    assert "primary p50" in page.text and "50.5" in page.text and "primary p99" in page.text


def test_deployment_page_charts_requests_and_errors(ui: TestClient, world: World) -> None:
    import json
    import re

    page = ui.get("/projects/churn/deployments/churn-api")
    assert page.status_code == 200
    charts = {
        name: json.loads(body)
        for name, body in re.findall(
            r'<script type="application/json" id="(requests|errors)">(.*?)</script>',
            page.text,
            re.S,
        )
    }
    # the seed: 5 one-minute windows; primary 100 requests (3 4xx, 2 5xx) each, canary 100
    # requests with k 5xx in window k
    requests = {s["name"]: s["y"] for s in charts["requests"]["series"]}
    assert requests == {"canary": [100] * 5, "primary": [100] * 5}
    errors = {s["name"]: s["y"] for s in charts["errors"]["series"]}
    assert errors["canary 5xx"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert errors["primary 5xx"] == [2.0] * 5 and errors["primary 4xx"] == [3.0] * 5
    totals = page.text[page.text.index('id="traffic-totals"') :]
    assert re.search(r"<td>canary</td><td[^>]*>500</td><td[^>]*>15</td><td[^>]*>10</td>", totals)
    assert "2.00%" in totals  # canary: 10 of 500


def test_deployment_page_without_traffic_says_how_it_comes(ui: TestClient, world: World) -> None:
    project = world.store.get_project("churn")
    world.store.create_deployment(
        project.project_id,
        "quiet-api",
        [{"name": "primary", "model_uri": "models:/m/1", "role": "primary"}],
        actor="t",
    )
    page = ui.get("/projects/churn/deployments/quiet-api")
    assert page.status_code == 200
    assert "No request counts yet" in page.text and 'id="requests"' not in page.text
