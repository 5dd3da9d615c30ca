#!/usr/bin/env python3
"""loopml side of the models benchmark; ``bench/models.py`` runs every command in a fresh process.

    setup       train ``lr`` (StandardScaler + LogisticRegression) and ``rf`` (RandomForest, 50
                trees) on sklearn's breast_cancer, as ``shared/bench/train_model.py`` does; log
                each with ``loopml.models.log_model(..., registered_model_name="bench-<m>")``
                into the store of ``LOOPML_HOME`` (a fresh temporary folder) and point the alias
                ``champion`` at the version; write the one-row payload.
    load        one cold load, timed in three parts: (a) ``from loopml.models.loading import
                load_model`` (the library's import), (b) ``load_model(
                "models:/bench-<m>@champion")`` (resolve the alias, copy the files out of the
                artifact store, verify the hashes, deserialise), (c) the first ``predict`` of one
                row. Variants: ``--hide torch`` (torch unimportable, as in a venv without it),
                ``--preimport sklearn,skops.io`` (the framework imported before the timer).
    eval-setup  the 100k-row evaluation data (``bench/models_data.py``) and models: train
                HistGradientBoosting and RandomForest(50), pickle them, and save each as a loopml
                model folder (``save_model``) for the Predictor row.
    eval        one process: warm up on 1,000 rows, then time the bare ``predict`` +
                ``predict_proba`` on the 100k-row features and ``evaluate(model, df,
                target="y", run=False, plots=False, latency=False)`` alternately (bare, evaluate,
                bare, evaluate, bare: the median of each), then the same ``evaluate`` on the
                model loaded as a loopml Predictor, and ``evaluate`` with a run and plots (what
                ``mlflow.models.evaluate`` does).
    profile-load, profile-eval  one more cold load (same variant flags as ``load``) or one more
                ``evaluate`` under cProfile (not timed reps): the functions with the most
                cumulative time, for the report's "where the time goes".

Every command prints one JSON line (appended to ``--out``) with ``tool: loopml`` and ``key``.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # process start (after the interpreter): startup_s = t0 - T_START

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from data_measure import emit, fail, git_state  # noqa: E402

HEAVY = ("sklearn", "pandas", "numpy", "scipy", "pyarrow", "sqlalchemy", "skops")


def versions() -> dict[str, str]:
    import numpy
    import pandas
    import sklearn
    import skops

    import loopml

    return {
        "loopml": loopml.__version__,
        "loopml_git": git_state(),
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
    }


def loaded_heavy() -> list[str]:
    return [m for m in HEAVY if m in sys.modules]


# --- load by alias -------------------------------------------------------------------------------


def cmd_setup(a: argparse.Namespace) -> None:
    from models_data import breast_cancer

    from loopml.client import context
    from loopml.models.package import log_model

    rec: dict[str, object] = {"tool": "loopml", "key": "setup"}
    try:
        X, models = breast_cancer()
        client = context.get_client()
        out = {}
        for name, model in models.items():
            t0 = time.perf_counter()
            info = log_model(
                model,
                "model",
                input_example=X.head(5),
                registered_model_name=f"bench-{name}",
                client=client,
            )
            version = info.registered_version.version
            client.set_model_alias(f"bench-{name}", "champion", version)
            out[name] = {
                "uri": f"models:/bench-{name}@champion",
                "version": version,
                "source": info.model_uri,
                "log_register_s": time.perf_counter() - t0,
            }
        Path(a.payload).write_text(
            json.dumps({"columns": list(X.columns), "data": X.iloc[[0]].to_numpy().tolist()})
        )
        rec.update(models=out, versions=versions())
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def hide(modules: str) -> None:
    """Make top-level packages unimportable, as if not installed (``--hide torch``)."""
    import importlib.abc

    hidden = set(filter(None, modules.split(",")))

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            if name.partition(".")[0] in hidden:
                raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
            return None

    if hidden:
        sys.meta_path.insert(0, Hide())


def preimport(names: str) -> None:
    """Import the framework before the timer (``--preimport sklearn,skops.io``)."""
    import importlib

    for name in filter(None, names.split(",")):
        importlib.import_module(name)


def cmd_load(a: argparse.Namespace) -> None:
    rec: dict[str, object] = {
        "tool": "loopml",
        "key": f"load_{a.model}",
        "rep": a.rep,
        "variant": a.variant,
    }
    try:
        payload = json.loads(Path(a.payload).read_text())
        hide(a.hide)
        preimport(a.preimport)
        if a.connect:  # what a server does once at start: connect to the store
            import loopml
            import loopml.models.loading

            assert loopml.get_client().store is not None
        rec["heavy_before"] = loaded_heavy()
        t0 = time.perf_counter()
        from loopml.models.loading import load_model

        t1 = time.perf_counter()
        rec["heavy_after_import"] = loaded_heavy()
        predictor = load_model(f"models:/bench-{a.model}@champion")
        t2 = time.perf_counter()
        rec["heavy_after_load"] = loaded_heavy()
        import pandas as pd  # already imported by the load: not timed either way

        row = pd.DataFrame(payload["data"], columns=payload["columns"])
        t3 = time.perf_counter()
        pred = predictor.predict(row)
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
    import pickle

    from models_data import eval_data, train_eval_models

    from loopml.models.package import save_model

    rec: dict[str, object] = {"tool": "loopml", "key": "eval_setup"}
    try:
        d = Path(a.dir)
        d.mkdir(parents=True, exist_ok=True)
        train, test, digest = eval_data(a.rows)
        t0 = time.perf_counter()
        models = train_eval_models(train)
        rec["train_s"] = time.perf_counter() - t0
        features = test.drop(columns="y")
        for name, model in models.items():
            (d / f"{name}.pkl").write_bytes(pickle.dumps(model))
            save_model(model, d / f"{name}-loopml", input_example=features.head(5))
        rec.update(rows=len(test), data_digest=digest, versions=versions())
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def cmd_eval(a: argparse.Namespace) -> None:
    import pickle
    import statistics

    from models_data import bare, eval_data

    from loopml.models.evaluation.evaluate import evaluate
    from loopml.models.loading import load_model

    rec: dict[str, object] = {"tool": "loopml", "key": f"eval_{a.model}", "rep": a.rep}
    try:
        d = Path(a.dir)
        _, test, digest = eval_data(a.rows)
        features = test.drop(columns="y")
        model = pickle.loads((d / f"{a.model}.pkl").read_bytes())
        predictor = load_model(d / f"{a.model}-loopml")
        small = test.head(1000)
        # warm-up: first calls, lazy imports (metrics, psutil) and thread pools, not timed
        bare(model, features.head(1000))
        evaluate(model, small, target="y", run=False, plots=False, latency=False)
        evaluate(predictor, small, target="y", run=False, plots=False, latency=False)

        # bare, evaluate, bare, evaluate, ..., bare: the median of each
        bares = [bare(model, features)]
        evals, results = [], []
        for _ in range(a.evals):
            t0 = time.perf_counter()
            results.append(
                evaluate(model, test, target="y", run=False, plots=False, latency=False)
            )
            evals.append(time.perf_counter() - t0)
            bares.append(bare(model, features))
        t0 = time.perf_counter()
        presult = evaluate(predictor, test, target="y", run=False, plots=False, latency=False)
        pred_eval_s = time.perf_counter() - t0

        bare_s = statistics.median(b["seconds"] for b in bares)
        eval_s = statistics.median(evals)
        perfs, pperf = [r.performance for r in results], presult.performance
        rec.update(
            rows=len(test),
            data_digest=digest,
            bare_s=bare_s,
            bare=bares,
            eval_s=eval_s,
            evals=evals,
            overhead=eval_s / bare_s - 1,
            predict_seconds=[p.get("predict_seconds") for p in perfs],
            predict_proba_seconds=[p.get("predict_proba_seconds") for p in perfs],
            overhead_seconds=statistics.median(p["overhead_seconds"] for p in perfs),
            model_in_eval_s=statistics.median(
                p["predict_seconds"] + (p.get("predict_proba_seconds") or 0.0) for p in perfs
            ),
            predictor_eval_s=pred_eval_s,
            predictor_overhead=pred_eval_s / bare_s - 1,
            predictor_predict_seconds=pperf.get("predict_seconds"),
            predictor_predict_proba_seconds=pperf.get("predict_proba_seconds"),
            predictor_overhead_seconds=pperf.get("overhead_seconds"),
            accuracy=results[0].metrics.get("accuracy"),
            roc_auc=results[0].metrics.get("roc_auc"),
            metrics=sorted(results[0].metrics),
        )
        if a.with_run:  # the store of LOOPML_HOME (a fresh folder): what mlflow.evaluate does
            evaluate(model, small, target="y", run=True, plots=True, latency=False)
            t0 = time.perf_counter()
            evaluate(model, test, target="y", run=True, plots=True, latency=False)
            rec["run_plots_eval_s"] = time.perf_counter() - t0
        rec["versions"] = versions()
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def _top(prof: object, n: int) -> list[list[object]]:
    """The ``n`` functions with the most cumulative time (importlib frames left out)."""
    import pstats

    stats = pstats.Stats(prof).stats  # type: ignore[arg-type,attr-defined]
    rows = []
    for (file, line, func), (_cc, _nc, _tt, ct, _callers) in stats.items():
        if file.startswith(("<", "~")) or "importlib" in file:
            continue
        short = file.split("site-packages/")[-1].split("/src/")[-1]
        rows.append((ct, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    return [[name, round(ct, 4)] for ct, name in rows[:n]]


def cmd_profile_load(a: argparse.Namespace) -> None:
    """One more cold load under cProfile: where (b)'s time goes (not a timed rep)."""
    rec: dict[str, object] = {
        "tool": "loopml",
        "key": f"profile_load_{a.model}",
        "variant": a.variant,
    }
    try:
        import cProfile

        hide(a.hide)
        preimport(a.preimport)
        from loopml.models.loading import load_model

        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(load_model, f"models:/bench-{a.model}@champion")
        rec["seconds"] = time.perf_counter() - t0
        rec["top_cumulative"] = _top(prof, a.top)
        rec["torch_loaded"] = "torch" in sys.modules
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def cmd_profile_eval(a: argparse.Namespace) -> None:
    """One more ``evaluate(run=False, plots=False, latency=False)`` under cProfile, after the
    same warm-up as ``eval`` (not a timed rep)."""
    rec: dict[str, object] = {"tool": "loopml", "key": f"profile_eval_{a.model}"}
    try:
        import cProfile
        import pickle

        from models_data import bare, eval_data

        from loopml.models.evaluation.evaluate import evaluate

        _, test, _ = eval_data(a.rows)
        model = pickle.loads((Path(a.dir) / f"{a.model}.pkl").read_bytes())
        bare(model, test.drop(columns="y").head(1000))
        evaluate(model, test.head(1000), target="y", run=False, plots=False, latency=False)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        result = prof.runcall(
            evaluate, model, test, target="y", run=False, plots=False, latency=False
        )
        rec["seconds"] = time.perf_counter() - t0
        rec["overhead_seconds"] = result.performance.get("overhead_seconds")
        rec["top_cumulative"] = _top(prof, a.top)
    except Exception as exc:
        fail(rec, exc, a.out)
    emit(rec, a.out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--payload", required=True)
    s.add_argument("--out")
    s = sub.add_parser("load")
    s.add_argument("--model", required=True, choices=["lr", "rf"])
    s.add_argument("--payload", required=True)
    s.add_argument("--variant", default="plain")
    s.add_argument("--connect", action="store_true")
    s.add_argument("--preimport", default="")
    s.add_argument("--hide", default="")
    s.add_argument("--rep", type=int, default=1)
    s.add_argument("--out")
    for name in ("eval-setup", "eval"):
        s = sub.add_parser(name)
        s.add_argument("--dir", required=True)
        s.add_argument("--rows", type=int, default=100_000)
        s.add_argument("--out")
        if name == "eval":
            s.add_argument("--model", required=True, choices=["hgb", "rf"])
            s.add_argument("--rep", type=int, default=1)
            s.add_argument("--with-run", action="store_true")
            s.add_argument("--evals", type=int, default=2)
    s = sub.add_parser("profile-load")
    s.add_argument("--model", required=True, choices=["lr", "rf"])
    s.add_argument("--variant", default="plain")
    s.add_argument("--preimport", default="")
    s.add_argument("--hide", default="")
    s.add_argument("--top", type=int, default=25)
    s.add_argument("--out")
    s = sub.add_parser("profile-eval")
    s.add_argument("--model", required=True, choices=["hgb", "rf"])
    s.add_argument("--dir", required=True)
    s.add_argument("--rows", type=int, default=100_000)
    s.add_argument("--top", type=int, default=30)
    s.add_argument("--out")
    a = p.parse_args()
    {
        "setup": cmd_setup,
        "load": cmd_load,
        "eval-setup": cmd_eval_setup,
        "eval": cmd_eval,
        "profile-load": cmd_profile_load,
        "profile-eval": cmd_profile_eval,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
