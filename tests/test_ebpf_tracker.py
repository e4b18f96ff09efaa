"""ConnectionTracker: kernel events in, finished exchanges out — with no kernel.

Events are what the probes would send (events.Event); the byte streams are real
HTTP/1.1 made by h11 as the peer would write them. The process lookup is
replaced by a table, since the pids are made up.
"""

from __future__ import annotations

import h11
import pytest

from llmtap.receiver.ebpf import events
from llmtap.receiver.ebpf.endpoints import EndpointMatcher, EndpointRule, default_rules
from llmtap.receiver.ebpf.events import Event, Kind
from llmtap.receiver.ebpf.http import HttpConnectionParser
from llmtap.receiver.ebpf.tracker import ConnectionTracker, ProcessInfo, sse_stream_finished

PID, CONN = 4242, 0x7F00DEADBEEF


def request(body: bytes = b'{"model":"gpt-4o","messages":[]}', host: str = "api.openai.com",
            path: str = "/v1/chat/completions") -> bytes:
    c = h11.Connection(h11.CLIENT)
    head = h11.Request(method="POST", target=path, headers=[("Host", host), ("Content-Length", str(len(body))),
                                                              ("Authorization", "Bearer sk-SECRET")])
    return c.send(head) + c.send(h11.Data(data=body)) + c.send(h11.EndOfMessage())


def response(body: bytes = b'{"ok":true}', content_type: str = "application/json") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type.encode() + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


class Stream:
    """Makes the events of one connection, keeping each direction's offset as the kernel does."""

    def __init__(self, pid: int = PID, conn: int = CONN):
        self.pid, self.conn, self.offsets, self.ts = pid, conn, {0: 0, 1: 0}, 1_000

    def data(self, direction: int, payload: bytes, skip: int = 0) -> Event:
        self.offsets[direction] += skip
        ev = Event(Kind.TLS_DATA, self.pid, self.pid + 1, direction, self.conn, self.ts,
                   self.offsets[direction], len(payload), "agent", payload)
        self.offsets[direction] += len(payload)
        self.ts += 1_000
        return ev

    def write(self, payload: bytes, skip: int = 0) -> Event:
        return self.data(events.DIR_WRITE, payload, skip)

    def read(self, payload: bytes, skip: int = 0) -> Event:
        return self.data(events.DIR_READ, payload, skip)

    def free(self, extra_write: int = 0, extra_read: int = 0) -> Event:
        ends = (self.offsets[0] + extra_write).to_bytes(8, "little") + (self.offsets[1] + extra_read).to_bytes(8, "little")
        return Event(Kind.TLS_FREE, self.pid, self.pid, 0, self.conn, self.ts, 0, 0, "agent", ends)

    def exit(self) -> Event:
        return Event(Kind.PROC_EXIT, self.pid, self.pid, 0, 0, self.ts, 0, 0, "agent", b"")


@pytest.fixture
def ignored():
    return []


@pytest.fixture
def tracker(ignored):
    return make_tracker(ignored)


def make_tracker(ignored, rules=None, wanted=lambda p: True):
    return ConnectionTracker(lambda accept: HttpConnectionParser(accept=accept),
                             EndpointMatcher(rules or default_rules()), process_wanted=wanted,
                             ignore=lambda pid, conn: ignored.append((pid, conn)),
                             process_info=lambda pid, comm="", exe="": ProcessInfo(pid, exe or "/usr/bin/agent", comm))


def feed(tracker, *evs):
    out = []
    for ev in evs:
        out += tracker.handle(ev)
    return out


def test_an_exchange_comes_out_with_its_process_and_thread(tracker):
    s = Stream()
    (o,) = feed(tracker, s.write(request()), s.read(response()))
    assert o.exchange.complete and o.exchange.status == 200
    assert o.exchange.authority == "api.openai.com"
    assert o.process.pid == PID and o.process.executable_name == "agent"
    assert o.tid == PID + 1
    assert "sk-SECRET" not in repr(o)


def test_a_gap_in_the_stream_offsets_is_lost_bytes_on_the_exchange(tracker):
    s = Stream()
    body = b"x" * 3000
    resp = response(body)
    head, rest = resp[:200], resp[200:]
    (o,) = feed(tracker, s.write(request()), s.read(head), s.read(rest[500:], skip=500), s.free())
    assert o.exchange.lost_bytes == 500 and not o.exchange.complete
    assert "lost 500 bytes" in o.exchange.error
    assert tracker.lost_bytes == 500


def test_bytes_lost_at_the_end_of_a_stream_show_in_the_final_offsets_of_ssl_free(tracker):
    s = Stream()
    resp = response(b"y" * 1000)
    assert feed(tracker, s.write(request()), s.read(resp[:-100])) == []
    (o,) = feed(tracker, s.free(extra_read=100))
    assert o.exchange.lost_bytes == 100 and o.exchange.error
    assert tracker.open_connections == 0


