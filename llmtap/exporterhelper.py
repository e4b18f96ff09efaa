"""What every network exporter needs, as the collector's exporterhelper gives it:
a bounded in-memory sending queue with worker tasks, retries with exponential
backoff that honour the server's Retry-After / RetryInfo, a per-attempt timeout,
and a drain on shutdown. A subclass implements `send` (one attempt) and `close`.

Guarantees:
- `consume` never waits on the network: it enqueues, or counts the request as
  enqueue_failed (and dropped, reason queue_full) when the queue is full, so one
  slow or failing exporter cannot stall the pipeline or the other exporters.
  (With `sending_queue.enabled: false` the caller chose to wait: the request is
  sent inline and a final failure is raised back, as in the collector.)
- Every item is counted once as sent or as dropped with its reason:
  queue_full, permanent_error, retry_disabled, retries_exhausted,
  rejected_by_destination (OTLP partial success), shutdown, exporter_error
  (a bug in `send`; the worker survives it). Items of a request that was tried
  and never delivered are also counted as send_failed.
- Shutdown drains the queue until `host.shutdown_deadline` (without a deadline,
  until it is empty); whatever is still queued or in flight then is dropped with
  reason shutdown.

Memory bound: at most `queue_size` queued requests plus `num_consumers` in
flight, each held by reference (no copies); a worker lets go of its request
as soon as it is sent.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from google.protobuf.message import Message

from llmtap.component import Exporter, Host, PermanentError, RefusedError, Settings, Signal
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items


@dataclass
class RetryConfig:
    enabled: bool = field(default=True, metadata=doc("Retry failed requests; false drops them after one attempt."))
    initial_interval: Duration = field(default=Duration(5), metadata=doc("Wait after the first failure."))
    randomization_factor: float = field(default=0.5, metadata=doc(
        "Each wait is picked at random within ± this fraction of the current interval."))
    multiplier: float = field(default=1.5, metadata=doc("Factor by which the interval grows after each retry."))
    max_interval: Duration = field(default=Duration(30), metadata=doc("Upper bound on one wait."))
    max_elapsed_time: Duration = field(default=Duration(300), metadata=doc(
        "Give up (and count the data as dropped) after this long; 0 retries forever."))

    def validate(self) -> list[str]:
        errors = []
        if self.multiplier < 1:
            errors.append("multiplier: must be >= 1")
        if not 0 <= self.randomization_factor < 1:
            errors.append("randomization_factor: must be in [0, 1)")
        if self.enabled:
            # A zero interval would retry a dead destination in a tight loop.
            if self.initial_interval <= 0:
                errors.append("initial_interval: must be greater than 0")
            if self.max_interval <= 0:
                errors.append("max_interval: must be greater than 0")
            elif self.initial_interval > self.max_interval:
                errors.append("initial_interval: must not be greater than max_interval")
        return errors


@dataclass
class QueueConfig:
    enabled: bool = field(default=True, metadata=doc(
        "Queue requests and send them from worker tasks; false sends inline and makes the pipeline wait."))
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
    """A failed attempt. `retryable` false means the data is dropped at once;
    `retry_after` is the server's requested wait (Retry-After, RetryInfo)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class PartialSuccess:
    """The destination took the request but rejected `rejected` of its items
    (OTLP partial success). Never retried: the server said the data is bad."""

    rejected: int = 0
    message: str = ""


