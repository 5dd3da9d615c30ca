"""Running an endpoint: build the app from a :class:`ServeSpec`, watch the store, run uvicorn.

``loopml serve`` writes the spec to an environment variable and starts uvicorn with
:func:`app_from_env` as the app factory, so every worker process builds its own app (its own
models, batchers and prediction logger) from the same spec. Each worker watches the store:
when the alias a route follows moves, or the deployment changes, it loads the new version and
switches; the old version drains what it queued.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.entities import Deployment, Route
from loopml.errors import InvalidArgument
from loopml.serving.app import ServingApp
from loopml.serving.config import ServerSettings
from loopml.serving.endpoint import Endpoint, RouteState, drain, make_state, routes_of
from loopml.serving.runtime import ModelRuntime, load_runtime

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.client import Client
    from loopml.serving.log_writer import LogWriter
    from loopml.serving.metrics import ServingMetrics
    from loopml.serving.prediction_log import PredictionLogger
    from loopml.serving.traffic import TrafficRecorder
    from loopml.stats import DatasetProfile

__all__ = ["ServeSpec", "app_from_env", "build_app", "run"]

_log = logging.getLogger("loopml.serving")
SPEC_ENV = "LOOPML_SERVE_SPEC"


@dataclass
class ServeSpec:
    """Everything a worker needs to build the app (JSON-ready, passed through the environment).

    Attributes:
        name: the endpoint (deployment) name.
        routes: the routes as dicts, when serving without a stored deployment; None: read the
            deployment ``name`` from the store and follow its changes.
        sticky_key: the sticky-routing field (routes given here only).
        settings: server settings overriding the deployment's stored ones.
        tracking_uri, artifact_uri, project: the store.
    """

    name: str
    routes: list[dict[str, Any]] | None = None
    sticky_key: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    tracking_uri: str | None = None
    artifact_uri: str | None = None
    project: str | None = None

    def to_json(self) -> str:
        """The spec as JSON."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSpec:
        """Read a spec written by :meth:`to_json`."""
        return cls(**json.loads(text))


class _Watcher:
    """Polls the store and switches routes when an alias moves or the deployment changes."""

    def __init__(
        self,
        app: ServingApp,
        spec: ServeSpec,
        client: Client,
        settings: ServerSettings,
        metrics: ServingMetrics,
    ) -> None:
        self.app = app
        self.spec = spec
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._drains: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._drains:
            await asyncio.wait(list(self._drains), timeout=self.settings.drain_seconds)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("checking the store for changes failed; serving on")

    async def refresh(self) -> None:
        """Apply a changed deployment, then follow moved aliases."""
        endpoint = self.app.endpoint
        if self.spec.routes is None:
            dep: Deployment = await asyncio.to_thread(
                self.client.get_deployment, self.spec.name, project=self.spec.project
            )
            if dep.revision != endpoint.revision:
                await self._apply(dep)
                return
        for state in endpoint.states:
            if not _follows(state.route.model_uri):
                continue
            version = await asyncio.to_thread(
                self.client.resolve_model_uri, state.route.model_uri, project=self.spec.project
            )
            if version.version != state.runtime.version:
                new = await self._load(state.route)
                if new is None:
                    continue
                endpoint.replace(state, new)
                self.metrics.switched(state.name, new.runtime.label)
                _log.info(
                    "route %s switched %s -> %s",
                    state.name,
                    state.runtime.label,
                    new.runtime.label,
                )
                self._drain(state)

    async def _load(self, route: Route) -> RouteState | None:
        try:
            runtime = await asyncio.to_thread(_load, route, self.client, self.spec, self.settings)
        except Exception:
            _log.exception(
                "loading %s for route %s failed; the route keeps its version",
                route.model_uri,
                route.name,
            )
            self.metrics.load_failed(route.name)
            return None
        return make_state(route, runtime, self.settings.batching.policy(), self.metrics)

    async def _apply(self, dep: Deployment) -> None:
        endpoint = self.app.endpoint
        old = {s.name: s for s in endpoint.states}
        states: list[RouteState] = []
        for route in routes_of(dep):
            current = old.get(route.name)
            if current is not None and current.route.model_uri == route.model_uri:
                version = current.runtime.version
                if _follows(route.model_uri):
                    mv = await asyncio.to_thread(
                        self.client.resolve_model_uri, route.model_uri, project=self.spec.project
                    )
                    version = mv.version
                if version == current.runtime.version:
                    states.append(RouteState(route, current.runtime, current.batcher))
                    continue
            new = await self._load(route)
            if new is None:
                return  # keep serving the old routes; the next poll retries
            states.append(new)
        kept = {id(s.batcher) for s in states}
        endpoint.reset(states, sticky_key=dep.sticky_key, revision=dep.revision)
        _log.info("deployment %s revision %d applied", dep.name, dep.revision)
        for state in old.values():
            if id(state.batcher) not in kept:
                self._drain(state)

    def _drain(self, state: RouteState) -> None:
        task = asyncio.ensure_future(drain(state, self.settings.drain_seconds))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)


