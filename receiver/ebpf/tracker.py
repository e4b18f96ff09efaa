"""From kernel events to finished HTTP exchanges: one parser per TLS connection.

`ConnectionTracker` is sans-IO like the parsers it drives: feed it decoded
`Event`s in ring-buffer order, get back `Observed` exchanges. It never touches
the kernel; when it decides a connection is of no interest (filtered process,
host on no allow-list rule, a TLS server, not HTTP) it calls `ignore(pid, conn)`
so the receiver can tell the kernel to stop copying that connection.

A connection is (pid, SSL* pointer). Each direction's expected stream offset is
kept; an event that starts past it reveals bytes the capture lost (ring buffer
full, unreadable user memory), which the parser is told about, so an exchange
is never silently spliced together from pieces around a gap.

Who a connection belongs to comes from `process_info(pid, comm)` (the receiver's
process table), asked once per connection; each accepted LLM request is told to
`llm_request(pid)`, which is how the table knows agent processes.

Cost: O(bytes) through the parsers; O(1) bookkeeping per event; memory bounded
by the parsers' own limits per open connection. Connections end at SSL_free or
process exit.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from llmtap.receiver.ebpf import events
from llmtap.receiver.ebpf.endpoints import EndpointMatcher
from llmtap.receiver.ebpf.events import Event, Kind
from llmtap.receiver.ebpf.exchange import Direction, Exchange
from llmtap.receiver.ebpf.http import HttpConnectionParser

_DIRECTIONS = {events.DIR_WRITE: Direction.WRITE, events.DIR_READ: Direction.READ}


@dataclass
class ProcessInfo:
    pid: int
    executable_path: str = ""
    comm: str = ""
    cgroup: str = ""

    @property
    def executable_name(self) -> str:
        return os.path.basename(self.executable_path) if self.executable_path else self.comm


@dataclass
class Observed:
    """A finished exchange and who made it."""
    exchange: Exchange
    process: ProcessInfo
    tid: int


@dataclass
class _Connection:
    pid: int
    conn: int
    process: ProcessInfo
    parser: HttpConnectionParser = None
    tid: int = 0
    offsets: dict[Direction, int] = field(default_factory=lambda: {Direction.WRITE: 0, Direction.READ: 0})
    # Set when a request went to a host no endpoint rule names: the connection is of no interest.
    foreign_host: bool = False


class ConnectionTracker:
    """`make_parser(accept)` builds a parser that calls `accept(exchange)` at each request head."""

    def __init__(self, make_parser: Callable[[Callable[[Exchange], bool]], HttpConnectionParser],
                 endpoints: EndpointMatcher, *,
                 process_wanted: Callable[[ProcessInfo], bool] = lambda p: True,
                 ignore: Callable[[int, int], None] = lambda pid, conn: None,
                 process_info: Callable[..., ProcessInfo] | None = None,
                 llm_request: Callable[[int], None] = lambda pid: None):
        self._make_parser = make_parser
        self._endpoints = endpoints
        self._process_wanted = process_wanted
        self._ignore = ignore
        self._process_info = process_info or read_process_info
        self._llm_request = llm_request
        self._connections: dict[tuple[int, int], _Connection] = {}
        self._ignored: dict[int, set[int]] = {}  # pid → connections ruled out
        # What was not exported, by reason; lost_bytes, by where the loss was seen.
        self.dropped_exchanges: Counter[str] = Counter()
        self.ignored_bytes: Counter[str] = Counter()
        self.lost_bytes = 0

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def handle(self, event: Event) -> list[Observed]:
        if event.kind == Kind.TLS_DATA:
            return self._data(event)
        if event.kind == Kind.TLS_FREE:
            return self._free(event)
        if event.kind == Kind.PROC_EXIT:
            return self._exit(event)
        return []

    def forget(self, pid: int, conn: int) -> None:
        """Drop a connection's state without reporting it (after an internal error)."""
        self._connections.pop((pid, conn), None)

    def close_all(self, ts_ns: int) -> list[Observed]:
        """Shutdown: every connection still open ends now."""
        out: list[Observed] = []
        for key in list(self._connections):
            out += self._finish(self._connections.pop(key), ts_ns, "llmtap stopped while the exchange was in flight")
        return out

    def _new_connection(self, pid: int, conn: int, process: ProcessInfo) -> _Connection:
        c = _Connection(pid, conn, process)

        def accept(x: Exchange) -> bool:
            if self._endpoints.matches(x.authority, x.target):
                self._llm_request(pid)
                return True
            if not self._endpoints.host_may_match(x.authority):
                c.foreign_host = True
            return False

        c.parser = self._make_parser(accept)
        self._connections[(pid, conn)] = c
        return c

    def _data(self, event: Event) -> list[Observed]:
        key = (event.pid, event.conn)
        if event.conn in self._ignored.get(event.pid, ()):
            self.ignored_bytes["ruled_out"] += len(event.data)
            return []
        direction = _DIRECTIONS.get(event.direction)
        if direction is None:
            return []
        c = self._connections.get(key)
        if c is None:
            process = self._process_info(event.pid, event.comm)
            if not self._process_wanted(process):
                return self._rule_out(key, "process_filtered", len(event.data))
            c = self._new_connection(event.pid, event.conn, process)
        observed: list[Observed] = []
        expected = c.offsets[direction]
        if event.stream_offset < expected:
            # Not this connection's stream: the SSL* was reused before we saw its SSL_free.
            observed += self._observed(c, c.parser.close(event.ts_ns))
            c = self._new_connection(event.pid, event.conn, c.process)
            expected = 0
        c.tid = event.tid
        exchanges: list[Exchange] = []
        if event.stream_offset > expected:
            gap = event.stream_offset - expected
            self.lost_bytes += gap
            exchanges += c.parser.lost(direction, gap, event.ts_ns)
        c.offsets[direction] = event.stream_offset + len(event.data)
        exchanges += c.parser.feed(direction, event.data, event.ts_ns)
        observed += self._observed(c, exchanges)
        if c.parser.role in ("server", "not_http"):
            reason = c.parser.role
        elif c.foreign_host:
            reason = "not_llm"
        else:
            return observed
        self._connections.pop(key, None)
        return observed + self._rule_out(key, reason, 0)

    def _rule_out(self, key: tuple[int, int], reason: str, nbytes: int) -> list[Observed]:
        self._ignored.setdefault(key[0], set()).add(key[1])
        self.ignored_bytes[reason] += nbytes
        self._ignore(*key)
        return []

    def _free(self, event: Event) -> list[Observed]:
        key = (event.pid, event.conn)
        self._ignored.get(event.pid, set()).discard(event.conn)
        c = self._connections.pop(key, None)
        if c is None:
            return []
        out: list[Exchange] = []
        if len(event.data) >= 16:
            ends = {Direction.WRITE: int.from_bytes(event.data[0:8], "little"),
                    Direction.READ: int.from_bytes(event.data[8:16], "little")}
            for direction, end in ends.items():
                if end > c.offsets[direction]:
                    gap = end - c.offsets[direction]
                    self.lost_bytes += gap
                    out += c.parser.lost(direction, gap, event.ts_ns)
        for x in c.parser.close(event.ts_ns):
            if not x.complete and not x.lost_bytes and sse_stream_finished(x):
                # The client read the stream's last event and hung up without reading the
                # chunked terminator, as the openai and anthropic SDKs do: not an error.
                x.error = None
            out.append(x)
        return self._observed(c, out)

    def _exit(self, event: Event) -> list[Observed]:
        out: list[Observed] = []
        for key in [k for k in self._connections if k[0] == event.pid]:
            out += self._finish(self._connections.pop(key), event.ts_ns,
                                "the process exited before the exchange was complete")
        self._ignored.pop(event.pid, None)
        return out

    def _finish(self, c: _Connection, ts_ns: int, reason: str) -> list[Observed]:
        """The connection ends without an SSL_free: what is still in flight was cut short by `reason`."""
        exchanges = c.parser.close(ts_ns)
        for x in exchanges:
            if not x.complete:
                x.error = reason
        return self._observed(c, exchanges)

    def _observed(self, c: _Connection, exchanges: list[Exchange]) -> list[Observed]:
        out = []
        for x in exchanges:
            if not x.accepted:
                self.dropped_exchanges["not_llm"] += 1
                continue
            out.append(Observed(x, c.process, c.tid))
        return out


