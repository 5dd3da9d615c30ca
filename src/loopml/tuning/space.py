"""A declarative search space: ``{"lr": Float(1e-4, 1e-1, log=True), "depth": Int(2, 10)}``.

The three kinds of dimension are frozen dataclasses that check their bounds when built and turn
into Optuna distributions (:meth:`Float.distribution` ...) only when a study needs them, so that a
space can be written, compared and pickled without importing Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument
from loopml.store.validation import check_key

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = ["Categorical", "Dimension", "Float", "Int", "check_space", "to_distributions"]

Choice = None | bool | int | float | str


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{what} must be a number, got {type(value).__name__} {value!r:.60}")
    if not math.isfinite(value):
        raise InvalidArgument(f"{what} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Float:
    """A real number in ``[low, high]``.

    Args:
        low, high: the bounds (both included); ``low <= high``.
        log: sample on a log scale (``low > 0``): for learning rates and regularisation.
        step: sample only ``low, low + step, ...`` (not with ``log``).
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        low, high = _number(self.low, "Float low"), _number(self.high, "Float high")
        if low > high:
            raise InvalidArgument(f"Float({low}, {high}): low must not exceed high; swap them")
        if self.log and low <= 0:
            raise InvalidArgument(
                f"Float({low}, {high}, log=True): low must be > 0 on a log scale"
            )
        if self.step is not None:
            step = _number(self.step, "Float step")
            if step <= 0:
                raise InvalidArgument(f"Float step must be > 0, got {self.step}")
            if self.log:
                raise InvalidArgument("Float takes step or log=True, not both")
            object.__setattr__(self, "step", step)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution."""
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True, slots=True)
class Int:
    """An integer in ``[low, high]`` (both included).

    Args:
        low, high: the bounds; ``low <= high``.
        log: sample on a log scale (``low >= 1``): for sizes such as 16..1024.
        step: sample only ``low, low + step, ...`` (``step`` 1 unless ``log``).
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        for what, value in (("low", self.low), ("high", self.high), ("step", self.step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgument(
                    f"Int {what} must be an int, got {type(value).__name__} {value!r:.60} "
                    "(use Float for real numbers)"
                )
        if self.low > self.high:
            raise InvalidArgument(
                f"Int({self.low}, {self.high}): low must not exceed high; swap them"
            )
        if self.step < 1:
            raise InvalidArgument(f"Int step must be >= 1, got {self.step}")
        if self.log and self.low < 1:
            raise InvalidArgument(
                f"Int({self.low}, {self.high}, log=True): low must be >= 1 on a log scale"
            )
        if self.log and self.step != 1:
            raise InvalidArgument("Int takes step or log=True, not both")

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution."""
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True, slots=True)
class Categorical:
    """One of a few choices: ``Categorical(["rf", "gbm", "linear"])``.

    Args:
        choices: ``None``, bools, ints, floats or strings (what a param can be written as);
            at least one, no duplicates.
    """

    choices: tuple[Choice, ...]

    def __init__(self, choices: Sequence[Choice]) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise InvalidArgument(
                f"Categorical takes a list of choices, got {type(choices).__name__} "
                f"{choices!r:.60} (write Categorical(['a', 'b']))"
            )
        values = tuple(choices)
        if not values:
            raise InvalidArgument("Categorical needs at least one choice")
        for c in values:
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise InvalidArgument(
                    f"Categorical choice {c!r:.60} is a {type(c).__name__}; choices must be "
                    "None, bool, int, float or str (map names to objects in the objective)"
                )
        seen: list[Choice] = []
        for c in values:
            if any(c == s and type(c) is type(s) for s in seen):
                raise InvalidArgument(f"Categorical choice {c!r} appears twice")
            seen.append(c)
        object.__setattr__(self, "choices", values)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution."""
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)


Dimension = Float | Int | Categorical


def check_space(space: object) -> dict[str, Dimension]:
    """``space`` as a dict of param name to dimension, or :class:`InvalidArgument` naming the
    entry to fix. Optuna distributions are accepted too."""
    if not isinstance(space, Mapping):
        raise InvalidArgument(
            f"space must be a dict of param name to Float/Int/Categorical, got "
            f"{type(space).__name__}"
        )
    if not space:
        raise InvalidArgument("space is empty; give at least one param, e.g. {'lr': Float(0, 1)}")
    out: dict[str, Dimension] = {}
    for name, dim in space.items():
        check_key(name, "space param name")
        if isinstance(dim, (Float, Int, Categorical)):
            out[name] = dim
            continue
        converted = _from_optuna(dim)
        if converted is None:
            raise InvalidArgument(
                f"space[{name!r}] is a {type(dim).__name__} ({dim!r:.60}); use "
                "loopml.tuning.Float(low, high), Int(low, high) or Categorical([...])"
            )
        out[name] = converted
    return out


def _from_optuna(dim: object) -> Dimension | None:
    """An Optuna distribution as a dimension (None when ``dim`` is not one)."""
    module = type(dim).__module__
    if not module.startswith("optuna."):
        return None
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(dim, FloatDistribution):
        return Float(dim.low, dim.high, log=dim.log, step=dim.step)
    if isinstance(dim, IntDistribution):
        return Int(dim.low, dim.high, log=dim.log, step=dim.step)
    if isinstance(dim, CategoricalDistribution):
        return Categorical(list(dim.choices))
    return None


def to_distributions(space: Mapping[str, Dimension]) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a checked space."""
    return {name: dim.distribution() for name, dim in space.items()}


def describe(space: Mapping[str, Dimension]) -> dict[str, Any]:
    """A JSON-ready description of a space (recorded on the study's run)."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Categorical):
            out[name] = {"type": "categorical", "choices": list(dim.choices)}
        else:
            kind = "float" if isinstance(dim, Float) else "int"
            out[name] = {"type": kind, "low": dim.low, "high": dim.high, "log": dim.log}
            if dim.step not in (None, 1) or (isinstance(dim, Float) and dim.step is not None):
                out[name]["step"] = dim.step
    return out
