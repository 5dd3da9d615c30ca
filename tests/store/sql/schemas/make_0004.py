"""How ``0004.db`` was made: run with loopml at schema 0004 (commit e49678f), never again.

Usage: python make_0004.py 0004.db

The file stands for a user's store written by that loopml (a run, the model registry with an
alias and its audit trail, and serving: a deployment, a prediction-log segment and a window
profile), for the migration tests of later schema versions.
"""

from __future__ import annotations

import sqlite3
import sys

from loopml.entities import PredictionSegment, Route, RouteRole, WindowProfile
from loopml.store import open_store
from loopml.store.sql import engine as eng


def main(path: str) -> None:
    assert eng.HEAD_REVISION == "0004", "make this file with the loopml of schema 0004"
    s = open_store(f"sqlite:///{path}")
    p = s.create_project("legacy", description="made by the 0004 schema")
    pid = p.project_id
    run = s.create_run(pid, name="trainer", user="alice", start_time=1_700_000_000_000)
    s.update_run(run.run_id, status="finished", end_time=1_700_000_003_000)
    s.create_registered_model(pid, "churn", description="who leaves", actor="alice")
    s.create_model_version(
        pid,
        "churn",
        source=f"runs:/{run.run_id}/model",
        run_id=run.run_id,
        flavor="sklearn",
        manifest_digest="3" * 64,
        actor="alice",
    )
    s.set_model_alias(pid, "churn", "champion", 1, actor="bob", reason="first")
    routes = [Route("primary", "models:/churn@champion", RouteRole.PRIMARY)]
    s.create_deployment(pid, "churn-api", routes, description="scores", actor="alice")
    segment_id, profile_id = "5" * 32, "6" * 32
    s.add_prediction_segment(
        PredictionSegment(
            segment_id, pid, "churn-api", 1_700_000_000_000, 1_700_000_060_000, 10, "sha256:x"
        )
    )
    s.add_window_profile(
        WindowProfile(
            profile_id,
            pid,
            "churn-api",
            "primary",
            "churn/1",
            1_700_000_040_000,
            60,
            10,
            {"rows": 10},
        )
    )
    s.close()
    conn = sqlite3.connect(path)  # one self-contained file: no WAL beside it
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()
    print(run.run_id)


if __name__ == "__main__":
    main(sys.argv[1])
