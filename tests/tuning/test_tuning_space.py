"""The declarative search space and how objectives are called."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from loopml.errors import InvalidArgument
from loopml.tuning import Categorical, Float, Int
from loopml.tuning.space import check_space, describe, to_distributions
from loopml.tuning.trial import call_style


def test_dimensions_become_optuna_distributions() -> None:
    space = check_space(
        {
            "lr": Float(1e-4, 0.1, log=True),
            "dropout": Float(0, 0.5, step=0.1),
            "units": Int(16, 1024, log=True),
            "depth": Int(2, 10, step=2),
            "kind": Categorical(["rf", None, 3]),
            "beta": optuna.distributions.FloatDistribution(0.5, 0.9),
        }
    )
    dists = to_distributions(space)
    assert dists["lr"] == optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)
    assert dists["dropout"] == optuna.distributions.FloatDistribution(0, 0.5, step=0.1)
    assert dists["units"] == optuna.distributions.IntDistribution(16, 1024, log=True)
    assert dists["depth"] == optuna.distributions.IntDistribution(2, 10, step=2)
    assert dists["kind"] == optuna.distributions.CategoricalDistribution(["rf", None, 3])
    assert space["beta"] == Float(0.5, 0.9)
    assert describe(space)["depth"] == {
        "type": "int",
        "low": 2,
        "high": 10,
        "log": False,
        "step": 2,
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Float(1, 0), "low must not exceed high"),
        (lambda: Float(0, 1, log=True), "low must be > 0 on a log scale"),
        (lambda: Float(0, 1, step=0), "step must be > 0"),
        (lambda: Float(1, 2, step=0.1, log=True), "step or log=True, not both"),
        (lambda: Float("0", 1), "Float low must be a number"),
        (lambda: Float(0, float("inf")), "must be finite"),
        (lambda: Int(1, 2.5), "Int high must be an int"),
        (lambda: Int(5, 1), "low must not exceed high"),
        (lambda: Int(0, 8, log=True), "low must be >= 1"),
        (lambda: Int(1, 8, step=0), "step must be >= 1"),
        (lambda: Categorical("abc"), "takes a list of choices"),
        (lambda: Categorical([]), "at least one choice"),
        (lambda: Categorical([[1, 2]]), "choices must be None, bool, int, float or str"),
        (lambda: Categorical(["a", "a"]), "appears twice"),
        (lambda: check_space([Float(0, 1)]), "space must be a dict"),
        (lambda: check_space({"bad key!": Float(0, 1)}), "not a valid key"),
    ],
)
def test_bad_dimensions_say_what_to_fix(make: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        make()


def test_categorical_keeps_equal_values_of_different_types() -> None:
    assert Categorical([1, True, 1.0, "1"]).choices == (1, True, 1.0, "1")


def _trial(trial: Any) -> float:
    return 0.0


def _params(params: dict[str, Any]) -> float:
    return 0.0


def _kwargs(lr: float, depth: int) -> float:
    return 0.0


def _kwargs_trial(lr: float, depth: int, trial: Any) -> float:
    return 0.0


def _var_kwargs(**params: Any) -> float:
    return 0.0


def test_the_call_style_follows_the_signature() -> None:
    keys = ["lr", "depth"]
    assert call_style(_trial, None) == "trial"
    assert call_style(_trial, keys) == "trial"
    assert call_style(_params, keys) == "params"
    assert call_style(_kwargs, keys) == "kwargs"
    assert call_style(_kwargs_trial, keys) == "kwargs+trial"
    assert call_style(_var_kwargs, keys) == "kwargs"
    assert call_style(lambda p: 0.0, keys) == "params"
    assert call_style(_params, ["params"]) == "params"
    assert call_style(max, keys) == "params"  # no signature: a dict
