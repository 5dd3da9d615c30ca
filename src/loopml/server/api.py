"""The REST API: one route per row of the operation table, each a call to the server's store.

A route authenticates the caller, finds the project the call touches (from a project, run,
dataset version or entity parameter), asks the gate for the row's permission there, calls the
store's *public* method (which checks every argument), audits the change, and answers JSON
(:mod:`loopml.store.rest.codec`). Query parameters are typed from the store method's signature;
a JSON body is read as it came and passed through, so the store's own validation, the same as
for a local store, judges it; only entities (an ``Alert``, a list of ``Metric``) are rebuilt.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from pydantic import Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from loopml.entities import MetricHistory, Project
from loopml.errors import InvalidArgument, LoopError
from loopml.server.paths import CONFINED_PARAMS, confine
from loopml.server.principal import Principal
from loopml.store.base import Store
from loopml.store.deployments import _Unset
from loopml.store.registry import AUDIT_ORIGIN
from loopml.store.rest import codec
from loopml.store.rest.operations import API_PREFIX, OPERATIONS, Operation

__all__ = ["ProjectResolver", "build_api_router", "principal_of", "request_origin"]

_NO_CONTENT = Response(status_code=204)


def principal_of(request: Request) -> Principal:
    """The authenticated caller of ``request`` (authenticated once, then kept on the request).

    Raises:
        Unauthenticated: the gate refused the request's credential.
    """
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = request.app.state.gate.authenticate(request)
        request.state.principal = principal
    return principal


def request_origin(request: Request) -> str:
    """Where a request came from, for the audit trail: the client's address."""
    client = request.client
    return f"{client.host}" if client is not None else "unknown"


class ProjectResolver:
    """Project ids of the objects a request names, cached: projects are never renamed, and runs
    and dataset versions never move, so an entry never goes stale (a deleted object only makes
    the store answer "not found" later)."""

    def __init__(self, store: Store, size: int = 100_000) -> None:
        self._store = store
        self._size = size
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, key: tuple[str, str], load: Callable[[], str]) -> str:
        found = self._cache.get(key)
        if found is not None:
            return found
        value = load()  # outside the lock: two threads may both load, and agree
        with self._lock:  # routes run on a thread pool; an OrderedDict is not thread-safe
            self._cache[key] = value
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return value

    def project(self, name_or_id: object) -> str:
        if not isinstance(name_or_id, str):
            raise InvalidArgument(f"project must be a name or id, got {name_or_id!r:.80}")
        return self._remember(
            ("p", name_or_id), lambda: self._store.get_project(name_or_id).project_id
        )

    def run(self, run_id: object) -> str:
        if not isinstance(run_id, str):
            raise InvalidArgument(f"run id must be a string, got {run_id!r:.80}")
        return self._remember(("r", run_id), lambda: self._store.get_run(run_id).project_id)

    def dataset_version(self, version_id: object) -> str:
        if not isinstance(version_id, str):
            raise InvalidArgument(f"dataset version id must be a string, got {version_id!r:.80}")
        return self._remember(
            ("d", version_id),
            lambda: self._store.get_dataset_version_by_id(version_id).project_id,
        )

    def scope(self, op: Operation, args: Mapping[str, Any]) -> list[str] | None:
        """The project ids ``op`` touches with ``args``; None: every project (``projects`` scope
        without a list), an empty list: a server-wide action."""
        if op.scope == "project":
            return [self.project(args.get("project_id", args.get("name_or_id")))]
        if op.scope == "run":
            return [self.run(args.get("run_id"))]
        if op.scope == "runs":
            run_ids = args.get("run_ids")
            if not isinstance(run_ids, list):
                return []  # the store refuses it; the gate first asks for a server admin
            return sorted({self.run(r) for r in run_ids})
        if op.scope == "projects":
            ids = args.get("project_ids")
            if ids is None:
                return None
            if isinstance(ids, str) or not isinstance(ids, Iterable):
                raise InvalidArgument(
                    f"project_ids must be a list of project ids, got {ids!r:.80}"
                )
            return sorted({self.project(p) for p in ids})
        if op.scope == "entity":
            entities = [v for v in args.values() if dataclasses.is_dataclass(v)]
            return [self.project(getattr(entities[0], "project_id", None))] if entities else []
        if op.scope == "dataset_version":
            return [self.dataset_version(args.get("version_id"))]
        return []  # "any" and "server"


# --- turning JSON into the store's arguments ---------------------------------------------------


