"""A process that logs one large file as an artifact (the parent kills it mid-upload).

Usage: python big_artifact.py URI ARTIFACT_URI FILE

Prints ``RUN <run id>`` before the upload starts and ``DONE`` if it ever finishes.
"""

from __future__ import annotations

import sys


def main() -> int:
    uri, artifact_uri, path = sys.argv[1:4]
    import loopml
    from loopml.config import Settings

    settings = Settings(flush_interval=3600, heartbeat_interval=3600, capture_packages=False)
    client = loopml.Client(uri, artifact_uri=artifact_uri, settings=settings)
    run_id = client.create_run("artifacts", capture_environment=False).run_id
    print("RUN", run_id, flush=True)
    client.log_artifact(run_id, path, artifact_path="big")
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
