"""loopml quick start: track a small hyperparameter sweep, then find and compare the best runs.

Trains a logistic-regression classifier by gradient descent (NumPy only) for a few learning rates
and L2 strengths, logging params, per-epoch metrics, a summary and (with matplotlib) a plot.

    python tracking_quickstart.py        # or: make demo
    loopml --store .loopml runs list     # then look at what it recorded
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import loopml

HOME = Path(__file__).resolve().parent / ".loopml"


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two noisy Gaussian blobs in 5 dimensions, split 80/20."""
    rng = np.random.default_rng(seed)
    n = 2_000
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 5)) + y[:, None] * np.array([1.0, 0.5, 0.0, -0.5, 0.2])
    cut = int(0.8 * n)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def train(lr: float, l2: float, epochs: int, seed: int) -> dict[str, float]:
    """One run: log params, then loss and accuracy per epoch."""
    x_train, y_train, x_val, y_val = make_data(seed)
    w = np.zeros(x_train.shape[1])
    b = 0.0
    val_acc = 0.0
    for epoch in range(epochs):
        p = 1 / (1 + np.exp(-(x_train @ w + b)))
        grad_w = x_train.T @ (p - y_train) / len(y_train) + l2 * w
        grad_b = float(np.mean(p - y_train))
        w -= lr * grad_w
        b -= lr * grad_b
        eps = 1e-12
        loss = float(-np.mean(y_train * np.log(p + eps) + (1 - y_train) * np.log(1 - p + eps)))
        val_acc = float(np.mean(((x_val @ w + b) > 0) == y_val))
        loopml.log_metrics({"train_loss": loss, "val_accuracy": val_acc}, step=epoch)
    return {"val_accuracy": val_acc, "weight_norm": float(np.linalg.norm(w))}


def main() -> None:
    loopml.set_tracking_uri(str(HOME))
    loopml.set_project("quickstart")
    seed = loopml.set_seed(7)
    with loopml.start_run("sweep") as sweep:
        # Version the data the sweep trains and validates on (the same data: the same version).
        x_train, y_train, x_val, y_val = make_data(seed)
        features = [f"x{i}" for i in range(x_train.shape[1])]
        train_set = loopml.log_dataset(
            pd.DataFrame(x_train, columns=features).assign(y=y_train),
            "blobs-train",
            role="train",
            target="y",
        )
        loopml.log_dataset(
            pd.DataFrame(x_val, columns=features).assign(y=y_val),
            "blobs-validation",
            role="validation",
            target="y",
        )
        print(f"training data: {train_set.uri} ({train_set.num_rows} rows)")
        for lr in (0.01, 0.1, 0.5):
            for l2 in (0.0, 0.01):
                name = f"lr={lr} l2={l2}"
                with loopml.start_run(name, nested=True, params={"lr": lr, "l2": l2}):
                    loopml.log_params({"epochs": 60, "seed": seed, "model": "logreg"})
                    loopml.set_tag("stage", "quickstart")
                    summary = train(lr, l2, epochs=60, seed=seed)
                    loopml.log_dict(summary, "summary.json")
        loopml.log_text("A sweep over learning rate and L2 strength.\n", "README.md")

    client = loopml.get_client()
    best = client.best_run("val_accuracy", project="quickstart", filter="params.model = 'logreg'")
    assert best is not None
    print(
        f"best run: {best.name} ({best.run_id[:8]}) "
        f"val_accuracy={best.metrics['val_accuracy']:.3f}"
    )

    history = client.get_metric_history(best.run_id, "train_loss")
    print(
        f"train_loss went from {history.values[0]:.3f} to {history.values[-1]:.3f} "
        f"over {len(history)} epochs"
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(history.steps, history.values)
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss")
        client.log_figure(best.run_id, fig, "plots/train_loss.png")
        print("logged plots/train_loss.png to the best run")
    except ImportError:
        print("(install matplotlib to log a plot: pip install 'loopml[plots]')")

    top = client.search_runs(
        "quickstart", filter="metrics.val_accuracy > 0.6", order_by=["metrics.val_accuracy desc"]
    )
    comparison = client.compare_runs([r.run_id for r in top.items[:3]])
    print("top runs differ in:", ", ".join(comparison.differing_params) or "nothing")
    print(f"sweep run: {sweep.run_id}; data in {HOME}")
    print(f"next: loopml --store {HOME} runs list --project quickstart")


if __name__ == "__main__":
    main()