def _concrete(annotation: Any) -> Any:
    """``annotation`` with one-pass and abstract containers made lists, and ``UNSET`` dropped."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        kept = tuple(_concrete(a) for a in args if a is not _Unset)
        return kept[0] if len(kept) == 1 else typing.Union[kept]  # noqa: UP007
    if origin in (Iterable, Sequence, list, Collection):
        return list[_concrete(args[0])] if args else list  # type: ignore[misc]
    if origin in (Mapping, dict):
        return dict[_concrete(args[0]), _concrete(args[1])] if args else dict  # type: ignore[misc]
    if origin is tuple:
        return tuple[tuple(_concrete(a) for a in args)] if args else tuple  # type: ignore[misc]
    return annotation


def _decode_body(op: Operation, raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"the request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(
            f"the body of {op.method} {API_PREFIX}{op.path} must be a JSON object of the "
            f"parameters of {op.name}, got {type(data).__name__}"
        )
    signature = op.signature().parameters
    unknown = sorted(set(data) - set(signature) - set(op.path_params))
    if unknown:
        raise InvalidArgument(
            f"{op.name} has no parameter {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(p for p in signature if p not in op.path_params)}"
        )
    missing = [
        name
        for name, param in signature.items()
        if param.default is inspect.Parameter.empty
        and name not in data
        and name not in op.path_params
        and name != "actor"  # the server names the caller
    ]
    if missing:
        raise InvalidArgument(
            f"{op.name} needs {', '.join(map(repr, missing))} in the request body; see "
            f"{API_PREFIX}/docs"
        )
    hints = op.hints()
    return {
        name: codec.from_json(hints.get(name, Any), value)
        for name, value in data.items()
        if name not in op.path_params
    }


# --- the routes ---------------------------------------------------------------------------------


def _json(value: Any, status: int = 200) -> Response:
    return Response(codec.dumps(value), status_code=status, media_type="application/json")


_AUDIT: Mapping[str, tuple[str, str]] = {
    "create_project": ("project.create", "project"),
    "create_run": ("run.create", "run"),
    "update_run": ("run.update", "run"),
    "delete_run": ("run.delete", "run"),
    "delete_tag": ("run.delete_tag", "run"),
    "fail_stale_runs": ("run.fail_stale", "run"),
    "update_dataset": ("dataset.update", "dataset"),
    "create_dataset_version": ("dataset_version.create", "dataset"),
}


def _audit(
    store: Store,
    op: Operation,
    args: Mapping[str, Any],
    result: Any,
    project_ids: Sequence[str] | None,
    principal: Principal,
    origin: str,
) -> None:
    action, object_type = _AUDIT[op.name]
    details: dict[str, Any] = {}
    if op.name == "create_project":
        assert isinstance(result, Project)
        project_ids, name = [result.project_id], result.name
    elif object_type == "run":
        if op.name == "create_run":
            name = result.run_id
        elif op.name == "fail_stale_runs":
            for run_id in result:
                store.log_audit_event(
                    store.get_run(run_id).project_id,
                    actor=principal.name,
                    action=action,
                    object_type="run",
                    object_name=run_id,
                    origin=origin,
                )
            return
        else:
            name = str(args["run_id"])
        details = {k: codec.to_json(v) for k, v in args.items() if k != "run_id"}
    elif object_type == "dataset":
        name = str(args["name"])
        if op.name == "create_dataset_version":
            version, created = result
            if not created:
                return
            details = {"version": version.version, "digest": version.digest}
    else:
        raise AssertionError(f"no audit event is defined for {op.name}")
    for project_id in project_ids or ():
        store.log_audit_event(
            project_id,
            actor=principal.name,
            action=action,
            object_type=object_type,
            object_name=name[:256],
            details=details,
            origin=origin,
        )


def _endpoint(op: Operation) -> Callable[..., Any]:
    signature = op.signature()
    hints = op.hints()
    returns = hints.get("return")
    confined: list[Any] = sorted(CONFINED_PARAMS & set(signature.parameters))

    def call(request: Request, args: dict[str, Any]) -> Any:
        state = request.app.state
        store: Store = state.store
        gate = state.gate
        principal = principal_of(request)
        origin = request_origin(request)
        if "actor" in signature.parameters and (gate.enabled or "actor" not in args):
            args["actor"] = principal.name
        project_ids: list[str] | None = []
        if gate.enabled:
            # Who and from where come from the request, not from what the client says.
            if op.name == "create_run":
                args["user"] = principal.name
            if op.name == "log_audit_event":
                args["origin"] = origin
            project_ids = state.resolver.scope(op, args)
            if project_ids is None:  # search every project the caller may read
                readable = gate.readable_projects(principal)
                if readable is not None:
                    project_ids = args["project_ids"] = sorted(readable)
                    if not project_ids:
                        return _json({"items": [], "next_page_token": None})
            if project_ids is not None and op.scope != "any":  # "any": signed in is enough
                gate.check(principal, op.permission, project_ids)
        token = AUDIT_ORIGIN.set(origin) if gate.enabled else None
        try:
            result = getattr(store, op.name)(**args)
        finally:
            if token is not None:
                AUDIT_ORIGIN.reset(token)
        if op.name == "create_project":
            gate.grant_creator(principal, result.project_id)
            state.resolver.project(result.project_id)
        elif op.name == "list_projects":
            readable = gate.readable_projects(principal)
            if readable is not None:
                result = [p for p in result if p.project_id in readable]
        if op.audit and gate.enabled:
            _audit(store, op, args, result, project_ids, principal, origin)
        if returns is None or returns is type(None):
            return _NO_CONTENT
        return _json(result, 201 if op.method == "POST" and op.name.startswith("create_") else 200)

    async def endpoint(request: Request, **params: Any) -> Any:
        args = {k: v for k, v in params.items() if v is not None or k in op.path_params}
        for name in confined:
            if name in args:
                args[name] = confine(name, args[name])
        if op.has_body:
            body = await request.body()
            args.update(_decode_body(op, body))
        ctx = contextvars.copy_context()
        return await run_in_threadpool(ctx.run, call, request, args)

    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    for name, param in signature.parameters.items():
        annotation = hints.get(name, str)
        if name in op.path_params:
            kind = int if annotation is int else str
            parameters.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, Path()]
                )
            )
        elif not op.has_body:
            default = param.default
            if default is inspect.Parameter.empty or name == "actor":
                default = None if name == "actor" else ...
            query_type = _concrete(annotation) if name != "actor" else str | None
            parameters.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Annotated[query_type, Query()],
                    default=default,
                )
            )
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name
    return endpoint


def _body_schema(op: Operation, defs: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of ``op``: its non-path parameters as one object."""
    hints = op.hints()
    fields: dict[str, Any] = {}
    for name, param in op.signature().parameters.items():
        if name in op.path_params:
            continue
        annotation = _concrete(hints.get(name, Any))
        if name == "actor" or param.default is not inspect.Parameter.empty:
            default = None if param.default is inspect.Parameter.empty else param.default
            if isinstance(default, _Unset):
                default = None
            field: Any = Field(default, alias=name)
            fields[f"{name}_"] = (annotation | None, field)
        else:
            fields[f"{name}_"] = (annotation, Field(..., alias=name))
    # Fields are renamed (and aliased back) so that a parameter such as ``schema`` cannot
    # shadow a pydantic attribute.
    model = create_model(f"{_camel(op.name)}Body", **fields)
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _response_model(op: Operation) -> Any:
    returns = op.hints().get("return")
    if returns is None or returns is type(None) or returns is MetricHistory:
        return None
    return _concrete(returns)


