"""Input checks shared by every store: names, keys, values, ids, limits.

Each check raises :class:`~loopml.errors.InvalidArgument` with a message that names the bad value
and says what a good one looks like. Stores call these before touching storage, so every backend
(and every entry point above it: API, CLI, HTTP) refuses the same inputs with the same words.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from typing import Any

from loopml.entities import Metric, Param, Tag
from loopml.errors import InvalidArgument, ParamConflict

MAX_NAME_LENGTH = 256
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6_000
MAX_TAG_VALUE_LENGTH = 8_000
MAX_BATCH_SIZE = 1_000_000
MAX_RESULTS = 50_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_KEY_RE = re.compile(r"^[\w\-. /:]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_GOOD_KEYS: set[str] = set()  # keys already checked: the hot path of log_metric


def check_name(value: object, what: str, *, allow_empty: bool = False) -> str:
    """A display name: a string of 1..256 printable characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} {value!r:.80}")
    if not value.strip() and not allow_empty:
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if _CONTROL_RE.search(value):
        raise InvalidArgument(f"{what} {value!r:.80} contains control characters; remove them")
    return value


def check_key(value: object, what: str) -> str:
    """A metric, param or tag key: letters, digits, ``_ - . / : `` and spaces, at most 250."""
    if type(value) is str and value in _GOOD_KEYS:
        return value
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} {value!r:.80}")
    if not value:
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidArgument(
            f"{what} {value[:40]!r}... is {len(value)} characters long; the limit is "
            f"{MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(value) or value != value.strip() or ".." in value.split("/"):
        raise InvalidArgument(
            f"{what} {value!r:.80} is not a valid key: use letters, digits, '_', '-', '.', '/', "
            "':' and inner spaces (e.g. 'val/loss')"
        )
    if len(_GOOD_KEYS) < 100_000:
        _GOOD_KEYS.add(value)
    return value


def check_run_id(value: object) -> str:
    """A run id: 32 lowercase hex characters, as :func:`uuid.uuid4().hex` makes."""
    if not isinstance(value, str):
        raise InvalidArgument(f"run id must be a string, got {type(value).__name__} {value!r:.80}")
    if not _ID_RE.match(value):
        raise InvalidArgument(
            f"run id {value!r:.80} is malformed: a run id is 32 lowercase hex characters "
            "(see `loopml runs list`)"
        )
    return value


def check_int(value: object, what: str, *, minimum: int = INT64_MIN) -> int:
    """A 64-bit integer (bools refused: ``True`` as a step is a bug, not a 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif _is_numpy_int(value):
            value = operator.index(value)  # type: ignore[arg-type]
        else:
            raise InvalidArgument(
                f"{what} must be an integer, got {type(value).__name__} {value!r:.80}"
            )
    if not minimum <= value <= INT64_MAX:
        raise InvalidArgument(f"{what} {value} is out of range [{minimum}, {INT64_MAX}]")
    return value


def _is_numpy_int(value: object) -> bool:
    """A NumPy integer scalar (``np.int64(3)``, what ``np.arange`` yields)."""
    dtype = getattr(value, "dtype", None)
    return (
        dtype is not None and getattr(dtype, "kind", "") in "iu" and getattr(value, "ndim", 1) == 0
    )


def check_metric_value(value: object, key: str) -> float:
    """A real number (int, float, numpy scalar); NaN and +/-inf are allowed and kept."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise InvalidArgument(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.80}; "
            "log text with log_text or set_tag"
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgument(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.80}"
        ) from exc


def check_metric(metric: object) -> Metric:
    """A :class:`Metric` with a valid key, a float value, an int step and timestamp."""
    if not isinstance(metric, Metric):
        raise InvalidArgument(f"expected a Metric, got {type(metric).__name__}")
    key = check_key(metric.key, "metric key")
    value = metric.value
    if type(value) is not float:
        value = check_metric_value(value, key)
    step = metric.step
    if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
        step = check_int(step, f"step of metric {key!r}")
    ts = metric.timestamp
    if type(ts) is not int or not 0 <= ts <= INT64_MAX:
        ts = check_int(ts, f"timestamp of metric {key!r}", minimum=0)
    if value is metric.value and step is metric.step and ts is metric.timestamp:
        return metric
    return Metric(key, value, step, ts)


def check_param(param: object) -> Param:
    """A :class:`Param` with a valid key and a string value of at most 6,000 characters."""
    if not isinstance(param, Param):
        raise InvalidArgument(f"expected a Param, got {type(param).__name__}")
    check_key(param.key, "param key")
    if not isinstance(param.value, str):
        raise InvalidArgument(
            f"param {param.key!r} value must be a string at the store level, got "
            f"{type(param.value).__name__}"
        )
    if len(param.value) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidArgument(
            f"param {param.key!r} value is {len(param.value)} characters; the limit is "
            f"{MAX_PARAM_VALUE_LENGTH} (log long values with log_text or log_dict)"
        )
    return param


