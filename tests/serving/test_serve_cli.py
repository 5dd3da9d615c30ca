"""``loopml serve`` as users run it (a real process, SIGTERM, several workers) and
``loopml deployments`` through the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loopml.cli.app import app

LOOPML = [sys.executable, "-m", "loopml.cli"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_TRACKING_URI"] = str(store)
    return env


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


def _row(X: Any, i: int = 0) -> dict[str, float]:
    return {k: float(v) for k, v in X.iloc[i].items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_a_model_then_stop_gracefully(bc_store: Any, bc_data: Any, workers: int) -> None:
    X, _ = bc_data
    port = _port()
    store = Path(bc_store.tracking_uri.removeprefix("sqlite:///")).parent
    proc = subprocess.Popen(
        [
            *LOOPML,
            "serve",
            "models:/bc@champion",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        env=_env(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc)
        with httpx.Client(base_url=url) as http:
            for i in range(12):
                r = http.post("/predict", json={"rows": [_row(X, i)]})
                assert r.status_code == 200 and r.json()["version"] == 1
            r = http.post("/invocations", json={"dataframe_records": [_row(X)]})
            assert r.status_code == 200
            metrics = http.get("/metrics").text
        served = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("loopml_requests_total{") and 'status="200"' in line
        )
        assert served == 13  # summed over the workers
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    # uvicorn finishes, then re-raises the signal: the exit status says "terminated by SIGTERM"
    assert proc.returncode in (0, -signal.SIGTERM), err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert b"serving bc on" in out
    # the prediction logs were flushed on the way out, and a deployment was stored
    segments = bc_store.list_prediction_segments("bc")
    assert sum(s.rows for s in segments) == 13
    assert bc_store.get_deployment("bc").primary.model_uri == "models:/bc@champion"


def test_serve_refuses_bad_arguments_in_one_line(bc_store: Any, tmp_path: Path) -> None:
    store = Path(bc_store.tracking_uri.removeprefix("sqlite:///")).parent
    runner = CliRunner()
    args = ["--store", str(store), "serve"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "give one of" in r.output
    r = runner.invoke(app, [*args, "models:/nope@champion"])
    assert r.exit_code == 1 and "nope" in r.output and "Traceback" not in r.output
    bad = tmp_path / "d.yaml"
    bad.write_text("name: x\nroutes: []\n")
    r = runner.invoke(app, [*args, "--config", str(bad)])
    assert r.exit_code == 1 and "routes" in r.output


def test_deployments_cli(bc_store: Any, tmp_path: Path) -> None:
    store = Path(bc_store.tracking_uri.removeprefix("sqlite:///")).parent
    runner = CliRunner()
    base = ["--store", str(store), "deployments"]
    spec = tmp_path / "deployment.yaml"
    spec.write_text(
        "name: bc\nroutes:\n  - {name: primary, model: 'models:/bc@champion'}\n"
        "server:\n  batching: {max_rows: 64}\n"
    )
    r = runner.invoke(app, [*base, "apply", str(spec)])
    assert r.exit_code == 0, r.output
    assert "created" in r.output
    r = runner.invoke(app, [*base, "apply", str(spec)])
    assert "unchanged" in r.output
    r = runner.invoke(
        app, [*base, "set-traffic", "bc", "canary=25%", "--model", "canary=models:/bc/2"]
    )
    assert r.exit_code == 0, r.output
    assert "primary gets 75%, canary gets 25%" in r.output
    r = runner.invoke(app, [*base, "show", "bc", "--json"])
    data = json.loads(r.output)
    assert data["last_hour"] == {}  # nothing served yet
    minute = int(time.time()) // 60 * 60_000
    for route, version, requests, errors in (
        ("primary", "bc/1", 300, 6),
        ("canary", "bc/2", 100, 1),
        ("", "", 4, 0),
    ):
        for process in range(2):  # two serving processes' fragments of one minute
            bc_store.log_traffic_window(
                "bc",
                route=route,
                model_version=version,
                window_start=minute - 60_000,
                window_seconds=60,
                requests=requests // 2,
                client_errors=requests // 2 if route == "" else 0,
                server_errors=errors // 2 if process == 0 else errors - errors // 2,
            )
    bc_store.log_traffic_window(  # two hours ago: not in the last hour
        "bc",
        route="primary",
        model_version="bc/1",
        window_start=minute - 7_200_000,
        window_seconds=60,
        requests=999,
    )
    r = runner.invoke(app, [*base, "show", "bc", "--json"])
    data = json.loads(r.output)
    assert data["last_hour"] == {
        "": {"requests": 4, "client_errors": 4, "server_errors": 0},
        "canary": {"requests": 100, "client_errors": 0, "server_errors": 1},
        "primary": {"requests": 300, "client_errors": 0, "server_errors": 6},
    }
    r = runner.invoke(app, [*base, "show", "bc"])
    assert r.exit_code == 0, r.output
    assert "6 (2.0%)" in r.output and "1 (1.0%)" in r.output
    assert "refused before routing in the last hour: 4 requests" in r.output
    r = runner.invoke(app, [*base, "show", "bc", "--json"])
    data = json.loads(r.output)
    assert data["revision"] == 2
    assert {x["name"]: x["resolves_to"] for x in data["routes"]} == {
        "primary": "bc/1",
        "canary": "bc/2",
    }
    r = runner.invoke(app, [*base, "list"])
    assert "bc" in r.output and "models:/bc@champion" in r.output
    r = runner.invoke(app, [*base, "promote-canary", "bc", "--reason", "better"])
    assert r.exit_code == 0 and "bc@champion -> version 2" in r.output
    r = runner.invoke(app, [*base, "rollback", "bc"])
    assert r.exit_code == 0 and "version 1" in r.output
    r = runner.invoke(app, [*base, "set-traffic", "bc", "canary=0.2"])
    assert r.exit_code == 1 and "no route 'canary'" in r.output
    r = runner.invoke(app, [*base, "set-traffic", "bc", "oops"])
    assert r.exit_code == 2
    r = runner.invoke(app, [*base, "delete", "bc"])
    assert r.exit_code == 0
    r = runner.invoke(app, [*base, "show", "bc"])
    assert r.exit_code == 1 and "bc" in r.output
