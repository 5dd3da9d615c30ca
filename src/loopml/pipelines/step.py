"""Steps: plain Python functions that a pipeline composes.

``@loopml.step`` wraps a function without changing what calling it does outside a pipeline (it
runs, so a step stays testable on its own). Inside a ``@loopml.pipeline`` function, calling a step
records a node of the pipeline's graph and returns a handle to its future output instead.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, get_args, get_origin, overload

from loopml.errors import InvalidArgument

__all__ = ["Step", "step"]

_F = TypeVar("_F", bound=Callable[..., Any])


class Step:
    """A pipeline step: a function plus how to run it.

    Attributes:
        fn: the wrapped function.
        name: the step's name (the function's by default); node names in a pipeline derive from it.
        retries: attempts after the first when the function raises (default 0).
        retry_delay: seconds before the first retry; doubled after each one.
        timeout: seconds an attempt may take (None: no limit). Out-of-process executors kill the
            attempt; the in-process executor stops waiting for it and fails the step.
        cache: reuse the outputs of an earlier run of this step with the same code, inputs and
            parameters (default True). Turn it off for steps with side effects or fresh reads.
        outputs: names of the step's outputs when it returns a tuple, one handle each; None for
            one output (the return value, whatever it is).
    """

    fn: Callable[..., Any]
    name: str
    retries: int
    retry_delay: float
    timeout: float | None
    cache: bool
    outputs: tuple[str, ...] | None

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: float = 1.0,
        timeout: float | None = None,
        cache: bool = True,
        outputs: Sequence[str] | int | None = None,
    ) -> None:
        if isinstance(fn, Step):
            raise InvalidArgument(f"{fn.name!r} is a step already; decorate it once")
        if not callable(fn):
            raise InvalidArgument(f"@step decorates a function, not a {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
            raise InvalidArgument(
                f"step {_qualname(fn)!r} is a coroutine or generator function; a step returns "
                "its output: make it a plain function"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidArgument(f"retries must be an integer >= 0, got {retries!r}")
        if retry_delay < 0:
            raise InvalidArgument(f"retry_delay must be >= 0 seconds, got {retry_delay!r}")
        if timeout is not None and not timeout > 0:
            raise InvalidArgument(f"timeout must be > 0 seconds or None, got {timeout!r}")
        self.fn = fn
        self.name = _check_name(name or str(getattr(fn, "__name__", "step")))
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.timeout = None if timeout is None else float(timeout)
        self.cache = bool(cache)
        self.outputs = _outputs(fn, outputs)
        self.signature = inspect.signature(fn)
        code = getattr(fn, "__code__", None)
        self.source_file: str = inspect.getsourcefile(fn) or "<unknown>" if code else "<unknown>"
        self.source_line: int = code.co_firstlineno if code else 0
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Step {self.name} ({self.source_file}:{self.source_line})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from loopml.pipelines.graph import current_builder

        builder = current_builder()
        if builder is None:  # outside a pipeline: the plain function
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    @functools.cached_property
    def code_hash(self) -> str:
        """sha256 of the function's source (dedented), or of its bytecode and constants when the
        source is not at hand. Only the step's own code counts: a change in a helper it calls
        does not invalidate the cache (bump ``name`` or pass ``cache=False`` then)."""
        try:
            text = textwrap.dedent(inspect.getsource(self.fn))
        except (OSError, TypeError):
            code = getattr(self.fn, "__code__", None)
            text = repr((code.co_code, code.co_consts)) if code else repr(self.fn)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def location(self) -> str:
        """``file:line`` of the function's definition."""
        return f"{self.source_file}:{self.source_line}"


def _qualname(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn))))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 200 or "/" in name:
        raise InvalidArgument(f"a step name is 1-200 characters without '/', got {name!r}")
    return name


def _outputs(
    fn: Callable[..., Any], outputs: Sequence[str] | int | None
) -> tuple[str, ...] | None:
    """The output names: given, numbered (``outputs=2``), or read from a ``tuple[A, B]`` return
    annotation; None for a single output."""
    if outputs is None:
        try:
            hint = inspect.signature(fn).return_annotation
        except (TypeError, ValueError):
            return None
        if isinstance(hint, str):  # postponed annotations: resolve the common spellings only
            try:
                import typing

                hint = typing.get_type_hints(fn).get("return", None)
            except Exception:  # an unresolvable annotation just means one output
                return None
        if get_origin(hint) is tuple:
            items = get_args(hint)
            if items and Ellipsis not in items:
                return tuple(str(i) for i in range(len(items)))
        return None
    if isinstance(outputs, bool):
        raise InvalidArgument(f"outputs must be a count or a list of names, got {outputs!r}")
    if isinstance(outputs, int):
        if outputs < 2:
            raise InvalidArgument(
                f"outputs=N needs N >= 2 (one output is the default), got {outputs}"
            )
        return tuple(str(i) for i in range(outputs))
    names = tuple(outputs)
    if (
        len(names) < 2
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise InvalidArgument(
            f"outputs must name at least two distinct outputs, got {list(names)!r}"
        )
    return names


@overload
def step(fn: _F, /) -> Step: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    cache: bool = True,
    outputs: Sequence[str] | int | None = None,
) -> Callable[[_F], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    cache: bool = True,
    outputs: Sequence[str] | int | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@loopml.step`` or ``@loopml.step(retries=2)``.

    Args:
        fn: the function (when used without parentheses).
        name: the step's name (default: the function's).
        retries: attempts after the first when the function raises.
        retry_delay: seconds before the first retry, doubled after each.
        timeout: seconds an attempt may take.
        cache: reuse an earlier run's outputs when code, inputs and parameters are the same.
        outputs: output names (or a count) for a step that returns a tuple; read from a
            ``-> tuple[A, B]`` annotation when not given.

    Returns:
        A :class:`Step`: called outside a pipeline it runs the function; inside one it adds a
        node to the graph and returns a handle to the output (a tuple of handles for several).
    """

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
            cache=cache,
            outputs=outputs,
        )

    return wrap(fn) if fn is not None else wrap
