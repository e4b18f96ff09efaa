"""`batch` processor: groups requests into bigger ones before they go on, as the
collector's batchprocessor does.

A batch is sent once it holds `send_batch_size` items, or `timeout` after its
first item arrived, whichever comes first; with `send_batch_max_size` set, no
request that leaves is bigger than that (larger batches are split). `consume`
returns as soon as the data is buffered. One sender task hands batches to the
next consumer one at a time, so its errors are logged here: there is nobody
upstream left to raise them to.

Buffer bound: while the sender is idle, one batch collects — up to
send_batch_size items plus the request that crossed that mark. While it is
passing a batch on, the next one holds at most one request (the collector's
batcher, too, buffers only a few requests while it exports). A `consume` that
finds the buffer full, or a request already waiting during a send, waits until
the sender takes the batch or finishes the send: further data stays with its
senders instead of piling up here. Without that bound, a slow next consumer
would let the next batch grow with everything the memory_limiter accepts
meanwhile, and whatever that consumer costs per byte comes due later, on the
whole batch at once (the file exporter's JSON takes ~0.3 s and ~18 MiB of
memory per MiB of protobuf: an 11 MiB batch held ~200 MiB for 3 s).
`shutdown` sends everything still buffered and waits for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from google.protobuf.message import Message

from llmtap.component import Consumer, Factory, Host, Kind, Processor, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items, merge_into, split


@dataclass
class Config:
    send_batch_size: int = field(default=8192, metadata=doc(
        "Items (spans, metric data points, log records) after which a batch is sent regardless of the "
        "timeout (0: every request). A trigger, not a cap: see send_batch_max_size."))
    send_batch_max_size: int = field(default=0, metadata=doc(
        "Most items in one request sent on; bigger batches are split. 0 means no limit; otherwise it must "
        "be >= send_batch_size."))
    timeout: Duration = field(default=Duration(0.2), metadata=doc(
        "Send a batch this long after its first item arrived, whatever its size. 0 sends every request at "
        "once (still split by send_batch_max_size)."))

    def validate(self) -> list[str]:
        errors = []
        if self.send_batch_size < 0:
            errors.append(f"send_batch_size: must not be negative; got {self.send_batch_size}")
        if self.send_batch_max_size < 0:
            errors.append(f"send_batch_max_size: must not be negative; got {self.send_batch_max_size}")
        elif 0 < self.send_batch_max_size < self.send_batch_size:
            errors.append(f"send_batch_max_size: must be 0 (no limit) or >= send_batch_size "
                          f"({self.send_batch_size}); got {self.send_batch_max_size}")
        return errors


SIZE, TIMEOUT, SHUTDOWN = "size", "timeout", "shutdown"


class BatchProcessor(Processor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer):
        super().__init__(settings, config, signal, next)
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        # The batch being collected: its first request, with every later one merged into it.
        self._pending: Message | None = None
        self._pending_items = 0
        self._deadline = 0.0  # loop time by which the pending batch goes out
        self._wakeup = asyncio.Event()  # for the sender: data arrived or shutdown began
        self._room = asyncio.Event()  # for blocked consumers: the sender took the pending batch, or sent it
        self._sending = False  # the sender is passing a batch on
        self._sender: asyncio.Task | None = None
        self._running = False

    async def start(self, host: Host) -> None:
        self._running = True
        self._sender = asyncio.create_task(self._send_loop(), name=f"{self.id} sender")

    def _full(self) -> bool:
        return self._pending is not None and self._pending_items >= self.config.send_batch_size

    def _no_room(self) -> bool:
        return self._full() or (self._sending and self._pending is not None)

    async def consume(self, signal: Signal, data: Message) -> None:
        n = count_items(signal, data)
        self._telemetry.count("processor", "incoming", signal, n, processor=self._label)
        while self._running and self._no_room():
            self._room.clear()
            await self._room.wait()
        if not self._running:
            # Before start or once shutdown began nothing is buffered: the data
            # goes straight on and the caller hears about any failure.
            self._telemetry.count("processor", "outgoing", signal, n, processor=self._label)
            await self.next.consume(signal, data)
            return
        first = self._pending is None
        if first:
            self._deadline = asyncio.get_running_loop().time() + self.config.timeout
            self._pending = data  # we own the data: later requests are merged into it
        else:
            # Merged on arrival rather than when the batch leaves, so that each request's
            # own copy is freed now: the batch is held in memory once, not twice.
            merge_into(signal, self._pending, data)
        self._pending_items += n
        if first or self._full():
            # The sender only needs to hear of a new deadline or of a full batch:
            # waking it on every request would cost a timer and a task each time.
            self._wakeup.set()

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._running:
            if self._pending is None:
                await self._wait(None)
            elif self._full() or self.config.timeout == 0:
                await self._send_pending(SIZE)
            elif (remaining := self._deadline - loop.time()) > 0:
                await self._wait(remaining)
            else:
                await self._send_pending(TIMEOUT)

    async def _wait(self, timeout: float | None) -> None:
        # No await between the caller's checks and clear(): nothing can slip in.
        self._wakeup.clear()
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _send_pending(self, trigger: str) -> None:
        merged, items = self._pending, self._pending_items
        self._pending, self._pending_items = None, 0
        max_size = self.config.send_batch_max_size
        chunks = list(split(self.signal, merged, max_size)) if max_size and items > max_size else [merged]
        if trigger == SIZE and len(chunks) > 1:
            # As the collector does: only full batches leave on the size trigger;
            # the remainder starts the next batch (with a fresh timeout).
            tail_items = count_items(self.signal, chunks[-1])
            if tail_items < self.config.send_batch_size:
                self._pending, self._pending_items = chunks.pop(), tail_items
                self._deadline = asyncio.get_running_loop().time() + self.config.timeout
        self._sending = True
        self._room.set()
        try:
            for chunk in chunks:
                await self._export(chunk, trigger)
        finally:
            self._sending = False
            self._room.set()
        # Let the consumers that waited for this send join the next batch before it leaves.
        await asyncio.sleep(0)

    async def _export(self, data: Message, trigger: str) -> None:
        n = count_items(self.signal, data)
        self._telemetry.batch_send_size.labels(self._label).inc(n)
        if trigger == SIZE:
            self._telemetry.batch_size_trigger.labels(self._label).inc()
        elif trigger == TIMEOUT:
            self._telemetry.batch_timeout_trigger.labels(self._label).inc()
        self._telemetry.count("processor", "outgoing", self.signal, n, processor=self._label)
        try:
            await self.next.consume(self.signal, data)
        except Exception as e:
            self.logger.error("cannot pass a batch on; its data is lost: %s", e, extra={"fields": {
                "processor": self._label, "items": n, "trigger": trigger, "error_type": type(e).__name__}})

    async def shutdown(self) -> None:
        if not self._running:
            return
        self._running = False
        self._wakeup.set()
        self._room.set()
        if self._sender is not None:
            await self._sender  # finishes the send in progress, if any
        while self._pending is not None:
            await self._send_pending(SHUTDOWN)


factory = Factory(
    type="batch",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=BatchProcessor,
    signals=frozenset(Signal),
    stability=Stability.BETA,
    description="Groups requests into batches by size and time before passing them on",
)
