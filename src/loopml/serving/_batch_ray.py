"""The Ray executor of batch scoring: chunks scored by a pool of actors, results in input order.

The driver (the process that called ``predict_batch``) has already loaded and verified the model.
It packs the verified folder as an archive (:func:`~loopml.models.archive.export_model`), puts
it in Ray's object store once, and starts one actor per worker; each actor unpacks and loads the
model once, through :func:`~loopml.models.load_model` (every file's hash checked again), and
refuses a model whose manifest digest is not the driver's. The driver then sends each chunk's
model columns to the pool, at most two chunks per actor at a time (so memory stays bounded
whatever the input's size), and takes the results back in order, writing as they come.

Workers need loopml and the model's framework installed, as the driver has them. A local Ray
instance started here runs without its dashboard (an HTTP server that would let anyone who
reaches it run jobs); Ray's other services are set up as Ray sets them up, behind its token
authentication. With ``address`` the driver joins a running cluster instead, and leaves it
running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._lazy import require
from loopml.errors import InvalidArgument, LoopError, ModelCorrupted
from loopml.serving._batch_score import Failure, model_inputs, score

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.models.predictor import Predictor

__all__ = ["IN_FLIGHT_PER_WORKER", "ray_results"]

IN_FLIGHT_PER_WORKER = 2
"""Chunks sent to the pool per actor before the driver waits for the oldest result."""


class Scorer:
    """A Ray actor's state: the model, loaded once, and whether to add probabilities."""

    def __init__(self, archive: bytes, digest: str, trusted: bool, proba: bool) -> None:
        from loopml.models.loading import load_model

        folder = Path(tempfile.mkdtemp(prefix="loopml-ray-model-"))
        try:
            path = folder / "model.tar.gz"
            path.write_bytes(archive)
            self._predictor = load_model(path, trusted=trusted)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if self._predictor.manifest_digest != digest:
            raise ModelCorrupted(
                f"the model a Ray worker received has manifest digest "
                f"{self._predictor.manifest_digest}, not the driver's {digest}; refused"
            )
        self._proba = proba

    def score(self, inputs: pa.RecordBatch) -> pa.RecordBatch | Failure:
        result = score(self._predictor, inputs, proba=self._proba)
        return result.detached() if isinstance(result, Failure) else result


def ray_results(
    predictor: Predictor,
    chunks: Iterator[pa.RecordBatch],
    *,
    proba: bool,
    trusted: bool,
    address: str | None,
    workers: int | None,
) -> Generator[tuple[pa.RecordBatch, pa.RecordBatch | Failure], None, None]:
    """Each chunk with its predictions (or failure), in input order, scored on Ray.

    Close the iterator when done (or on error): that stops the actors, and a Ray instance
    started here.

    Raises:
        MissingExtra: Ray is not installed.
        InvalidArgument: ``workers`` is below 1 or above the cluster's CPUs.
        LoopError: a Ray worker died or could not load the model.
    """
    ray: Any = require("ray", "ray", "batch scoring with executor='ray'")
    from loopml.models.archive import export_model

    started = _connect(ray, address)
    actors: list[Any] = []
    try:
        count = _worker_count(ray, workers)
        with tempfile.TemporaryDirectory(prefix="loopml-ray-") as tmp:
            archive = export_model(predictor.path, Path(tmp) / "model.tar.gz")
            model_ref = ray.put(archive.read_bytes())
        actor_class = ray.remote(num_cpus=1)(Scorer)
        actors = [
            actor_class.remote(model_ref, predictor.manifest_digest, trusted, proba)
            for _ in range(count)
        ]
        pool = require("ray.util", "ray", "batch scoring with executor='ray'").ActorPool(actors)
        waiting: deque[pa.RecordBatch] = deque()
        for chunk in chunks:
            if len(waiting) >= IN_FLIGHT_PER_WORKER * count:
                yield waiting.popleft(), _next(ray, pool)
            pool.submit(_submit, model_inputs(predictor, chunk))
            waiting.append(chunk)
        while waiting:
            yield waiting.popleft(), _next(ray, pool)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def _submit(actor: Any, inputs: pa.RecordBatch) -> Any:
    return actor.score.remote(inputs)


def _next(ray: Any, pool: Any) -> pa.RecordBatch | Failure:
    try:
        result: pa.RecordBatch | Failure = pool.get_next()
    except ray.exceptions.RayError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else type(exc).__name__
        raise LoopError(
            f"a Ray worker failed while scoring: {last[:500]}; check that the workers have "
            "loopml and the model's framework installed (see the worker logs)"
        ) from exc
    return result


def _connect(ray: Any, address: str | None) -> bool:
    """Join ``address``, or start a local instance without the dashboard, unless Ray is already
    initialised in this process; returns whether this call connected (and so must shut down)."""
    if ray.is_initialized():
        return False
    if address is not None or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, log_to_driver=False)
        return True
    ray.init(include_dashboard=False, log_to_driver=False)
    return True


def _worker_count(ray: Any, workers: int | None) -> int:
    cpus = int(ray.cluster_resources().get("CPU", 1))
    if workers is None:
        return max(1, cpus)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument(f"ray_workers must be a positive integer, not {workers!r}")
    if workers > cpus:
        raise InvalidArgument(
            f"ray_workers={workers} is more than the cluster's {cpus} CPUs; each worker takes "
            "one CPU, so the extra workers would never start"
        )
    return workers
