"""Notifiers against real servers: a webhook (HMAC verified by the receiver, retries on 5xx, no
retry on 4xx, no redirects, blocked private addresses), a Slack-compatible webhook, an SMTP server
(aiosmtpd), the log; and delivery that never raises and records every attempt."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest

from loopml.entities import Alert, AlertDelivery, AlertState
from loopml.monitoring.notifiers import (
    EmailNotifier,
    EmailSpec,
    LogNotifier,
    Notification,
    SlackSpec,
    WebhookNotifier,
    WebhookSpec,
    build_notifier,
    deliver,
)

ALERT = Alert(
    id="a1b2",
    project_id="p1",
    monitor="churn-drift",
    rule="drift-high",
    severity="critical",
    state=AlertState.FIRING,
    message="drift_share = 0.42 > 0.3 for 2 windows "
    "(monitor churn-drift, window 2026-12-02 10:00-11:00 UTC)",
    value=0.42,
    threshold=0.3,
    window_start=1_796_205_600_000,
    window_end=1_796_209_200_000,
    started_at=1_796_209_300_000,
    occurrences=2,
    details={"metric": "drift_share"},
)


class DeliveryStore:
    """The Client's ``log_alert_delivery``, in memory (``broken``: it fails)."""

    def __init__(self, broken: bool = False) -> None:
        self.deliveries: list[AlertDelivery] = []
        self.broken = broken

    def log_alert_delivery(
        self,
        alert_id: str,
        *,
        notifier: str,
        kind: str,
        event: str,
        attempt: int,
        ok: bool,
        status: str = "",
        project: str | None = None,
    ) -> AlertDelivery:
        if self.broken:
            raise OSError("disk full")
        d = AlertDelivery(
            uuid.uuid4().hex, "p1", alert_id, notifier, kind, event, attempt, ok, status
        )
        self.deliveries.append(d)
        return d


# --- a real HTTP receiver ------------------------------------------------------------------------


