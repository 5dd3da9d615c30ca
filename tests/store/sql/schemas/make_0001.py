"""How ``0001.db`` was made: run with loopml at schema 0001 (commit 5d2a610), never again.

Usage: python make_0001.py 0001.db

The file stands for a user's store written by that loopml; later schema versions get their own
file made the same way by the loopml that introduced them.
"""

from __future__ import annotations

import sqlite3
import sys

from loopml.entities import ArtifactInfo, Environment, Metric, Param, Tag
from loopml.store import open_store
from loopml.store.sql import engine as eng


def main(path: str) -> None:
    assert eng.HEAD_REVISION == "0001", "make this file with the loopml of schema 0001"
    s = open_store(f"sqlite:///{path}")
    p = s.create_project("legacy", description="made by the 0001 schema")
    env = Environment(
        python_version="3.11.9",
        platform="linux",
        git_commit="abc123",
        git_dirty=False,
        packages={"numpy": "1.26.4"},
        seed=7,
    )
    parent = s.create_run(
        p.project_id,
        name="parent",
        user="alice",
        start_time=1_700_000_000_000,
        params={"lr": "0.1"},
        tags={"team": "ml"},
        environment=env,
    )
    child = s.create_run(
        p.project_id, name="child", parent_run_id=parent.run_id, start_time=1_700_000_001_000
    )
    s.log_batch(
        parent.run_id,
        [Metric("loss", 1.0 / (i + 1), i, 1_700_000_000_000 + i) for i in range(100)]
        + [Metric("nan", float("nan"), 0, 1_700_000_000_000)],
        [Param("epochs", "10")],
        [Tag("note", "kept")],
    )
    s.log_artifacts(
        parent.run_id, [ArtifactInfo("model/model.pkl", "a" * 64, 123, 1_700_000_002_000)]
    )
    s.update_run(parent.run_id, status="finished", end_time=1_700_000_003_000)
    s.close()
    conn = sqlite3.connect(path)  # one self-contained file: no WAL beside it
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()
    print(parent.run_id, child.run_id)


if __name__ == "__main__":
    main(sys.argv[1])
