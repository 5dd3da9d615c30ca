"""Where alerts go: notifier specs (webhook, Slack-compatible, email, log), the :class:`Notifier`
capability, and :func:`deliver`, which tries every notifier with retries and records each
attempt in the store.

A monitor's notifiers, in YAML::

    notifiers:
      - {name: oncall, kind: webhook, url: "https://hooks.example.com/loopml",
         secret_env: LOOPML_WEBHOOK_SECRET}
      - {name: team, kind: slack, url_env: SLACK_WEBHOOK_URL, channel: "#ml-alerts"}
      - {name: mail, kind: email, to: [ml@example.com], from: loopml@example.com,
         smtp_host: smtp.example.com, smtp_port: 587, starttls: true,
         username: loopml, password_env: SMTP_PASSWORD}
      - {name: journal, kind: log, level: warning}

Secrets never live in a spec or in the store: a spec names the environment variable that holds
one (``secret_env``, ``password_env``, ``url_env``: a Slack webhook URL is itself a secret), read
when a notification is sent.

Webhooks are signed when ``secret_env`` is set: ``X-Loopml-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the raw body, and the body's ``sent_at`` equals ``X-Loopml-Timestamp`` (ms), so
a receiver can refuse stale replays. ``X-Loopml-Delivery`` is the same on every retry of one
notification: receivers can deduplicate on it. Redirects are never followed; pass
``block_private=True`` to :func:`build_notifier` where spec authors must not reach internal
addresses (a shared server).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import logging
import math
import os
import re
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopml.entities import Alert, AlertDelivery, now_ms

__all__ = [
    "DeliveryError",
    "DeliveryLog",
    "EmailNotifier",
    "EmailSpec",
    "LogNotifier",
    "LogSpec",
    "Notification",
    "Notifier",
    "NotifierSpec",
    "SlackNotifier",
    "SlackSpec",
    "WebhookNotifier",
    "WebhookSpec",
    "build_notifier",
    "check_public_url",
    "deliver",
    "record_delivery",
]

logger = logging.getLogger("loopml.alerts")

_SLUG = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED_HEADERS = {"content-type", "content-length", "host"}
_MAX_BACKOFF = 60.0


# --- specs ---------------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    name: str = Field(pattern=_SLUG, description="the notifier's name, which rules' notify use")


class _HttpSpec(_Spec):
    url: str | None = Field(default=None, description="where to POST")
    url_env: str | None = Field(
        default=None, pattern=_ENV_NAME, description="an environment variable holding the URL"
    )
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> _HttpSpec:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' and 'url_env'")
        return self


class WebhookSpec(_HttpSpec):
    """POST the alert as JSON to a URL, signed with an HMAC secret when ``secret_env`` is set."""

    kind: Literal["webhook"] = "webhook"
    secret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not _HEADER_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid HTTP header name")
            if key.lower() in _RESERVED_HEADERS or key.lower().startswith("x-loopml-"):
                raise ValueError(f"header {key!r} is set by loopml and cannot be overridden")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"header {key!r} has a line break or NUL in its value")
        return value


class SlackSpec(_HttpSpec):
    """POST ``{"text": ...}`` to a Slack-compatible incoming webhook (Slack, Mattermost)."""

    kind: Literal["slack"] = "slack"
    channel: str | None = None


class EmailSpec(_Spec):
    """Send a plain-text and HTML email over SMTP."""

    kind: Literal["email"] = "email"
    to: list[str] = Field(min_length=1, max_length=100)
    from_: str = Field(default="loopml@localhost", alias="from")
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password_env: str | None = Field(default=None, pattern=_ENV_NAME)
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("to", "from_")
    @classmethod
    def _addresses(cls, value: list[str] | str) -> list[str] | str:
        for address in [value] if isinstance(value, str) else value:
            if "@" not in address or any(c in address for c in "\r\n,;<> "):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _login(self) -> EmailSpec:
        if self.password_env and not self.username:
            raise ValueError("'password_env' needs a 'username'")
        return self


class LogSpec(_Spec):
    """Write the alert to the ``loopml.alerts`` logger."""

    kind: Literal["log"] = "log"
    level: Literal["debug", "info", "warning", "error", "critical"] = "warning"


NotifierSpec = Annotated[
    WebhookSpec | SlackSpec | EmailSpec | LogSpec, Field(discriminator="kind")
]
"""One notifier of a monitor, by ``kind``: :class:`WebhookSpec`, :class:`SlackSpec`,
:class:`EmailSpec` or :class:`LogSpec`."""

# --- the capability ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """What a notifier sends: an alert, the event (``firing`` or ``resolved``), whether it is a
    reminder of an alert still firing, the rule's description, and a key that stays the same on
    every retry (receivers deduplicate on it)."""

    alert: Alert
    event: Literal["firing", "resolved"]
    repeat: bool = False
    description: str = ""
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def title(self) -> str:
        """``[loopml] warning drift-high firing on churn-drift``: an email's subject."""
        a = self.alert
        return f"[loopml] {a.severity} {a.rule} {self.event} on {a.monitor}"

    @property
    def summary(self) -> str:
        """One line: ``[WARNING] FIRING churn-drift/drift-high: drift_share = 0.42 > 0.3 ...``."""
        a = self.alert
        marker = "RESOLVED" if self.event == "resolved" else a.severity.upper()
        state = "still firing" if self.repeat else self.event
        text = f"[{marker}] {a.monitor}/{a.rule} {state}: {a.message}"
        if self.event == "resolved":
            text += f" (resolved: {a.details.get('resolution', 'condition cleared')})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready payload a webhook receives."""
        a = self.alert
        return {
            "version": 1,
            "event": self.event,
            "repeat": self.repeat,
            "key": self.key,
            "summary": self.summary,
            "monitor": a.monitor,
            "rule": a.rule,
            "description": self.description,
            "alert": {
                "id": a.id,
                "project_id": a.project_id,
                "monitor": a.monitor,
                "rule": a.rule,
                "severity": a.severity,
                "state": str(a.state),
                "message": a.message,
                "value": _finite(a.value),
                "threshold": _finite(a.threshold),
                "window_start": a.window_start,
                "window_end": a.window_end,
                "started_at": a.started_at,
                "last_seen_at": a.last_seen_at,
                "resolved_at": a.resolved_at,
                "notified_at": a.notified_at,
                "occurrences": a.occurrences,
                "details": dict(a.details),
            },
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class DeliveryError(Exception):
    """A notifier could not deliver; ``retry`` tells whether trying again may help (a timeout,
    HTTP 5xx or 429) or not (HTTP 4xx, a refused recipient, a missing secret)."""

    def __init__(self, status: str, *, retry: bool = True, retry_after: float | None = None):
        super().__init__(status)
        self.status = status
        self.retry = retry
        self.retry_after = retry_after


@runtime_checkable
class Notifier(Protocol):
    """Something that sends notifications: a name (the spec's), a kind (``webhook``...), and
    ``send``, which returns what the other side said (``HTTP 200``, ``250 OK``) or raises
    (:class:`DeliveryError` to say whether a retry may help; any other exception is retried)."""

    @property
    def kind(self) -> str:
        """``webhook``, ``slack``, ``email``, ``log``, or a plugin's own."""
        ...

    @property
    def name(self) -> str:
        """The notifier's name, as rules' ``notify`` lists it."""
        ...

    def send(self, notification: Notification) -> str:
        """Deliver one notification; return a short status or raise."""
        ...


class DeliveryLog(Protocol):
    """The store method :func:`deliver` records attempts with (a :class:`~loopml.Client`)."""

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
    ) -> AlertDelivery: ...


