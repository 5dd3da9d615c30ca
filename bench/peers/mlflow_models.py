#!/usr/bin/env python3
"""MLflow side of the models benchmark (venv ``bench/.venv-mlflow``); ``bench/models.py`` runs
every command in a fresh process with ``MLFLOW_TRACKING_URI=sqlite:///<fresh folder>/mlflow.db``
(tracking and registry in one SQLite file) and the experiment's artifacts in a local folder.

    setup       train ``lr`` and ``rf`` on breast_cancer (``bench/models_data.py``, as
                ``shared/bench/train_model.py``), ``mlflow.sklearn.log_model(...,
                registered_model_name="bench-<m>")`` with MLflow 3's default format (skops; the
                file's untrusted types passed as ``skops_trusted_types``, as the anchor script
                does for the forest), then ``set_registered_model_alias(.., "champion", ..)``.
    load        one cold load, timed in three parts: (a) ``from mlflow.pyfunc import load_model``,
                (b) ``load_model("models:/bench-<m>@champion")``, (c) the first ``predict`` of
                one row.
    eval-setup  the same 100k-row data and models as loopml's, each logged with
                ``mlflow.sklearn.log_model`` (no registry).
    eval        warm up on 1,000 rows, then time the bare ``predict`` + ``predict_proba`` (of
                ``pyfunc_model.get_raw_model()``) and ``mlflow.models.evaluate(pyfunc_model, df,
                targets="y", model_type="classifier", evaluator_config={
                "log_model_explainability": False})`` inside a run, alternately (bare, evaluate,
                bare, evaluate, bare: the median of each, as loopml's worker).

Every command prints one JSON line (appended to ``--out``) with ``tool: mlflow`` and ``key``.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # process start (after the interpreter): startup_s = t0 - T_START

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from data_measure import emit, fail  # noqa: E402

HEAVY = ("sklearn", "pandas", "numpy", "scipy", "pyarrow", "sqlalchemy", "skops")


def versions() -> dict[str, str]:
    import mlflow
    import numpy
    import pandas
    import sklearn
    import skops
    import sqlalchemy

    return {
        "mlflow": mlflow.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "sqlalchemy": sqlalchemy.__version__,
    }


def loaded_heavy() -> list[str]:
    return [m for m in HEAVY if m in sys.modules]


def preimport(a: argparse.Namespace) -> None:
    """Variants: import the framework before the timer (``--preimport``)."""
    import importlib

    for name in filter(None, (a.preimport or "").split(",")):
        importlib.import_module(name)


def _experiment(store: Path) -> str:
    import mlflow

    exp = mlflow.get_experiment_by_name("bench-models")
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(
        "bench-models", artifact_location=(store / "artifacts").resolve().as_uri()
    )


def _trusted(model: object) -> list[str]:
    """The skops types MLflow must be told to trust when it loads the model (the anchor script
    passes ``sklearn.tree._tree.Tree`` for the forest; loopml records these by itself)."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))


def _log(model: object, example: object, registered: str | None = None) -> object:
    import mlflow

    return mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=example,
        registered_model_name=registered,
        skops_trusted_types=_trusted(model) or None,
    )


# --- load by alias -------------------------------------------------------------------------------


def cmd_setup(a: argparse.Namespace) -> None:
    rec: dict[str, object] = {"tool": "mlflow", "key": "setup"}
    try:
        import mlflow
        from mlflow import MlflowClient
        from models_data import breast_cancer

        X, models = breast_cancer()
        mlflow.set_experiment(experiment_id=_experiment(Path(a.store)))
        out = {}
        for name, model in models.items():
            t0 = time.perf_counter()
            with mlflow.start_run(run_name=name):
                info = _log(model, X.head(5), registered=f"bench-{name}")
            version = info.registered_model_version
            MlflowClient().set_registered_model_alias(f"bench-{name}", "champion", str(version))
            out[name] = {
                "uri": f"models:/bench-{name}@champion",
                "version": version,
                "source": info.model_uri,
                "log_register_s": time.perf_counter() - t0,
            }
        Path(a.payload).write_text(
            json.dumps({"columns": list(X.columns), "data": X.iloc[[0]].to_numpy().tolist()})
        )
        rec.update(
            models=out, tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"), versions=versions()
        )
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def cmd_load(a: argparse.Namespace) -> None:
    rec: dict[str, object] = {
        "tool": "mlflow",
        "key": f"load_{a.model}",
        "rep": a.rep,
        "variant": a.variant,
    }
    try:
        payload = json.loads(Path(a.payload).read_text())
        preimport(a)
        if a.connect:  # what a server does once at start: connect to the store
            from mlflow import MlflowClient

            MlflowClient().search_registered_models(max_results=1)
        rec["heavy_before"] = loaded_heavy()
        t0 = time.perf_counter()
        from mlflow.pyfunc import load_model

        t1 = time.perf_counter()
        rec["heavy_after_import"] = loaded_heavy()
        model = load_model(f"models:/bench-{a.model}@champion")
        t2 = time.perf_counter()
        rec["heavy_after_load"] = loaded_heavy()
        import pandas as pd  # already imported by the load: not timed either way

        row = pd.DataFrame(payload["data"], columns=payload["columns"])
        t3 = time.perf_counter()
        pred = model.predict(row)
        t4 = time.perf_counter()
        rec.update(
            import_s=t1 - t0,
            load_s=t2 - t1,
            import_load_s=t2 - t0,
            predict1_s=t4 - t3,
            startup_s=t0 - T_START,
            prediction=[int(x) for x in list(pred)],
            torch_loaded="torch" in sys.modules,
            versions=versions(),
        )
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