class QueuedRetryExporter(Exporter):
    """Config must have `sending_queue: QueueConfig`, `retry_on_failure: RetryConfig`, `timeout`."""

    def __init__(self, settings: Settings, config):
        super().__init__(settings, config)
        self.host: Host | None = None
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        qc: QueueConfig = config.sending_queue
        self._queue: asyncio.Queue | None = asyncio.Queue(qc.queue_size) if qc.enabled else None
        self._workers: list[asyncio.Task] = []
        self._stopped = False

    async def send(self, signal: Signal, data: Message) -> PartialSuccess | None:
        """Send one request (the caller enforces `config.timeout`). Return the
        destination's partial success, if any; raise SendError on failure.
        OSError (connection refused, reset) counts as a retryable failure."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections; called once the queue is drained."""

    async def start(self, host: Host) -> None:
        self.host = host
        if self._queue is not None:
            self._workers = [asyncio.create_task(self._work(), name=f"{self.id} sender {i}")
                             for i in range(self.config.sending_queue.num_consumers)]
            self._telemetry.queue_capacity.labels(self._label, "all").set(self._queue.maxsize)
            self._telemetry.queue_size.labels(self._label, "all").set(0)

    async def consume(self, signal: Signal, data: Message) -> None:
        if self._stopped:
            self._drop(signal, count_items(signal, data), "shutdown")
            return
        if self._queue is None:
            await self._send_inline(signal, data)
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

    async def _send_inline(self, signal: Signal, data: Message) -> None:
        error = await self._deliver(signal, data)
        if error is None:
            return
        if error.retryable:
            raise RefusedError(f"{self.id}: {error}", retry_after=error.retry_after or 1.0)
        raise PermanentError(f"{self.id}: {error}")

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            signal, data = await self._queue.get()
            self._telemetry.queue_size.labels(self._label, "all").set(self._queue.qsize())
            try:
                await self._deliver(signal, data)
            finally:
                # An idle worker must not keep its last request alive: with
                # num_consumers workers that is as many whole batches in memory.
                del data
                self._queue.task_done()

    def _drop(self, signal: Signal, n: int, reason: str) -> None:
        self._telemetry.count("exporter", "dropped", signal, n, exporter=self._label, reason=reason)

    def _backoff(self, attempt: int) -> float:
        rc: RetryConfig = self.config.retry_on_failure
        try:
            # Capped exponent: retrying forever (max_elapsed_time 0) must not overflow the float.
            interval = min(rc.initial_interval * rc.multiplier ** min(attempt, 64), rc.max_interval)
        except OverflowError:
            interval = rc.max_interval
        delta = rc.randomization_factor * interval
        return random.uniform(interval - delta, interval + delta)

    async def _attempt(self, signal: Signal, data: Message) -> PartialSuccess | None:
        timeout = self.config.timeout or None
        try:
            return await asyncio.wait_for(self.send(signal, data), timeout)
        except SendError:
            raise
        except TimeoutError:  # also asyncio.TimeoutError (the same class since 3.11)
            raise SendError(f"no answer within the timeout ({timeout:g}s)", retryable=True) from None
        except OSError as e:
            raise SendError(str(e) or type(e).__name__, retryable=True) from None

    async def _deliver(self, signal: Signal, data: Message) -> SendError | None:
        """Send with retries. Counts the outcome; returns the final error, or None when delivered."""
        rc: RetryConfig = self.config.retry_on_failure
        n = count_items(signal, data)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        fields = {"exporter": self._label, "items": n}
        try:
            while True:
                try:
                    result = await self._attempt(signal, data)
                except SendError as e:
                    # Kept bare: its traceback holds this frame, and this frame holds `error`
                    # — a reference cycle that would keep `data` (via this frame and, through
                    # __context__, the frames of send()) alive until the next full collection.
                    error = e.with_traceback(None)
                    error.__context__ = error.__cause__ = None
                except Exception as e:  # a bug in send(): lose this request, not the worker
                    self.logger.exception("exporter failed unexpectedly", extra={"fields": fields})
                    self._fail(signal, n, "exporter_error")
                    return SendError(f"unexpected {type(e).__name__}: {e}", retryable=False)
                else:
                    self._succeed(signal, n, result)
                    return None
                if not error.retryable:
                    self._fail(signal, n, "permanent_error")
                    self.logger.error("export failed, not retryable: %s", error, extra={"fields": fields})
                    return error
                if not rc.enabled:
                    self._fail(signal, n, "retry_disabled")
                    self.logger.error("export failed, retry_on_failure is disabled: %s", error,
                                      extra={"fields": fields})
                    return error
                delay = max(self._backoff(attempt), error.retry_after or 0.0)
                elapsed = loop.time() - started
                if rc.max_elapsed_time and elapsed + delay > rc.max_elapsed_time:
                    self._fail(signal, n, "retries_exhausted")
                    self.logger.error("export failed, giving up after %.1fs: %s", elapsed, error,
                                      extra={"fields": fields})
                    return error
                attempt += 1
                self.logger.info("export failed, will retry in %.2fs: %s", delay, error,
                                 extra={"fields": {**fields, "attempt": attempt}})
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            # Only shutdown cancels a worker: the request in hand is lost.
            self._fail(signal, n, "shutdown")
            self.logger.error("shutdown deadline reached while sending; request dropped", extra={"fields": fields})
            raise

    def _succeed(self, signal: Signal, n: int, result: PartialSuccess | None) -> None:
        rejected = min(max(result.rejected, 0), n) if result else 0
        self._telemetry.count("exporter", "sent", signal, n - rejected, exporter=self._label)
        if result and (rejected or result.message):
            self._drop(signal, rejected, "rejected_by_destination")
            self.logger.warning("partial success: the destination rejected %d of %d items: %s",
                                rejected, n, result.message or "(no message)",
                                extra={"fields": {"exporter": self._label, "rejected_items": rejected,
                                                  "message": result.message}})

    def _fail(self, signal: Signal, n: int, reason: str) -> None:
        """A request that was tried and will not be delivered."""
        self._telemetry.count("exporter", "send_failed", signal, n, exporter=self._label)
        self._drop(signal, n, reason)

    async def shutdown(self) -> None:
        """Drain the queue until the service's shutdown deadline, then count the rest as dropped."""
        if self._queue is not None and not self._stopped:
            loop = asyncio.get_running_loop()
            deadline = self.host.shutdown_deadline if self.host else None
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            if not self._workers:  # never started: nobody would ever empty the queue
                timeout = 0.0
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except TimeoutError:
                pass
            self._stopped = True
            for worker in self._workers:
                worker.cancel()  # each counts its own request in flight as dropped
            await asyncio.gather(*self._workers, return_exceptions=True)
            lost = 0
            while not self._queue.empty():
                signal, data = self._queue.get_nowait()
                self._drop(signal, count_items(signal, data), "shutdown")
                lost += 1
            self._telemetry.queue_size.labels(self._label, "all").set(0)
            if lost:
                self.logger.error("shutdown deadline reached; %d queued requests dropped", lost,
                                  extra={"fields": {"exporter": self._label}})
        self._stopped = True
        await self.close()