def _follows(uri: str) -> bool:
    """Whether a route's model URI can change version (an alias or ``latest``)."""
    return uri.startswith("models:/") and ("@" in uri or uri.rstrip("/").endswith("/latest"))


def _load(route: Route, client: Client, spec: ServeSpec, settings: ServerSettings) -> ModelRuntime:
    runtime = load_runtime(
        route.model_uri, client=client, project=spec.project, trusted=settings.trusted
    )
    example = None
    try:
        example = runtime.predictor.input_example
    except Exception:  # no example: the first request warms the model up
        example = None
    if example is not None and runtime.plan.schema is not None:
        try:  # warm up (first calls pay lazy imports and caches)
            decoded = runtime.plan.decode_columns(
                {str(c): example[c].to_numpy()[:1] for c in example.columns}
            )
            runtime.run([decoded], "predict")
        except Exception:  # an example that no longer fits is not fatal
            _log.debug("warm-up of %s failed", runtime.label, exc_info=True)
    return runtime


class _StoreSink:
    """Writes prediction-log segments (Parquet) to the artifact store, indexed in the store,
    and window profiles to the store."""

    def __init__(self, client: Client, spec: ServeSpec) -> None:
        self.client = client
        self.spec = spec

    def write(self, table: pa.Table, *, start: int, end: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        # dictionaries only where values repeat: on float columns they cost 8x the time
        pq.write_table(table, sink, compression="zstd", use_dictionary=["route", "model_version"])
        data = sink.getvalue().to_pybytes()
        digest, size = self.client.artifacts.put(data)
        routes = sorted(_distinct(table.column("route")))
        versions = sorted(_distinct(table.column("model_version")))
        self.client.log_prediction_segment(
            self.spec.name,
            uri=f"sha256:{digest}",
            start_time=start,
            end_time=end,
            rows=table.num_rows,
            digest=digest,
            size_bytes=size,
            routes=routes,
            model_versions=versions,
            segment_id=digest[:32],  # a retry of the same segment indexes it once
            project=self.spec.project,
        )

    def write_window(
        self,
        *,
        route: str,
        model_version: str,
        window_start: int,
        window_seconds: int,
        rows: int,
        profile: DatasetProfile,
    ) -> None:
        self.client.add_window_profile(
            self.spec.name,
            route=route,
            model_version=model_version,
            window_start=window_start,
            window_seconds=window_seconds,
            rows=rows,
            profile=profile.to_dict(),
            project=self.spec.project,
        )


def _distinct(column: pa.ChunkedArray) -> set[str]:
    """The distinct values of a (dictionary-encoded) string column, without a pass in Python."""
    import pyarrow.compute as pc

    return {str(v) for v in pc.unique(column.cast("string")).to_pylist()}


def _reference(client: Client, project: str | None) -> Any:
    """A function: model version label -> the profile of the dataset it was trained on."""

    def reference(label: str) -> DatasetProfile | None:
        from loopml.monitoring.evaluate import stored_profile, training_dataset

        dv = training_dataset(client, label, project=project)
        return None if dv is None else stored_profile(client, dv)

    return reference


def _training_sample(client: Client, project: str | None, rows: int = 10_000) -> Any:
    """A function: model version label -> up to ``rows`` rows of its training data (the
    isolation forest's reference sample), or None."""

    def sample(label: str) -> Any:
        from loopml.data import load_dataset
        from loopml.monitoring.evaluate import training_dataset

        dv = training_dataset(client, label, project=project)
        if dv is None:
            return None
        frame = load_dataset(dv, client=client)
        return frame.sample(min(rows, len(frame)), random_state=0) if len(frame) else None

    return sample


def _writer_for(
    client: Client, spec: ServeSpec, window_seconds: int, profiles: bool, outliers: str = "range"
) -> LogWriter:
    from loopml.serving.log_writer import LogWriter

    sink = _StoreSink(client, spec)
    return LogWriter(
        sink,
        windows=sink if profiles else None,
        window_seconds=window_seconds,
        reference=_reference(client, spec.project),
        outliers=outliers,
        sample=_training_sample(client, spec.project),
    )


def _store_writer(
    spec_json: str, window_seconds: int, profiles: bool, outliers: str = "range"
) -> LogWriter:
    """The prediction-log writer of a writer process (module level, so it pickles)."""
    from loopml.client import Client

    spec = ServeSpec.from_json(spec_json)
    client = Client(spec.tracking_uri, spec.artifact_uri)
    return _writer_for(client, spec, window_seconds, profiles, outliers)


def build_app(
    spec: ServeSpec, *, client: Client | None = None, start_logger: bool = True
) -> ServingApp:
    """Load the endpoint's models and build its app (one per worker process).

    Args:
        spec: what to serve.
        client: the store (default: the spec's URIs).
        start_logger: give the app its prediction logger and traffic recorder (False: a dry
            run that only checks everything loads).

    Raises:
        DeploymentNotFound: the spec names a deployment the store does not have.
        ModelNotFound, UntrustedModel, ModelCorrupted: a route's model cannot be loaded.
        InvalidArgument: bad settings.
    """
    from loopml.client import Client
    from loopml.serving.metrics import ServingMetrics
    from loopml.serving.prediction_log import PredictionLogger

    client = client or Client(spec.tracking_uri, spec.artifact_uri)
    settings = ServerSettings()
    revision = 0
    if spec.routes is None:
        dep = client.get_deployment(spec.name, project=spec.project)
        routes: Sequence[Route] = routes_of(dep)
        sticky, revision = dep.sticky_key, dep.revision
        settings = settings.merged(dep.config)
    else:
        routes = tuple(Route(**r) for r in spec.routes)
        sticky = spec.sticky_key
    settings = settings.merged(spec.settings)
    traffic: TrafficRecorder | None = None
    if settings.traffic_seconds and start_logger:
        from loopml.serving.traffic import TrafficRecorder

        traffic = TrafficRecorder(client, spec.name, spec.project, settings.traffic_seconds)
    metrics = ServingMetrics(spec.name, None if traffic is None else traffic.counter)
    policy = settings.batching.policy()
    states = [
        make_state(route, _load(route, client, spec, settings), policy, metrics)
        for route in routes
    ]
    endpoint = Endpoint(spec.name, states, sticky_key=sticky, revision=revision)
    logger: PredictionLogger | None = None
    log = settings.prediction_log
    if log.enabled and start_logger:
        if log.process:  # the writer process opens its own client from the spec
            factory: Callable[[], LogWriter] = functools.partial(
                _store_writer, spec.to_json(), log.window_seconds, log.profiles, log.outliers
            )
        else:
            factory = functools.partial(
                _writer_for, client, spec, log.window_seconds, log.profiles, log.outliers
            )
        logger = PredictionLogger(
            factory,
            process=log.process,
            flush_seconds=log.flush_seconds,
            flush_rows=log.flush_rows,
            max_pending_rows=log.max_pending_rows,
            on_flush=metrics.log_counts,
        )
    app = ServingApp(
        endpoint,
        metrics=metrics,
        logger=logger,
        max_body=int(settings.max_body_mb * 2**20),
        access_log=settings.access_log,
    )
    watcher = _Watcher(app, spec, client, settings, metrics)

    async def startup() -> None:
        await watcher.start()
        if traffic is not None:
            await traffic.start()

    async def shutdown() -> None:
        await watcher.stop()
        if traffic is not None:
            await traffic.stop()
        if logger is not None:
            counts = await asyncio.to_thread(logger.close)
            _log.info(
                "prediction log: %d served, %d logged, %d dropped",
                counts.served,
                counts.logged,
                counts.dropped,
            )

    app._on_startup = startup
    app._on_shutdown = shutdown
    app.watcher = watcher  # type: ignore[attr-defined]
    return app


def app_from_env() -> ServingApp:
    """The uvicorn app factory: build the app from ``LOOPML_SERVE_SPEC``."""
    text = os.environ.get(SPEC_ENV)
    if not text:
        raise InvalidArgument(f"{SPEC_ENV} is not set; start the server with `loopml serve`")
    app = build_app(ServeSpec.from_json(text))
    _freeze_heap()
    return app


def _freeze_heap() -> None:
    """Move everything loaded so far (modules, models) out of the garbage collector's sight:
    its full passes then scan only what requests create, not the whole heap."""
    import gc

    gc.collect()
    gc.freeze()


def run(
    spec: ServeSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    graceful_seconds: float = 30.0,
    limit_concurrency: int | None = None,
    app: ServingApp | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish (up to ``graceful_seconds``) and
    the prediction log is flushed before the process exits.

    Args:
        app: with one worker, serve this already-built app (else each worker builds its own).
    """
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": int(graceful_seconds),
        "limit_concurrency": limit_concurrency,
        "server_header": False,
    }
    if workers == 1:
        app = app if app is not None else build_app(spec)
        _freeze_heap()
        uvicorn.run(app, **common)
        return
    os.environ[SPEC_ENV] = spec.to_json()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="loopml-metrics-")
    uvicorn.run("loopml.serving.server:app_from_env", factory=True, workers=workers, **common)
