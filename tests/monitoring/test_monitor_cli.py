"""``loopml monitor`` end to end: a spec file, runs that store results, an alert that fires on
drift and reaches a real webhook receiver, reports and the alert list."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mon_helpers import HOUR, T0, LogFn, make_frame
from typer.testing import CliRunner, Result

import loopml
from loopml.cli.app import app
from loopml.monitoring import run_monitor


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on a free port: (url, received requests)."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": dict(self.headers), "body": body})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()


def _cli(client: loopml.Client, *args: str) -> Result:
    result = CliRunner().invoke(app, ["--store", client.tracking_uri, *args])
    return result


def test_monitor_cli_drift_alert_reaches_the_webhook(
    mon_client: loopml.Client,
    log_predictions: LogFn,
    receiver: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    spec = tmp_path / "monitor.yaml"
    spec.write_text(
        "deployment: churn\n"
        "window: 1h\n"
        "alerts:\n"
        "  - {name: drift, metric: drift_share, op: '>=', threshold: 0.5, for: 2,"
        " severity: critical}\n"
        "notifiers:\n"
        f"  - {{name: ops, kind: webhook, url: '{url}', secret_env: HOOK_SECRET}}\n"
    )
    created = _cli(mon_client, "monitor", "create", "live", "--file", str(spec))
    assert created.exit_code == 0, created.output
    log_predictions(make_frame(300, seed=40), T0)
    for h in (1, 2):
        log_predictions(make_frame(300, shift=1.5, seed=40 + h), T0 + h * HOUR)
    # one drifted window: the rule wants two in a row
    run_monitor(mon_client, "live", now=T0 + 2 * HOUR)
    assert mon_client.list_alerts(monitor="live") == [] and got == []
    run = run_monitor(mon_client, "live", now=T0 + 3 * HOUR)
    (alert,) = mon_client.list_alerts(monitor="live")
    assert str(alert.state) == "firing" and alert.severity == "critical"
    assert run.alerts
    (hit,) = got
    signature = hit["headers"]["X-Loopml-Signature"].removeprefix("sha256=")
    timestamp = hit["headers"].get("X-Loopml-Timestamp", "")
    expected = [
        hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        for body in (hit["body"], f"{timestamp}.".encode() + hit["body"])
    ]
    assert signature in expected
    assert json.loads(hit["body"])["alert"]["rule"] == "drift"

    listed = _cli(mon_client, "monitor", "list")
    assert listed.exit_code == 0 and "live" in listed.output and "drifted" in listed.output
    shown = _cli(mon_client, "monitor", "show", "live", "--json")
    assert shown.exit_code == 0
    assert len(json.loads(shown.output)["results"]) == 3
    alerts = _cli(mon_client, "monitor", "alerts", "--json")
    (row,) = json.loads(alerts.output)
    assert row["rule"] == "drift" and row["deliveries"][0]["ok"] is True
    report = _cli(mon_client, "monitor", "report", "live", "-o", str(tmp_path / "r.html"))
    assert report.exit_code == 0, report.output
    html = (tmp_path / "r.html").read_text()
    assert "age" in html and "<script" not in html
    again = _cli(mon_client, "monitor", "run", "live", "--json")
    assert again.exit_code == 0, again.output


def test_monitor_cli_errors_say_what_to_do(mon_client: loopml.Client, tmp_path: Path) -> None:
    missing = _cli(mon_client, "monitor", "create", "x", "--file", str(tmp_path / "no.yaml"))
    assert missing.exit_code != 0 and "does not exist" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("deployment: churn\nwindow: soon\n")
    invalid = _cli(mon_client, "monitor", "create", "x", "--file", str(bad))
    assert invalid.exit_code != 0 and "window" in invalid.output
    nothing = _cli(mon_client, "monitor", "run")
    assert nothing.exit_code != 0 and "--all" in nothing.output
    unknown = _cli(mon_client, "monitor", "run", "ghost")
    assert unknown.exit_code != 0 and "ghost" in unknown.output
    state = _cli(mon_client, "monitor", "alerts", "--state", "open")
    assert state.exit_code != 0 and "firing or resolved" in state.output