def check_tag(tag: object) -> Tag:
    """A :class:`Tag` with a valid key and a string value of at most 8,000 characters."""
    if not isinstance(tag, Tag):
        raise InvalidArgument(f"expected a Tag, got {type(tag).__name__}")
    check_key(tag.key, "tag key")
    if not isinstance(tag.value, str):
        raise InvalidArgument(f"tag {tag.key!r} value must be a string")
    if len(tag.value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidArgument(
            f"tag {tag.key!r} value is {len(tag.value)} characters; the limit is "
            f"{MAX_TAG_VALUE_LENGTH}"
        )
    return tag


def check_batch(
    metrics: Iterable[object], params: Iterable[object], tags: Iterable[object]
) -> tuple[list[Metric], list[Param], list[Tag]]:
    """Check a whole batch; a batch that repeats a param key with two values is refused."""
    ms = [check_metric(m) for m in metrics]
    ps = [check_param(p) for p in params]
    ts = [check_tag(t) for t in tags]
    if len(ms) + len(ps) + len(ts) > MAX_BATCH_SIZE:
        raise InvalidArgument(f"a batch holds at most {MAX_BATCH_SIZE} items")
    seen: dict[str, str] = {}
    for p in ps:
        if seen.setdefault(p.key, p.value) != p.value:
            raise ParamConflict(
                f"param {p.key!r} appears twice in one batch with values {seen[p.key]!r} and "
                f"{p.value!r}; params are logged once"
            )
    return ms, ps, ts


def check_mapping(value: object, what: str) -> Mapping[str, Any]:
    """A mapping (dict) argument."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{what} must be a dict, got {type(value).__name__}")
    return value


def check_max_results(value: object) -> int:
    """A page size between 1 and 50,000."""
    n = check_int(value, "max_results")
    if not 1 <= n <= MAX_RESULTS:
        raise InvalidArgument(f"max_results must be between 1 and {MAX_RESULTS}, got {n}")
    return n


# --- datasets ----------------------------------------------------------------------------------

MAX_SOURCE_LENGTH = 16_384
MIN_DIGEST_PREFIX = 8
ROLES = ("train", "validation", "test", "evaluation", "reference")

_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_HEX_PREFIX_RE = re.compile(r"^[0-9a-fA-F]{8,64}$")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def check_dataset_name(value: object) -> str:
    """A dataset name: a display name (see :func:`check_name`) without ``/``, ``@`` or
    surrounding spaces, so that ``datasets:/<name>/<version>`` and ``datasets:/<name>@latest``
    parse back to it."""
    name = check_name(value, "dataset name")
    if "/" in name or "@" in name or name != name.strip():
        raise InvalidArgument(
            f"dataset name {name!r:.80} cannot contain '/' or '@' or start or end with a space "
            "(they separate the parts of a datasets:/ URI); use e.g. 'churn-train'"
        )
    return name


def check_sha256(value: object, what: str) -> str:
    """A sha256 hex digest: 64 lowercase hex characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} {value!r:.80}")
    if not _HEX64_RE.match(value):
        raise InvalidArgument(
            f"{what} {value!r:.80} is not a sha256 digest: 64 lowercase hex characters "
            "(hashlib.sha256(...).hexdigest())"
        )
    return value


def check_id(value: object, what: str) -> str:
    """An object id: 32 lowercase hex characters (``what`` names it in the message)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} {value!r:.80}")
    if not _ID_RE.match(value):
        raise InvalidArgument(f"{what} {value!r:.80} is malformed: 32 lowercase hex characters")
    return value


def check_source(value: object) -> str:
    """Where a dataset came from: free text (a path, a URL, ``sql: <query>``) up to 16 KiB."""
    if not isinstance(value, str):
        raise InvalidArgument(
            f"dataset source must be a string, got {type(value).__name__} {value!r:.80}"
        )
    if len(value) > MAX_SOURCE_LENGTH:
        raise InvalidArgument(
            f"dataset source is {len(value)} characters long; the limit is {MAX_SOURCE_LENGTH} "
            "(store a long query as a file and name the file)"
        )
    if "\x00" in value:
        raise InvalidArgument("dataset source contains a NUL character; remove it")
    return value


def check_role(value: object) -> str:
    """A dataset role: ``train``, ``validation``, ``test``, ``evaluation``, ``reference`` or
    a name of your own matching ``[a-z][a-z0-9_-]{0,31}``."""
    if not isinstance(value, str) or not _ROLE_RE.match(value):
        raise InvalidArgument(
            f"dataset role {value!r:.80} is not valid: use one of {', '.join(ROLES)} or a "
            "lowercase name matching [a-z][a-z0-9_-]{0,31}"
        )
    return value


def check_json_dict(value: object, what: str) -> dict[str, Any]:
    """A JSON-ready dict (string keys; str, int, finite float, bool, None, list and dict values).

    Returns a deep copy, so later changes to the caller's dict do not reach the store.
    """
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{what} must be a dict, got {type(value).__name__}")
    return _json_copy(value, what)  # type: ignore[no-any-return]


def _json_copy(value: object, where: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidArgument(f"{where} is {value}, which JSON cannot hold; use None")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(
                    f"{where} has the key {key!r:.40} of type {type(key).__name__}; JSON keys "
                    "are strings"
                )
            out[key] = _json_copy(item, f"{where}[{key!r:.40}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_copy(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise InvalidArgument(
        f"{where} holds a {type(value).__name__} ({value!r:.60}), which is not JSON; convert it "
        "to str, int, float, bool, None, list or dict"
    )


def check_dataset_version(value: object) -> int | str | None:
    """A dataset version selector: ``None`` for ``"latest"``, an int for a version number, or
    a lowercase digest prefix.

    Accepts a positive int, a decimal string of at most 7 digits (``"3"``), ``"latest"``, or a
    prefix of the content digest of 8 to 64 hex characters (``"9f86d081"``). Eight or more
    digits are a digest prefix, not a version number.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "latest":
            return None
        if text.isascii() and text.isdigit() and len(text) < MIN_DIGEST_PREFIX:
            value = int(text)
        elif _HEX_PREFIX_RE.match(text):
            return text.lower()
        else:
            raise InvalidArgument(
                f"dataset version {value!r:.80} is not valid: use a number (3), 'latest', or "
                f"at least {MIN_DIGEST_PREFIX} hex characters of the digest"
            )
    number = check_int(value, "dataset version", minimum=1)
    return number
