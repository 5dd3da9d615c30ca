"""A writer process for the concurrency tests: several threads logging to one store at once.

Usage: python writer.py URI PROJECT PROC THREADS POINTS SHARED_RUN_ID GO_FILE

Each thread creates its own run and logs POINTS points of ``m`` to it (explicit steps), plus one
point per step to the shared run (key ``all``, and a key of its own), with a flush every 100
points, and every 250 points a ``log_batch``, a param and a tag to both runs. Threads 0 and 1
share the process's Client (and so its buffer and background thread); the others have their own.
Once its store is open it creates ``GO_FILE.ready-PROC``; work starts when GO_FILE exists, so
that every process writes at the same time.

Prints one JSON line: ``{"runs": {"<thread>": "<run id>"}, "errors": ["..."], "started": t0,
"ended": t1}`` (wall-clock seconds of the writing phase); exits 1 on any error.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback


def main() -> int:
    uri, project, proc_s, threads_s, points_s, shared_run, go_file = sys.argv[1:8]
    proc, n_threads, n_points = int(proc_s), int(threads_s), int(points_s)

    import loopml
    from loopml.config import Settings
    from loopml.entities import Metric, now_ms

    settings = Settings(
        flush_interval=0.05,  # background flushes run alongside the threads' own flushes
        buffer_max_points=500,  # and producers flush when the buffer fills
        heartbeat_interval=0.2,
        capture_packages=False,
    )

    def new_client() -> loopml.Client:
        client = loopml.Client(uri, artifact_uri=os.devnull + "-unused", settings=settings)
        client.store  # noqa: B018 - open the store before the start signal
        return client

    shared_client = new_client()
    clients = [shared_client if t < 2 else new_client() for t in range(n_threads)]
    runs: dict[str, str] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        client = clients[t]
        me = f"p{proc}t{t}"
        try:
            run_id = client.create_run(
                project, name=me, params={"proc": proc, "thread": t}, capture_environment=False
            ).run_id
            with lock:
                runs[str(t)] = run_id
            for i in range(n_points):
                value = proc * 1_000_000 + t * 10_000 + i
                client.log_metric(run_id, "m", value, step=i)
                client.log_metric(shared_run, "all", value, step=i)
                client.log_metric(shared_run, me, i, step=i)
                if i % 100 == 99:
                    client.flush()
                if i % 250 == 0:
                    j = i // 250
                    client.log_batch(
                        run_id,
                        metrics=[Metric("batch", float(j), j, now_ms())],
                        params={f"b{j}": j},
                        tags={"last_batch": j},
                    )
                    client.log_param(run_id, f"param{j}", j)
                    client.set_tag(shared_run, me, j)
                    client.log_param(shared_run, f"{me}-{j}", j)
                    client.log_param(shared_run, "common", "same")  # same key from everyone
            client.flush()
            client.end_run(run_id)
        except BaseException:
            with lock:
                errors.append(f"thread {t}: {traceback.format_exc()}")

    with open(f"{go_file}.ready-{proc}", "w"):
        pass
    while not os.path.exists(go_file):
        time.sleep(0.001)
    started = time.time()
    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ended = time.time()
    for client in {id(c): c for c in clients}.values():
        try:
            client.close()
        except BaseException:
            errors.append(f"close: {traceback.format_exc()}")
    result = {"runs": runs, "errors": errors, "started": started, "ended": ended}
    print(json.dumps(result), flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
