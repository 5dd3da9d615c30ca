"""The public surface is deliberate: these tests fail when a name becomes public by accident, and
when ``import loopml`` starts importing heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import loopml
import loopml.errors
import loopml.tracking

TOP_LEVEL = [
    "ActiveRun",
    "ArtifactInfo",
    "AuditEvent",
    "Client",
    "Dataset",
    "DatasetInput",
    "DatasetVersion",
    "Deployment",
    "Environment",
    "Gate",
    "LoopError",
    "Metric",
    "MetricHistory",
    "ModelSignature",
    "ModelVersion",
    "Page",
    "Param",
    "Pipeline",
    "PipelineResult",
    "PredictionSegment",
    "Project",
    "RegisteredModel",
    "Route",
    "RouteRole",
    "Run",
    "RunComparison",
    "RunStatus",
    "Tag",
    "TrafficWindow",
    "WindowProfile",
    "__version__",
    "active_run",
    "end_run",
    "errors",
    "evaluate",
    "flush",
    "get_client",
    "get_dataset",
    "get_tracking_uri",
    "infer_signature",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_ground_truth",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "pipeline",
    "promote",
    "rollback",
    "save_model",
    "search_runs",
    "set_project",
    "set_seed",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "split_dataset",
    "start_run",
    "step",
    "tune",
]


def test_top_level_all_is_pinned() -> None:
    assert loopml.__all__ == sorted(TOP_LEVEL)


def test_every_exported_name_resolves() -> None:
    for name in loopml.__all__:
        assert getattr(loopml, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        loopml.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_all_lists_are_sorted() -> None:
    import loopml.data
    import loopml.schema
    import loopml.stats

    for module in (loopml.errors, loopml.tracking, loopml.data, loopml.schema, loopml.stats):
        assert list(module.__all__) == sorted(module.__all__), module.__name__


def test_every_data_name_resolves() -> None:
    import loopml.data

    for name in loopml.data.__all__:
        assert getattr(loopml.data, name) is not None, name


def test_import_loopml_data_stays_light() -> None:
    code = (
        "import sys, loopml.data\n"
        "heavy = {'sqlalchemy', 'pandas', 'pyarrow', 'scipy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_loopml_stays_light() -> None:
    code = (
        "import sys, loopml\n"
        "heavy = {'sqlalchemy', 'alembic', 'pandas', 'numpy', 'scipy', 'fastapi', 'pydantic',"
        " 'fsspec', 'typer', 'rich'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_error_names_what_to_do() -> None:
    from loopml.errors import LoopError, from_code, http_status

    def walk(cls: type[LoopError]) -> list[type[LoopError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    codes = [c.code for c in walk(LoopError)]
    assert len(codes) == len(set(codes)), "error codes must be unique"
    for cls in walk(LoopError):
        assert 400 <= cls.http_status <= 599
        assert http_status(cls.code) == cls.http_status
        rebuilt = from_code(cls.code, "msg")
        assert type(rebuilt) is cls and str(rebuilt) == "msg"
        assert cls.__doc__, f"{cls.__name__} needs a docstring"


def test_every_models_name_resolves_and_the_heavy_ones_load_lazily() -> None:
    import loopml.models

    assert list(loopml.models.__all__) == sorted(loopml.models.__all__)
    code = (
        "import sys, loopml.models\n"
        "print(sorted({'sklearn', 'matplotlib', 'torch', 'xgboost', 'lightgbm', 'onnxruntime'}"
        " & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name in loopml.models.__all__:
        assert getattr(loopml.models, name) is not None, name
    assert loopml.promote is loopml.models.promote and loopml.Gate is loopml.models.Gate
