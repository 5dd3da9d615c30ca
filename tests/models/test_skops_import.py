"""skops is imported without its scan of every scikit-learn module, and trusts the same types."""

from __future__ import annotations

import subprocess
import sys

from loopml.models.flavors.sklearn import sklearn_estimators


def test_skops_loads_without_scanning_scikit_learn_or_importing_torch() -> None:
    code = (
        "import sys\n"
        "from loopml.models.flavors.sklearn import skops_io\n"
        "sio = skops_io('test')\n"
        "import sklearn.utils\n"
        "print('torch' in sys.modules, sklearn.utils.all_estimators.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The scan is switched off only while skops imports: scikit-learn's own function is back.
    assert out.stdout.split() == ["False", "all_estimators"]


def test_every_estimator_skops_would_trust_is_recognised() -> None:
    from sklearn.utils import all_estimators

    names = {f"{cls.__module__}.{cls.__name__}" for _, cls in all_estimators()}
    assert sklearn_estimators(names) == {n for n in names if n.startswith("sklearn.")}
    assert (
        sklearn_estimators(
            {
                "sklearn.utils._bunch.Bunch",  # a scikit-learn class, not an estimator
                "os.system",
                "sklearn.tests.Fake",
                "sklearn.linear_model.NoSuchThing",
                "builtins.eval",
            }
        )
        == set()
    )
