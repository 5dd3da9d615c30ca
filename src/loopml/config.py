"""Every loopml knob in one place: :class:`Settings`, read from ``LOOPML_*`` environment variables.

With no configuration at all, loopml keeps its data in a ``.loopml/`` folder: the nearest one found
upward from the working directory (like git finds ``.git``), or a new one in the working directory
on first write (``loopml init`` creates it up front). It holds ``loopml.db`` (SQLite) and
``artifacts/``.

=============================  ===========================================================
variable                       meaning (default)
=============================  ===========================================================
``LOOPML_HOME``                the ``.loopml`` folder to use (found upward from the cwd)
``LOOPML_TRACKING_URI``        metadata store: a folder, ``sqlite:///file.db``,
                               ``postgresql://user@host/db``, ``memory://`` (the home's SQLite)
``LOOPML_ARTIFACT_URI``        artifact store: a folder or any fsspec URL such as
                               ``s3://bucket/prefix`` (the home's ``artifacts/``)
``LOOPML_PROJECT``             project for new runs (``default``)
``LOOPML_USER``                who runs are attributed to (the login name)
``LOOPML_FLUSH_INTERVAL``      seconds between background metric flushes (1.0)
``LOOPML_BUFFER_MAX_POINTS``   buffered points that force a flush (10000)
``LOOPML_HEARTBEAT_INTERVAL``  seconds between run heartbeats (30)
``LOOPML_HEARTBEAT_TIMEOUT``   seconds without heartbeat before a run counts as dead (300)
``LOOPML_SQLITE_BUSY_TIMEOUT`` seconds a SQLite writer waits for the lock (60)
``LOOPML_SQLITE_SYNCHRONOUS``  ``normal``: a commit survives a crash of the process;
                               ``full``: it also survives power loss (normal)
``LOOPML_CAPTURE_PACKAGES``    record installed packages with each run (true)
``LOOPML_S3_ENDPOINT_URL``     endpoint for S3-compatible stores (MinIO, moto) (unset)
=============================  ===========================================================
"""

from __future__ import annotations

import getpass
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loopml.errors import InvalidArgument

__all__ = ["HOME_DIRNAME", "Settings", "find_home", "get_settings"]

log = logging.getLogger("loopml")
HOME_DIRNAME = ".loopml"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


class Settings(BaseSettings):
    """loopml settings; each field is the ``LOOPML_<FIELD>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="LOOPML_", extra="ignore")

    home: Path | None = None
    tracking_uri: str | None = None
    artifact_uri: str | None = None
    #: An API token of a ``loopml server`` with ``--auth`` (sent by the REST store).
    tracking_token: str | None = Field(default=None, repr=False)
    project: str = "default"
    user: str = Field(default_factory=_default_user)
    flush_interval: float = Field(default=1.0, gt=0, le=3600)
    buffer_max_points: int = Field(default=10_000, ge=1, le=10_000_000)
    heartbeat_interval: float = Field(default=30.0, gt=0)
    heartbeat_timeout: float = Field(default=300.0, gt=0)
    sqlite_busy_timeout: float = Field(default=60.0, ge=0)
    sqlite_synchronous: Literal["normal", "full"] = "normal"

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    capture_packages: bool = True
    s3_endpoint_url: str | None = None

    def resolved_home(self, *, start: Path | None = None) -> Path:
        """The ``.loopml`` folder: ``LOOPML_HOME``, else the nearest one upward, else
        ``./.loopml``."""
        if self.home is not None:
            return self.home.expanduser().resolve()
        found = find_home(start)
        return found if found is not None else (start or Path.cwd()).resolve() / HOME_DIRNAME

    def resolved_tracking_uri(self) -> str:
        """The metadata store URI (the home's SQLite file by default)."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{self.resolved_home() / 'loopml.db'}"

    def resolved_artifact_uri(self) -> str:
        """The artifact store URI (the home's ``artifacts/`` folder by default)."""
        if self.artifact_uri:
            return self.artifact_uri
        return str(self.resolved_home() / "artifacts")


def find_home(start: Path | None = None) -> Path | None:
    """The nearest ``.loopml`` folder at or above ``start`` (the cwd), or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if candidate.is_dir():
            return candidate
    return None


@lru_cache(maxsize=1)
def _cached(env_key: tuple[tuple[str, str], ...], cwd: str) -> Settings:
    from pydantic import ValidationError

    known = {f"LOOPML_{name.upper()}" for name in Settings.model_fields}
    for key, _ in env_key:
        # LOOPML_SERVER_* are `loopml server`'s own (loopml.server.settings), checked there.
        if key not in known and not key.startswith("LOOPML_SERVER_"):
            log.warning("loopml: ignoring unknown setting %s (see docs/configuration.md)", key)
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"LOOPML_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidArgument(f"bad loopml setting: {problems}") from exc


def get_settings() -> Settings:
    """Settings from the current environment (cached until a ``LOOPML_*`` variable changes)."""
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("LOOPML_")))
    return _cached(env_key, os.getcwd())
