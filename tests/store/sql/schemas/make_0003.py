"""How ``0003.db`` was made: run with loopml at schema 0003 (commit a090056), never again.

Usage: python make_0003.py 0003.db

The file stands for a user's store written by that loopml (runs, datasets, run inputs, and the
model registry: a model with two versions, an alias and their audit trail), for the migration
tests of later schema versions.
"""

from __future__ import annotations

import sqlite3
import sys

from loopml.entities import Metric
from loopml.store import open_store
from loopml.store.sql import engine as eng


def main(path: str) -> None:
    assert eng.HEAD_REVISION == "0003", "make this file with the loopml of schema 0003"
    s = open_store(f"sqlite:///{path}")
    p = s.create_project("legacy", description="made by the 0003 schema")
    run = s.create_run(
        p.project_id,
        name="trainer",
        user="alice",
        start_time=1_700_000_000_000,
        params={"lr": "0.1"},
        tags={"team": "ml"},
    )
    s.log_batch(
        run.run_id, [Metric("auc", 0.5 + i / 100, i, 1_700_000_000_000) for i in range(10)]
    )
    v, _ = s.create_dataset_version(
        p.project_id,
        "churn",
        digest="1" * 64,
        blob="2" * 64,
        size_bytes=10,
        num_rows=2,
        num_columns=1,
        schema={"columns": [{"name": "x", "type": "integer"}]},
        run_id=run.run_id,
        description="customers",
    )
    s.log_inputs(run.run_id, [(v.id, "train")])
    s.update_run(run.run_id, status="finished", end_time=1_700_000_003_000)
    s.create_registered_model(p.project_id, "churn", description="who leaves", actor="alice")
    for _ in range(2):
        s.create_model_version(
            p.project_id,
            "churn",
            source=f"runs:/{run.run_id}/model",
            run_id=run.run_id,
            flavor="sklearn",
            signature={"inputs": [{"name": "x", "type": "integer"}]},
            manifest_digest="3" * 64,
            actor="alice",
        )
    s.set_model_alias(p.project_id, "churn", "champion", 2, actor="bob", reason="better auc")
    s.close()
    conn = sqlite3.connect(path)  # one self-contained file: no WAL beside it
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()
    print(run.run_id, v.id)


if __name__ == "__main__":
    main(sys.argv[1])
