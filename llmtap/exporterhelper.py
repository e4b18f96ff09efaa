"""What every network exporter needs, as the collector's exporterhelper gives it:
a bounded in-memory sending queue with worker tasks, retries with exponential
backoff that honour the server's Retry-After / RetryInfo, a per-attempt timeout,
and a drain on shutdown. A subclass only implements `send`.

Guarantees: `consume` never waits on the network (it enqueues, or counts the
request as enqueue_failed when the queue is full), so one slow or failing
exporter cannot stall the pipeline or the other exporters. Every item that is
not sent is counted under `llmtap_exporter_dropped_*` with its reason.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from google.protobuf.message import Message

from llmtap.component import Exporter, Host, Signal
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items


@dataclass
class RetryConfig:
    enabled: bool = True
    initial_interval: Duration = field(default=Duration(5), metadata=doc("Wait after the first failure."))
    randomization_factor: float = 0.5
    multiplier: float = 1.5
    max_interval: Duration = field(default=Duration(30), metadata=doc("Upper bound on one wait."))
    max_elapsed_time: Duration = field(default=Duration(300), metadata=doc(
        "Give up (and count the data as dropped) after this long; 0 retries forever."))

    def validate(self) -> list[str]:
        errors = []
        if self.multiplier < 1:
            errors.append("multiplier: must be >= 1")
        if not 0 <= self.randomization_factor < 1:
            errors.append("randomization_factor: must be in [0, 1)")
        return errors


@dataclass
class QueueConfig:
    enabled: bool = True
    num_consumers: int = field(default=10, metadata=doc("Requests sent concurrently."))
    queue_size: int = field(default=1000, metadata=doc("Requests (batches) held before new ones are refused."))

    def validate(self) -> list[str]:
        errors = []
        if self.num_consumers < 1:
            errors.append("num_consumers: must be at least 1")
        if self.queue_size < 1:
            errors.append("queue_size: must be at least 1")
        return errors


class SendError(Exception):
    """A failed attempt. `retryable` false means the data is dropped at once."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class QueuedRetryExporter(Exporter):
    """Config must have `sending_queue: QueueConfig`, `retry_on_failure: RetryConfig`, `timeout`."""

    async def send(self, signal: Signal, data: Message) -> int:
        """Send one request within `self.config.timeout`. Return the number of
        items the destination rejected (OTLP partial success), or raise SendError."""
        raise NotImplementedError

    async def start(self, host: Host) -> None:
        self.host = host
        self._label = str(self.id)
        self._telemetry = self.settings.telemetry
        qc: QueueConfig = self.config.sending_queue
        self._queue: asyncio.Queue | None = asyncio.Queue(qc.queue_size) if qc.enabled else None
        self._in_flight: dict[asyncio.Task, tuple[Signal, Message]] = {}
        self._workers = [asyncio.create_task(self._work(), name=f"{self.id} sender {i}")
                         for i in range(qc.num_consumers)] if qc.enabled else []
        if qc.enabled:
            self._telemetry.queue_capacity.labels(self._label, "all").set(qc.queue_size)

    async def consume(self, signal: Signal, data: Message) -> None:
        if self._queue is None:
            await self._deliver(signal, data)
            return
        try:
            self._queue.put_nowait((signal, data))
        except asyncio.QueueFull:
            n = count_items(signal, data)
            self._telemetry.count("exporter", "enqueue_failed", signal, n, exporter=self._label)
            self._drop(signal, n, "queue_full")
            self.logger.warning("sending queue is full; dropping data", extra={
                "fields": {"exporter": self._label, "dropped_items": n, "queue_size": self._queue.maxsize}})
            return
        self._telemetry.queue_size.labels(self._label, "all").set(self._queue.qsize())

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            signal, data = await self._queue.get()
            self._telemetry.queue_size.labels(self._label, "all").set(self._queue.qsize())
            self._in_flight[asyncio.current_task()] = (signal, data)
            try:
                await self._deliver(signal, data)
            finally:
                del self._in_flight[asyncio.current_task()]
                self._queue.task_done()

    def _drop(self, signal: Signal, n: int, reason: str) -> None:
        self._telemetry.count("exporter", "dropped", signal, n, exporter=self._label, reason=reason)

    def _backoff(self, attempt: int) -> float:
        rc: RetryConfig = self.config.retry_on_failure
        interval = min(rc.initial_interval * rc.multiplier ** attempt, rc.max_interval)
        delta = rc.randomization_factor * interval
        return random.uniform(interval - delta, interval + delta)

    async def _deliver(self, signal: Signal, data: Message) -> None:
        rc: RetryConfig = self.config.retry_on_failure
        n = count_items(signal, data)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        fields = {"exporter": self._label, "items": n}
        while True:
            try:
                rejected = await asyncio.wait_for(self.send(signal, data), self.config.timeout or None)
            except (SendError, asyncio.TimeoutError, OSError) as e:
                error = e if isinstance(e, SendError) else SendError(
                    f"timed out after {self.config.timeout:g}s" if isinstance(e, asyncio.TimeoutError) else str(e),
                    retryable=True)
            else:
                self._telemetry.count("exporter", "sent", signal, n - rejected, exporter=self._label)
                if rejected:
                    self._drop(signal, rejected, "rejected_by_destination")
                return
            self._telemetry.count("exporter", "send_failed", signal, n, exporter=self._label)
            if not error.retryable or not rc.enabled:
                self._drop(signal, n, "permanent_error" if not error.retryable else "send_failed")
                self.logger.error("export failed, not retryable: %s", error, extra={"fields": fields})
                return
            delay = max(self._backoff(attempt), error.retry_after or 0.0)
            elapsed = loop.time() - started
            if rc.max_elapsed_time and elapsed + delay > rc.max_elapsed_time:
                self._drop(signal, n, "retries_exhausted")
                self.logger.error("export failed, giving up after %.1fs: %s", elapsed, error, extra={"fields": fields})
                return
            self.logger.info("export failed, will retry in %.2fs: %s", delay, error,
                             extra={"fields": {**fields, "attempt": attempt + 1}})
            attempt += 1
            await asyncio.sleep(delay)

    async def shutdown(self) -> None:
        """Drain the queue until the service's shutdown deadline, then count the rest as dropped."""
        if self._queue is None:
            return
        loop = asyncio.get_running_loop()
        remaining = max(0.0, (self.host.shutdown_deadline or loop.time()) - loop.time())
        try:
            await asyncio.wait_for(self._queue.join(), remaining)
        except asyncio.TimeoutError:
            pass
        lost = [item for item in self._in_flight.values()]
        while not self._queue.empty():
            lost.append(self._queue.get_nowait())
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for signal, data in lost:
            self._drop(signal, count_items(signal, data), "shutdown")
        if lost:
            self.logger.error("shutdown timeout reached; %d queued requests dropped", len(lost),
                              extra={"fields": {"exporter": self._label}})
        await self.close()

    async def close(self) -> None:
        """Release connections; called once the queue is drained."""
