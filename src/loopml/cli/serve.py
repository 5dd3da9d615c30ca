"""``loopml serve``: put a model (or a deployment with canary and shadow routes) behind HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import get_state, open_client

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.serving.server import ServeSpec

__all__ = ["app", "serve"]

app = typer.Typer(rich_markup_mode=None, add_completion=False)

_HELP = """Serve a model over HTTP: loopml's JSON (POST /predict), the Open Inference Protocol v2
(/v2/models/NAME/infer: tritonclient and KServe clients work unchanged) and MLflow's scoring
protocol (POST /invocations), with micro-batching, Prometheus /metrics and a prediction log.

Serving models:/NAME@ALIAS follows the alias: promote or roll back in the registry and the
server switches versions without failing a request. The endpoint is a deployment in the store
(created on first serve), so `loopml deployments set-traffic` adds a canary or a shadow live.

\b
Examples:
  loopml serve models:/churn@champion --port 8080
  loopml serve --config deployment.yaml --workers 2
  loopml serve --deployment churn
  curl -s localhost:8080/predict -d '{"rows": [{"age": 41, "plan": "pro"}]}'
"""


@app.command("serve", help=_HELP)
def serve(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Argument(
            metavar="[MODEL]",
            help="models:/NAME@ALIAS, models:/NAME/VERSION, or a model folder.",
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="A deployment file (name, routes, settings): stored, then served.",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", "-d", metavar="NAME", help="Serve a stored deployment."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Endpoint name [default: the model's name]."),
    ] = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the server to the network."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, max=64, help="Worker processes.")
    ] = 1,
    batching: Annotated[
        bool | None,
        typer.Option(
            "--batching/--no-batching",
            help="Micro-batch concurrent requests [default: on].",
            show_default=False,
        ),
    ] = None,
    max_batch_rows: Annotated[
        int | None, typer.Option("--max-batch-rows", min=1, help="Rows per batch at most.")
    ] = None,
    max_wait_ms: Annotated[
        float | None,
        typer.Option("--max-wait-ms", min=0, help="Extra wait to fill a batch [default: 0]."),
    ] = None,
    prediction_log: Annotated[
        bool | None,
        typer.Option(
            "--prediction-log/--no-prediction-log",
            help="Record every prediction for monitoring [default: on].",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="One JSON line per request on stderr.",
            show_default=False,
        ),
    ] = None,
    max_body_mb: Annotated[
        float | None, typer.Option("--max-body-mb", min=0.001, help="Largest request body.")
    ] = None,
    trusted: Annotated[
        bool,
        typer.Option("--trusted", help="Load models whose flavor runs stored code (pickle...)."),
    ] = False,
    project: Annotated[
        str | None, typer.Option("--project", "-p", metavar="NAME", help="The project.")
    ] = None,
) -> None:
    given = [x for x in (model, config, deployment) if x is not None]
    if len(given) != 1:
        raise output.fail(
            "give one of: a MODEL URI, --config FILE or --deployment NAME (see loopml serve "
            "--help)",
            code=2,
        )
    overrides: dict[str, Any] = {}
    batch: dict[str, Any] = {}
    if batching is not None:
        batch["enabled"] = batching
    if max_batch_rows is not None:
        batch["max_rows"] = max_batch_rows
    if max_wait_ms is not None:
        batch["max_wait_ms"] = max_wait_ms
    if batch:
        overrides["batching"] = batch
    if prediction_log is not None:
        overrides["prediction_log"] = {"enabled": prediction_log}
    if access_log is not None:
        overrides["access_log"] = access_log
    if max_body_mb is not None:
        overrides["max_body_mb"] = max_body_mb
    if trusted:
        overrides["trusted"] = True
    from loopml.serving.config import ServerSettings

    ServerSettings.parse(overrides, "options")  # bad combinations fail before anything starts
    client = open_client(ctx, create=True)
    spec = _spec(client, model, config, deployment, name, project)
    state = get_state(ctx)
    spec.settings = overrides
    spec.tracking_uri = client.tracking_uri
    spec.artifact_uri = state.artifacts or client.artifact_uri
    from loopml.serving.server import build_app, run

    # Load here first, so a model that cannot load is one clear error line, not a traceback
    # from every worker; one worker serves this very app.
    app = build_app(spec, client=client, start_logger=workers == 1)
    base = f"http://{host}:{port}"
    output.console().print(
        f"serving [bold]{spec.name}[/] on {base} with {workers} worker"
        f"{'s' if workers != 1 else ''}: POST {base}/predict, {base}/invocations, "
        f"{base}/v2/models/{spec.name}/infer; metrics at {base}/metrics. Ctrl+C stops.",
        highlight=False,
    )
    run(spec, host=host, port=port, workers=workers, app=app if workers == 1 else None)


def _spec(
    client: Client,
    model: str | None,
    config: str | None,
    deployment: str | None,
    name: str | None,
    project: str | None,
) -> ServeSpec:
    from loopml.client.registry import parse_model_uri
    from loopml.entities import Route, RouteRole
    from loopml.errors import DeploymentNotFound
    from loopml.serving.config import load_deployment_file
    from loopml.serving.deployments import apply_file
    from loopml.serving.server import ServeSpec

    if config is not None:
        spec_file = load_deployment_file(config)
        dep, what = apply_file(client, spec_file, project=project)
        output.console().print(f"deployment {dep.name}: {what} (revision {dep.revision})")
        return ServeSpec(name=dep.name, project=project or spec_file.project)
    if deployment is not None:
        return ServeSpec(name=deployment, project=project)
    assert model is not None
    if not model.startswith("models:/"):  # a folder: served as is, not stored
        from pathlib import Path

        endpoint = name or Path(model.rstrip("/")).name or "model"
        route = {"name": "primary", "model_uri": model, "role": "primary"}
        return ServeSpec(name=endpoint, routes=[route], project=project)
    model_name = parse_model_uri(model)[0]
    endpoint = name or model_name
    try:
        dep = client.get_deployment(endpoint, project=project)
    except DeploymentNotFound:
        client.resolve_model_uri(model, project=project)  # fail now on a missing model
        client.create_deployment(
            endpoint, [Route("primary", model, RouteRole.PRIMARY)], project=project
        )
        return ServeSpec(name=endpoint, project=project)
    if dep.primary.model_uri != model:
        raise output.fail(
            f"deployment {endpoint!r} already serves {dep.primary.model_uri} as its primary; "
            f"serve it with `loopml serve --deployment {endpoint}`, or pick another --name"
        )
    return ServeSpec(name=endpoint, project=project)
