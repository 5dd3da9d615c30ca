"""A process that opens new stores for the first time, at the same moment as several others.

Usage: python first_open.py NAME FOLDER ROUNDS

Imports everything, then creates ``FOLDER/ready-NAME``. For each round r it waits for
``FOLDER/go-r``, opens the new store ``FOLDER/fresh-r.db`` by creating a run, logs a few points,
ends the run and writes the run id to ``FOLDER/done-r-NAME``. One process start serves several
rounds, so the test pays the import time once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _wait(path: Path) -> None:
    while not path.exists():
        time.sleep(0.0005)


def main() -> int:
    name, folder_s, rounds_s = sys.argv[1:4]
    folder = Path(folder_s)
    import loopml
    from loopml.config import Settings
    from loopml.store.sql import SqlStore  # noqa: F401 - import the SQL store before the race

    settings = Settings(flush_interval=3600, heartbeat_interval=3600, capture_packages=False)
    (folder / f"ready-{name}").touch()
    for r in range(int(rounds_s)):
        uri = f"sqlite:///{folder / f'fresh-{r}.db'}"
        client = loopml.Client(uri, artifact_uri=os.devnull + "-unused", settings=settings)
        _wait(folder / f"go-{r}")
        run = client.create_run("first-open", capture_environment=False)  # opens the store
        for i in range(10):
            client.log_metric(run.run_id, "m", float(i))
        client.end_run(run.run_id)
        client.close()
        tmp = folder / f".done-{r}-{name}"
        tmp.write_text(run.run_id)
        tmp.rename(folder / f"done-{r}-{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
