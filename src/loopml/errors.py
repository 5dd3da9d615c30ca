"""The loopml error tree.

Every error loopml raises on purpose is a :class:`LoopError`. Each one names the object and its id,
carries a ``code`` that maps to an HTTP status (and back, so an error survives a round trip through
``loopml server``), and ends with what to do next::

    LoopError                   500 INTERNAL_ERROR
    ├── InvalidArgument         400 INVALID_ARGUMENT    bad input: a wrong type, an empty or huge
    │   ├── InvalidFilter       400 INVALID_FILTER        name, a malformed filter string, a path
    │   ├── UnsafePath          400 UNSAFE_PATH           that would leave its root, a schema file
    │   ├── InvalidSchema       400 INVALID_SCHEMA        with errors, data that cannot be read
    │   ├── InvalidData         400 INVALID_DATA
    │   │   └── SignatureMismatch 400 SIGNATURE_MISMATCH  model input that breaks its signature
    │   └── InvalidPipeline     400 INVALID_PIPELINE      a pipeline graph that cannot run
    ├── DataValidationFailed    422 DATA_VALIDATION     data breaks its contract (strict mode) or
    │                                                   a required quality check failed
    ├── GateFailed              422 GATE_FAILED         a release gate failed (see ``.result``)
    ├── PipelineFailed          500 PIPELINE_FAILED     a pipeline step failed (see ``.result``)
    ├── UntrustedModel          403 UNTRUSTED_MODEL     loading would run untrusted code
    ├── Unauthenticated         401 UNAUTHENTICATED     no, a wrong or an expired credential
    ├── PermissionDenied        403 PERMISSION_DENIED   the caller's role does not allow it
    ├── RateLimited             429 RATE_LIMITED        too many attempts (sign-in); wait
    ├── PayloadTooLarge         413 PAYLOAD_TOO_LARGE   a request body over the server's limit
    ├── NotFound                404 NOT_FOUND
    │   ├── ProjectNotFound     404 PROJECT_NOT_FOUND
    │   ├── RunNotFound         404 RUN_NOT_FOUND
    │   ├── ArtifactNotFound    404 ARTIFACT_NOT_FOUND
    │   ├── DatasetNotFound     404 DATASET_NOT_FOUND    a dataset, or one of its versions
    │   ├── ModelNotFound       404 MODEL_NOT_FOUND      a registered model, version or alias
    │   ├── DeploymentNotFound  404 DEPLOYMENT_NOT_FOUND
    │   ├── MonitorNotFound     404 MONITOR_NOT_FOUND
    │   └── AlertNotFound       404 ALERT_NOT_FOUND
    ├── AlreadyExists           409 ALREADY_EXISTS
    ├── Conflict                409 CONFLICT            the write contradicts what is stored
    │   └── ParamConflict       409 PARAM_CONFLICT        (a param re-logged with another value)
    ├── NoActiveRun             400 NO_ACTIVE_RUN       a fluent call outside ``start_run()``
    ├── StoreError              503 STORE_ERROR         the backend failed (I/O, connection)
    │   ├── SchemaVersionError  503 SCHEMA_VERSION        the schema is older or newer than this
    │   └── ArtifactCorrupted   500 ARTIFACT_CORRUPTED    loopml; a blob's hash is not its address
    │       └── ModelCorrupted 500 MODEL_CORRUPTED    a model file is not what was logged
    └── MissingExtra            500 MISSING_EXTRA       an optional dependency is not installed

Errors are plain exceptions: ``raise RunNotFound(run_id) from exc``. :func:`from_code` rebuilds the
right class from a code and a message (what a REST client does with an error body).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlertNotFound",
    "AlreadyExists",
    "ArtifactCorrupted",
    "ArtifactNotFound",
    "Conflict",
    "DataValidationFailed",
    "DatasetNotFound",
    "DeploymentNotFound",
    "GateFailed",
    "InvalidArgument",
    "InvalidData",
    "InvalidFilter",
    "InvalidPipeline",
    "InvalidSchema",
    "LoopError",
    "MissingExtra",
    "ModelCorrupted",
    "ModelNotFound",
    "MonitorNotFound",
    "NoActiveRun",
    "NotFound",
    "ParamConflict",
    "PayloadTooLarge",
    "PermissionDenied",
    "PipelineFailed",
    "ProjectNotFound",
    "RateLimited",
    "RunNotFound",
    "SchemaVersionError",
    "SignatureMismatch",
    "StoreError",
    "Unauthenticated",
    "UnsafePath",
    "UntrustedModel",
    "from_code",
    "http_status",
]


class LoopError(Exception):
    """The root of every error loopml raises on purpose.

    Attributes:
        code: a stable, machine-readable code (``RUN_NOT_FOUND``), the same over HTTP.
        http_status: the HTTP status this error maps to.
        message: the human message: what is wrong, with the object and its id, and what to do.
    """

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """The JSON body a server sends for this error: its code, its message and the plain
        attributes that name the object (``name``, ``version``, ``run_id``...)."""
        body: dict[str, object] = {"error_code": self.code, "message": self.message}
        details = {
            k: v
            for k, v in vars(self).items()
            if k != "message" and not k.startswith("_") and isinstance(v, str | int | float | None)
        }
        if details:
            body["details"] = details
        return body


class InvalidArgument(LoopError, ValueError):
    """An argument is malformed: a wrong type, an empty or over-long name, a bad value."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class InvalidFilter(InvalidArgument):
    """A search filter or order-by string does not parse."""

    code = "INVALID_FILTER"


