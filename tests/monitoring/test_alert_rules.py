"""Alert rules over monitor results: specs, firing after N windows, deduplication, cooldown
reminders, resolution, NaN as no evidence, globs, idempotence, racing evaluators, actions; against
an in-memory store and against a real Client."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from loopml.entities import Alert, AlertDelivery, AlertState, MonitorResult
from loopml.errors import Conflict
from loopml.monitoring import actions
from loopml.monitoring.alerting import AlertEvent, AlertRule, evaluate_rules, parse_duration
from loopml.monitoring.notifiers import LogSpec, Notification, NotifierSpec, WebhookSpec

HOUR = 3_600_000
T0 = 1_796_205_600_000  # 2026-12-02 10:00 UTC
MINUTE = 60_000


# --- an in-memory alert store and a recording notifier ------------------------------------------


class FakeStore:
    """The alert methods of the Client, in memory (one firing alert per (monitor, rule))."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.deliveries: list[AlertDelivery] = []
        self.lock = threading.Lock()
        self.clock = 0

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def open_alert(
        self,
        monitor: str,
        rule: str,
        *,
        severity: str,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
        window_start: int = 0,
        window_end: int = 0,
        details: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> Alert:
        with self.lock:
            for a in self.alerts.values():
                if (a.monitor, a.rule, a.state) == (monitor, rule, AlertState.FIRING):
                    raise Conflict(f"alert rule {rule!r} of monitor {monitor!r} is firing")
            t = self._tick()
            alert = Alert(
                uuid.uuid4().hex,
                "p",
                monitor,
                rule,
                severity,
                AlertState.FIRING,
                message,
                value,
                threshold,
                window_start,
                window_end,
                started_at=t,
                last_seen_at=t,
                details=dict(details or {}),
            )
            self.alerts[alert.id] = alert
            return alert

    def update_alert(self, alert: Alert) -> Alert:
        with self.lock:
            self.alerts[alert.id] = alert
            return alert

    def get_alert(self, alert_id: str, *, project: str | None = None) -> Alert:
        return self.alerts[alert_id]

    def list_alerts(
        self,
        *,
        monitor: str | None = None,
        rule: str | None = None,
        state: AlertState | str | None = None,
        limit: int | None = None,
        project: str | None = None,
    ) -> list[Alert]:
        with self.lock:
            out = [
                a
                for a in self.alerts.values()
                if (monitor is None or a.monitor == monitor)
                and (rule is None or a.rule == rule)
                and (state is None or a.state == state)
            ]
        out.sort(key=lambda a: a.started_at, reverse=True)
        return out[:limit] if limit is not None else out

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
        d = AlertDelivery(
            uuid.uuid4().hex, "p", alert_id, notifier, kind, event, attempt, ok, status
        )
        with self.lock:
            self.deliveries.append(d)
        return d


class Recorder:
    """A notifier that remembers what it was sent (and can be told to fail)."""

    kind = "test"

    def __init__(self, name: str = "rec", fail: bool = False) -> None:
        self.name, self.fail = name, fail
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> str:
        if self.fail:
            raise ConnectionError("down")
        self.sent.append(notification)
        return "ok"

    @property
    def events(self) -> list[tuple[str, bool]]:
        return [(n.event, n.repeat) for n in self.sent]


def window(i: int, **metrics: float) -> MonitorResult:
    """The result of hourly window ``i`` (from 2026-12-02 10:00 UTC)."""
    return MonitorResult(f"r{i}", "p", "churn-drift", T0 + i * HOUR, T0 + (i + 1) * HOUR, metrics)


def drift(*values: float) -> list[MonitorResult]:
    return [window(i, drift_share=v, rows=100) for i, v in enumerate(values)]


def rule(**kw: Any) -> AlertRule:
    base: dict[str, Any] = {
        "name": "drift-high",
        "metric": "drift_share",
        "op": ">",
        "threshold": 0.3,
    }
    return AlertRule.model_validate({**base, **kw})


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def run(
    store: Any,
    rules: list[AlertRule],
    results: list[MonitorResult],
    notifiers: list[Any],
    now: int,
    **kw: Any,
) -> list[AlertEvent]:
    return evaluate_rules(
        store, "churn-drift", rules, notifiers, results, now=now, backoff=0, **kw
    )


# --- specs ---------------------------------------------------------------------------------------


def test_rule_from_yaml_with_aliases_durations_and_defaults() -> None:
    text = """
    name: drift-high
    metric: "drift.*"
    op: ">="
    threshold: 0.2
    for: 3
    cooldown: 30m
    severity: critical
    notify: [oncall]
    actions: [retrain]
    """
    r = AlertRule.model_validate(yaml.safe_load(text))
    assert (r.for_windows, r.cooldown, r.severity, r.resolve_after) == (3, 1800.0, "critical", 1)
    assert r.is_glob and r.notify == ["oncall"] and r.actions == ["retrain"]
    dumped = json.loads(r.model_dump_json())
    assert dumped["for"] == 3 and "for_windows" not in dumped
    assert AlertRule.model_validate(dumped) == r
    assert AlertRule.model_validate(yaml.safe_load(yaml.safe_dump(r.model_dump()))) == r
    d = rule()
    assert (d.for_windows, d.cooldown, d.severity, d.notify, d.actions) == (
        1,
        3600.0,
        "warning",
        None,
        [],
    )
    assert rule(for_windows=2).for_windows == 2  # the Python name works too


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("1.5d", 129600.0),
        ("500ms", 0.5),
        (0, 0.0),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert rule(cooldown=text).cooldown == seconds


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"op": "=>"}, "op"),
        ({"for": 0}, "greater than or equal to 1"),
        ({"cooldown": "soon"}, "'90s', '30m', '1h'"),
        ({"cooldown": -5}, "non-negative"),
        ({"threshold": math.nan}, "finite"),
        ({"severity": "fatal"}, "'info', 'warning' or 'critical'"),
        ({"name": "Drift High"}, "pattern"),
        ({"resolve_after": 0}, "resolve_after"),
        ({"metric": " rows"}, "surrounding spaces"),
        ({"frequency": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_rules_say_what_is_wrong(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        rule(**change)
    assert fragment in str(info.value)


NOTIFIERS: TypeAdapter[list[NotifierSpec]] = TypeAdapter(list[NotifierSpec])


def test_notifier_specs_are_a_union_on_kind_and_round_trip() -> None:
    text = """
    - {name: oncall, kind: webhook, url: "https://hooks.example.com/x", secret_env: HOOK_SECRET,
       headers: {X-Team: ml}, timeout: 5}
    - {name: team, kind: slack, url_env: SLACK_URL, channel: "#ml"}
    - {name: mail, kind: email, to: [ml@example.com], from: loopml@example.com,
       smtp_port: 587, starttls: true, username: bot, password_env: SMTP_PASSWORD}
    - {name: journal, kind: log}
    """
    specs = NOTIFIERS.validate_python(yaml.safe_load(text))
    assert [s.kind for s in specs] == ["webhook", "slack", "email", "log"]
    mail = specs[2]
    assert mail.kind == "email" and mail.from_ == "loopml@example.com"
    assert mail.smtp_host == "localhost"
    assert isinstance(specs[3], LogSpec) and specs[3].level == "warning"
    dumped = json.loads(NOTIFIERS.dump_json(specs))
    assert dumped[2]["from"] == "loopml@example.com"
    assert NOTIFIERS.validate_python(dumped) == specs
    assert NOTIFIERS.validate_python(yaml.safe_load(yaml.safe_dump(dumped))) == specs


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"name": "x", "kind": "pager"}, "does not match any of the expected tags"),
        ({"name": "x", "kind": "webhook"}, "exactly one of 'url' and 'url_env'"),
        ({"name": "x", "kind": "webhook", "url": "file:///etc/passwd"}, "not an http(s) URL"),
        (
            {"name": "x", "kind": "webhook", "url": "https://h/", "secret": "s3cr3t"},
            "Extra inputs are not permitted",
        ),
        (
            {"name": "x", "kind": "webhook", "url": "https://h/", "headers": {"A": "b\r\nC: d"}},
            "line break",
        ),
        (
            {
                "name": "x",
                "kind": "webhook",
                "url": "https://h/",
                "headers": {"X-Loopml-Signature": "x"},
            },
            "set by loopml",
        ),
        ({"name": "x", "kind": "email", "to": []}, "at least 1 item"),
        ({"name": "x", "kind": "email", "to": ["a@b.c\r\nBcc: e@f.g"]}, "not an email address"),
        ({"name": "x", "kind": "email", "to": ["a@b.c"], "password_env": "P"}, "username"),
        ({"name": "x", "kind": "log", "level": "loud"}, "level"),
    ],
)
def test_bad_notifier_specs_say_what_is_wrong(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        NOTIFIERS.validate_python([spec])
    assert fragment in str(info.value)


# --- evaluation ----------------------------------------------------------------------------------


def test_fires_after_n_consecutive_breaching_windows(store: FakeStore) -> None:
    rec = Recorder()
    r = rule(**{"for": 2})
    assert run(store, [r], drift(0.1, 0.42), [rec], T0 + 2 * HOUR) == []  # one breach only
    assert run(store, [r], drift(0.5, 0.1, 0.42), [rec], T0 + 3 * HOUR) == []  # not consecutive
    [event] = run(store, [r], drift(0.1, 0.35, 0.42), [rec], T0 + 3 * HOUR)
    assert event.kind == "fired" and event.notified
    a = event.alert
    assert a.state == AlertState.FIRING and a.value == 0.42 and a.threshold == 0.3
    assert (a.window_start, a.window_end) == (T0 + 2 * HOUR, T0 + 3 * HOUR)
    assert a.message == (
        "drift_share = 0.42 > 0.3 for 2 windows "
        "(monitor churn-drift, window 2026-12-02 12:00-13:00 UTC)"
    )
    assert a.notified_at == T0 + 3 * HOUR and a.severity == "warning"
    assert rec.events == [("firing", False)]
    assert [(d.notifier, d.kind, d.event, d.attempt, d.ok) for d in store.deliveries] == [
        ("rec", "test", "firing", 1, True)
    ]
    assert event.to_dict()["deliveries"][0]["status"] == "ok"
    json.dumps(event.to_dict())


def test_still_breaching_updates_one_alert_without_notifying_again(store: FakeStore) -> None:
    rec = Recorder()
    r = rule(cooldown="1h")
    values = [0.4]
    run(store, [r], drift(*values), [rec], T0 + HOUR)
    for i, v in enumerate([0.5, 0.6], start=1):
        values.append(v)
        [event] = run(store, [r], drift(*values), [rec], T0 + HOUR + i * 10 * MINUTE)
        assert event.kind == "updated" and not event.notified
    [a] = store.list_alerts()
    assert a.occurrences == 3 and a.value == 0.6 and a.window_end == T0 + 3 * HOUR
    assert a.last_seen_at == T0 + HOUR + 20 * MINUTE and a.notified_at == T0 + HOUR
    assert "0.6 > 0.3" in a.message
    assert rec.events == [("firing", False)]


def test_cooldown_passed_sends_a_reminder(store: FakeStore) -> None:
    rec = Recorder()
    r = rule(cooldown="30m")
    run(store, [r], drift(0.4), [rec], T0 + HOUR)
    assert run(store, [r], drift(0.4), [rec], T0 + HOUR + 29 * MINUTE) == []  # nothing new
    [event] = run(store, [r], drift(0.4), [rec], T0 + HOUR + 30 * MINUTE)
    assert event.kind == "updated" and event.notified
    assert event.alert.notified_at == T0 + HOUR + 30 * MINUTE
    assert event.alert.occurrences == 1  # a reminder is not a new window
    assert rec.events == [("firing", False), ("firing", True)]
    assert "still firing" in rec.sent[1].summary
    # the next reminder counts from the last one
    assert run(store, [r], drift(0.4, 0.5), [rec], T0 + HOUR + 50 * MINUTE)[0].notified is False
    assert len(rec.sent) == 2


def test_resolves_after_consecutive_clean_windows(store: FakeStore) -> None:
    rec = Recorder()
    r = rule(resolve_after=2)
    run(store, [r], drift(0.4), [rec], T0 + HOUR)
    assert run(store, [r], drift(0.4, 0.1), [rec], T0 + 2 * HOUR) == []  # one clean: not yet
    [event] = run(store, [r], drift(0.4, 0.1, 0.2), [rec], T0 + 3 * HOUR)
    assert event.kind == "resolved" and event.notified
    a = store.get_alert(event.alert.id)
    assert a.state == AlertState.RESOLVED and a.resolved_at == T0 + 3 * HOUR
    assert a.details["resolution"] == (
        "drift_share = 0.2, not > 0.3, for 2 windows (window 2026-12-02 12:00-13:00 UTC)"
    )
    assert rec.events == [("firing", False), ("resolved", False)]
    assert rec.sent[1].title == "[loopml] warning drift-high resolved on churn-drift"
    # resolved stays resolved, and the old breaching window does not fire it again
    assert run(store, [r], drift(0.4, 0.1, 0.2), [rec], T0 + 4 * HOUR) == []
    assert run(store, [r], drift(0.4), [rec], T0 + 4 * HOUR) == []
    # a new breach opens a new alert
    [again] = run(store, [r], drift(0.4, 0.1, 0.2, 0.9), [rec], T0 + 4 * HOUR)
    assert again.kind == "fired" and again.alert.id != a.id
    assert len(store.list_alerts(state=AlertState.FIRING)) == 1


def test_a_breach_interrupts_the_clean_streak(store: FakeStore) -> None:
    r = rule(resolve_after=2)
    run(store, [r], drift(0.4), [], T0 + HOUR)
    [event] = run(store, [r], drift(0.4, 0.1, 0.5, 0.1), [], T0 + 4 * HOUR)
    assert event.kind == "updated" and event.alert.occurrences == 2
    assert store.list_alerts()[0].state == AlertState.FIRING


def test_nan_is_no_evidence_either_way(store: FakeStore) -> None:
    rec = Recorder()
    r = rule(metric="accuracy", op="<", threshold=0.8, **{"for": 2})
    nan = math.nan
    acc = [window(i, accuracy=v) for i, v in enumerate([0.7, nan, 0.6, nan])]
    acc.append(window(4, rows=10))  # no accuracy at all
    # the NaN windows neither break the streak nor count
    [event] = run(store, [r], acc, [rec], T0 + 5 * HOUR)
    assert event.kind == "fired" and event.alert.value == 0.6
    assert event.alert.window_end == T0 + 3 * HOUR
    # more windows without labels: the alert neither updates nor resolves
    more = [*acc, window(5, accuracy=nan), window(6, accuracy=nan)]
    assert run(store, [r], more, [rec], T0 + 5 * HOUR + 10 * MINUTE) == []
    [a] = store.list_alerts()
    assert a.state == AlertState.FIRING and a.occurrences == 1
    # ... but it is still firing: after the cooldown, a reminder
    [reminder] = run(store, [r], more[-2:], [rec], T0 + 7 * HOUR)
    assert reminder.notified and rec.events == [("firing", False), ("firing", True)]
    # only all-NaN windows: nothing fires
    other = FakeStore()
    assert run(other, [r], [window(i, accuracy=nan) for i in range(5)], [rec], T0) == []
    assert other.alerts == {}


def test_glob_breaches_when_any_match_does_and_names_it(store: FakeStore) -> None:
    rec = Recorder()
    r = rule(name="feature-drift", metric="drift.*", threshold=0.2)
    calm = window(0, **{"drift.age": 0.1, "drift.income": 0.15, "drift_share": 0.9})
    assert run(store, [r], [calm], [rec], T0) == []  # drift_share does not match drift.*
    hot = window(1, **{"drift.age": 0.3, "drift.income": 0.5, "drift.plan": math.nan})
    [event] = run(store, [r], [calm, hot], [rec], T0 + 2 * HOUR)
    a = event.alert
    assert a.value == 0.5 and a.message.startswith(
        "drift.income = 0.5 > 0.2 and 1 more of drift.*"
    )
    assert a.details["breaching"] == ["drift.age", "drift.income"]
    assert a.details["pattern"] == "drift.*"
    cool = window(2, **{"drift.age": 0.1, "drift.income": 0.1, "drift.plan": math.nan})
    [done] = run(store, [r], [calm, hot, cool], [rec], T0 + 3 * HOUR)
    assert done.kind == "resolved"


@pytest.mark.parametrize(
    ("op", "value", "breach"),
    [
        (">", 0.3, False),
        (">=", 0.3, True),
        ("<", 0.3, False),
        ("<=", 0.3, True),
        ("==", 0.3, True),
        ("!=", 0.3, False),
        ("!=", 0.31, True),
    ],
)
def test_operators(op: str, value: float, breach: bool) -> None:
    assert rule(op=op).check({"drift_share": value}).breach is breach


def test_evaluating_the_same_results_twice_changes_nothing(store: FakeStore) -> None:
    rec = Recorder()
    rules = [rule(**{"for": 2}), rule(name="low-acc", metric="accuracy", op="<", threshold=0.8)]
    results = [window(i, drift_share=0.5, accuracy=0.6) for i in range(3)]
    first = run(store, rules, results, [rec], T0 + 3 * HOUR)
    assert [e.kind for e in first] == ["fired", "fired"]
    snapshot = dict(store.alerts), list(store.deliveries)
    for _ in range(3):
        assert run(store, rules, results, [rec], T0 + 3 * HOUR + MINUTE) == []
    assert (dict(store.alerts), list(store.deliveries)) == snapshot
    assert len(rec.sent) == 2


class RacingStore(FakeStore):
    """Both evaluators read "nothing is firing" before either opens an alert."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=10)

    def list_alerts(self, **kw: Any) -> list[Alert]:
        out = super().list_alerts(**kw)
        if kw.get("state") == AlertState.FIRING and kw.get("rule") is None:
            self.barrier.wait()
        return out


def test_racing_evaluators_open_one_alert_and_notify_once() -> None:
    store = RacingStore(4)
    rec = Recorder()
    results = drift(0.5, 0.6)
    events: list[list[AlertEvent]] = []

    def evaluate() -> None:
        events.append(run(store, [rule(**{"for": 2})], results, [rec], T0 + 2 * HOUR))

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.alerts) == 1
    assert sorted(len(e) for e in events) == [0, 0, 0, 1]
    assert rec.events == [("firing", False)]


def test_failed_first_notification_is_retried_on_the_next_evaluation(store: FakeStore) -> None:
    rec = Recorder(fail=True)
    r = rule(cooldown="1h")
    [event] = run(store, [r], drift(0.4), [rec], T0 + HOUR, retries=2)
    assert event.kind == "fired" and event.alert.notified_at is None
    assert [(d.attempt, d.ok, d.status) for d in store.deliveries] == [
        (1, False, "ConnectionError: down"),
        (2, False, "ConnectionError: down"),
    ]
    rec.fail = False
    [retry] = run(store, [r], drift(0.4), [rec], T0 + HOUR + MINUTE)
    assert retry.notified and retry.alert.notified_at == T0 + HOUR + MINUTE
    assert rec.events == [("firing", False)]  # the first that got through: not a reminder
    assert run(store, [r], drift(0.4), [rec], T0 + HOUR + 2 * MINUTE) == []


def test_a_first_notification_in_flight_is_left_to_its_opener(store: FakeStore) -> None:
    rec = Recorder()
    # another evaluator opened it a minute ago and is still sending (or died doing so)
    store.open_alert(
        "churn-drift",
        "drift-high",
        severity="warning",
        message="m",
        window_start=T0,
        window_end=T0 + HOUR,
        details={"opened_at": T0 + HOUR},
    )
    r = rule(cooldown="10m")
    assert run(store, [r], drift(0.5), [rec], T0 + HOUR + MINUTE) == []
    assert rec.sent == []
    [event] = run(store, [r], drift(0.5), [rec], T0 + HOUR + 10 * MINUTE)
    assert event.notified and rec.events == [("firing", False)]


def test_notify_picks_notifiers_by_name(store: FakeStore) -> None:
    a, b = Recorder("a"), Recorder("b")
    rules = [
        rule(name="to-a", notify=["a"]),
        rule(name="to-none", notify=[]),
        rule(name="to-all"),
        rule(name="to-ghost", notify=["ghost", "b"]),
    ]
    events = run(store, rules, drift(0.5), [a, b], T0 + HOUR)
    assert [e.kind for e in events] == ["fired"] * 4
    assert [n.alert.rule for n in a.sent] == ["to-a", "to-all"]
    assert [n.alert.rule for n in b.sent] == ["to-all", "to-ghost"]
    silent = next(e for e in events if e.rule.name == "to-none")
    assert not silent.notified and silent.alert.notified_at == T0 + HOUR


def test_firing_alert_of_a_removed_rule_is_resolved(store: FakeStore) -> None:
    rec = Recorder()
    run(store, [rule(), rule(name="other")], drift(0.5), [rec], T0 + HOUR)
    [event] = run(store, [rule()], drift(0.5), [rec], T0 + HOUR + MINUTE)
    assert event.kind == "resolved" and event.alert.rule == "other"
    assert event.alert.details["resolution"] == "its rule was removed from the monitor"
    assert rec.events[-1] == ("resolved", False)


def test_severity_and_spec_notifiers(store: FakeStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="loopml.alerts")
    r = rule(severity="critical", description="retrain the churn model")
    [event] = run(store, [r], drift(0.5), [LogSpec(name="journal", level="error")], T0 + HOUR)
    assert event.alert.severity == "critical"
    [record] = [r for r in caplog.records if r.name == "loopml.alerts"]
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith("[CRITICAL] churn-drift/drift-high firing: drift_share")
    assert event.deliveries[0].status == "logged"


def test_a_webhook_with_a_missing_secret_fails_and_is_recorded(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    spec = WebhookSpec(name="hook", url="http://127.0.0.1:9/", secret_env="NO_SUCH_SECRET")
    [event] = run(store, [rule()], drift(0.5), [spec], T0 + HOUR)
    [d] = event.deliveries
    assert not d.ok and d.attempt == 1  # a missing secret is not retried
    assert "NO_SUCH_SECRET" in d.status and event.alert.notified_at is None


# --- actions -------------------------------------------------------------------------------------


@pytest.fixture
def clean_actions() -> Iterator[None]:
    before = dict(actions._ACTIONS)
    yield
    actions._ACTIONS.clear()
    actions._ACTIONS.update(before)


@pytest.mark.usefixtures("clean_actions")
def test_actions_run_once_when_the_alert_fires(store: FakeStore) -> None:
    calls: list[tuple[str, str | None]] = []

    @actions.alert_action("retrain-test")
    def retrain(alert: Alert, result: MonitorResult | None) -> str:
        calls.append((alert.rule, result.id if result else None))
        return "queued run 42"

    def broken(alert: Alert, result: MonitorResult | None) -> None:
        raise RuntimeError("no trainer")

    actions.register_action("broken-test", broken)
    r = rule(actions=["retrain-test", "broken-test", "missing-test"])
    [event] = run(store, [r], drift(0.5, 0.6), [], T0 + 2 * HOUR)
    assert calls == [("drift-high", "r1")]
    got = [(d.notifier, d.kind, d.ok, d.status) for d in event.deliveries]
    assert got[0] == ("retrain-test", "action", True, "queued run 42")
    assert got[1] == ("broken-test", "action", False, "RuntimeError: no trainer")
    assert got[2][:3] == ("missing-test", "action", False)
    assert "unknown alert action 'missing-test'" in got[2][3]
    # updates do not run them again
    run(store, [r], drift(0.5, 0.6, 0.7), [], T0 + 3 * HOUR)
    assert len(calls) == 1


@pytest.mark.usefixtures("clean_actions")
def test_actions_are_found_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata
    import sys
    import types

    plugin = types.ModuleType("loopml_test_plugin")
    plugin.page = lambda alert, result: f"paged about {alert.rule}"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "loopml_test_plugin", plugin)
    eps = [
        importlib.metadata.EntryPoint(
            "page-test", "loopml_test_plugin:page", actions.ENTRY_POINT_GROUP
        )
    ]
    monkeypatch.setattr(actions, "_discovered", False)
    monkeypatch.setattr(actions.importlib.metadata, "entry_points", lambda group: eps)
    store = FakeStore()
    [event] = run(store, [rule(actions=["page-test"])], drift(0.5), [], T0 + HOUR)
    assert [(d.notifier, d.ok, d.status) for d in event.deliveries] == [
        ("page-test", True, "paged about drift-high")
    ]
    assert "page-test" in actions.action_names()


def test_register_action_refuses_a_taken_name(clean_actions: None) -> None:
    from loopml.errors import InvalidArgument

    actions.register_action("taken-test", print)
    with pytest.raises(InvalidArgument, match="already registered; pass replace=True"):
        actions.register_action("taken-test", repr)
    actions.register_action("taken-test", repr, replace=True)
    assert actions.get_action("taken-test") is repr
    with pytest.raises(InvalidArgument, match="unknown alert action 'nope'"):
        actions.get_action("nope")


# --- against a real Client -----------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import loopml

    if not hasattr(loopml.Client, "open_alert"):
        pytest.skip("the Client has no alert methods yet")
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    c.create_monitor("churn-drift", {"deployment": "churn"})
    yield c
    c.close()


def test_with_a_real_client_fire_dedup_resolve_and_history(client: Any) -> None:
    rec = Recorder()
    r = rule(cooldown="2h", **{"for": 2})
    assert [e.kind for e in run(client, [r], drift(0.5, 0.6), [rec], T0 + 2 * HOUR)] == ["fired"]
    assert run(client, [r], drift(0.5, 0.6), [rec], T0 + 2 * HOUR) == []  # idempotent
    [upd] = run(client, [r], drift(0.5, 0.6, 0.7), [rec], T0 + 3 * HOUR)
    assert upd.kind == "updated" and upd.alert.occurrences == 2
    [done] = run(client, [r], drift(0.5, 0.6, 0.7, 0.1), [rec], T0 + 4 * HOUR)
    assert done.kind == "resolved"
    [stored] = client.list_alerts(monitor="churn-drift")
    assert stored.state == AlertState.RESOLVED and stored.occurrences == 2
    assert stored.notified_at == T0 + 2 * HOUR and stored.resolved_at == T0 + 4 * HOUR
    history = client.list_alert_deliveries(alert_id=stored.id)
    assert sorted(d.event for d in history) == ["firing", "resolved"]
    assert rec.events == [("firing", False), ("resolved", False)]


def test_with_a_real_client_racing_threads_open_one_alert(client: Any) -> None:
    rec = Recorder()
    results = drift(0.5)
    barrier = threading.Barrier(4, timeout=10)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            barrier.wait()
            run(client, [rule()], results, [rec], T0 + HOUR)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(client.list_alerts(monitor="churn-drift")) == 1
    assert rec.events == [("firing", False)]
