"""Adaptive micro-batching: concurrent requests to one model share one ``predict`` call.

The batcher lives on the server's event loop. A request that finds the model idle is run at
the next turn of the loop, so at low load nothing waits. While the loop is busy (a batch is
predicting, other requests are being read), arriving requests queue; the next batch takes all
of them (up to ``max_rows``). A batch therefore never waits longer than the batch before it
took (plus ``max_wait``, zero by default, for callers who want fuller batches).

Requests whose deadline passed while queued are answered with :class:`QueueTimeout` instead
of being run; a full queue refuses new requests at once with :class:`Overloaded`. When a batch
fails, its requests are re-run one by one, so one poisonous request fails alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loopml.errors import LoopError
from loopml.serving.inputs import Decoded
from loopml.serving.runtime import Method, ModelRuntime, Outputs

__all__ = ["Batcher", "BatchPolicy", "Overloaded", "QueueTimeout"]


class Overloaded(LoopError):
    """The model's queue is full: retry later (HTTP 503 with ``Retry-After``)."""

    code = "OVERLOADED"
    http_status = 503


class QueueTimeout(LoopError):
    """The request waited in the queue past its timeout (HTTP 503)."""

    code = "QUEUE_TIMEOUT"
    http_status = 503


@dataclass(frozen=True)
class BatchPolicy:
    """How requests to one model are batched.

    Attributes:
        enabled: coalesce concurrent requests (off: every request is its own ``predict``).
        max_rows: the most rows in one batch.
        max_wait: seconds a batch may wait to fill up beyond the adaptive rule (0: never).
        max_queue: requests that may wait; more are refused with 503 at once.
        timeout: seconds a request may wait in the queue before it is answered with 503.
    """

    enabled: bool = True
    max_rows: int = 512
    max_wait: float = 0.0
    max_queue: int = 2048
    timeout: float = 10.0


@dataclass(slots=True)
class _Item:
    decoded: Decoded
    method: Method
    deadline: float
    future: asyncio.Future[Outputs] = field(repr=False)


class Batcher:
    """Runs one model's requests in batches on the event loop.

    Args:
        runtime: the model.
        policy: batching settings.
        observe: called after every batch with its row count (for metrics).
    """

    def __init__(
        self,
        runtime: ModelRuntime,
        policy: BatchPolicy,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.policy = policy
        self._observe = observe
        self._queue: deque[_Item] = deque()
        self._scheduled = False
        self.pending = 0  # requests queued or running (a switch drains until this is zero)

    async def submit(self, decoded: Decoded, method: Method = "predict") -> Outputs:
        """Predict on one request's rows; returns when its batch has run.

        Raises:
            Overloaded: the queue is full.
            QueueTimeout: the request waited past the policy's timeout.
            Exception: whatever the model raised on this request's rows.
        """
        policy = self.policy
        if not policy.enabled:
            self.pending += 1
            try:
                outputs = self.runtime.run((decoded,), method)
            finally:
                self.pending -= 1
            if self._observe is not None:
                self._observe(decoded.rows)
            return outputs
        if len(self._queue) >= policy.max_queue:
            raise Overloaded(
                f"model {self.runtime.label} has {len(self._queue)} requests waiting; retry "
                "shortly (raise serving.max_queue or add workers for more capacity)"
            )
        loop = asyncio.get_running_loop()
        item = _Item(decoded, method, time.monotonic() + policy.timeout, loop.create_future())
        self._queue.append(item)
        self.pending += 1
        if not self._scheduled:
            self._scheduled = True
            if policy.max_wait > 0 and len(self._queue) < policy.max_rows:
                loop.call_later(policy.max_wait, self._dispatch)
            else:
                loop.call_soon(self._after_io, loop)
        try:
            return await item.future
        finally:
            self.pending -= 1

    def _after_io(self, loop: asyncio.AbstractEventLoop) -> None:
        """One more turn of the loop before the batch runs: requests whose bytes arrived
        meanwhile are read and join it (a few microseconds when nothing else is waiting)."""
        loop.call_soon(self._dispatch)

    def _take(self) -> list[_Item]:
        """The next batch: queued requests of the first one's method, up to ``max_rows``."""
        first = self._queue.popleft()
        batch, rows, skipped = [first], first.decoded.rows, []
        now = time.monotonic()
        while self._queue and rows < self.policy.max_rows:
            item = self._queue.popleft()
            if item.method != first.method or rows + item.decoded.rows > self.policy.max_rows:
                skipped.append(item)
                if item.decoded.rows > self.policy.max_rows:
                    continue
                break
            batch.append(item)
            rows += item.decoded.rows
        self._queue.extendleft(reversed(skipped))
        live = []
        for item in batch:
            if item.deadline < now:
                if not item.future.done():
                    item.future.set_exception(
                        QueueTimeout(
                            f"the request waited over {self.policy.timeout:g} s for model "
                            f"{self.runtime.label}; the server is overloaded, retry later"
                        )
                    )
            elif not item.future.done():  # a cancelled request (client gone) is skipped
                live.append(item)
        return live

    def _dispatch(self) -> None:
        self._scheduled = False
        if not self._queue:
            return
        batch = self._take()
        if batch:
            self._run(batch)
        if self._queue and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _run(self, batch: Sequence[_Item]) -> None:
        try:
            outputs = self.runtime.run([i.decoded for i in batch], batch[0].method)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for item in batch:  # isolate the request that fails
                self._run((item,))
            return
        if self._observe is not None:
            self._observe(sum(i.decoded.rows for i in batch))
        start = 0
        for item in batch:
            stop = start + item.decoded.rows
            item.future.set_result(outputs.rows(start, stop) if len(batch) > 1 else outputs)
            start = stop

    def fail_all(self, exc: BaseException) -> None:
        """Answer every queued request with ``exc`` (the server is stopping)."""
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(exc)