# --- implementations -----------------------------------------------------------------------------


def _env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise DeliveryError(f"the environment variable {name} ({what}) is not set", retry=False)
    return value


def check_public_url(url: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or otherwise
    non-public address (the SSRF guard for servers that send where spec authors say).

    Raises:
        DeliveryError: the URL is not http(s), does not resolve, or is not public.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{url!r} is not an http(s) URL", retry=False)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise DeliveryError(f"cannot resolve {parts.hostname!r}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryError(
                f"{parts.hostname!r} resolves to the non-public address {address}; "
                "notifications to internal addresses are blocked on this server",
                retry=False,
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as is, and counts as a failure


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float, *, block_private: bool
) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"{_redact(url)} is not an http(s) URL", retry=False)
    if block_private:
        check_public_url(url)
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - http(s) only
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        exc.close()
        code = exc.code
        text = f"HTTP {code}" + (f": {detail}" if detail else "")
        retry_after = _retry_after(exc.headers.get("Retry-After"))
        raise DeliveryError(
            text, retry=code >= 500 or code in (408, 429), retry_after=retry_after
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach {_redact(url)}: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}", retry=False)
    return f"HTTP {status}"


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), _MAX_BACKOFF) if value else None
    except ValueError:
        return None


def _redact(url: str) -> str:
    """The URL without credentials, path and query, which may carry a token (Slack's do)."""
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/..."


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class WebhookNotifier:
    """POSTs :meth:`Notification.to_dict` as JSON; see the module docstring for the headers."""

    name: str
    url: str
    secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    block_private: bool = False
    kind: str = "webhook"

    def send(self, notification: Notification) -> str:
        """POST the notification; ``HTTP <status>`` for a 2xx, else raise."""
        sent_at = now_ms()
        body = _json_bytes({**notification.to_dict(), "sent_at": sent_at})
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "User-Agent": "loopml-alerts",
            "X-Loopml-Event": notification.event,
            "X-Loopml-Delivery": notification.key,
            "X-Loopml-Timestamp": str(sent_at),
        }
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Loopml-Signature"] = f"sha256={digest}"
        return _post(self.url, body, headers, self.timeout, block_private=self.block_private)