def test_a_process_exit_ends_its_connections_with_an_error(tracker):
    s = Stream()
    resp = response(b"z" * 1000)
    feed(tracker, s.write(request()), s.read(resp[:300]))
    (o,) = feed(tracker, s.exit())
    assert not o.exchange.complete
    assert o.exchange.error == "the process exited before the exchange was complete"
    assert o.exchange.response_body == resp[resp.index(b"\r\n\r\n") + 4:300]


def test_a_reused_ssl_pointer_starts_a_new_connection(tracker):
    first, second = Stream(), Stream()
    feed(tracker, first.write(request()), first.read(response()))
    # The SSL* came back from the allocator without an SSL_free we saw: offsets restart at 0.
    (o,) = feed(tracker, second.write(request(b'{"second":1}')), second.read(response()))
    assert o.exchange.request_body == b'{"second":1}'


def test_a_host_no_rule_names_rules_the_connection_out_in_the_kernel(tracker, ignored):
    s = Stream()
    assert feed(tracker, s.write(request(host="example.com")), s.read(response())) == []
    assert ignored == [(PID, CONN)]
    assert feed(tracker, s.write(request(host="example.com"))) == []
    assert tracker.ignored_bytes["ruled_out"] > 0


def test_a_path_no_rule_allows_is_dropped_and_counted_but_the_connection_kept(ignored):
    tracker = make_tracker(ignored, [EndpointRule("localhost", "/v1/*")])
    s = Stream()
    assert feed(tracker, s.write(request(host="localhost:8443", path="/healthz")), s.read(response())) == []
    assert tracker.dropped_exchanges["not_llm"] == 1 and ignored == []
    (o,) = feed(tracker, s.write(request(host="localhost:8443")), s.read(response()))
    assert o.exchange.target == "/v1/chat/completions"


def test_a_tls_server_process_is_ruled_out(tracker, ignored):
    s = Stream()
    feed(tracker, s.read(request()), s.write(response()))
    assert ignored == [(PID, CONN)]


def test_a_filtered_process_is_ruled_out_before_parsing(ignored):
    tracker = make_tracker(ignored, wanted=lambda p: p.pid != PID)
    s = Stream()
    assert feed(tracker, s.write(request()), s.read(response())) == []
    assert ignored == [(PID, CONN)]
    assert tracker.ignored_bytes["process_filtered"] > 0


def test_a_connection_s_process_is_asked_once_and_its_llm_requests_are_told(ignored):
    asked, llm_requests = [], []

    def process_info(pid, comm=""):
        asked.append(pid)
        return ProcessInfo(pid, "/usr/bin/node", comm)

    tracker = ConnectionTracker(lambda accept: HttpConnectionParser(accept=accept),
                                EndpointMatcher([EndpointRule("localhost", "/v1/*")]),
                                process_info=process_info, llm_request=llm_requests.append)
    s = Stream()
    first, second = feed(tracker, s.write(request(host="localhost")), s.read(response()),
                         s.write(request(host="localhost", path="/healthz")), s.read(response()),
                         s.write(request(host="localhost")), s.read(response()))
    assert first.process.executable_name == second.process.executable_name == "node"
    assert asked == [PID]
    assert llm_requests == [PID, PID]  # the /healthz request is no LLM request


def test_an_sdk_hanging_up_after_the_last_sse_event_is_not_an_error(tracker):
    stream = b'data: {"choices":[]}\n\ndata: [DONE]\n\n'
    chunked = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
               + f"{len(stream):x}\r\n".encode() + stream + b"\r\n")
    s = Stream()
    (o,) = feed(tracker, s.write(request()), s.read(chunked), s.free())
    assert not o.exchange.complete and o.exchange.error is None
    assert sse_stream_finished(o.exchange)


def test_a_stream_cut_before_its_last_event_stays_an_error(tracker):
    stream = b'data: {"choices":[]}\n\n'
    chunked = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
               + f"{len(stream):x}\r\n".encode() + stream + b"\r\n")
    s = Stream()
    (o,) = feed(tracker, s.write(request()), s.read(chunked), s.free())
    assert o.exchange.error == "connection closed before the response was complete"


def test_events_round_trip_and_bad_records_are_refused():
    ev = Event(Kind.TLS_DATA, 1, 2, events.DIR_READ, 3, 4, 5, 6, "curl", b"hello")
    assert events.decode(events.encode(ev)) == ev
    with pytest.raises(ValueError, match="shorter than"):
        events.decode(b"\0" * 10)
    with pytest.raises(ValueError, match="data bytes"):
        events.decode(events.encode(ev)[:-2])


def test_close_all_reports_what_is_in_flight(tracker):
    s = Stream()
    feed(tracker, s.write(request()))
    (o,) = tracker.close_all(10**9)
    assert o.exchange.error == "llmtap stopped while the exchange was in flight"