# The events that end a provider's SSE stream: OpenAI chat completions, OpenAI Responses, Anthropic.
_SSE_LAST_EVENTS = (b"data: [DONE]", b"event: response.completed", b"event: response.incomplete",
                    b"event: response.failed", b"event: message_stop", b"event: error")


def sse_stream_finished(x: Exchange) -> bool:
    """The response is an SSE stream whose last complete event is one that ends the stream."""
    if not any(name == "content-type" and "text/event-stream" in value for name, value in x.response_headers):
        return False
    body = x.response_body.rstrip(b"\r\n")
    last = body.rsplit(b"\n\n", 1)[-1].lstrip(b"\r\n")
    return x.response_body.endswith((b"\n\n", b"\r\n\r\n")) and last.startswith(_SSE_LAST_EVENTS)


def read_process_info(pid: int, comm: str = "", exe: str = "") -> ProcessInfo:
    """What /proc says of a process now; `comm` and `exe` stand in for a process already gone."""
    if not exe:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = ""
    cgroup = ""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            # cgroup v2: "0::/path"; v1: the first hierarchy is as good as any.
            lines = f.read().splitlines()
            cgroup = next((l.split(":", 2)[2] for l in lines if l.startswith("0::")),
                          lines[0].split(":", 2)[2] if lines else "")
    except (OSError, IndexError):
        pass
    return ProcessInfo(pid, exe, comm, cgroup)
