"""``loopml tune list|show|plot`` on a store with studies in it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tuning_helpers import epochs, quadratic
from typer.testing import CliRunner, Result

from loopml.cli.app import app
from loopml.tuning import tune


def _cli(store: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--store", store, *args])


@pytest.fixture
def studies(store_uri: str) -> str:
    tune(quadratic, n_trials=12, seed=0, study_name="quad")
    tune(epochs, n_trials=6, seed=0, study_name="epochs", direction="maximize", metric="acc")
    return store_uri


def test_list_shows_every_study(studies: str) -> None:
    got = _cli(studies, "tune", "list")
    assert got.exit_code == 0, got.output
    assert "quad" in got.output and "epochs" in got.output and "maximize" in got.output
    rows = json.loads(_cli(studies, "tune", "list", "--json").output)
    assert [r["study"] for r in rows] == ["epochs", "quad"]  # newest first
    quad = rows[1]
    assert quad["n_trials"] == 12 and quad["status"] == "finished"
    assert quad["best_value"] is not None


def test_list_of_an_empty_store_says_how_to_start(store_uri: str) -> None:
    from loopml.store import open_store

    open_store(store_uri).close()  # an initialised, empty store
    got = _cli(store_uri, "tune", "list")
    assert got.exit_code == 0 and "no studies" in got.output


def test_show_has_the_best_trial_importances_and_trials(studies: str) -> None:
    got = _cli(studies, "tune", "show", "quad", "--limit", "5")
    assert got.exit_code == 0, got.output
    for text in ("best trial", "parameter importance", "trials (5 of 12)", "TPESampler"):
        assert text in got.output
    data = json.loads(_cli(studies, "tune", "show", "quad", "--json", "--limit", "0").output)
    assert data["counts"]["complete"] == 12 and len(data["trials"]) == 12
    values = [t["value"] for t in data["trials"]]
    assert values == sorted(values) and data["best"]["value"] == values[0]
    assert set(data["importance"]) == {"x", "y"}
    by_number = json.loads(
        _cli(
            studies, "tune", "show", "quad", "--json", "--sort", "number", "--no-importance"
        ).output
    )
    assert [t["number"] for t in by_number["trials"]] == list(range(12))
    assert by_number["importance"] is None
    best_first = json.loads(_cli(studies, "tune", "show", "epochs", "--json").output)
    values = [t["value"] for t in best_first["trials"] if t["state"] == "complete"]
    assert values == sorted(values, reverse=True)  # maximize: the largest first


def test_plot_writes_one_html_page(studies: str, tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    out = tmp_path / "quad.html"
    got = _cli(studies, "tune", "plot", "quad", "--out", str(out), "--cdn")
    assert got.exit_code == 0, got.output
    page = out.read_text()
    assert page.count("<section>") == 3 and "cdn.plot.ly" in page
    got = _cli(studies, "tune", "plot", "epochs", "-o", str(out), "-k", "intermediate", "--cdn")
    assert got.exit_code == 0 and out.read_text().count("<section>") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "study 'nope' does not exist"),
        (["show", "quad", "--sort", "best"], "--sort must be 'value' or 'number'"),
        (["show", "quad", "--limit", "-1"], "--limit must be 0"),
        (["plot", "quad", "--kind", "pie"], "unknown plot 'pie'"),
        (["list", "--project", "ghost"], "project 'ghost' does not exist"),
    ],
)
def test_errors_are_one_line(studies: str, args: list[str], message: str) -> None:
    got = _cli(studies, "tune", *args)
    assert got.exit_code == 1 and message in got.output


def test_plot_without_plotly_names_the_extra(
    studies: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    got = _cli(studies, "tune", "plot", "quad", "-o", str(tmp_path / "x.html"), "-k", "history")
    assert got.exit_code == 1 and "loopml[plots]" in got.output
