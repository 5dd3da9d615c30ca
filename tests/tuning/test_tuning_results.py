"""What a study gives back: the best trial, a DataFrame, parameter importance and plotly plots
(and the error naming the plots extra when plotly is missing)."""

from __future__ import annotations

import sys

import pytest
from tuning_helpers import epochs, quadratic

import loopml
from loopml.errors import InvalidArgument, MissingExtra, NotFound
from loopml.tuning import Trial, TuneResult, load_study, tune
from loopml.tuning.plots import html_page


@pytest.fixture
def result(store_uri: str) -> TuneResult:
    return tune(quadratic, n_trials=30, seed=0, study_name="q")


def test_importance_ranks_the_param_that_matters(result: TuneResult) -> None:
    shares = result.importance()
    assert set(shares) == {"x", "y"} and shares["x"] > shares["y"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert result.importance() == shares  # seeded: repeatable
    assert set(result.importance("ped-anova")) == {"x", "y"}
    with pytest.raises(InvalidArgument, match="unknown importance evaluator 'magic'"):
        result.importance("magic")


def test_importance_needs_two_completed_trials(store_uri: str) -> None:
    one = tune(quadratic, n_trials=1)
    with pytest.raises(InvalidArgument, match="at least 2 completed trials"):
        one.importance()


def test_to_pandas_has_one_row_per_trial(result: TuneResult) -> None:
    frame = result.to_pandas()
    assert len(frame) == 30
    assert list(frame.columns[:5]) == ["number", "state", "value", "duration_ms", "run_id"]
    assert frame["value"].min() == result.best_value
    assert {"params.x", "params.y"} <= set(frame.columns)


def test_plots_are_plotly_figures(result: TuneResult) -> None:
    pytest.importorskip("plotly")
    history = result.plot_optimization_history()
    assert "q" in history.layout.title.text and len(history.data) >= 2
    assert result.plot_param_importances().data[0].type == "bar"
    parallel = result.plot_parallel_coordinate()
    assert "Parallel Coordinate" in parallel.layout.title.text and parallel.data
    page = html_page([history], "study q", inline_js=False)
    assert page.count("<section>") == 1 and "cdn.plot.ly" in page
    with pytest.raises(InvalidArgument, match="unknown plot 'pie'"):
        result.plot("pie")


def test_intermediate_values_plot(store_uri: str) -> None:
    pytest.importorskip("plotly")
    result = tune(epochs, n_trials=4, pruner="none")
    assert len(result.plot("intermediate").data) == 4


def test_plots_without_plotly_name_the_extra(
    result: TuneResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(MissingExtra, match=r"pip install 'loopml\[plots\]'"):
        result.plot_optimization_history()


def test_no_completed_trial_means_no_best(store_uri: str) -> None:
    def objective(trial: Trial) -> float:
        trial.suggest_float("x", 0, 1)
        return float("nan")

    result = tune(objective, n_trials=2, study_name="nothing")
    assert result.count("fail") == 2
    with pytest.raises(NotFound, match="no trial of study 'nothing' completed"):
        result.best_trial  # noqa: B018
    assert "best_value" not in repr(result)
    assert load_study("nothing").count("fail") == 2


def test_load_study_reads_a_running_study(client: loopml.Client) -> None:
    seen = []

    def objective(trial: Trial) -> float:
        if trial.number == 2:
            seen.append(load_study("live"))
        return trial.suggest_float("x", 0, 1)

    tune(objective, n_trials=3, study_name="live")
    live = seen[0]
    assert [t.state for t in live.trials] == ["complete", "complete", "running"]
