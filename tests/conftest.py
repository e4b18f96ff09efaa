"""Shared test parts: real components need settings, a host, something to
receive their output, and something to feed a Service built from YAML.

Fixtures:
- make_settings(kind, id) -> Settings with a fresh SelfTelemetry
- host -> a Host whose status is "ready"
- capture -> a fresh CapturingConsumer
- capture_exporters -> a `capture` exporter Factory plus the instances it made
- feed_receivers -> a `feed` receiver Factory plus the instances it made (a test
  pushes data into a real Service through `instance.consumers[signal]`)
- service_from_yaml(text, *extra_factories) -> an unstarted Service built from a
  config with the built-ins plus the given factories (and capture/feed)
Request builders live in tests/otlpdata.py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from llmtap.component import (ComponentID, Consumer, EmptyConfig, Exporter, Factory, Host, Kind, Receiver,
                              Settings, Signal, Stability)
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items
from llmtap.telemetry import SelfTelemetry


def new_settings(kind: Kind | str, id: str | ComponentID = "test") -> Settings:
    cid = id if isinstance(id, ComponentID) else ComponentID.parse(id)
    kind = Kind(kind)
    return Settings(cid, kind, SelfTelemetry(), logging.getLogger(f"llmtap.{kind}.{cid}"))


@pytest.fixture
def make_settings():
    return new_settings


class ReadyHost(Host):
    """A Host as the service presents it once everything started."""

    def __init__(self, status: str = "ready"):
        self.status = status
        self.extensions: dict[ComponentID, Any] = {}

    def extension(self, id: ComponentID) -> Any:
        return self.extensions[id]


@pytest.fixture
def host():
    return ReadyHost()


class CapturingConsumer(Consumer):
    """Keeps every request it gets, in order; `delay` makes it a slow consumer,
    `gate` (an asyncio.Event) holds every call until set, `fail_with` raises."""

    def __init__(self, *, delay: float = 0.0, gate: asyncio.Event | None = None,
                 fail_with: BaseException | None = None):
        self.received: list[tuple[Signal, Any]] = []
        self.delay = delay
        self.gate = gate
        self.fail_with = fail_with
        self.calls = 0
        self._arrived = asyncio.Event()

    async def consume(self, signal: Signal, data) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        self.received.append((signal, data))
        self._arrived.set()

    def items(self, signal: Signal | None = None) -> int:
        return sum(count_items(s, d) for s, d in self.received if signal is None or s == signal)

    def requests(self, signal: Signal | None = None) -> list:
        return [d for s, d in self.received if signal is None or s == signal]

    async def wait_for_items(self, n: int, timeout: float = 5.0) -> None:
        """Until at least `n` items arrived (TimeoutError otherwise)."""
        async def reached():
            while self.items() < n:
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(reached(), timeout)


@pytest.fixture
def capture():
    return CapturingConsumer()


@dataclass
class CaptureExporterConfig:
    delay: Duration = field(default=Duration(0), metadata=doc("Sleep this long in every consume."))


class CaptureExporter(Exporter):
    def __init__(self, settings: Settings, config: CaptureExporterConfig):
        super().__init__(settings, config)
        self.sink = CapturingConsumer(delay=float(config.delay))
        self.started = self.stopped = False

    async def start(self, host: Host) -> None:
        self.started = True

    async def shutdown(self) -> None:
        self.stopped = True

    async def consume(self, signal: Signal, data) -> None:
        await self.sink.consume(signal, data)


class Instances:
    """A test Factory together with every component it created, by ID text."""

    def __init__(self, kind: Kind, type_: str, config_class: type, cls: type, signals: frozenset):
        self.made: dict[str, Any] = {}

        def create(settings: Settings, config, *rest):
            component = cls(settings, config, *rest)
            self.made[str(settings.id)] = component
            return component

        self.factory = Factory(type=type_, kind=kind, config_class=config_class, create=create, signals=signals,
                               stability=Stability.DEVELOPMENT, description=f"test-only {kind}")

    def __getitem__(self, id_text: str):
        return self.made[id_text]


@pytest.fixture
def capture_exporters():
    return Instances(Kind.EXPORTER, "capture", CaptureExporterConfig, CaptureExporter, frozenset(Signal))


class FeedReceiver(Receiver):
    """A receiver the test drives by hand: `await r.consumers[signal].consume(signal, data)`."""


@pytest.fixture
def feed_receivers():
    return Instances(Kind.RECEIVER, "feed", EmptyConfig, FeedReceiver, frozenset(Signal))


@pytest.fixture
def service_from_yaml(capture_exporters, feed_receivers):
    from llmtap.config import parse
    from llmtap.registry import Registry, default_registry
    from llmtap.service import Service

    def build(text: str, *extra: Factory) -> Service:
        registry = Registry([*default_registry().all(), capture_exporters.factory, feed_receivers.factory, *extra])
        return Service(parse(yaml.safe_load(text), registry))

    return build
