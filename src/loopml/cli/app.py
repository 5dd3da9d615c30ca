"""The Typer application: global options, ``loopml init``, and the command groups.

Help is rendered by Click's plain formatter (``rich_markup_mode=None``): Rich's help renderer
costs more import time than the rest of ``loopml --help`` together. Command output still uses Rich.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from loopml._version import __version__
from loopml.cli import db, projects, runs
from loopml.cli.output import fail
from loopml.cli.state import CliState
from loopml.errors import LoopError

__all__ = ["app"]


# Command groups imported only when used: building a group's commands costs import time that
# `loopml --help` and the other commands should not pay. name -> (module with `app`, short help).
_LAZY_GROUPS = {
    "data": (
        "loopml.cli.data",
        "Version, inspect, validate, profile, compare and check datasets.",
    ),
    "models": (
        "loopml.cli.models",
        "Register, inspect, promote, roll back, evaluate and compare models.",
    ),
    "deployments": (
        "loopml.cli.deployments",
        "List and show deployments; set canary and shadow traffic, promote, roll back.",
    ),
    "monitor": (
        "loopml.cli.monitor",
        "Watch deployments and datasets for drift, quality, performance; alert on rules.",
    ),
    "pipelines": (
        "loopml.cli.pipelines",
        "Run pipelines, list their runs and steps, resume a failed run.",
    ),
    "tune": (
        "loopml.cli.tune",
        "Inspect hyperparameter searches: trials, the best one, importances, plots.",
    ),
    "loop": (
        "loopml.cli.loop",
        "The continuous-training loop: run policies, show their status and decisions.",
    ),
    "scheduler": (
        "loopml.cli.scheduler",
        "Run pipelines on their cron schedules.",
    ),
    "reproduce": (
        "loopml.cli.reproduce",
        "Re-run a recorded pipeline run and check that it reproduces.",
    ),
    "demo": (
        "loopml.cli.demo",
        "The whole lifecycle on real flight data, end to end, in a few minutes.",
    ),
    # A Typer app with one command and no callback becomes that command, not a group.
    "serve": (
        "loopml.cli.serve",
        "Serve a model or a deployment over HTTP (loopml JSON, Open Inference v2, MLflow).",
    ),
    "predict": (
        "loopml.cli.predict",
        "Score a file, a folder of Parquet files or a dataset with a model, in chunks.",
    ),
    "server": (
        "loopml.cli.server",
        "Run the team server: REST API, web UI, users, tokens and roles, audit trail.",
    ),
    "users": (
        "loopml.cli.users",
        "Manage the team server's users, service accounts, API tokens and project roles.",
    ),
    "build-image": (
        "loopml.cli.build_image",
        "Build a container image that serves a model (podman, buildah or Docker).",
    ),
}
_LAZY_AFTER = "runs"  # where the lazy groups appear in the command list


class _Group(TyperGroup):
    """The root group: turns a :class:`LoopError` from any command into one ``error:`` line,
    and loads the :data:`_LAZY_GROUPS` on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = [n for n in super().list_commands(ctx) if n not in _LAZY_GROUPS]
        at = names.index(_LAZY_AFTER) + 1 if _LAZY_AFTER in names else len(names)
        return [*names[:at], *_LAZY_GROUPS, *names[at:]]

    def get_command(self, ctx: Any, name: str) -> Any:
        if name in _LAZY_GROUPS and name not in self.commands:
            module = importlib.import_module(_LAZY_GROUPS[name][0])
            command = typer.main.get_command(module.app)
            command.name = name
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of ``--help``, with the lazy groups' help from the table above."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in _LAZY_GROUPS and name not in self.commands:
                rows.append((name, _LAZY_GROUPS[name][1]))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - 8)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: Any) -> Any:  # Click's own Context type is private to Typer
        try:
            return super().invoke(ctx)
        except LoopError as exc:
            raise fail(exc.message) from None
        except OSError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


app = typer.Typer(
    name="loopml",
    cls=_Group,
    help="loopml: track experiments, version data, and manage the machine-learning lifecycle."
    "\n\n"
    "Data lives in the nearest .loopml folder (see 'loopml init'), or in the store named by "
    "--store or LOOPML_TRACKING_URI.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(projects.app, name="projects")
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"loopml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URI",
            help="Metadata store: a folder, sqlite:///file.db, postgresql://... "
            "[default: LOOPML_TRACKING_URI, else the nearest .loopml folder]",
            show_default=False,
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            metavar="URI",
            help="Artifact store: a folder or fsspec URL such as s3://bucket/prefix "
            "[default: LOOPML_ARTIFACT_URI, else artifacts/ beside the store]",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """loopml: track, compare and manage machine-learning runs."""
    ctx.obj = CliState(store=store, artifacts=artifacts)


@app.command()
def init(
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH",
            help="Folder to create .loopml/ in [default: LOOPML_HOME, else the current folder].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a .loopml home (store and artifacts folder).

    PATH/.loopml/ gets loopml.db (SQLite, with its schema) and artifacts/.

    Commands run in PATH or below it find the home, like git finds .git. Running it again is
    safe: an existing home is kept (and a missing database or folder in it is recreated).

    \b
    Examples:
      loopml init
      loopml init ~/projects/churn
    """
    from loopml.config import HOME_DIRNAME, get_settings
    from loopml.store import open_store

    if path is None:
        settings = get_settings()
        home = (
            settings.home.expanduser().resolve()
            if settings.home is not None
            else Path.cwd().resolve() / HOME_DIRNAME
        )
    else:
        folder = path.expanduser().resolve()
        home = folder if folder.name == HOME_DIRNAME else folder / HOME_DIRNAME
    db_file, artifacts_dir = home / "loopml.db", home / "artifacts"
    existed = db_file.is_file() and artifacts_dir.is_dir()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    open_store(f"sqlite:///{db_file}").close()  # creates the schema, or checks its revision
    if existed:
        typer.echo(f"loopml home already exists at {home}")
    else:
        typer.echo(f"Initialized loopml home in {home}")
        typer.echo(f"  store:     sqlite:///{db_file}")
        typer.echo(f"  artifacts: {artifacts_dir}")
