"""The Containerfile of a model image, and the image references it accepts.

Values that land in the file (labels, the endpoint name) are reduced to safe characters, so
that nothing a model or its URI is named can add an instruction or expand a variable.
"""

from __future__ import annotations

import json
import re
import sys

from loopml.errors import InvalidArgument

__all__ = ["MODELS_DIR", "PORT", "UID", "VENV_DIR", "check_tag", "endpoint_name", "render"]

MODELS_DIR = "/models"
"""The image holds the model folder in ``/models/<endpoint>`` (the server names an
unregistered model after its folder)."""
VENV_DIR = "/opt/loopml"
"""The image's virtual environment."""
PORT = 8080
"""The port the server listens on unless ``PORT`` is set."""
UID = 10001
"""The non-root user (and group) the server runs as."""
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_REFERENCE = rf"(?:{_HOST}(?::[0-9]{{1,5}})?/)?{_NAME}(?:/{_NAME})*"
_TAG = re.compile(rf"{_REFERENCE}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?")
_BASE = re.compile(
    rf"{_REFERENCE}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_@:/.+= -]")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def check_tag(tag: str, *, what: str = "image tag") -> str:
    """``tag`` if it is an image reference (``churn:3``, ``registry.example:5000/ml/churn:3``).

    Raises:
        InvalidArgument: it is not (an upper-case name, a space, a leading ``-``...).
    """
    pattern = _BASE if what == "base image" else _TAG
    if not isinstance(tag, str) or len(tag) > 255 or not pattern.fullmatch(tag):
        raise InvalidArgument(
            f"{tag!r:.200} is not a valid {what}: write [REGISTRY[:PORT]/]NAME[:TAG] with a "
            "lower-case NAME, such as churn:3 or registry.example.com/ml/churn:3"
        )
    return tag


def endpoint_name(name: str) -> str:
    """``name`` made a safe folder and endpoint name (``churn model`` -> ``churn_model``)."""
    return _NOT_NAME.sub("_", name).lstrip(".-_")[:100] or "model"


def render(
    *,
    base_image: str,
    model_uri: str,
    endpoint: str,
    manifest_digest: str,
    wheelhouse_digest: str,
    trusted: bool,
) -> str:
    """The Containerfile: install from wheels/ (no network), copy model/, run as uid 10001.

    Args:
        base_image: the FROM image (checked with :func:`check_tag`).
        model_uri: the model served (a label and a comment).
        endpoint: the name the server gives the endpoint (see :func:`endpoint_name`).
        manifest_digest: the sha256 of the model's manifest (a label).
        wheelhouse_digest: the sha256 of ``requirements.lock``, a label set before the install
            step, so that a builder's layer cache reuses that step exactly while the wheels
            are the same (not every builder hashes a bind mount's files).
        trusted: serve with ``--trusted`` (a flavor that runs stored code on load).
    """
    from loopml._version import __version__

    check_tag(base_image, what="base image")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    check = (
        f"import sys; v = '%d.%d' % sys.version_info[:2]; sys.exit(None if v == '{version}' "
        f"else 'the base image has Python ' + v + ', but the wheels were built for "
        f"{version}: build with a base image of Python {version} (--base-image)')"
    )
    health = (
        "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % "
        f"os.environ.get('PORT', '{PORT}'), timeout=4)"
    )
    labels = {
        "org.opencontainers.image.title": endpoint,
        "org.opencontainers.image.description": f"loopml serve {model_uri}",
        "io.loopml.model.uri": model_uri,
        "io.loopml.model.manifest-digest": f"sha256:{manifest_digest}",
        "io.loopml.version": __version__,
    }
    shown = _UNSAFE.sub("_", model_uri)
    endpoint = endpoint_name(endpoint)
    folder = f"{MODELS_DIR}/{endpoint}"
    entrypoint = [f"{VENV_DIR}/bin/python", "-m", "loopml.serving.image", folder]
    entrypoint += ["--name", endpoint, *(["--trusted"] if trusted else [])]
    label_lines = " \\\n      ".join(f"{k}={_quote(v)}" for k, v in labels.items())
    return f"""\
# Written by loopml {__version__} (loopml build-image) to serve {shown}.
# Everything installs from wheels/ with no network: build with --network none, e.g.
#   podman build --format docker --network none -t IMAGE .
# (Docker needs BuildKit, its default builder since 23.0, for RUN --mount.)
FROM {base_image}

LABEL io.loopml.wheelhouse="sha256:{wheelhouse_digest}"

RUN --mount=type=bind,source=wheels,target=/wheels \\
    python3 -c "{check}" \\
 && python3 -m venv {VENV_DIR} \\
 && {VENV_DIR}/bin/python -m pip install --no-index --find-links /wheels --no-cache-dir \\
      --disable-pip-version-check --require-hashes -r /wheels/requirements.lock \\
 && {VENV_DIR}/bin/python -m pip check --disable-pip-version-check \\
 && useradd --uid {UID} --user-group --no-log-init --create-home --home-dir /home/loopml \\
      --shell /usr/sbin/nologin loopml \\
 && mkdir -p /data && chown {UID}:{UID} /data

COPY model/ {folder}/

LABEL {label_lines}

ENV PATH={VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    HOME=/home/loopml \\
    PORT={PORT}
USER {UID}:{UID}
WORKDIR /data
EXPOSE {PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD {json.dumps([f"{VENV_DIR}/bin/python", "-c", health])}
ENTRYPOINT {json.dumps(entrypoint)}
"""


def _quote(value: str) -> str:
    """A Containerfile string: only safe characters (no ``$`` to expand, no newline)."""
    return json.dumps(_UNSAFE.sub("_", value))