class UnsafePath(InvalidArgument):
    """A path would leave its root: ``..``, an absolute path, an encoded traversal, a symlink."""

    code = "UNSAFE_PATH"


class InvalidSchema(InvalidArgument):
    """A schema (data contract) is malformed: the message names the file, line and field."""

    code = "INVALID_SCHEMA"


class InvalidData(InvalidArgument):
    """Data cannot be read or is unusable: an empty, unreadable or wrongly typed file, a failing
    SQL source. The message names the file, column or line."""

    code = "INVALID_DATA"


class SignatureMismatch(InvalidData):
    """Model input breaks the model's signature.

    ``problems`` lists each one as a dict with ``column``, ``expected`` and ``got`` (what a
    server returns in its 4xx body).
    """

    code = "SIGNATURE_MISMATCH"

    def __init__(self, message: str, problems: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class InvalidPipeline(InvalidArgument):
    """A pipeline's graph cannot run: a bad step call, a step output used as a value while the
    graph is built, a parameter that cannot be recorded. The message starts with the file and
    line at fault."""

    code = "INVALID_PIPELINE"


class DataValidationFailed(LoopError):
    """Data breaks its contract (validation in strict mode) or a required quality check failed.

    Attributes:
        report: the full report (a ``ValidationReport`` or a check report), when there is one.
    """

    code = "DATA_VALIDATION"
    http_status = 422

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class GateFailed(LoopError):
    """A release gate failed, so the alias did not move; ``result`` holds every check's outcome."""

    code = "GATE_FAILED"
    http_status = 422

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class PipelineFailed(LoopError):
    """A pipeline run failed: a step raised (after its retries) or timed out. ``result`` holds
    every step's outcome (a :class:`~loopml.pipelines.PipelineResult`); the message names the
    failed steps and how to resume."""

    code = "PIPELINE_FAILED"
    http_status = 500

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class UntrustedModel(LoopError):
    """Loading a model would unpickle or run its code, and the user has not trusted it."""

    code = "UNTRUSTED_MODEL"
    http_status = 403


class NotFound(LoopError, LookupError):
    """An object does not exist."""

    code = "NOT_FOUND"
    http_status = 404


class ProjectNotFound(NotFound):
    """A project does not exist."""

    code = "PROJECT_NOT_FOUND"

    def __init__(self, project: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"project {project!r} does not exist; list projects with `loopml projects list` "
            "or create it with `loopml projects create NAME`"
        )
        self.project = project


class RunNotFound(NotFound):
    """A run does not exist."""

    code = "RUN_NOT_FOUND"

    def __init__(self, run_id: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"run {run_id!r} does not exist; list runs with `loopml runs list` "
            "(was it deleted, or is the tracking URI another store?)"
        )
        self.run_id = run_id


class ArtifactNotFound(NotFound):
    """An artifact path (or a blob) does not exist."""

    code = "ARTIFACT_NOT_FOUND"


class DatasetNotFound(NotFound):
    """A dataset, or a version of it, does not exist."""

    code = "DATASET_NOT_FOUND"

    def __init__(
        self, name: str, version: str | int | None = None, message: str | None = None
    ) -> None:
        what = (
            f"dataset {name!r}" if version is None else f"version {version!r} of dataset {name!r}"
        )
        super().__init__(
            message
            or f"{what} does not exist; list datasets with `loopml data list` "
            "(or versions with `loopml data show NAME`)"
        )
        self.name = name
        self.version = version


class ModelNotFound(NotFound):
    """A registered model, one of its versions, or an alias does not exist."""

    code = "MODEL_NOT_FOUND"

    def __init__(
        self, name: str, version: str | int | None = None, message: str | None = None
    ) -> None:
        if version is None:
            what = f"model {name!r}"
        elif isinstance(version, str) and version.startswith("@"):
            what = f"alias {version[1:]!r} of model {name!r}"
        else:
            what = f"version {version!r} of model {name!r}"
        super().__init__(
            message
            or f"{what} does not exist; list models with `loopml models list` "
            "(or versions with `loopml models versions NAME`)"
        )
        self.name = name
        self.version = version


class DeploymentNotFound(NotFound):
    """A deployment does not exist."""

    code = "DEPLOYMENT_NOT_FOUND"

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"deployment {name!r} does not exist; list deployments with "
            "`loopml deployments list` (is it in another project?)"
        )
        self.name = name


