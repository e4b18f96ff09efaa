"""`memory_limiter` processor: refuses data while the process uses too much
memory, as the collector's memorylimiterprocessor does, so that senders back off
and retry instead of the process growing until it is killed.

Two limits: the hard limit (`limit_mib`, or `limit_percentage` of total memory —
the cgroup's memory limit when there is one, else physical memory) and the soft
limit = hard limit - spike limit. Every `check_interval` the process RSS is read
(a background task, plus at most one synchronous check per interval on `consume`
so a burst between two ticks is caught): above the soft limit new data is refused
with a retryable RefusedError until usage falls back under it; above the hard
limit a full garbage collection is forced as well.

A forced collection is not what it is in Go: reference counting has already
freed everything but reference cycles, and gc.collect() holds the GIL while it
walks every live container object (about 1 µs each: 0.25 s while an exporter
holds a batch's JSON tree). Back to back they would starve the very threads
whose work frees memory — seen: 107 collections in 29 s, 27 s of GIL, 176
objects freed, the file exporter's write stretched from 3 s to 29 s. So,
whatever the configured intervals, a forced collection waits at least
_GC_SPACING times the previous one's duration: at most a tenth of the time.

Cost: one /proc read per check_interval; no buffering; forced collections
bounded as above.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from google.protobuf.message import Message

from llmtap.component import Consumer, Factory, Host, Kind, Processor, RefusedError, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items

MIB = 1 << 20
DEFAULT_SPIKE_FRACTION = 0.2
_GC_SPACING = 9  # idle time after a forced collection, in multiples of its duration
_CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max",  # cgroup v2
                       "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # cgroup v1


@dataclass
class Config:
    check_interval: Duration = field(default=Duration(1), metadata=doc(
        "How often memory use is measured. Must be greater than 0."))
    limit_mib: int = field(default=0, metadata=doc(
        "Hard limit in MiB of process memory (RSS). Set this or limit_percentage."))
    spike_limit_mib: int = field(default=0, metadata=doc(
        "Headroom below limit_mib for growth between two checks; data is refused above "
        "limit_mib - spike_limit_mib. 0 means 20% of limit_mib."))
    limit_percentage: int = field(default=0, metadata=doc(
        "Hard limit as a percentage of total memory (the cgroup limit if set, else physical memory). "
        "Set this or limit_mib."))
    spike_limit_percentage: int = field(default=0, metadata=doc(
        "Headroom as a percentage of total memory, used with limit_percentage. 0 means 20% of the limit."))
    min_gc_interval_when_soft_limited: Duration = field(default=Duration(10), metadata=doc(
        "Least time between forced garbage collections while above the soft limit."))
    min_gc_interval_when_hard_limited: Duration = field(default=Duration(0), metadata=doc(
        "Least time between forced garbage collections while above the hard limit."))

    def validate(self) -> list[str]:
        errors = []
        if self.check_interval <= 0:
            errors.append("check_interval: must be greater than 0")
        for key in ("limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage"):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must not be negative; got {getattr(self, key)}")
        if errors:
            return errors
        if self.limit_mib and self.limit_percentage:
            errors.append("limit_mib: set either limit_mib or limit_percentage, not both")
        elif not self.limit_mib and not self.limit_percentage:
            errors.append("limit_mib: one of limit_mib or limit_percentage must be set (greater than 0)")
        elif self.limit_mib:
            if self.spike_limit_percentage:
                errors.append("spike_limit_percentage: only applies with limit_percentage; "
                              "use spike_limit_mib with limit_mib")
            if self.spike_limit_mib >= self.limit_mib:
                errors.append(f"spike_limit_mib: must be less than limit_mib ({self.limit_mib}); "
                              f"got {self.spike_limit_mib}")
        else:
            if self.limit_percentage > 100:
                errors.append(f"limit_percentage: must be at most 100; got {self.limit_percentage}")
            if self.spike_limit_mib:
                errors.append("spike_limit_mib: only applies with limit_mib; "
                              "use spike_limit_percentage with limit_percentage")
            if self.spike_limit_percentage >= self.limit_percentage:
                errors.append(f"spike_limit_percentage: must be less than limit_percentage "
                              f"({self.limit_percentage}); got {self.spike_limit_percentage}")
        return errors


def cgroup_memory_limit() -> int | None:
    """The container's memory limit in bytes, or None when there is none."""
    for path in _CGROUP_LIMIT_FILES:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # v2 writes "max" when unlimited
            return int(text)
    return None