def build_api_router(schema_defs: dict[str, Any]) -> APIRouter:
    """The ``/api/v1`` routes of every operation; their body schemas' shared definitions are
    added to ``schema_defs`` (the app puts them in the OpenAPI document's components)."""
    router = APIRouter()
    for op in OPERATIONS:
        extra: dict[str, Any] = {"x-loopml-permission": op.permission, "x-loopml-scope": op.scope}
        confined = sorted(CONFINED_PARAMS & set(op.signature().parameters))
        if confined:
            extra["x-loopml-confined"] = confined
        if op.has_body:
            extra["requestBody"] = _body_schema(op, schema_defs)
        returns = op.hints().get("return")
        status = 204 if returns is None or returns is type(None) else 200
        if op.method == "POST" and op.name.startswith("create_") and status == 200:
            status = 201
        router.add_api_route(
            API_PREFIX + op.path,
            _endpoint(op),
            methods=[op.method],
            name=op.name,
            summary=_summary(op),
            response_model=_response_model(op),
            status_code=status,
            openapi_extra=extra,
            tags=[_tag(op)],
        )
    return router


def _summary(op: Operation) -> str:
    doc = inspect.getdoc(getattr(Store, op.name)) or op.name
    return doc.split("\n", 1)[0].rstrip(".")[:120]


def _tag(op: Operation) -> str:
    path = op.path.replace("/projects/{project_id}", "")
    first = path.strip("/").split("/")[0] or "projects"
    return first


def error_response(exc: LoopError) -> Response:
    """The JSON answer for a loopml error: its code and message, with its HTTP status."""
    return Response(
        orjson.dumps(exc.to_dict()), status_code=exc.http_status, media_type="application/json"
    )
