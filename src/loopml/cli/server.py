"""``loopml server``: the team server (REST API, sign-in and roles, audit trail, web UI)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from loopml.cli.output import fail

__all__ = ["app", "server"]

app = typer.Typer(rich_markup_mode=None, add_completion=False)

_HELP = """Run the team server: the REST API (/api/v1, OpenAPI at /api/v1/docs), the web UI (/)
and, with --auth, users, API tokens and per-project roles. Clients connect with
LOOPML_TRACKING_URI=http://HOST:PORT (and LOOPML_TRACKING_TOKEN with --auth).

Bound to localhost, the server is single-user with no sign-in. Bound to another address it
needs --auth: the first start prints a one-time bootstrap token that creates the first admin.
Several servers on one PostgreSQL database and one object store behave as one.

\b
Examples:
  loopml server
  loopml server --store postgresql://loopml@db/loopml --artifacts s3://ml/artifacts \\
      --host 0.0.0.0 --auth --allowed-host ml.example.com --workers 4
"""


@app.command("server", help=_HELP)
def server(
    host: Annotated[str, typer.Option(help="The address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port.", min=0, max=65535)] = 5000,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URI",
            help="The metadata store: postgresql://..., sqlite:///file.db or a folder "
            "(default: the .loopml home's database).",
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            metavar="URI",
            help="The artifact store: a folder or s3://bucket/prefix.",
        ),
    ] = None,
    auth: Annotated[
        bool, typer.Option("--auth", help="Require sign-in: users, API tokens and roles.")
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="HOST",
            help="A host name clients use to reach the server (repeat for several).",
        ),
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-origin",
            metavar="ORIGIN",
            help="Another web origin allowed to send changes (https://app.example.com).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Host the scheduled work (monitors, schedules, the loop); one replica leads.",
        ),
    ] = True,
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule",
            metavar="PIPELINE",
            help="A pipeline to run on its cron schedule (file.py:name; repeat for several).",
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy", metavar="FILE", help="A loop policy file to advance (repeat for several)."
        ),
    ] = None,
    scheduler_interval: Annotated[
        float,
        typer.Option(help="Seconds between the scheduler's passes.", min=0.1, max=3600),
    ] = 10.0,
    max_body_mb: Annotated[
        float,
        typer.Option(help="The largest request body, in MiB (artifacts go up in parts).", min=1),
    ] = 64.0,
    session_hours: Annotated[
        float, typer.Option(help="How long a web UI session lasts, in hours.", min=0.01)
    ] = 12.0,
    login_attempts_per_minute: Annotated[
        int, typer.Option(help="Sign-in attempts allowed per user and per address.", min=1)
    ] = 10,
) -> None:
    from loopml.server.settings import LOCAL_HOSTS

    if host not in LOCAL_HOSTS and not auth:
        raise fail(
            f"--host {host} exposes the server beyond this machine: add --auth (users, tokens "
            "and roles), or bind --host 127.0.0.1 for single-user use"
        )
    # Worker processes read their settings from the environment, so every one sees the same.
    env = {
        "LOOPML_SERVER_HOST": host,
        "LOOPML_SERVER_PORT": str(port),
        "LOOPML_SERVER_AUTH": "true" if auth else "false",
        "LOOPML_SERVER_WORKERS": str(workers),
        "LOOPML_SERVER_SCHEDULER": "true" if scheduler else "false",
        "LOOPML_SERVER_ALLOWED_HOSTS": _json_list(allowed_host or []),
        "LOOPML_SERVER_ALLOWED_ORIGINS": _json_list(allowed_origin or []),
        "LOOPML_SERVER_SCHEDULES": _json_list(schedule or []),
        "LOOPML_SERVER_POLICIES": _json_list(policy or []),
        "LOOPML_SERVER_SCHEDULER_INTERVAL": str(scheduler_interval),
        "LOOPML_SERVER_MAX_BODY_BYTES": str(int(max_body_mb * 1024 * 1024)),
        "LOOPML_SERVER_SESSION_HOURS": str(session_hours),
        "LOOPML_SERVER_LOGIN_ATTEMPTS_PER_MINUTE": str(login_attempts_per_minute),
    }
    if store:
        env["LOOPML_SERVER_STORE"] = store
    if artifacts:
        env["LOOPML_SERVER_ARTIFACTS"] = artifacts
    os.environ.update(env)

    from loopml.server.app import create_app_from_env

    create_app_from_env()  # fails here, with a clear message, on a bad store or setting
    import uvicorn

    typer.echo(f"loopml server on http://{host}:{port} (API docs: /api/v1/docs)", err=True)
    uvicorn.run(
        "loopml.server.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )


def _json_list(values: list[str]) -> str:
    import json

    return json.dumps(values)
