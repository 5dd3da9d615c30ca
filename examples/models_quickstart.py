"""loopml models quick start: register two models, promote one through a release gate, load it.

Versions a churn dataset, trains two classifiers on it (a logistic regression and a one-split
decision tree), logs and registers both with a signature taken from the data contract, promotes
the first to ``champion`` through a gate, lets the gate judge the second against it, prints the
audit trail, and loads ``models:/churn-classifier@champion`` to predict.

    python models_quickstart.py          # or: make demo
    loopml --store .loopml models show churn-classifier --project quickstart
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import loopml
from loopml.data import dataset_schema
from loopml.errors import GateFailed
from loopml.models import Gate, checks

HOME = Path(__file__).resolve().parent / ".loopml"
PROJECT = "quickstart"
MODEL = "churn-classifier"
FEATURES = ["tenure", "monthly_spend", "support_calls", "logins", "discount", "age"]


def make_data(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers with six numeric features and a 0/1 ``churned`` label, split 1,200/400."""
    x, y = make_classification(
        n_samples=1_600,
        n_features=len(FEATURES),
        n_informative=4,
        n_redundant=1,
        class_sep=1.2,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=FEATURES).round(4).assign(churned=y)
    return frame.iloc[:1_200].reset_index(drop=True), frame.iloc[1_200:].reset_index(drop=True)


def train_and_register(name: str, model: Any, train_uri: str) -> int:
    """Fit ``model`` on the training version in a run, log it with the data contract as its
    signature, and register it; returns the version number."""
    with loopml.start_run(name, params={"model": name}):
        train = loopml.load_dataset(train_uri, role="train")  # recorded as the run's input
        model.fit(train[FEATURES], train["churned"])
        info = loopml.log_model(
            model,
            signature=dataset_schema(train_uri),  # inputs: the six features; output: churned
            input_example=train[FEATURES].head(5),
            registered_model_name=MODEL,
        )
    version = info.registered_version
    print(f"registered {version.uri} ({name}, {info.flavor}, trained on {train_uri})")
    return int(version.version)


def try_promote(version: int, gate: Gate) -> None:
    """Promote a version to champion through the gate, and say what happened."""
    print(f"\npromoting {MODEL} version {version} to champion:")
    try:
        promotion = loopml.promote(MODEL, version, "champion", gate=gate, project=PROJECT)
    except GateFailed as exc:
        print(exc.result)
        aliases = loopml.get_client().get_registered_model(MODEL, project=PROJECT).aliases
        where = f"stays at version {aliases['champion']}" if "champion" in aliases else "is unset"
        print(f"=> refused: {MODEL}@champion {where}")
        return
    assert promotion.gate is not None
    print(promotion.gate)
    print(f"=> {promotion}")


def main() -> None:
    loopml.set_tracking_uri(str(HOME))
    loopml.set_project(PROJECT)
    seed = loopml.set_seed(7)

    train_df, eval_df = make_data(seed)
    train_set = loopml.log_dataset(train_df, "churn-train", target="churned")
    eval_set = loopml.log_dataset(eval_df, "churn-eval", target="churned")
    print(
        f"data: {train_set.uri} ({train_set.num_rows} rows), {eval_set.uri} ({eval_set.num_rows})"
    )

    logreg = train_and_register(
        "logreg", make_pipeline(StandardScaler(), LogisticRegression()), train_set.uri
    )
    stump = train_and_register(
        "stump", DecisionTreeClassifier(max_depth=1, random_state=seed), train_set.uri
    )

    # The release gate: evaluated on the held-out version, against the current champion.
    gate = Gate(
        [
            checks.metric("roc_auc", min=0.9),
            checks.no_regression("roc_auc", tolerance=0.01, bootstrap=True),
            checks.latency(p99_ms=100),
            checks.data_contract(),
            checks.sanity(),
        ],
        data=eval_set.uri,
        target="churned",
    )
    try_promote(logreg, gate)
    try_promote(stump, gate)

    client = loopml.get_client()
    print(f"\naudit trail of {MODEL}@champion (newest first):")
    for event in client.alias_history(MODEL, "champion", project=PROJECT)[:5]:
        when = pd.Timestamp(event.timestamp, unit="ms").strftime("%Y-%m-%d %H:%M:%S")
        before = "-" if event.details.get("previous") is None else event.details["previous"]
        print(f"  {when}  {event.actor}  {before} -> {event.details['version']}  {event.reason}")

    # Registry look-ups name the project: they follow LOOPML_PROJECT, not set_project().
    champion = loopml.load_model(f"models:/{MODEL}@champion", project=PROJECT)
    rows = eval_df[FEATURES].head(3)
    probabilities = champion.predict_proba(rows)[:, 1]
    run_id = champion.manifest.run_id or "-"
    print(f"\nmodels:/{MODEL}@champion: {champion.flavor}, trained by run {run_id[:8]}")
    print(f"signature: {champion.signature}")
    for (_, row), p in zip(rows.iterrows(), probabilities, strict=True):
        print(f"  tenure={row['tenure']:+.2f} spend={row['monthly_spend']:+.2f}: churn {p:.0%}")
    print(f"next: loopml --store {HOME} models show {MODEL} --project {PROJECT}")


if __name__ == "__main__":
    main()
