"""The REST API's operation table: one row per public :class:`~loopml.store.Store` method.

Both sides of the wire read this table, so they cannot drift apart: ``loopml server`` builds one
route per row (the OpenAPI document comes from the method signatures), and the REST store
(:class:`~loopml.store.rest.RestStore`) builds one HTTP call per row. A row says:

* ``method`` and ``path`` (under ``/api/v1``); path parameters are named after the store
  method's own parameters. The other parameters travel in the query string (``GET`` and
  ``DELETE``) or in a JSON object body (``POST``, ``PUT`` and ``PATCH``).
* ``permission``: what a caller's role must allow on the object's project, ``read`` (viewer),
  ``write`` (editor) or ``admin``.
* ``scope``: how the server finds the project the permission applies to: a ``project_id``
  parameter, a run (``run_id``), an entity's ``project_id`` field, a dataset version id,
  several of them, or ``server`` for the server-wide operations.
* ``audit``: whether the server, with ``--auth``, writes an audit event for it (who, what,
  when, from where). The registry, deployment and monitor changes write their own, always;
  the data plane (metric batches, heartbeats, artifacts, prediction segments, window
  profiles, traffic windows, monitor results, alerts) is not audited call by call: its rows
  carry their own time and run.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["API_PREFIX", "OPERATIONS", "Operation", "by_name"]

API_PREFIX = "/api/v1"

Permission = Literal["read", "write", "admin"]
#: ``project``: the ``project_id`` parameter (a name or id); ``run``: the ``run_id`` parameter;
#: ``runs``: every run in ``run_ids``; ``projects``: every project in ``project_ids`` (none:
#: the caller's projects); ``entity``: the ``project_id`` of the one entity parameter;
#: ``dataset_version``: the ``version_id`` parameter; ``any``: any signed-in caller (the
#: list of projects is filtered, environments are content-addressed); ``server``: a server
#: admin only.
Scope = Literal["project", "run", "runs", "projects", "entity", "dataset_version", "any", "server"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Operation:
    """One route of the API: a store method and how it travels over HTTP."""

    name: str
    method: HttpMethod
    path: str
    permission: Permission
    scope: Scope
    audit: bool = False
    summary: str = ""

    @property
    def path_params(self) -> tuple[str, ...]:
        """The names of the ``{parameters}`` in :attr:`path`, in order."""
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))

    @property
    def has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    def signature(self) -> inspect.Signature:
        """The store method's signature, without ``self``."""
        return _signature(self.name)

    def hints(self) -> Mapping[str, Any]:
        """The store method's resolved type hints (``return`` included)."""
        return _hints(self.name)


@functools.cache
def _signature(name: str) -> inspect.Signature:
    from loopml.store.base import Store

    sig = inspect.signature(getattr(Store, name))
    return sig.replace(parameters=list(sig.parameters.values())[1:])


@functools.cache
def _hints(name: str) -> Mapping[str, Any]:
    from loopml.store.base import Store

    return typing.get_type_hints(getattr(Store, name))


def _op(
    name: str,
    method: HttpMethod,
    path: str,
    permission: Permission,
    scope: Scope,
    *,
    audit: bool = False,
) -> Operation:
    return Operation(name, method, path, permission, scope, audit)


_P = "/projects/{project_id}"
_MODEL = _P + "/models/{name}"
_VERSION = _MODEL + "/versions/{version}"

