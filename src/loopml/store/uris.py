"""The URIs that name stored objects, parsed where the store can check them.

``models:/<name>/<version>``, ``models:/<name>@<alias>`` and ``models:/<name>/latest`` name
model versions (see :func:`parse_model_uri`). The client resolves them
(:meth:`~loopml.Client.resolve_model_uri`); the store checks their form wherever it keeps one,
such as the routes of a deployment.
"""

from __future__ import annotations

import re

from loopml.errors import InvalidArgument
from loopml.store.registry import check_alias, check_model_name

__all__ = ["parse_model_uri"]

_MODEL_URI = re.compile(r"models:/+(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))/?")


def parse_model_uri(uri: str) -> tuple[str, int | None, str | None, bool]:
    """Split a model URI into ``(name, version, alias, latest)``; exactly one of ``version``,
    ``alias`` and ``latest`` is set.

    ``models:/churn/3`` gives ``("churn", 3, None, False)``, ``models:/churn@champion``
    ``("churn", None, "champion", False)`` and ``models:/churn/latest`` (or ``@latest``)
    ``("churn", None, None, True)``.

    Raises:
        InvalidArgument: not a model URI, or a bad name, version or alias.
    """
    match = _MODEL_URI.fullmatch(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise InvalidArgument(
            f"{uri!r:.200} is not a model URI; write models:/NAME/VERSION, models:/NAME@ALIAS "
            "or models:/NAME/latest"
        )
    name = check_model_name(match.group("name"))
    version, alias = match.group("version"), match.group("alias")
    selector = version if version is not None else alias
    if selector is not None and selector.lower() == "latest":
        return name, None, None, True
    if alias is not None:
        return name, None, check_alias(alias), False
    if version is not None and version.isascii() and version.isdigit() and int(version) >= 1:
        return name, int(version), None, False
    raise InvalidArgument(
        f"model URI {uri!r:.200} names version {version!r}; a version is a number from 1 or "
        "'latest' (models:/NAME/3, models:/NAME/latest), and an alias follows '@' "
        "(models:/NAME@champion)"
    )
