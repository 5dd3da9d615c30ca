"""The micro-batcher on its own: coalescing, the row cap, failure isolation, backpressure."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from loopml.serving.batcher import Batcher, BatchPolicy, Overloaded, QueueTimeout
from loopml.serving.inputs import Decoded
from loopml.serving.runtime import Outputs


class FakeRuntime:
    """Doubles column x; raises on a row equal to -1; records every batch."""

    label = "fake/1"

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay

    def run(self, parts: Any, method: str) -> Outputs:
        x = np.concatenate([p.columns["x"] for p in parts])
        self.batches.append(len(x))
        if (x == -1).any():
            raise ValueError("poison")
        if self.delay:
            import time

            time.sleep(self.delay)
        return Outputs(x * 2)


def _req(*values: float) -> Decoded:
    return Decoded(rows=len(values), columns={"x": np.asarray(values, dtype=float)})


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_requests_share_a_batch_and_get_their_own_rows() -> None:
    rt = FakeRuntime()
    batcher = Batcher(rt, BatchPolicy())  # type: ignore[arg-type]

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(_req(i, i + 0.5)) for i in range(10)))

    results = _run(main())
    assert rt.batches == [20]
    for i, out in enumerate(results):
        assert out.predictions.tolist() == [2 * i, 2 * i + 1]
    assert batcher.pending == 0


def test_a_lone_request_is_not_delayed_and_batching_off_runs_each() -> None:
    rt = FakeRuntime()
    batcher = Batcher(rt, BatchPolicy())  # type: ignore[arg-type]
    assert _run(batcher.submit(_req(3))).predictions.tolist() == [6]
    off = FakeRuntime()
    unbatched = Batcher(off, BatchPolicy(enabled=False))  # type: ignore[arg-type]

    async def main() -> None:
        await asyncio.gather(*(unbatched.submit(_req(i)) for i in range(5)))

    _run(main())
    assert off.batches == [1, 1, 1, 1, 1]


def test_max_rows_caps_a_batch() -> None:
    rt = FakeRuntime()
    batcher = Batcher(rt, BatchPolicy(max_rows=4))  # type: ignore[arg-type]

    async def main() -> None:
        await asyncio.gather(*(batcher.submit(_req(i, i)) for i in range(5)))

    _run(main())
    assert rt.batches == [4, 4, 2]


def test_a_failing_request_fails_alone() -> None:
    rt = FakeRuntime()
    batcher = Batcher(rt, BatchPolicy())  # type: ignore[arg-type]

    async def main() -> list[Any]:
        jobs = [batcher.submit(_req(v)) for v in (1, -1, 3)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    good, bad, other = _run(main())
    assert good.predictions.tolist() == [2] and other.predictions.tolist() == [6]
    assert isinstance(bad, ValueError)
    assert rt.batches == [3, 1, 1, 1]


def test_full_queue_refuses_at_once_and_stale_requests_time_out() -> None:
    rt = FakeRuntime(delay=0.05)
    batcher = Batcher(rt, BatchPolicy(max_queue=2, max_rows=1, timeout=0.01))  # type: ignore[arg-type]

    async def main() -> list[Any]:
        jobs = [batcher.submit(_req(i)) for i in range(4)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = _run(main())
    kinds = [type(r).__name__ for r in results]
    assert kinds.count("Overloaded") == 2
    assert isinstance(results[2], Overloaded) and isinstance(results[3], Overloaded)
    # the second queued request waited behind a 50 ms batch, past its 10 ms timeout
    assert isinstance(results[1], QueueTimeout)
    assert Overloaded.http_status == 503


def test_max_wait_fills_batches() -> None:
    rt = FakeRuntime()
    batcher = Batcher(rt, BatchPolicy(max_wait=0.02))  # type: ignore[arg-type]

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(_req(1)))
        await asyncio.sleep(0.005)
        second = asyncio.ensure_future(batcher.submit(_req(2)))
        await asyncio.gather(first, second)

    _run(main())
    assert rt.batches == [2]


@pytest.mark.parametrize("rows", [1, 7])
def test_outputs_rows_split(rows: int) -> None:
    out = Outputs(np.arange(rows * 2), np.ones((rows * 2, 2)), [0, 1])
    part = out.rows(rows, rows * 2)
    assert part.predictions.tolist() == list(range(rows, rows * 2))
    assert part.proba.shape == (rows, 2) and part.classes == [0, 1]