OPERATIONS: tuple[Operation, ...] = (
    # projects
    _op("list_projects", "GET", "/projects", "read", "any"),
    _op("create_project", "POST", "/projects", "write", "any", audit=True),
    _op("get_project", "GET", "/projects/lookup", "read", "project"),
    # runs
    _op("create_run", "POST", _P + "/runs", "write", "project", audit=True),
    _op("search_runs", "POST", "/runs/search", "read", "projects"),
    _op("heartbeat", "POST", "/runs/heartbeat", "write", "runs"),
    _op("fail_stale_runs", "POST", "/runs/fail-stale", "admin", "server", audit=True),
    _op("get_run", "GET", "/runs/{run_id}", "read", "run"),
    _op("update_run", "PATCH", "/runs/{run_id}", "write", "run", audit=True),
    _op("delete_run", "DELETE", "/runs/{run_id}", "write", "run", audit=True),
    _op("log_batch", "POST", "/runs/{run_id}/batch", "write", "run"),
    _op("delete_tag", "DELETE", "/runs/{run_id}/tags", "write", "run", audit=True),
    _op("get_metric_history", "GET", "/runs/{run_id}/metric-history", "read", "run"),
    _op("log_artifacts", "POST", "/runs/{run_id}/artifacts", "write", "run"),
    _op("list_artifacts", "GET", "/runs/{run_id}/artifacts", "read", "run"),
    _op("get_artifact", "GET", "/runs/{run_id}/artifact", "read", "run"),
    _op("log_inputs", "POST", "/runs/{run_id}/inputs", "write", "run"),
    _op("get_run_inputs", "GET", "/runs/{run_id}/inputs", "read", "run"),
    _op("get_environment", "GET", "/environments/{environment_id}", "read", "any"),
    # datasets
    _op("list_datasets", "GET", _P + "/datasets", "read", "project"),
    _op("get_dataset", "GET", _P + "/datasets/{name}", "read", "project"),
    _op("update_dataset", "PATCH", _P + "/datasets/{name}", "write", "project", audit=True),
    _op(
        "create_dataset_version",
        "POST",
        _P + "/datasets/{name}/versions",
        "write",
        "project",
        audit=True,
    ),
    _op("list_dataset_versions", "GET", _P + "/datasets/{name}/versions", "read", "project"),
    _op(
        "get_dataset_version", "GET", _P + "/datasets/{name}/versions/{version}", "read", "project"
    ),
    _op(
        "get_dataset_version_by_id",
        "GET",
        "/dataset-versions/{version_id}",
        "read",
        "dataset_version",
    ),
    _op(
        "get_dataset_version_runs",
        "GET",
        "/dataset-versions/{version_id}/runs",
        "read",
        "dataset_version",
    ),
    # the model registry (audited by the store itself)
    _op("list_registered_models", "GET", _P + "/models", "read", "project"),
    _op("create_registered_model", "POST", _P + "/models", "write", "project"),
    _op("get_registered_model", "GET", _MODEL, "read", "project"),
    _op("update_registered_model", "PATCH", _MODEL, "write", "project"),
    _op("delete_registered_model", "DELETE", _MODEL, "admin", "project"),
    _op("create_model_version", "POST", _MODEL + "/versions", "write", "project"),
    _op("list_model_versions", "GET", _P + "/model-versions", "read", "project"),
    _op("get_model_version", "GET", _VERSION, "read", "project"),
    _op("update_model_version", "PATCH", _VERSION, "write", "project"),
    _op("set_model_version_gate_result", "PUT", _VERSION + "/gate", "write", "project"),
    _op("get_model_version_by_alias", "GET", _MODEL + "/aliases/{alias}", "read", "project"),
    _op("set_model_alias", "PUT", _MODEL + "/aliases/{alias}", "write", "project"),
    _op("delete_model_alias", "DELETE", _MODEL + "/aliases/{alias}", "write", "project"),
    _op("log_audit_event", "POST", _P + "/audit", "write", "project"),
    _op("search_audit_events", "GET", _P + "/audit", "read", "project"),
    # deployments and their prediction logs
    _op("list_deployments", "GET", _P + "/deployments", "read", "project"),
    _op("create_deployment", "POST", _P + "/deployments", "write", "project"),
    _op("get_deployment", "GET", _P + "/deployments/{name}", "read", "project"),
    _op("update_deployment", "PATCH", _P + "/deployments/{name}", "write", "project"),
    _op("delete_deployment", "DELETE", _P + "/deployments/{name}", "admin", "project"),
    _op("add_prediction_segment", "POST", "/prediction-segments", "write", "entity"),
    _op(
        "list_prediction_segments",
        "GET",
        _P + "/deployments/{deployment}/prediction-segments",
        "read",
        "project",
    ),
    _op("add_window_profile", "POST", "/window-profiles", "write", "entity"),
    _op(
        "list_window_profiles",
        "GET",
        _P + "/deployments/{deployment}/window-profiles",
        "read",
        "project",
    ),
    _op("add_traffic_window", "POST", "/traffic-windows", "write", "entity"),
    _op(
        "list_traffic_windows",
        "GET",
        _P + "/deployments/{deployment}/traffic-windows",
        "read",
        "project",
    ),
    # monitoring
    _op("list_monitors", "GET", _P + "/monitors", "read", "project"),
    _op("create_monitor", "POST", _P + "/monitors", "write", "project"),
    _op("get_monitor", "GET", _P + "/monitors/{name}", "read", "project"),
    _op("update_monitor", "PATCH", _P + "/monitors/{name}", "write", "project"),
    _op("delete_monitor", "DELETE", _P + "/monitors/{name}", "admin", "project"),
    _op("add_monitor_result", "POST", "/monitor-results", "write", "entity"),
    _op("list_monitor_results", "GET", _P + "/monitors/{monitor}/results", "read", "project"),
    _op("add_alert", "POST", "/alerts", "write", "entity"),
    _op("update_alert", "PUT", "/alerts", "write", "entity"),
    _op("list_alerts", "GET", _P + "/alerts", "read", "project"),
    _op("get_alert", "GET", _P + "/alerts/{alert_id}", "read", "project"),
    _op("add_alert_delivery", "POST", "/alert-deliveries", "write", "entity"),
    _op("list_alert_deliveries", "GET", _P + "/alert-deliveries", "read", "project"),
    _op("add_label_segment", "POST", "/label-segments", "write", "entity"),
    _op("list_label_segments", "GET", _P + "/label-segments", "read", "project"),
    # leases: leader election among server replicas (server-internal coordination)
    _op("acquire_lease", "POST", "/server/leases/{name}", "admin", "server"),
    _op("get_lease", "GET", "/server/leases/{name}", "admin", "server"),
    _op("release_lease", "DELETE", "/server/leases/{name}", "admin", "server"),
)


@functools.cache
def by_name() -> Mapping[str, Operation]:
    """The operations by store method name."""
    return {op.name: op for op in OPERATIONS}
