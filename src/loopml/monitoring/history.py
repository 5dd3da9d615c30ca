"""A monitor's history read back from the store: its results, alerts and the profiles of one
window, put together as a report (``loopml monitor report``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument
from loopml.monitoring.evaluate import (
    Window,
    _on_edges,
    _reference,
    _Sources,
    stored_profile,
    window_profile,
)
from loopml.monitoring.spec import MonitorSpec

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import MonitorResult
    from loopml.stats import DatasetProfile

__all__ = ["build_report", "window_profiles"]


def build_report(
    client: Client,
    name: str,
    *,
    window_start: int | None = None,
    last: int = 48,
    project: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The HTML report and its JSON form for a monitor's window (default: the latest), with
    the last ``last`` windows in its charts.

    Raises:
        MonitorNotFound: no such monitor.
        InvalidArgument: the monitor has no result for ``window_start`` (or none at all).
    """
    from loopml.monitoring.report import monitor_report_html, monitor_report_json

    monitor = client.get_monitor(name, project=project)
    results = client.list_monitor_results(name, limit=last, project=project)
    if not results:
        raise InvalidArgument(
            f"monitor {name!r} has no results yet; run it first: loopml monitor run {name}"
        )
    window = results[-1]
    if window_start is not None:
        found = client.list_monitor_results(name, start=window_start, limit=None, project=project)
        match = [r for r in found if r.window_start == window_start]
        if not match:
            raise InvalidArgument(
                f"monitor {name!r} has no window starting at {window_start}; windows start at "
                f"multiples of its window length (see loopml monitor show {name})"
            )
        window = match[0]
        if window not in results:
            results = [*results, window]
    reference, current = window_profiles(client, name, window, project=project)
    alerts = client.list_alerts(monitor=name, limit=200, project=project)
    html = monitor_report_html(
        monitor, results, window=window, reference=reference, current=current, alerts=alerts
    )
    return html, monitor_report_json(monitor, results, window=window, alerts=alerts)


def window_profiles(
    client: Client, name: str, result: MonitorResult, *, project: str | None = None
) -> tuple[DatasetProfile | None, DatasetProfile | None]:
    """The reference and current profiles a stored result compared (None where gone)."""

    spec = MonitorSpec.parse(client.get_monitor(name, project=project).spec)
    src = _Sources(client, spec, project)
    if spec.deployment is not None:
        current, versions = window_profile(
            client, spec, Window(result.window_start, result.window_end), project=project
        )
        version = versions.most_common(1)[0][0] if versions else None
        reference, _ = _reference(src, version)
    else:
        reference, _ = _reference(src, None)
        uri = result.details.get("dataset_version")
        current = None
        if isinstance(uri, str):
            current = stored_profile(client, client.get_dataset_version(uri, project=project))
    if current is not None and reference is not None:
        current = _on_edges(current, reference)
    return reference, current
