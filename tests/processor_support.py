"""Run OTLP data through a chain of real processors, built by their factories from
config dicts as the service builds them, and collect what comes out.

    out = run_chain(Signal.TRACES, request, ("sse_reassembly", {}), ("genai_semconv", {"keep_raw": True}))
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.message import Message

from llmtap.component import ComponentID, Consumer, Host, Kind, Settings, Signal
from llmtap.configtypes import decode_config
from llmtap.registry import Registry, default_registry
from llmtap.telemetry import SelfTelemetry


class Collect(Consumer):
    def __init__(self) -> None:
        self.received: list[Message] = []

    async def consume(self, signal: Signal, data: Message) -> None:
        self.received.append(data)


class _Host(Host):
    def extension(self, id):
        raise KeyError(id)


def build_chain(signal: Signal, *components: tuple[str, dict], registry: Registry | None = None):
    """The processors, first to last, and the collector at the end of the chain."""
    registry = registry or default_registry()
    sink = Collect()
    telemetry = SelfTelemetry()
    next_consumer: Consumer = sink
    chain = []
    for type_, raw in reversed(components):
        factory = registry.get(Kind.PROCESSOR, type_)
        assert factory is not None, f"no processor type {type_!r}"
        config, errors = decode_config(factory.config_class, raw)
        assert not errors, errors
        settings = Settings(ComponentID(type_), Kind.PROCESSOR, telemetry, logging.getLogger(f"llmtap.test.{type_}"))
        next_consumer = factory.create(settings, config, signal, next_consumer)
        chain.insert(0, next_consumer)
    return chain, sink


def run_chain(signal: Signal, data: Message, *components: tuple[str, dict]) -> Message:
    """`data` through the chain; the one request that comes out."""
    chain, sink = build_chain(signal, *components)

    async def go():
        for p in chain:
            await p.start(_Host())
        await chain[0].consume(signal, data)
        for p in chain:
            await p.shutdown()

    asyncio.run(go())
    assert len(sink.received) == 1, f"{len(sink.received)} requests came out"
    return sink.received[0]
