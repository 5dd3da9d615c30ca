"""``loopml server``'s settings: every one a ``LOOPML_SERVER_*`` environment variable, and a
``loopml server`` option that sets it (so that several worker processes read the same)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOCAL_HOSTS", "ServerSettings"]

#: The addresses of single-user mode: a server bound to one of them needs no login.
LOCAL_HOSTS = frozenset(("127.0.0.1", "localhost", "::1"))


class ServerSettings(BaseSettings):
    """The settings of one ``loopml server`` (each field is ``LOOPML_SERVER_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="LOOPML_SERVER_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=0, le=65535)
    #: The metadata store: a folder, ``sqlite:///file.db`` or ``postgresql://...``; the
    #: ``.loopml`` home's database by default.
    store: str | None = None
    #: The artifact store: a folder or an fsspec URL (``s3://bucket/prefix``).
    artifacts: str | None = None
    #: Ask for credentials (users, API tokens, roles). Required when not bound to localhost.
    auth: bool = False
    #: Host names the server answers to (``Host`` header), against DNS rebinding; the bound
    #: host and localhost are always allowed. ``*`` allows any (behind a trusted proxy).
    allowed_hosts: tuple[str, ...] = ()
    #: Origins (``https://ml.example.com``) allowed to make state-changing browser requests,
    #: beyond the server's own.
    allowed_origins: tuple[str, ...] = ()
    #: The largest request body, in bytes (larger artifacts go in parts of this size).
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: Sign-in attempts allowed per user and per address in a minute.
    login_attempts_per_minute: int = Field(default=10, ge=1)
    #: How long a web UI session lasts, in hours.
    session_hours: float = Field(default=12.0, gt=0)
    #: Host the scheduled work (monitors, pipeline schedules, the training loop); one replica
    #: leads at a time.
    scheduler: bool = True
    #: Pipelines the scheduler runs on their cron schedules (``file.py:attr`` or
    #: ``module:attr``, as ``loopml scheduler`` takes them); a JSON list in the environment.
    schedules: tuple[str, ...] = ()
    #: Loop policy files (YAML, as ``loopml loop run`` takes them) the scheduler advances; a
    #: JSON list in the environment.
    policies: tuple[str, ...] = ()
    #: Seconds between the scheduler's passes (the lease lives three times as long).
    scheduler_interval: float = Field(default=10.0, gt=0, le=3600)
    #: Worker processes.
    workers: int = Field(default=1, ge=1, le=64)

    @property
    def local_only(self) -> bool:
        """Whether the server is bound to the loopback interface."""
        return self.host in LOCAL_HOSTS