@dataclass(frozen=True)
class SlackNotifier:
    """POSTs ``{"text": <summary>, "channel": ...}`` to an incoming webhook."""

    name: str
    url: str = field(repr=False)  # an incoming-webhook URL is a secret
    channel: str | None = None
    timeout: float = 10.0
    block_private: bool = False
    kind: str = "slack"

    def send(self, notification: Notification) -> str:
        """POST the one-line summary; ``HTTP <status>`` for a 2xx, else raise."""
        payload: dict[str, Any] = {"text": notification.summary}
        if notification.description:
            payload["text"] += f"\n{notification.description}"
        if self.channel:
            payload["channel"] = self.channel
        headers = {"Content-Type": "application/json", "User-Agent": "loopml-alerts"}
        return _post(
            self.url, _json_bytes(payload), headers, self.timeout, block_private=self.block_private
        )


@dataclass(frozen=True)
class EmailNotifier:
    """Sends a plain-text email with an HTML alternative over SMTP (STARTTLS and login when
    configured)."""

    name: str
    to: Sequence[str]
    sender: str = "loopml@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    kind: str = "email"

    def message(self, notification: Notification) -> EmailMessage:
        """The email for ``notification``."""
        a = notification.alert
        lines = [
            notification.summary,
            "",
            f"monitor:     {a.monitor}",
            f"rule:        {a.rule}",
            f"severity:    {a.severity}",
            f"state:       {a.state}",
            f"value:       {a.value}",
            f"threshold:   {a.threshold}",
            f"occurrences: {a.occurrences}",
            f"alert id:    {a.id}",
        ]
        if notification.description:
            lines += ["", notification.description]
        msg = EmailMessage()
        msg["Subject"] = notification.title
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["X-Loopml-Delivery"] = notification.key
        msg.set_content("\n".join(lines) + "\n")
        rows = "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in (
                ("monitor", a.monitor),
                ("rule", a.rule),
                ("severity", a.severity),
                ("value", a.value),
                ("threshold", a.threshold),
                ("occurrences", a.occurrences),
            )
        )
        msg.add_alternative(
            f"<p><b>{html.escape(notification.summary)}</b></p>"
            f"<p>{html.escape(notification.description)}</p><table>{rows}</table>",
            subtype="html",
        )
        return msg

    def send(self, notification: Notification) -> str:
        """Send the email; ``250 OK`` once the server accepted it, else raise."""
        msg = self.message(notification)
        try:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            who = ", ".join(sorted(exc.recipients))
            raise DeliveryError(f"recipients refused: {who}", retry=False) from None
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            raise DeliveryError(
                f"{exc.smtp_code} {text}".strip(), retry=exc.smtp_code < 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.smtp_host}:{self.smtp_port}: {exc}") from None
        if refused:
            return f"250 OK (refused: {', '.join(sorted(refused))})"
        return "250 OK"


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


@dataclass(frozen=True)
class LogNotifier:
    """Logs the summary to ``logging.getLogger("loopml.alerts")``."""

    name: str
    level: str = "warning"
    kind: str = "log"

    def send(self, notification: Notification) -> str:
        """Log one line; returns ``logged``."""
        a = notification.alert
        logger.log(
            _LEVELS[self.level],
            "%s",
            notification.summary,
            extra={"alert_id": a.id, "monitor": a.monitor, "rule": a.rule},
        )
        return "logged"


class _Unbuildable:
    """A notifier whose spec could not be turned into one (a missing secret): every send fails
    with the reason, so the failure is recorded like any other."""

    def __init__(self, name: str, kind: str, error: DeliveryError) -> None:
        self.name, self.kind, self._error = name, kind, error

    def send(self, notification: Notification) -> str:
        raise self._error


