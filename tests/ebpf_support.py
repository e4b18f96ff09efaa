"""A real `ebpf` receiver for tests: real probes in the kernel, its spans
collected in memory.

`Capture` runs one EbpfReceiver (built by its factory from a config dict, as the
service would) on an event loop of its own thread, so module-scoped fixtures can
share one load of the probes. Its consumer keeps every span with its resource:
the exchange spans (CLIENT, found by their client's pid) and the process spans
of agent processes and their descendants (INTERNAL, `exec …`).

When eBPF cannot be used, `require_ebpf()` fails the test if LLMTAP_REQUIRE_EBPF
is set (as `make test` and CI set it) and skips it otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap.component import ComponentID, Consumer, Host, Kind, Settings, Signal
from llmtap.configtypes import decode_config
from llmtap.receiver.ebpf import factory
from llmtap.telemetry import SelfTelemetry


def require_ebpf() -> None:
    problem = None
    if os.geteuid() != 0:
        problem = "not root"
    else:
        try:
            from llmtap.receiver.ebpf.probes import import_bcc
            import_bcc()
        except Exception as e:
            problem = str(e)
    if problem:
        if os.environ.get("LLMTAP_REQUIRE_EBPF", "") not in ("", "0"):
            pytest.fail(f"eBPF is required (LLMTAP_REQUIRE_EBPF) but unavailable: {problem}")
        pytest.skip(f"eBPF unavailable: {problem}")


def attributes(kvs) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(x, x.WhichOneof("value")) for x in v.array_value.values]
        else:
            out[kv.key] = getattr(v, kind) if kind else None
    return out


@dataclass
class CapturedSpan:
    span: Span
    attrs: dict[str, Any]
    resource: dict[str, Any]

    @property
    def pid(self) -> int:
        """The pid of the client that made this exchange; 0 for a process span (`exec …`, INTERNAL),
        which a test finds by its attributes."""
        return self.attrs.get("process.pid", 0) if self.span.kind == Span.SPAN_KIND_CLIENT else 0


class _Collect(Consumer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[CapturedSpan] = []
        self.requests = []

    async def consume(self, signal: Signal, data) -> None:
        with self.lock:
            self.requests.append(data)
            for rs in data.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append(CapturedSpan(span, attributes(span.attributes), resource))


class _Host(Host):
    def extension(self, id):
        raise KeyError(id)


class Capture:
    def __init__(self, config: dict | None = None):
        cfg, errors = decode_config(factory.config_class, config or {})
        assert not errors, errors
        self.telemetry = SelfTelemetry()
        self.sink = _Collect()
        settings = Settings(ComponentID("ebpf"), Kind.RECEIVER, self.telemetry, logging.getLogger("llmtap.test.ebpf"))
        self.receiver = factory.create(settings, cfg, {Signal.TRACES: self.sink})
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "Capture":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(_Host()), self.loop).result(60)
        assert self.receiver.active, "the ebpf receiver did not attach"
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.receiver.shutdown(), self.loop).result(60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def spans(self, where: Callable[[CapturedSpan], bool] = lambda s: True) -> list[CapturedSpan]:
        with self.sink.lock:
            return [s for s in self.sink.spans if where(s)]

    def wait_for(self, count: int, where: Callable[[CapturedSpan], bool] = lambda s: True,
                 timeout: float = 20.0, settle: float = 0.3) -> list[CapturedSpan]:
        """The spans matching `where` once there are at least `count` (and no more arrive for `settle` s)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans(where)
            if len(found) >= count:
                time.sleep(settle)
                return self.spans(where)
            if time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def of_pid(self, pid: int, count: int = 1, timeout: float = 20.0) -> list[CapturedSpan]:
        return self.wait_for(count, lambda s: s.pid == pid, timeout)

    def metric(self, name: str, **labels: str) -> float:
        return self.telemetry.value(name, receiver="ebpf", **labels)