def total_memory() -> int:
    physical = psutil.virtual_memory().total
    cgroup = cgroup_memory_limit()
    # cgroup v1 reports "unlimited" as a huge number: the smaller one is real.
    return min(physical, cgroup) if cgroup else physical


def limits(config: Config, total: int) -> tuple[int, int]:
    """(hard, soft) limits in bytes."""
    if config.limit_mib:
        hard = config.limit_mib * MIB
        spike = config.spike_limit_mib * MIB
    else:
        hard = total * config.limit_percentage // 100
        spike = total * config.spike_limit_percentage // 100
    return hard, hard - (spike or int(hard * DEFAULT_SPIKE_FRACTION))


class MemoryLimiter(Processor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer):
        super().__init__(settings, config, signal, next)
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        self._process = psutil.Process()
        self.total_memory = total_memory()
        self.hard_limit, self.soft_limit = limits(config, self.total_memory)
        self.refusing = False
        self._last_check = float("-inf")
        self._last_gc = float("-inf")  # when the last forced collection ended
        self._last_gc_duration = 0.0
        self._checker: asyncio.Task | None = None
        self._clock = time.monotonic  # tests substitute a clock they control

    async def start(self, host: Host) -> None:
        self.logger.info("memory limiter configured", extra={"fields": {
            "processor": self._label, "hard_limit_mib": self.hard_limit // MIB,
            "soft_limit_mib": self.soft_limit // MIB, "total_memory_mib": self.total_memory // MIB,
            "check_interval_s": self.config.check_interval}})
        self.check()
        self._checker = asyncio.create_task(self._check_periodically(), name=f"{self.id} checker")

    async def shutdown(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            await asyncio.gather(self._checker, return_exceptions=True)
            self._checker = None

    async def _check_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            try:
                self.check()
            except psutil.Error as e:
                self.logger.error("cannot read memory usage: %s", e)

    def _rss(self) -> int:
        return self._process.memory_info().rss

    def check(self) -> None:
        """Measure memory now; force a GC if due; update whether data is refused."""
        now = self._clock()
        self._last_check = now
        rss = self._rss()
        if rss > self.hard_limit:
            interval = self.config.min_gc_interval_when_hard_limited
        elif rss > self.soft_limit:
            interval = self.config.min_gc_interval_when_soft_limited
        else:
            interval = None
        if interval is not None and now - self._last_gc >= max(interval, _GC_SPACING * self._last_gc_duration):
            before, started = rss, self._clock()
            gc.collect()
            self._last_gc = self._clock()
            self._last_gc_duration = self._last_gc - started
            rss = self._rss()
            self.logger.info("forced garbage collection", extra={"fields": {
                "processor": self._label, "before_mib": before // MIB, "after_mib": rss // MIB,
                "duration_ms": round(self._last_gc_duration * 1000)}})
        refusing = rss > self.soft_limit
        if refusing != self.refusing:
            fields = {"processor": self._label, "cur_mem_mib": rss // MIB,
                      "soft_limit_mib": self.soft_limit // MIB, "hard_limit_mib": self.hard_limit // MIB}
            if refusing:
                self.logger.warning("memory usage is above the soft limit: refusing data", extra={"fields": fields})
            else:
                self.logger.info("memory usage is back under the soft limit: accepting data", extra={"fields": fields})
        self.refusing = refusing

    async def consume(self, signal: Signal, data: Message) -> None:
        n = count_items(signal, data)
        self._telemetry.count("processor", "incoming", signal, n, processor=self._label)
        if self._clock() - self._last_check >= self.config.check_interval:
            self.check()
        if self.refusing:
            self._telemetry.memory_refusals.labels(self._label).inc()
            raise RefusedError("data refused due to high memory usage",
                               retry_after=float(self.config.check_interval), throttle=False)
        self._telemetry.count("processor", "outgoing", signal, n, processor=self._label)
        await self.next.consume(signal, data)


factory = Factory(
    type="memory_limiter",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=MemoryLimiter,
    signals=frozenset(Signal),
    stability=Stability.BETA,
    description="Refuses data with a retryable error while process memory is above the soft limit",
)