def build_notifier(spec: NotifierSpec, *, block_private: bool = False) -> Notifier:
    """The notifier a spec describes, with its secrets read from the environment now.

    A secret that is not set does not raise here: the notifier fails every send with a message
    naming the variable, and :func:`deliver` records that.

    Args:
        spec: a notifier spec.
        block_private: refuse to POST to loopback, private and link-local addresses.
    """
    try:
        if isinstance(spec, WebhookSpec):
            secret = _env(spec.secret_env, "the webhook secret") if spec.secret_env else None
            return WebhookNotifier(
                spec.name,
                spec.url or _env(spec.url_env or "", "the webhook URL"),
                secret=secret,
                headers=dict(spec.headers),
                timeout=spec.timeout,
                block_private=block_private,
            )
        if isinstance(spec, SlackSpec):
            return SlackNotifier(
                spec.name,
                spec.url or _env(spec.url_env or "", "the Slack webhook URL"),
                channel=spec.channel,
                timeout=spec.timeout,
                block_private=block_private,
            )
        if isinstance(spec, EmailSpec):
            password = _env(spec.password_env, "the SMTP password") if spec.password_env else None
            return EmailNotifier(
                spec.name,
                tuple(spec.to),
                sender=spec.from_,
                smtp_host=spec.smtp_host,
                smtp_port=spec.smtp_port,
                starttls=spec.starttls,
                username=spec.username,
                password=password,
                timeout=spec.timeout,
            )
    except DeliveryError as exc:
        return _Unbuildable(spec.name, spec.kind, exc)
    return LogNotifier(spec.name, level=spec.level)


# --- delivery ------------------------------------------------------------------------------------


def deliver(
    store: DeliveryLog,
    alert: Alert,
    event: Literal["firing", "resolved"],
    notifiers: Sequence[Notifier | NotifierSpec],
    *,
    repeat: bool = False,
    description: str = "",
    retries: int = 3,
    backoff: float = 0.5,
    project: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[AlertDelivery]:
    """Send one notification of ``alert`` through every notifier, each independently.

    A notifier is tried up to ``retries`` times, waiting ``backoff``, then twice as long, and
    so on (capped at a minute; a ``Retry-After`` answer is honoured), until it succeeds or fails
    for good (HTTP 4xx, a missing secret). Every attempt is recorded with
    ``store.log_alert_delivery``. Never raises: a failing notifier, or a failing store, is
    logged and does not stop the others.

    Args:
        store: where attempts are recorded (a :class:`~loopml.Client`).
        alert: the alert to announce.
        event: ``firing`` or ``resolved``.
        notifiers: notifiers, or specs to build them from.
        repeat: a reminder of an alert still firing (after its rule's cooldown).
        description: the rule's description, added to the message.
        retries: attempts per notifier, the first included (at least 1).
        backoff: seconds before the second attempt; doubles after each failure.
        project: the alert's project (default: the store's).
        sleep: how to wait (tests pass a fake).

    Returns:
        Every attempt, in order (an attempt the store could not record has an empty ``id``).
    """
    notification = Notification(alert, event, repeat=repeat, description=description)
    out: list[AlertDelivery] = []
    for item in notifiers:
        notifier = item if isinstance(item, Notifier) else build_notifier(item)
        for attempt in range(1, max(1, retries) + 1):
            try:
                status, ok, again, wait = notifier.send(notification), True, False, 0.0
            except DeliveryError as exc:
                status, ok, again = exc.status, False, exc.retry
                wait = exc.retry_after or 0.0
            except Exception as exc:  # a notifier bug must not stop the others
                status, ok, again, wait = f"{type(exc).__name__}: {exc}", False, True, 0.0
            if not ok:
                logger.warning(
                    "notifier %r (%s) failed to send alert %s (%s), attempt %d: %s",
                    notifier.name,
                    notifier.kind,
                    alert.id,
                    event,
                    attempt,
                    status,
                )
            out.append(
                record_delivery(
                    store,
                    alert,
                    notifier=notifier.name,
                    kind=notifier.kind,
                    event=event,
                    attempt=attempt,
                    ok=ok,
                    status=status,
                    project=project,
                )
            )
            if ok or not again or attempt >= retries:
                break
            sleep(min(max(wait, backoff * 2 ** (attempt - 1)), _MAX_BACKOFF))
    return out


def record_delivery(
    store: DeliveryLog,
    alert: Alert,
    *,
    notifier: str,
    kind: str,
    event: str,
    attempt: int,
    ok: bool,
    status: str,
    project: str | None,
) -> AlertDelivery:
    """Record one attempt; when the store fails, log it and return an unsaved record."""
    status = status[:500]
    try:
        return store.log_alert_delivery(
            alert.id,
            notifier=notifier,
            kind=kind,
            event=event,
            attempt=attempt,
            ok=ok,
            status=status,
            project=project,
        )
    except Exception:
        logger.exception("cannot record the delivery of alert %s by %r", alert.id, notifier)
        return AlertDelivery(
            "", alert.project_id, alert.id, notifier, kind, event, attempt, ok, status, now_ms()
        )