@dataclass
class Receiver:
    """What a local HTTP server received, and the statuses it answers with, in turn."""

    url: str
    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((self.path, dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if status in (301, 302):
                self.send_header("Location", "/elsewhere")
            reply = b"boom" if status >= 400 else b"ok"
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/loopml"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def no_sleep(waits: list[float]) -> Callable[[float], None]:
    return waits.append


# --- webhook -------------------------------------------------------------------------------------


def test_webhook_posts_signed_json_the_receiver_can_verify(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t")
    spec = WebhookSpec(
        name="oncall", url=receiver.url, secret_env="HOOK_SECRET", headers={"X-Team": "ml"}
    )
    store = DeliveryStore()
    [d] = deliver(store, ALERT, "firing", [spec], description="retrain the churn model")
    assert (d.notifier, d.kind, d.event, d.attempt, d.ok, d.status) == (
        "oncall",
        "webhook",
        "firing",
        1,
        True,
        "HTTP 200",
    )
    assert store.deliveries == [d]
    [(path, headers, body)] = receiver.requests
    assert path == "/hooks/loopml"
    # the receiver's side: recompute the HMAC of the raw body with the shared secret
    expected = "sha256=" + hmac.new(b"s3cr3t", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Loopml-Signature"], expected)
    payload = json.loads(body)
    assert payload["sent_at"] == int(headers["X-Loopml-Timestamp"])
    assert headers["Content-Type"] == "application/json" and headers["X-Team"] == "ml"
    assert headers["X-Loopml-Event"] == "firing"
    assert headers["X-Loopml-Delivery"] == payload["key"]
    assert payload["event"] == "firing" and payload["repeat"] is False
    assert payload["monitor"] == "churn-drift" and payload["rule"] == "drift-high"
    assert payload["description"] == "retrain the churn model"
    assert payload["alert"]["id"] == "a1b2" and payload["alert"]["value"] == 0.42
    assert payload["alert"]["state"] == "firing" and payload["alert"]["occurrences"] == 2
    assert payload["summary"].startswith("[CRITICAL] churn-drift/drift-high firing: drift_share")
    # a tampered body does not verify
    forged = body.replace(b"0.42", b"0.01")
    assert not hmac.compare_digest(
        headers["X-Loopml-Signature"],
        "sha256=" + hmac.new(b"s3cr3t", forged, hashlib.sha256).hexdigest(),
    )


def test_webhook_without_a_secret_is_unsigned(receiver: Receiver) -> None:
    [d] = deliver(DeliveryStore(), ALERT, "resolved", [WebhookSpec(name="h", url=receiver.url)])
    assert d.ok
    [(_, headers, _)] = receiver.requests
    assert "X-Loopml-Signature" not in headers and "X-Loopml-Timestamp" in headers
    assert receiver.bodies[0]["event"] == "resolved"


def test_webhook_retries_5xx_with_backoff_and_records_every_attempt(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    store, waits = DeliveryStore(), []
    out = deliver(
        store,
        ALERT,
        "firing",
        [WebhookSpec(name="h", url=receiver.url)],
        retries=3,
        backoff=0.5,
        sleep=no_sleep(waits),
    )
    assert [(d.attempt, d.ok, d.status) for d in out] == [
        (1, False, "HTTP 500: boom"),
        (2, False, "HTTP 503: boom"),
        (3, True, "HTTP 200"),
    ]
    assert store.deliveries == out and waits == [0.5, 1.0]
    keys = {b["key"] for b in receiver.bodies}
    assert len(receiver.requests) == 3 and len(keys) == 1  # one notification, three tries


def test_webhook_gives_up_after_the_last_retry(receiver: Receiver) -> None:
    receiver.statuses = [500] * 5
    out = deliver(
        DeliveryStore(),
        ALERT,
        "firing",
        [WebhookSpec(name="h", url=receiver.url)],
        retries=2,
        sleep=no_sleep([]),
    )
    assert [(d.attempt, d.ok) for d in out] == [(1, False), (2, False)]


@pytest.mark.parametrize("status", [400, 401, 404])
def test_webhook_client_errors_are_not_retried(receiver: Receiver, status: int) -> None:
    receiver.statuses = [status]
    out = deliver(
        DeliveryStore(),
        ALERT,
        "firing",
        [WebhookSpec(name="h", url=receiver.url)],
        sleep=no_sleep([]),
    )
    assert [(d.attempt, d.ok, d.status) for d in out] == [(1, False, f"HTTP {status}: boom")]


def test_webhook_does_not_follow_redirects(receiver: Receiver) -> None:
    receiver.statuses = [302]
    [d] = deliver(
        DeliveryStore(),
        ALERT,
        "firing",
        [WebhookSpec(name="h", url=receiver.url)],
        sleep=no_sleep([]),
    )
    assert not d.ok and d.status.startswith("HTTP 302")
    assert [p for p, _, _ in receiver.requests] == ["/hooks/loopml"]


def test_webhook_to_a_closed_port_fails_without_raising() -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    waits: list[float] = []
    out = deliver(
        DeliveryStore(),
        ALERT,
        "firing",
        [WebhookSpec(name="h", url=url)],
        retries=3,
        backoff=0.1,
        sleep=no_sleep(waits),
    )
    assert [d.ok for d in out] == [False] * 3 and waits == [0.1, 0.2]
    assert out[0].status.startswith(f"cannot reach {url[:-2]}/...: ")  # the path is redacted


def test_block_private_refuses_loopback_without_connecting(receiver: Receiver) -> None:
    notifier = build_notifier(WebhookSpec(name="h", url=receiver.url), block_private=True)
    [d] = deliver(DeliveryStore(), ALERT, "firing", [notifier], sleep=no_sleep([]))
    assert not d.ok and "non-public address 127.0.0.1" in d.status
    assert receiver.requests == []


def test_a_missing_secret_fails_instead_of_sending_unsigned(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ABSENT_SECRET", raising=False)
    spec = WebhookSpec(name="h", url=receiver.url, secret_env="ABSENT_SECRET")
    [d] = deliver(DeliveryStore(), ALERT, "firing", [spec])
    assert not d.ok and "ABSENT_SECRET" in d.status
    assert receiver.requests == []


# --- slack ---------------------------------------------------------------------------------------


def test_slack_posts_a_one_line_summary(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_URL", receiver.url)
    spec = SlackSpec(name="team", url_env="SLACK_URL", channel="#ml-alerts")
    [d] = deliver(DeliveryStore(), ALERT, "firing", [spec])
    assert (d.kind, d.ok, d.status) == ("slack", True, "HTTP 200")
    [payload] = receiver.bodies
    assert payload == {
        "channel": "#ml-alerts",
        "text": "[CRITICAL] churn-drift/drift-high firing: drift_share = 0.42 > 0.3 for 2 "
        "windows (monitor churn-drift, window 2026-12-02 10:00-11:00 UTC)",
    }
    resolved = Alert(
        **{
            **_fields(ALERT),
            "state": AlertState.RESOLVED,
            "details": {"resolution": "drift_share = 0.1, not > 0.3"},
        }
    )
    deliver(DeliveryStore(), resolved, "resolved", [SlackSpec(name="t", url=receiver.url)])
    text = receiver.bodies[1]["text"]
    assert text.startswith("[RESOLVED] churn-drift/drift-high resolved: ")
    assert text.endswith("(resolved: drift_share = 0.1, not > 0.3)")
    assert "channel" not in receiver.bodies[1]


def _fields(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in alert.__dataclass_fields__}


# --- email ---------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[EmailMessage]]]:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    received: list[EmailMessage] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            received.append(msg)
            return "250 OK"

    port = free_port()
    controller = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_email_reaches_a_real_smtp_server(smtp_server: tuple[int, list[EmailMessage]]) -> None:
    port, received = smtp_server
    spec = EmailSpec.model_validate(
        {
            "name": "mail",
            "kind": "email",
            "to": ["ml@example.com", "oncall@example.com"],
            "from": "loopml@example.com",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
        }
    )
    [d] = deliver(DeliveryStore(), ALERT, "firing", [spec], description="check the inputs")
    assert (d.kind, d.ok, d.status) == ("email", True, "250 OK")
    [msg] = received
    assert msg["Subject"] == "[loopml] critical drift-high firing on churn-drift"
    assert msg["From"] == "loopml@example.com"
    assert msg["X-Envelope-To"] == "ml@example.com, oncall@example.com"
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert "drift_share = 0.42 > 0.3 for 2 windows" in text and "check the inputs" in text
    assert "occurrences: 2" in text
    assert "<table>" in html.get_content() and "drift_share = 0.42" in html.get_content()


def test_email_escapes_html(smtp_server: tuple[int, list[EmailMessage]]) -> None:
    port, received = smtp_server
    alert = Alert(**{**_fields(ALERT), "message": "<script>alert(1)</script>"})
    notifier = EmailNotifier("mail", ["ml@example.com"], smtp_host="127.0.0.1", smtp_port=port)
    assert notifier.send(Notification(alert, "firing")) == "250 OK"
    html = received[0].get_body(preferencelist=("html",))
    assert html is not None and "<script>" not in html.get_content()


def test_email_failures_are_recorded() -> None:
    notifier = EmailNotifier(
        "mail", ["ml@example.com"], smtp_host="127.0.0.1", smtp_port=free_port(), timeout=2
    )
    out = deliver(DeliveryStore(), ALERT, "firing", [notifier], retries=2, sleep=no_sleep([]))
    assert [(d.attempt, d.ok) for d in out] == [(1, False), (2, False)]
    assert out[0].status.startswith("SMTP 127.0.0.1:")


# --- log, and delivery that never raises ---------------------------------------------------------


def test_log_notifier(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="loopml.alerts")
    status = LogNotifier("journal", level="info").send(Notification(ALERT, "firing", repeat=True))
    assert status == "logged"
    [record] = caplog.records
    assert record.name == "loopml.alerts" and record.levelno == logging.INFO
    assert record.getMessage().startswith("[CRITICAL] churn-drift/drift-high still firing: ")
    assert record.__dict__["alert_id"] == "a1b2"


class Exploding:
    kind, name = "custom", "exploding"

    def send(self, notification: Notification) -> str:
        raise ValueError("bug in a plugin")


def test_one_failing_notifier_does_not_stop_the_others(receiver: Receiver) -> None:
    store = DeliveryStore()
    out = deliver(
        store,
        ALERT,
        "firing",
        [Exploding(), WebhookSpec(name="h", url=receiver.url), LogNotifier("log")],
        retries=2,
        sleep=no_sleep([]),
    )
    assert [(d.notifier, d.attempt, d.ok) for d in out] == [
        ("exploding", 1, False),
        ("exploding", 2, False),
        ("h", 1, True),
        ("log", 1, True),
    ]
    assert out[0].status == "ValueError: bug in a plugin"


def test_a_failing_store_does_not_stop_delivery(receiver: Receiver) -> None:
    [d] = deliver(
        DeliveryStore(broken=True), ALERT, "firing", [WebhookSpec(name="h", url=receiver.url)]
    )
    assert d.id == "" and d.ok and d.status == "HTTP 200"
    assert len(receiver.requests) == 1


def test_notifiers_satisfy_the_protocol(receiver: Receiver) -> None:
    from loopml.monitoring.notifiers import Notifier

    built = build_notifier(WebhookSpec(name="h", url=receiver.url))
    assert isinstance(built, WebhookNotifier) and isinstance(built, Notifier)
    assert isinstance(Exploding(), Notifier)
    assert isinstance(LogNotifier("x"), Notifier)
