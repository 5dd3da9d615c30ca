"""The public surface of loopml.tuning: pinned, resolvable, and light to import."""

from __future__ import annotations

import subprocess
import sys

import loopml.tuning

TUNING = [
    "Categorical",
    "Float",
    "Int",
    "Trial",
    "TrialPruned",
    "TrialResult",
    "TuneResult",
    "current_trial",
    "list_studies",
    "load_study",
    "tune",
]


def test_the_surface_is_pinned_and_resolves() -> None:
    assert loopml.tuning.__all__ == TUNING
    for name in TUNING:
        assert getattr(loopml.tuning, name) is not None, name
    import optuna

    assert loopml.tuning.TrialPruned is optuna.TrialPruned


def test_importing_loopml_tuning_loads_no_optuna() -> None:
    code = (
        "import sys, loopml.tuning\n"
        "heavy = {'optuna', 'sqlalchemy', 'pandas', 'plotly', 'ray', 'sklearn'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
