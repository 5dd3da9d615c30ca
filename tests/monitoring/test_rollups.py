"""Daily roll-ups: a day's window fragments merged into one profile per route and version once
the day is over, read back for whole days of long windows, never counted twice."""

from __future__ import annotations

from mon_helpers import HOUR, T0, LogFn, make_frame

import loopml
from loopml.monitoring import create_monitor, run_monitor
from loopml.monitoring.rollups import DAY, DAY_SECONDS, roll_up_days, window_fragments

DAY0 = T0 // DAY * DAY


def _log_days(log: LogFn) -> None:
    for day in range(2):
        for h in (1, 7, 13):
            log(make_frame(100, seed=day * 24 + h), DAY0 + day * DAY + h * HOUR)
    log(make_frame(100, seed=99), DAY0 + 2 * DAY + HOUR)  # the day still going on


def test_ended_days_are_rolled_up_once(mon_client: loopml.Client, log_predictions: LogFn) -> None:
    _log_days(log_predictions)
    create_monitor(mon_client, "hourly", {"deployment": "churn", "window": "1h"})
    now = DAY0 + 2 * DAY + 2 * HOUR  # day 2 is not over: no roll-up for it
    run_monitor(mon_client, "hourly", now=now)
    days = mon_client.list_window_profiles("churn", window_seconds=DAY_SECONDS)
    assert [(d.window_start, d.rows) for d in days] == [(DAY0, 300), (DAY0 + DAY, 300)]
    assert roll_up_days(mon_client, "churn", {DAY0, DAY0 + DAY}, now=now) == 0  # stored once

    # a day-long window reads one roll-up, not the three fragments; same numbers
    parts = window_fragments(mon_client, "churn", DAY0, DAY0 + DAY)
    assert [p.window_seconds for p in parts] == [DAY_SECONDS]
    create_monitor(mon_client, "daily", {"deployment": "churn", "window": "1d"})
    results = run_monitor(mon_client, "daily", now=now).results
    assert [r.metrics["rows"] for r in results] == [300, 300]
    # the hourly windows were not double counted either
    hourly = mon_client.list_monitor_results("hourly")
    assert sum(r.metrics["rows"] for r in hourly) == 700


def test_a_partial_day_mixes_roll_ups_and_fragments(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    _log_days(log_predictions)
    now = DAY0 + 3 * DAY + 2 * HOUR
    assert roll_up_days(mon_client, "churn", {DAY0, DAY0 + DAY, DAY0 + 2 * DAY}, now=now) == 3
    start = DAY0 + 6 * HOUR  # from the middle of day 0 to the end of day 2
    parts = window_fragments(mon_client, "churn", start, DAY0 + 3 * DAY)
    assert sorted(p.window_seconds for p in parts) == [300, 300, DAY_SECONDS, DAY_SECONDS]
    assert sum(p.rows for p in parts) == 200 + 300 + 100


def test_count_windows_skip_roll_ups(mon_client: loopml.Client, log_predictions: LogFn) -> None:
    _log_days(log_predictions)
    now = DAY0 + 3 * DAY
    roll_up_days(mon_client, "churn", {DAY0, DAY0 + DAY}, now=now)
    create_monitor(mon_client, "counted", {"deployment": "churn", "window_rows": 200})
    results = run_monitor(mon_client, "counted", now=now).results
    assert [r.metrics["rows"] for r in results] == [200, 200, 200]
