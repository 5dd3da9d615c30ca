"""The graph is checked before anything runs, and errors point at the user's line."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import loopml
from loopml.errors import InvalidArgument
from loopml.pipelines import InvalidPipeline, step


@step
def double(x: int) -> int:
    return 2 * x


@step
def total(values: list) -> int:
    return sum(values)


def _line(fn, text: str) -> str:
    """``file:line`` of the line of ``fn``'s source that contains ``text``."""
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{__file__}:{start + offset}"


def test_wrong_arguments_name_the_call_site() -> None:
    @loopml.pipeline
    def bad():
        return double(1, 2)

    with pytest.raises(InvalidPipeline) as err:
        bad.graph()
    assert err.value.message.startswith(_line(bad.fn, "double(1, 2)"))
    assert "step 'double'" in err.value.message and "too many positional" in err.value.message


def test_using_an_output_as_a_value_is_an_error_at_its_line() -> None:
    @loopml.pipeline
    def branchy():
        x = double(1)
        if x:
            return double(x)
        return None

    with pytest.raises(InvalidPipeline) as err:
        branchy.graph()
    assert err.value.message.startswith(_line(branchy.fn, "if x:"))
    assert "tested for truth" in err.value.message

    @loopml.pipeline
    def attr():
        return double(double(1).real)

    with pytest.raises(InvalidPipeline, match=r"asked for \.real"):
        attr.graph()


def test_parameters_must_be_recordable() -> None:
    @loopml.pipeline
    def p():
        return double(object())

    with pytest.raises(InvalidPipeline, match="cannot record as a parameter"):
        p.graph()

    @loopml.pipeline
    def paths(where: Path = Path("/tmp")):
        return total([double(1), 2, str(where)])

    node = paths.graph().nodes["total"]
    assert node.upstream == ("double",)


def test_nested_values_with_handles_are_edges() -> None:
    @loopml.pipeline
    def fan():
        return total([double(i) for i in range(3)])

    g = fan.graph()
    assert g.nodes["total"].upstream == ("double", "double_2", "double_3")
    assert g.nodes["total"].params() == {}


def test_pipeline_shape_errors() -> None:
    @loopml.pipeline
    def empty():
        return None

    with pytest.raises(InvalidPipeline, match="calls no step"):
        empty.graph()

    @loopml.pipeline
    def returns_value():
        double(1)
        return 3

    with pytest.raises(InvalidPipeline, match="returns a int"):
        returns_value.graph()

    @loopml.pipeline
    def needs(x: int):
        return double(x)

    with pytest.raises(InvalidArgument, match="cannot take"):
        needs.graph()
    with pytest.raises(InvalidArgument, match="cannot take"):
        needs.graph(y=1)


def test_step_and_pipeline_definitions_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="retries"):
        step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidArgument, match="timeout"):
        step(timeout=0)(lambda: 1)
    with pytest.raises(InvalidArgument, match="coroutine"):

        @step
        async def coro() -> int:
            return 1

    with pytest.raises(InvalidArgument, match="decorate it once"):
        step(double)
    with pytest.raises(InvalidArgument, match="at least two"):
        step(outputs=["a"])(lambda: 1)
    with pytest.raises(InvalidArgument, match="not a cron expression"):
        loopml.pipeline(schedule="every day")(lambda: None)


def test_tuple_annotation_gives_named_outputs() -> None:
    @step
    def pair() -> tuple[int, int]:
        return 1, 2

    assert pair.outputs == ("0", "1")

    @loopml.pipeline
    def p():
        _, b = pair()
        return double(b)

    assert p.graph().nodes["double"].arguments["x"].name == "1"