class MonitorNotFound(NotFound):
    """A monitor does not exist."""

    code = "MONITOR_NOT_FOUND"

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"monitor {name!r} does not exist; list the project's monitors with "
            "Client.list_monitors() (is it in another project, or was it deleted?)"
        )
        self.name = name


class AlertNotFound(NotFound):
    """An alert does not exist."""

    code = "ALERT_NOT_FOUND"

    def __init__(self, alert_id: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"alert {alert_id!r} does not exist; list the project's alerts with "
            "Client.list_alerts() (is it in another project?)"
        )
        self.alert_id = alert_id


class AlreadyExists(LoopError):
    """An object with this name or id already exists."""

    code = "ALREADY_EXISTS"
    http_status = 409


class Conflict(LoopError):
    """A write contradicts what is already stored."""

    code = "CONFLICT"
    http_status = 409


class ParamConflict(Conflict):
    """A param was logged again with a different value. Params are immutable once logged."""

    code = "PARAM_CONFLICT"


class NoActiveRun(LoopError):
    """A fluent call (``loopml.log_metric``) was made with no active run in this context."""

    code = "NO_ACTIVE_RUN"
    http_status = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "there is no active run in this thread or context; wrap the code in "
            "`with loopml.start_run():`, or pass a run id to `loopml.Client` methods "
            "(new threads start with no active run: use contextvars.copy_context() to share it)"
        )


class Unauthenticated(LoopError):
    """The request carries no credential, or one the server does not accept (a wrong, revoked or
    expired token, a wrong password)."""

    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(LoopError):
    """The caller is known, but their role on the project does not allow the action."""

    code = "PERMISSION_DENIED"
    http_status = 403


class RateLimited(LoopError):
    """Too many attempts in a short time (sign-ins); the message says how long to wait."""

    code = "RATE_LIMITED"
    http_status = 429


class PayloadTooLarge(LoopError):
    """A request body is larger than the server accepts; send it in parts."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class StoreError(LoopError):
    """The storage backend failed: an I/O error, a lost connection, a corrupt file."""

    code = "STORE_ERROR"
    http_status = 503


class SchemaVersionError(StoreError):
    """The database schema is older or newer than this version of loopml understands."""

    code = "SCHEMA_VERSION"


class ArtifactCorrupted(StoreError):
    """A blob's content does not match its sha256 address: the artifact store was tampered with."""

    code = "ARTIFACT_CORRUPTED"
    http_status = 500


class ModelCorrupted(ArtifactCorrupted):
    """A model file's hash is not the one its manifest (or the registry) records: refused."""

    code = "MODEL_CORRUPTED"


class MissingExtra(LoopError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    code = "MISSING_EXTRA"
    http_status = 500


def _all_subclasses(cls: type[LoopError]) -> list[type[LoopError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def http_status(code: str) -> int:
    """The HTTP status for an error code (500 for an unknown code)."""
    for cls in _all_subclasses(LoopError):
        if cls.code == code:
            return cls.http_status
    return 500


def from_code(code: str, message: str, details: dict[str, object] | None = None) -> LoopError:
    """Rebuild the error class for ``code`` with ``message`` and the attributes in ``details``
    (the client side of a REST call)."""
    for cls in _all_subclasses(LoopError):
        if cls.code == code:
            err = LoopError.__new__(cls)
            LoopError.__init__(err, message)
            for key, value in (details or {}).items():
                if isinstance(key, str) and key.isidentifier() and not key.startswith("_"):
                    setattr(err, key, value)
            return err
    return LoopError(message)
