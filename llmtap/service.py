"""The running service: builds the pipeline graph from a validated Config, starts
it in dependency order, and shuts it down so that every item accepted before the
signal is exported or counted as dropped within `service.shutdown_timeout`.

Graph, as in the collector: one instance per receiver, exporter, connector and
extension ID; one instance per processor per pipeline. A receiver feeding several
pipelines hands each a copy of the data (processors change data in place); a
pipeline's last processor hands the same data to all its exporters, which only
enqueue it (see exporterhelper), so a slow exporter does not hold up the others.

Start: extensions → exporters and connectors → processors → receivers.
Stop: receivers → processors in data-flow order (so a batch flushed on
shutdown still passes the processors after it) → connectors' downstream → exporters
(which drain their queues) → extensions.
"""

from __future__ import annotations

import asyncio
import logging
import signal as os_signal
from typing import Any

from google.protobuf.message import Message

from llmtap.component import (Component, ComponentID, Consumer, Host, Kind, RefusedError, Settings,
                              Signal)
from llmtap.config import Config, Pipeline
from llmtap.telemetry import SelfTelemetry

log = logging.getLogger("llmtap.service")


class FanOut(Consumer):
    """Hands data to several consumers concurrently; the first failure is raised
    after all have been tried (a refusal is preferred, so the sender retries)."""

    def __init__(self, consumers: list[Consumer], copy: bool):
        self.consumers = consumers
        self.copy = copy

    async def consume(self, signal: Signal, data: Message) -> None:
        if len(self.consumers) == 1:
            await self.consumers[0].consume(signal, data)
            return
        last = len(self.consumers) - 1
        batches = [data if not self.copy or i == last else _clone(data) for i in range(len(self.consumers))]
        results = await asyncio.gather(*(c.consume(signal, d) for c, d in zip(self.consumers, batches)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            error = next((e for e in errors if isinstance(e, RefusedError)), errors[0])
            try:
                raise error
            finally:
                # Otherwise error → traceback → this frame → error is a cycle that keeps
                # every copy of the data alive until the next garbage collection.
                del error, errors, results


def _clone(data: Message) -> Message:
    copy = type(data)()
    copy.CopyFrom(data)
    return copy


class _Host(Host):
    def __init__(self) -> None:
        self.extensions: dict[ComponentID, Any] = {}

    def extension(self, id: ComponentID) -> Any:
        return self.extensions[id]


class Service:
    def __init__(self, config: Config, telemetry: SelfTelemetry | None = None):
        self.config = config
        self.telemetry = telemetry or SelfTelemetry()
        self.host = _Host()
        self.extensions: dict[ComponentID, Component] = {}
        self.exporters: dict[ComponentID, Component] = {}
        self.connectors: dict[ComponentID, Component] = {}
        self.receivers: dict[ComponentID, Component] = {}
        # Per pipeline, its processors in data-flow order.
        self.processors: dict[Any, list[Component]] = {}
        self._build()

    def _settings(self, kind: Kind, cid: ComponentID) -> Settings:
        return Settings(cid, kind, self.telemetry, logging.getLogger(f"llmtap.{kind}.{cid}"))

    def _factory(self, kind: Kind, cid: ComponentID):
        return self.config.factories[(kind, cid)]

    def _build(self) -> None:
        cfg = self.config
        for cid in cfg.extensions:
            self.extensions[cid] = self._factory(Kind.EXTENSION, cid).create(
                self._settings(Kind.EXTENSION, cid), cfg.components[Kind.EXTENSION][cid])

        # Connectors first, with their downstream consumers filled in once every
        # pipeline head exists.
        connector_downstream: dict[ComponentID, dict[Signal, list[Consumer]]] = {}
        for cid in cfg.components[Kind.CONNECTOR]:
            if not any(cid in p.exporters for p in cfg.pipelines.values()):
                continue
            connector_downstream[cid] = {}
            consumers: dict[Signal, Consumer] = {}
            self.connectors[cid] = self._factory(Kind.CONNECTOR, cid).create(
                self._settings(Kind.CONNECTOR, cid), cfg.components[Kind.CONNECTOR][cid], consumers)

        heads: dict[Any, Consumer] = {}
        for pid, pipeline in cfg.pipelines.items():
            outs = [self._exporter(cid) for cid in pipeline.exporters]
            consumer: Consumer = FanOut(outs, copy=False)
            chain = []
            for cid in reversed(pipeline.processors):
                consumer = self._factory(Kind.PROCESSOR, cid).create(
                    self._settings(Kind.PROCESSOR, cid), cfg.components[Kind.PROCESSOR][cid], pid.signal, consumer)
                chain.append(consumer)
            self.processors[pid] = list(reversed(chain))
            heads[pid] = consumer

        receiver_heads: dict[ComponentID, dict[Signal, list[Consumer]]] = {}
        for pid, pipeline in cfg.pipelines.items():
            for cid in pipeline.receivers:
                target = connector_downstream[cid] if cid in self.connectors else receiver_heads.setdefault(cid, {})
                target.setdefault(pid.signal, []).append(heads[pid])

        for cid, by_signal in connector_downstream.items():
            self.connectors[cid].consumers.update(
                {sig: FanOut(c, copy=len(c) > 1) for sig, c in by_signal.items()})
        for cid, by_signal in receiver_heads.items():
            self.receivers[cid] = self._factory(Kind.RECEIVER, cid).create(
                self._settings(Kind.RECEIVER, cid), cfg.components[Kind.RECEIVER][cid],
                {sig: FanOut(c, copy=True) for sig, c in by_signal.items()})

    def _exporter(self, cid: ComponentID) -> Component:
        if cid in self.connectors:
            return self.connectors[cid]
        if cid not in self.exporters:
            self.exporters[cid] = self._factory(Kind.EXPORTER, cid).create(
                self._settings(Kind.EXPORTER, cid), self.config.components[Kind.EXPORTER][cid])
        return self.exporters[cid]

    def _pipelines_in_flow_order(self) -> list[Pipeline]:
        """Pipelines fed only by receivers first, then those fed by connectors."""
        fed_by_connector = lambda p: any(cid in self.connectors for cid in p.receivers)  # noqa: E731
        return sorted(self.config.pipelines.values(), key=fed_by_connector)

    async def start(self) -> None:
        self.host.status = "starting"
        order: list[Component] = [*self.extensions.values(), *self.exporters.values(),
                                  *self.connectors.values()]
        for chain in self.processors.values():
            order.extend(reversed(chain))
        order.extend(self.receivers.values())
        started: list[Component] = []
        for component in order:
            try:
                await component.start(self.host)
            except Exception as e:
                log.error("cannot start %s: %s", component.id, e)
                for done in reversed(started):
                    await _quietly(done.shutdown())
                raise StartError(f"cannot start {component.settings.kind} {component.id}: {e}") from e
            started.append(component)
            if component.settings.kind is Kind.EXTENSION:
                self.host.extensions[component.id] = component
        self.host.status = "ready"
        log.info("everything is ready; begin running and processing data",
                 extra={"fields": {"pipelines": [str(p) for p in self.config.pipelines]}})

    async def shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        self.host.status = "stopping"
        self.host.shutdown_deadline = loop.time() + self.config.shutdown_timeout
        log.info("shutdown: draining", extra={"fields": {"timeout_s": self.config.shutdown_timeout}})
        for component in self.receivers.values():
            await _quietly(component.shutdown())
        connectors_done = False
        for pipeline in self._pipelines_in_flow_order():
            if not connectors_done and any(cid in self.connectors for cid in pipeline.receivers):
                for component in self.connectors.values():
                    await _quietly(component.shutdown())
                connectors_done = True
            for component in self.processors[pipeline.id]:
                await _quietly(component.shutdown())
        if not connectors_done:
            for component in self.connectors.values():
                await _quietly(component.shutdown())
        await asyncio.gather(*(_quietly(c.shutdown()) for c in self.exporters.values()))
        for component in reversed(self.extensions.values()):
            await _quietly(component.shutdown())
        log.info("shutdown complete")


class StartError(Exception):
    pass


async def _quietly(coro) -> None:
    try:
        await coro
    except Exception:
        log.exception("error during shutdown")


async def run(service: Service, stop: asyncio.Event | None = None) -> None:
    """Start, wait for SIGTERM/SIGINT (or `stop`), shut down."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (os_signal.SIGTERM, os_signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        for sig in (os_signal.SIGTERM, os_signal.SIGINT):
            loop.remove_signal_handler(sig)
        await service.shutdown()
