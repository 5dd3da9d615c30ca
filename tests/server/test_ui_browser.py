"""The web UI in a real browser (Debian's Chromium through Playwright) against a real server:
pages load under the Content-Security-Policy, links work, plotly charts draw, a promotion
moves the alias, and a viewer sees no promote control and cannot forge one."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.requests import HTTPConnection
from test_ui_seed import Seeded, seed

from loopml.errors import PermissionDenied
from loopml.server.app import create_app
from loopml.server.principal import Permission, Principal
from loopml.server.settings import ServerSettings
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.sql import SqlStore

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Chromium")


class RoleGate:
    """A stand-in for the token gate: an ``x-user`` header names a viewer or an editor."""

    enabled = True

    def authenticate(self, request: HTTPConnection) -> Principal:
        return Principal(request.headers.get("x-user", "viewer"))

    def check(
        self, principal: Principal, permission: Permission, project_ids: Collection[str]
    ) -> None:
        if permission != "read" and principal.name != "editor":
            raise PermissionDenied(f"{principal.name} may not {permission}")

    def readable_projects(self, principal: Principal) -> frozenset[str] | None:
        return None

    def grant_creator(self, principal: Principal, project_id: str) -> None:
        return None


class Server:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


class World:
    def __init__(self, root: Path) -> None:
        self.store = SqlStore(f"sqlite:///{root / 'ui.db'}")
        self.artifacts = FsspecArtifactStore(str(root / "art"))
        self.seeded: Seeded = seed(self.store, self.artifacts)
        settings = ServerSettings(
            host="127.0.0.1", auth=False, allowed_hosts=(), allowed_origins=()
        )
        self.open = Server(create_app(settings, store=self.store, artifacts=self.artifacts))
        self.roles = Server(
            create_app(settings, store=self.store, artifacts=self.artifacts, gate=RoleGate())
        )

    def close(self) -> None:
        self.open.stop()
        self.roles.stop()
        self.store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("browser"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    opened.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    yield opened
    context.close()
    assert not errors, errors  # no script error, no CSP violation


def test_pages_load_and_links_work(page: Any, world: World) -> None:
    base = world.open.url
    page.goto(base + "/")
    page.click("text=churn")
    page.wait_for_url(re.compile(r"/projects/churn$"))
    for section in (
        "Datasets",
        "Models",
        "Deployments",
        "Monitoring",
        "Pipelines",
        "Audit log",
        "Runs",
    ):
        page.goto(base + "/projects/churn")
        page.click(f"main >> text={section}")
        assert page.title().endswith("loopml")
        assert page.locator("h1").count() == 1
    page.goto(base + f"/projects/churn/pipelines/{world.seeded.pipeline_run_id}")
    assert page.locator(".dag .node").count() == 3


def test_charts_render(page: Any, world: World) -> None:
    base = world.open.url
    page.goto(base + f"/runs/{world.seeded.big_run_id}")
    page.wait_for_selector(".js-plotly-plot svg", timeout=20_000)
    page.goto(
        base + f"/projects/churn/compare?runs={world.seeded.run_id},{world.seeded.big_run_id}"
    )
    page.wait_for_selector("#parallel.js-plotly-plot svg", timeout=20_000)
    page.goto(base + "/projects/churn/monitoring/churn-drift")
    page.wait_for_selector(".js-series-chart.js-plotly-plot svg", timeout=20_000)
    page.goto(base + "/projects/churn/deployments/churn-api")  # requests and error rates
    for source in ("requests", "errors", "traffic"):
        page.wait_for_selector(
            f".js-series-chart[data-source={source}].js-plotly-plot svg", timeout=20_000
        )


def test_deployment_page_updates_live(page: Any, world: World) -> None:
    from loopml.testing.store_suite_traffic import traffic

    page.goto(world.open.url + "/projects/churn/deployments/churn-api?refresh=1")
    page.wait_for_selector(".js-series-chart[data-source=errors].js-plotly-plot svg")
    totals = page.locator("#traffic-totals")
    assert "shadow" not in totals.text_content()
    pid = world.seeded.project_id
    world.store.add_traffic_window(  # a new route's first minute, written by a server
        traffic(pid, 10 * 60_000, route="shadow", model_version="churn/5", server_errors=50)
    )
    from playwright.sync_api import expect  # polls without eval (the page's CSP forbids it)

    expect(totals).to_contain_text("shadow", timeout=10_000)
    assert "50.00%" in totals.text_content()  # its 5xx rate
    page.wait_for_selector(".js-series-chart[data-source=errors].js-plotly-plot svg")


def test_artifact_preview_is_text(page: Any, world: World) -> None:
    page.goto(world.open.url + f"/runs/{world.seeded.hostile_run_id}")
    page.locator(".js-preview").first.click()
    preview = page.locator("#artifact-preview")
    preview.wait_for(state="visible")
    assert "hello <b>artifact</b>" in preview.text_content()
    assert page.locator("#artifact-preview b").count() == 0


def test_promote_with_confirmation(page: Any, world: World) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(world.open.url + "/projects/churn/models/churn")
    row = page.locator("form.promote").first  # the newest version first
    row.locator("input[name=alias]").fill("staging")
    row.locator("button").click()
    page.wait_for_selector("#moved")
    aliases = world.store.get_registered_model(world.seeded.project_id, "churn").aliases
    assert aliases["staging"] == 3


def test_viewer_sees_no_promote_and_cannot_forge(browser: Any, world: World) -> None:
    url = world.roles.url + "/projects/churn/models/churn"
    viewer = browser.new_context(extra_http_headers={"x-user": "viewer"})
    try:
        page = viewer.new_page()
        page.goto(url)
        assert page.locator("form.promote").count() == 0
        assert page.locator("h1").text_content() == "Model churn"
        forged = viewer.request.post(
            url + "/aliases",
            form={"alias": "champion", "version": "1", "csrf": "x" * 43},
            headers={"origin": world.roles.url},
        )
        assert forged.status == 403
    finally:
        viewer.close()
    editor = browser.new_context(extra_http_headers={"x-user": "editor"})
    try:
        page = editor.new_page()
        page.goto(url)
        assert page.locator("form.promote").count() == 3
    finally:
        editor.close()
    assert (
        world.store.get_registered_model(world.seeded.project_id, "churn").aliases["champion"] == 2
    )
