"""A process that flushes, says so, and keeps writing until it is killed.

Usage: python flush_then_log.py URI RUN_NAME N

Logs N points of ``m`` (steps 0..N-1, value = step), calls ``flush()`` and prints
``FLUSHED <run id> <N>``. Then it logs more points forever, with small buffers so that foreground
flushes, background flushes and tag writes are in flight when the parent's SIGKILL lands.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    uri, name, n_s = sys.argv[1:4]
    n = int(n_s)
    import loopml
    from loopml.config import Settings

    settings = Settings(
        flush_interval=0.005,
        buffer_max_points=100,
        heartbeat_interval=0.01,
        capture_packages=False,
    )
    client = loopml.Client(uri, artifact_uri=os.devnull + "-unused", settings=settings)
    run_id = client.create_run("crash", name=name, capture_environment=False).run_id
    for i in range(n):
        client.log_metric(run_id, "m", float(i), step=i)
    client.flush()
    print("FLUSHED", run_id, n, flush=True)
    i = n
    while True:
        client.log_metric(run_id, "m", float(i), step=i)
        if i % 37 == 0:
            client.set_tag(run_id, "progress", i)
        i += 1


if __name__ == "__main__":
    sys.exit(main())