# --- evaluation ----------------------------------------------------------------------------------


def cmd_eval_setup(a: argparse.Namespace) -> None:
    rec: dict[str, object] = {"tool": "mlflow", "key": "eval_setup"}
    try:
        import mlflow
        from models_data import eval_data, train_eval_models

        mlflow.set_experiment(experiment_id=_experiment(Path(a.store)))
        train, test, digest = eval_data(a.rows)
        t0 = time.perf_counter()
        models = train_eval_models(train)
        rec["train_s"] = time.perf_counter() - t0
        features = test.drop(columns="y")
        uris = {}
        for name, model in models.items():
            with mlflow.start_run(run_name=f"eval-{name}"):
                uris[name] = _log(model, features.head(5)).model_uri
        d = Path(a.dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "mlflow_uris.json").write_text(json.dumps(uris))
        rec.update(rows=len(test), data_digest=digest, uris=uris, versions=versions())
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def cmd_eval(a: argparse.Namespace) -> None:
    rec: dict[str, object] = {"tool": "mlflow", "key": f"eval_{a.model}", "rep": a.rep}
    try:
        import statistics

        import mlflow
        from models_data import bare, eval_data

        mlflow.set_experiment(experiment_id=_experiment(Path(a.store)))
        uri = json.loads((Path(a.dir) / "mlflow_uris.json").read_text())[a.model]
        _, test, digest = eval_data(a.rows)
        features = test.drop(columns="y")
        pyfunc_model = mlflow.pyfunc.load_model(uri)
        raw = pyfunc_model.get_raw_model()
        config = {"log_model_explainability": False}

        def run_evaluate(frame: object) -> object:
            with mlflow.start_run(run_name=f"evaluate-{a.model}"):
                return mlflow.models.evaluate(
                    pyfunc_model,
                    frame,
                    targets="y",
                    model_type="classifier",
                    evaluator_config=config,
                )

        bare(raw, features.head(1000))  # warm-up, not timed
        try:
            run_evaluate(test.head(1000))
        except Exception as exc:
            rec["warmup_error"] = f"{type(exc).__name__}: {exc}"[:500]
        # bare, evaluate, bare, evaluate, ..., bare: the median of each (as loopml's worker)
        bares = [bare(raw, features)]
        evals = []
        for _ in range(a.evals):
            t0 = time.perf_counter()
            result = run_evaluate(test)
            evals.append(time.perf_counter() - t0)
            bares.append(bare(raw, features))
        bare_s = statistics.median(b["seconds"] for b in bares)
        eval_s = statistics.median(evals)
        metrics = dict(getattr(result, "metrics", {}) or {})
        rec.update(
            rows=len(test),
            data_digest=digest,
            bare_s=bare_s,
            bare=bares,
            eval_s=eval_s,
            evals=evals,
            overhead=eval_s / bare_s - 1,
            accuracy=metrics.get("accuracy_score"),
            roc_auc=metrics.get("roc_auc"),
            metrics=sorted(metrics),
            artifacts=sorted(getattr(result, "artifacts", {}) or {}),
            versions=versions(),
        )
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--store", required=True)
    s.add_argument("--payload", required=True)
    s.add_argument("--out")
    s = sub.add_parser("load")
    s.add_argument("--model", required=True, choices=["lr", "rf"])
    s.add_argument("--payload", required=True)
    s.add_argument("--variant", default="plain")
    s.add_argument("--connect", action="store_true")
    s.add_argument("--preimport", default="")
    s.add_argument("--rep", type=int, default=1)
    s.add_argument("--out")
    for name in ("eval-setup", "eval"):
        s = sub.add_parser(name)
        s.add_argument("--store", required=True)
        s.add_argument("--dir", required=True)
        s.add_argument("--rows", type=int, default=100_000)
        s.add_argument("--out")
        if name == "eval":
            s.add_argument("--model", required=True, choices=["hgb", "rf"])
            s.add_argument("--rep", type=int, default=1)
            s.add_argument("--evals", type=int, default=2)
    a = p.parse_args()
    {
        "setup": cmd_setup,
        "load": cmd_load,
        "eval-setup": cmd_eval_setup,
        "eval": cmd_eval,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
