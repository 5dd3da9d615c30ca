"""Input checks of the serving half of the store: deployment names, routes, prediction-log
segments and window profiles.

Each check raises :class:`~loopml.errors.InvalidArgument` with a message that names the bad
value and says what a good one looks like; :class:`~loopml.store.deployments.DeploymentStore`
calls them before touching storage, so every backend refuses the same inputs with the same
words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from loopml.entities import (
    PredictionSegment,
    Route,
    RouteRole,
    TrafficWindow,
    WindowProfile,
    now_ms,
)
from loopml.errors import InvalidArgument
from loopml.store import validation
from loopml.store.registry import _check_text, check_model_name
from loopml.store.uris import parse_model_uri

__all__ = [
    "MAX_ROUTES",
    "MAX_SEGMENT_SPAN_MS",
    "check_config",
    "check_deployment_name",
    "check_model_version",
    "check_profile",
    "check_range",
    "check_route_name",
    "check_routes",
    "check_segment",
    "check_sticky_key",
    "check_traffic",
]

MAX_ROUTES = 16
MAX_ROUTE_NAME_LENGTH = 64
MAX_MODEL_URI_LENGTH = 1_024
MAX_SEGMENT_URI_LENGTH = 4_096
MAX_SEGMENT_MODEL_VERSIONS = 256
#: The longest time a prediction-log segment may span (24 hours). Listing segments of a time
#: range then reads one bounded range of the (project, deployment, start_time) index: a segment
#: that overlaps [start, end] starts between start - 24 h and end.
MAX_SEGMENT_SPAN_MS = 24 * 3_600_000
MAX_WINDOW_SECONDS = 366 * 86_400

_ROUTE_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROUTE_FIELDS = ("name", "model_uri", "role", "weight")
_CANARY_SLACK = 1e-9  # 0.1 + 0.2 + 0.7 is 1.0000000000000002 in floats: still 1


def check_deployment_name(value: object) -> str:
    """A deployment name: the rules of a model name (a display name without ``/``, ``@`` or
    surrounding spaces), e.g. ``churn-api``."""
    name = validation.check_name(value, "deployment name")
    if "/" in name or "@" in name or name != name.strip():
        raise InvalidArgument(
            f"deployment name {name!r:.80} cannot contain '/' or '@' or start or end with a "
            "space; use e.g. 'churn-api'"
        )
    return name


def check_route_name(value: object, what: str = "route name") -> str:
    """A route name: 1 to 64 letters, digits, ``_`` and ``-`` (``primary``, ``canary-v4``)."""
    if not isinstance(value, str) or not _ROUTE_NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"{what} {value!r:.80} is not valid: use 1 to {MAX_ROUTE_NAME_LENGTH} letters, "
            "digits, '_' and '-', e.g. 'primary', 'canary' or 'shadow-v4'"
        )
    return value


def _check_model_uri(value: object, route: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(
            f"model_uri of route {route!r} must be a string such as 'models:/churn/3', got "
            f"{type(value).__name__}"
        )
    if len(value) > MAX_MODEL_URI_LENGTH:
        raise InvalidArgument(
            f"model_uri of route {route!r} is {len(value)} characters long; the limit is "
            f"{MAX_MODEL_URI_LENGTH}"
        )
    try:
        parse_model_uri(value)
    except InvalidArgument as exc:
        raise InvalidArgument(f"route {route!r}: {exc}") from None
    return value.strip()


def _check_weight(value: object, route: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(
            f"weight of route {route!r} must be a number in [0, 1], got "
            f"{type(value).__name__} {value!r:.40}"
        )
    weight = float(value)
    if not math.isfinite(weight) or not 0.0 <= weight <= 1.0:
        raise InvalidArgument(
            f"weight of route {route!r} is {weight}; a weight is a share of traffic from 0 to "
            "1 (0.1 sends a tenth)"
        )
    return weight


def _check_route(value: object, index: int) -> Route:
    """A :class:`Route`, or a dict with its fields (``weight`` optional)."""
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in _ROUTE_FIELDS)
        missing = [k for k in ("name", "model_uri", "role") if k not in value]
        if unknown or missing:
            problem = f"unknown keys {unknown}" if unknown else f"no {', '.join(missing)}"
            raise InvalidArgument(
                f"route {index} has {problem}; a route is a dict with the keys name, model_uri, "
                "role and (optional) weight, or a loopml.Route"
            )
        fields_ = {k: value[k] for k in _ROUTE_FIELDS if k in value}
        value = Route(**fields_)
    if not isinstance(value, Route):
        raise InvalidArgument(
            f"route {index} must be a loopml.Route or a dict, got {type(value).__name__}"
        )
    name = check_route_name(value.name)
    role: object = value.role
    if not isinstance(role, RouteRole):
        allowed = ", ".join(r.value for r in RouteRole)
        raise InvalidArgument(f"route {name!r} has the unknown role {role!r:.40}; use {allowed}")
    return Route(
        name, _check_model_uri(value.model_uri, name), role, _check_weight(value.weight, name)
    )


def check_routes(value: object) -> tuple[Route, ...]:
    """The routes of a deployment: 1 to 16 :class:`Route` s (or dicts) with unique names,
    exactly one ``primary``, and canary weights that add up to at most 1."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidArgument(
            f"routes must be a list of routes, got {type(value).__name__}; e.g. "
            "[Route('primary', 'models:/churn@champion', 'primary')]"
        )
    if not 1 <= len(value) <= MAX_ROUTES:
        raise InvalidArgument(
            f"a deployment has 1 to {MAX_ROUTES} routes, got {len(value)}; give it one "
            "primary route, and canary or shadow routes beside it"
        )
    routes = tuple(_check_route(r, i) for i, r in enumerate(value))
    names = [r.name for r in routes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidArgument(
            f"route names must be unique in a deployment; {', '.join(map(repr, twice))} "
            "appears more than once"
        )
    primaries = [r.name for r in routes if r.role is RouteRole.PRIMARY]
    if len(primaries) != 1:
        got = "none" if not primaries else ", ".join(map(repr, primaries))
        raise InvalidArgument(
            f"a deployment has exactly one primary route, got {got}; make one route "
            "role='primary' and the others 'canary' or 'shadow'"
        )
    canary = sum(r.weight for r in routes if r.role is RouteRole.CANARY)
    if canary > 1.0 + _CANARY_SLACK:
        raise InvalidArgument(
            f"the canary weights add up to {canary:g}, more than all the traffic; they must "
            "add up to at most 1 (the primary gets the rest)"
        )
    return routes


def check_sticky_key(value: object) -> str | None:
    """A sticky key (a request field or header name, a key as for tags), or None."""
    return None if value is None else validation.check_key(value, "sticky_key")


def check_config(value: object) -> dict[str, Any]:
    """A deployment's config: a JSON-ready dict (a deep copy), ``{}`` for None."""
    return {} if value is None else validation.check_json_dict(value, "deployment config")


def check_range(start: object, end: object) -> tuple[int | None, int | None]:
    """A time range in ms since the epoch, either side None (open), ``start`` not after
    ``end``."""
    lo = None if start is None else validation.check_int(start, "start", minimum=0)
    hi = None if end is None else validation.check_int(end, "end", minimum=0)
    if lo is not None and hi is not None and lo > hi:
        raise InvalidArgument(f"start {lo} is after end {hi}; swap them")
    return lo, hi


def _check_names(
    value: object, what: str, check: Callable[[object], str], limit: int
) -> tuple[str, ...]:
    """A tuple of names (sorted, without repeats) from a list or tuple of strings."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"{what} must be a tuple of strings, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidArgument(f"{what} holds {len(value)} names; the limit is {limit}")
    return tuple(sorted({check(v) for v in value}))


def check_model_version(value: object, what: str = "model_version") -> str:
    """A model version as ``"<model name>/<version>"``, e.g. ``"churn/3"``, or
    ``"<name>/local"`` for a model served from a folder rather than the registry."""
    name, _, number = value.rpartition("/") if isinstance(value, str) else ("", "", "")
    numbered = number.isascii() and number.isdigit() and int(number) >= 1
    if not (name and (numbered or number == "local")):
        raise InvalidArgument(
            f"{what} {value!r:.80} is not valid: write the model's name, '/' and the version "
            "number, e.g. 'churn/3' (or 'churn/local' for a model served from a folder)"
        )
    check_model_name(name)
    return str(value)


def check_segment(segment: object) -> PredictionSegment:
    """A :class:`~loopml.entities.PredictionSegment` as the store keeps it: checked fields,
    ``routes`` and ``model_versions`` sorted without repeats, ``created_at`` 0 made now. It
    spans at most :data:`MAX_SEGMENT_SPAN_MS`."""
    if not isinstance(segment, PredictionSegment):
        raise InvalidArgument(f"expected a PredictionSegment, got {type(segment).__name__}")
    s = segment
    start = validation.check_int(s.start_time, "segment start_time", minimum=0)
    end = validation.check_int(s.end_time, "segment end_time", minimum=0)
    if end < start:
        raise InvalidArgument(
            f"segment end_time {end} is before its start_time {start}; they are the times of "
            "the earliest and the latest prediction in the file"
        )
    if end - start > MAX_SEGMENT_SPAN_MS:
        raise InvalidArgument(
            f"segment spans {(end - start) / 3_600_000:.1f} hours; a segment spans at most 24 "
            "hours (start a new file at least once a day)"
        )
    digest = s.digest
    if digest != "":
        validation.check_sha256(digest, "segment digest")
    return replace(
        s,
        id=validation.check_id(s.id, "segment id"),
        project_id=validation.check_name(s.project_id, "project id"),
        deployment=check_deployment_name(s.deployment),
        start_time=start,
        end_time=end,
        rows=validation.check_int(s.rows, "segment rows", minimum=0),
        uri=_check_text(
            s.uri, "segment uri", MAX_SEGMENT_URI_LENGTH, allow_empty=False, one_line=True
        ),
        size_bytes=validation.check_int(s.size_bytes, "segment size_bytes", minimum=0),
        routes=_check_names(s.routes, "segment routes", check_route_name, MAX_ROUTES),
        model_versions=_check_names(
            s.model_versions,
            "segment model_versions",
            check_model_version,
            MAX_SEGMENT_MODEL_VERSIONS,
        ),
        created_at=validation.check_int(s.created_at, "segment created_at", minimum=0) or now_ms(),
    )


def _check_window(start: object, seconds: object) -> tuple[int, int]:
    """A window's start (ms) and length (s): the start a multiple of the length."""
    length = validation.check_int(seconds, "window_seconds", minimum=1)
    if length > MAX_WINDOW_SECONDS:
        raise InvalidArgument(
            f"window_seconds {length} is longer than a year; the limit is {MAX_WINDOW_SECONDS}"
        )
    begin = validation.check_int(start, "window_start", minimum=0)
    if begin % (length * 1000):
        aligned = begin - begin % (length * 1000)
        raise InvalidArgument(
            f"window_start {begin} is not aligned to window_seconds {length}; a window starts "
            f"at a multiple of its length ({aligned} here)"
        )
    return begin, length


def check_profile(profile: object) -> WindowProfile:
    """A :class:`~loopml.entities.WindowProfile` as the store keeps it: checked fields, a deep
    copy of ``profile``, ``created_at`` 0 made now. ``window_start`` is a multiple of
    ``window_seconds`` (in ms)."""
    if not isinstance(profile, WindowProfile):
        raise InvalidArgument(f"expected a WindowProfile, got {type(profile).__name__}")
    p = profile
    start, seconds = _check_window(p.window_start, p.window_seconds)
    return replace(
        p,
        id=validation.check_id(p.id, "window profile id"),
        project_id=validation.check_name(p.project_id, "project id"),
        deployment=check_deployment_name(p.deployment),
        route=check_route_name(p.route),
        model_version=check_model_version(p.model_version),
        window_start=start,
        window_seconds=seconds,
        rows=validation.check_int(p.rows, "window profile rows", minimum=0),
        profile=validation.check_json_dict(p.profile, "window profile"),
        created_at=validation.check_int(p.created_at, "window profile created_at", minimum=0)
        or now_ms(),
    )


def check_traffic(window: object) -> TrafficWindow:
    """A :class:`~loopml.entities.TrafficWindow` as the store keeps it: checked fields,
    ``created_at`` 0 made now. ``route`` and ``model_version`` are both empty (requests refused
    before routing) or both valid; the errors are at most the requests."""
    if not isinstance(window, TrafficWindow):
        raise InvalidArgument(f"expected a TrafficWindow, got {type(window).__name__}")
    w = window
    start, seconds = _check_window(w.window_start, w.window_seconds)
    if (w.route == "") != (w.model_version == ""):
        raise InvalidArgument(
            "a traffic window names both a route and a model version, or neither (requests "
            f"refused before routing); got route {w.route!r:.80} and model_version "
            f"{w.model_version!r:.80}"
        )
    requests = validation.check_int(w.requests, "traffic requests", minimum=0)
    client = validation.check_int(w.client_errors, "traffic client_errors", minimum=0)
    server = validation.check_int(w.server_errors, "traffic server_errors", minimum=0)
    if client + server > requests:
        raise InvalidArgument(
            f"a traffic window counts {client} client and {server} server errors among "
            f"{requests} requests; errors are requests too, so they add up to at most requests"
        )
    return replace(
        w,
        id=validation.check_id(w.id, "traffic window id"),
        project_id=validation.check_name(w.project_id, "project id"),
        deployment=check_deployment_name(w.deployment),
        route="" if w.route == "" else check_route_name(w.route),
        model_version="" if w.model_version == "" else check_model_version(w.model_version),
        window_start=start,
        window_seconds=seconds,
        requests=requests,
        client_errors=client,
        server_errors=server,
        created_at=validation.check_int(w.created_at, "traffic window created_at", minimum=0)
        or now_ms(),
    )
