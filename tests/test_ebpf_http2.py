"""HTTP/2 reassembly of captured TLS plaintext.

The wire bytes come from real, independent peers: an h2 client and an h2 server
(H2Connection client_side=True/False) talking to each other — or, for frame
flags h2 never sends (PADDED and PRIORITY HEADERS), frames written with
hyperframe and an hpack Encoder. They are fed to HttpConnectionParser in the
order they were sent, cut into pieces anywhere; the exchanges must come out the
same however the bytes were cut.
"""

from __future__ import annotations

import dataclasses
import gzip
import random

import hpack
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import DataReceived
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, SettingsFrame
from hypothesis import given, settings, strategies as st

from llmtap.receiver.ebpf.exchange import Direction, Exchange
from llmtap.receiver.ebpf.http import HttpConnectionParser
from llmtap.receiver.ebpf.http2 import CLIENT_PREFACE

W, R = Direction.WRITE, Direction.READ
AUTHORITY = "api.anthropic.com"
MESSAGES = b'{"model":"claude-sonnet-4","max_tokens":64,"messages":[{"role":"user","content":"Hi"}],"stream":true}'
SECRET = "sk-ant-api03-TOPSECRET0123456789"
SDK_HEADERS = [("content-type", "application/json"), ("user-agent", "Anthropic/Python 0.40.0"),
               ("anthropic-version", "2023-06-01"), ("x-stainless-lang", "python"), ("x-stainless-os", "Linux")]


# --- a real client and server, and feeding what they said to the parser ------------------

class Peers:
    """An h2 client and an h2 server talking; every byte either sends is recorded, in order.
    Each side acknowledges the data it receives, so flow control never stalls."""

    def __init__(self):
        self.client = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.server = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.segments: list[tuple[Direction, bytes]] = []
        self.client.initiate_connection()
        self.client_flush()
        self.server.initiate_connection()
        self.server_flush()
        self.client_flush()      # SETTINGS ACK
        self.server_flush()

    def client_flush(self) -> None:
        data = self.client.data_to_send()
        if data:
            self.segments.append((W, data))
            _acknowledge(self.server, self.server.receive_data(data))

    def server_flush(self) -> None:
        data = self.server.data_to_send()
        if data:
            self.segments.append((R, data))
            _acknowledge(self.client, self.client.receive_data(data))

    def request(self, path="/v1/messages", body=MESSAGES, headers=SDK_HEADERS, method="POST", end=True) -> int:
        stream_id = self.client.get_next_available_stream_id()
        self.client.send_headers(stream_id, [(":method", method), (":path", path), (":authority", AUTHORITY),
                                             (":scheme", "https"), *headers], end_stream=end and not body)
        self.client_flush()
        if body:
            self.send_body(self.client, stream_id, body, end)
        return stream_id

    def respond(self, stream_id, status=200, headers=(("content-type", "text/event-stream"),), chunks=(),
                end=True) -> None:
        self.server.send_headers(stream_id, [(":status", str(status)), *headers], end_stream=end and not chunks)
        self.server_flush()
        for i, chunk in enumerate(chunks):
            self.send_body(self.server, stream_id, chunk, end and i == len(chunks) - 1)

    def send_body(self, conn: H2Connection, stream_id: int, data: bytes, end: bool) -> None:
        """Sends `data` in frames as large as the peer allows, each flush one captured piece."""
        flush, peer_flush = ((self.client_flush, self.server_flush) if conn is self.client
                             else (self.server_flush, self.client_flush))
        while True:
            size = min(len(data), conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if size == 0 and data:
                peer_flush()        # the peer's WINDOW_UPDATE
                continue
            conn.send_data(stream_id, data[:size], end_stream=end and size == len(data))
            flush()
            data = data[size:]
            if not data:
                return


def _acknowledge(conn: H2Connection, events) -> None:
    for event in events:
        if isinstance(event, DataReceived):
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)


def feed(segments, cuts=(), parser=None, close_at=None) -> list[Exchange]:
    """Feed the segments cut at the given offsets of the whole transcript; piece k of
    segment n gets ts 1000 * (n + 1) + k. Closes the connection after the last one."""
    parser = parser if parser is not None else HttpConnectionParser()
    exchanges: list[Exchange] = []
    offset = 0
    for n, (direction, data) in enumerate(segments):
        inner = sorted({c - offset for c in cuts if 0 < c - offset < len(data)})
        for k, (a, b) in enumerate(zip([0, *inner], [*inner, len(data)])):
            exchanges += parser.feed(direction, data[a:b], 1000 * (n + 1) + k)
        offset += len(data)
    exchanges += parser.close(close_at if close_at is not None else 1000 * (len(segments) + 1))
    return exchanges


def untimed(exchanges: list[Exchange]) -> list[Exchange]:
    """The exchanges without what depends on how the bytes were cut (checking the read offsets first),
    in stream order (streams that end in the same piece may come out in either order)."""
    for x in exchanges:
        offsets = [end for _, end in x.response_reads]
        assert offsets == sorted(set(offsets))
        assert offsets[-1:] == ([x.response_body_size] if x.response_body_size else [])
    return sorted((dataclasses.replace(x, start_ns=0, end_ns=0, response_reads=[]) for x in exchanges),
                  key=lambda x: x.stream_id)


def total_length(segments) -> int:
    return sum(len(data) for _, data in segments)


def sse(stream_id: int, n: int) -> list[bytes]:
    return [b'event: content_block_delta\ndata: {"stream":%d,"text":"tok%d"}\n\n' % (stream_id, i) for i in range(n)]


# --- one exchange, field by field ---------------------------------------------------------

def test_a_post_and_its_streamed_answer_become_one_exchange_field_by_field():
    peers = Peers()
    stream_id = peers.request(headers=[*SDK_HEADERS, ("x-api-key", SECRET)])
    events = sse(stream_id, 3)
    peers.respond(stream_id, headers=[("content-type", "text/event-stream"), ("request-id", "req_1"),
                                      ("via", "1.1 google")], chunks=events)
    (x,) = feed(peers.segments)
    request_at = 1000 * (len(peers.segments) - 5)         # HEADERS; then DATA, response HEADERS, 3 DATA
    assert x == Exchange(
        protocol="2", method="POST", target="/v1/messages", authority=AUTHORITY, scheme="https", stream_id=1,
        request_headers=SDK_HEADERS, request_body=MESSAGES, request_body_size=len(MESSAGES),
        status=200, response_headers=[("content-type", "text/event-stream"), ("request-id", "req_1")],
        response_body=b"".join(events), response_body_size=len(b"".join(events)),
        response_reads=[(request_at + 3000, len(events[0])), (request_at + 4000, len(events[0] + events[1])),
                        (request_at + 5000, len(b"".join(events)))],
        start_ns=request_at, end_ns=request_at + 5000, complete=True, user_agent="Anthropic/Python 0.40.0")


# --- concurrency, HPACK, cut anywhere --------------------------------------------------------

def concurrent_conversation(streams: int, events_per_stream: int) -> tuple[list, dict[int, list[bytes]]]:
    """`streams` requests in flight at once, answered with DATA frames interleaved round-robin."""
    peers = Peers()
    ids = [peers.request(path=f"/v1/messages?n={n}", body=MESSAGES + b" " * n) for n in range(streams)]
    answers = {stream_id: sse(stream_id, events_per_stream) for stream_id in ids}
    for stream_id in ids:
        peers.server.send_headers(stream_id, [(":status", "200"), ("content-type", "text/event-stream"),
                                              ("request-id", f"req_{stream_id}")])
    peers.server_flush()
    for i in range(events_per_stream):
        for stream_id in ids:
            peers.server.send_data(stream_id, answers[stream_id][i], end_stream=i == events_per_stream - 1)
            peers.server_flush()
    return peers.segments, answers


def test_twenty_concurrent_streams_with_interleaved_data_frames():
    segments, answers = concurrent_conversation(20, 5)
    exchanges = feed(segments)
    assert sorted(x.stream_id for x in exchanges) == sorted(answers)
    for x in exchanges:
        n = int(x.target.split("=")[1])
        assert x.request_body == MESSAGES + b" " * n
        assert x.response_body == b"".join(answers[x.stream_id])
        assert ("request-id", f"req_{x.stream_id}") in x.response_headers
        assert x.request_headers == SDK_HEADERS and x.complete
        assert len(x.response_reads) == 5      # one DATA frame per READ piece


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_twenty_concurrent_streams_are_the_same_however_the_bytes_are_cut(data):
    segments, _ = concurrent_conversation(20, 3)
    cuts = data.draw(st.sets(st.integers(1, total_length(segments) - 1), max_size=60))
    assert untimed(feed(segments, cuts)) == untimed(feed(segments))


def test_three_streams_are_the_same_wherever_one_cut_falls():
    segments, _ = concurrent_conversation(3, 2)
    expected = untimed(feed(segments))
    assert len(expected) == 3 and all(x.complete for x in expected)
    for cut in range(1, total_length(segments)):
        assert untimed(feed(segments, {cut})) == expected, f"cut at {cut}"


def test_the_hpack_dynamic_table_carries_over_from_request_to_request():
    peers = Peers()
    sizes = []
    for n in range(3):
        before = len(peers.segments)
        stream_id = peers.request(body=b"", method="GET", path="/v1/models")
        sizes.append(len(peers.segments[before][1]))
        peers.respond(stream_id, headers=[("content-type", "application/json"), ("request-id", "req_same")],
                      chunks=[b"{}"])
    assert sizes[1] < sizes[0] / 2          # the second request's headers were mostly table references
    exchanges = feed(peers.segments)
    assert [x.request_headers for x in exchanges] == [SDK_HEADERS] * 3
    assert [x.response_headers for x in exchanges] == [[("content-type", "application/json"),
                                                        ("request-id", "req_same")]] * 3


def test_a_server_push_promise_is_decoded_to_keep_hpack_in_step_but_is_no_exchange():
    peers = Peers()
    stream_id = peers.request(body=b"", method="GET", path="/")
    peers.server.push_stream(stream_id, 2, [(":method", "GET"), (":path", "/pushed"), (":authority", AUTHORITY),
                                            (":scheme", "https"), ("x-request-id", "pushed-and-indexed")])
    peers.server.send_headers(2, [(":status", "200"), ("x-request-id", "pushed-and-indexed")], end_stream=True)
    peers.server.send_headers(stream_id, [(":status", "200"), ("x-request-id", "pushed-and-indexed")],
                              end_stream=True)
    peers.server_flush()
    (x,) = feed(peers.segments)
    assert x.stream_id == 1 and x.response_headers == [("x-request-id", "pushed-and-indexed")] and x.complete


def test_headers_too_big_for_one_frame_come_in_continuation_frames():
    peers = Peers()
    beta = ",".join(f"feature-{i}-2025-01-01" for i in range(1500))      # ~36 KB: HEADERS + CONTINUATION
    stream_id = peers.request(headers=[*SDK_HEADERS, ("anthropic-beta", beta)])
    peers.respond(stream_id, chunks=[b"ok"])
    (x,) = feed(peers.segments)
    assert ("anthropic-beta", beta) in x.request_headers and x.complete


# --- frames written by hand: PADDED, PRIORITY, CONTINUATION, trailers --------------------------

def hand_written_exchange() -> list[tuple[Direction, bytes]]:
    client, server = hpack.Encoder(), hpack.Encoder()
    request = client.encode([(":method", "POST"), (":scheme", "https"), (":authority", AUTHORITY),
                             (":path", "/v1/messages"), *SDK_HEADERS])
    headers = HeadersFrame(1, data=request[:20], flags=["PADDED", "PRIORITY"], pad_length=7, depends_on=0,
                           stream_weight=200, exclusive=True)
    continuation = ContinuationFrame(1, data=request[20:], flags=["END_HEADERS"])
    body = DataFrame(1, data=MESSAGES, flags=["PADDED"], pad_length=30)
    trailers = HeadersFrame(1, data=client.encode([("x-checksum", "abc")]), flags=["END_HEADERS", "END_STREAM"])
    response = HeadersFrame(1, data=server.encode([(":status", "200"), ("content-type", "application/json")]),
                            flags=["END_HEADERS", "PADDED"], pad_length=3)
    answer = DataFrame(1, data=b'{"ok":true}', flags=["PADDED"], pad_length=100)
    response_trailers = HeadersFrame(1, data=server.encode([("x-usage", "12")]), flags=["END_HEADERS", "END_STREAM"])
    return [(W, CLIENT_PREFACE + SettingsFrame(0).serialize()), (R, SettingsFrame(0).serialize()),
            (W, headers.serialize() + continuation.serialize()), (W, body.serialize()), (W, trailers.serialize()),
            (R, response.serialize()), (R, answer.serialize()), (R, response_trailers.serialize())]


def test_padded_and_priority_frames_continuation_and_trailers():
    segments = hand_written_exchange()
    (x,) = feed(segments)
    assert (x.method, x.target, x.request_body, x.status, x.response_body) == (
        "POST", "/v1/messages", MESSAGES, 200, b'{"ok":true}')
    assert x.request_headers == SDK_HEADERS and x.response_headers == [("content-type", "application/json")]
    assert (x.request_body_size, x.response_body_size) == (len(MESSAGES), 11)     # padding is not body
    assert x.complete
    expected = untimed([x])
    for cut in range(1, total_length(segments)):
        assert untimed(feed(segments, {cut})) == expected, f"cut at {cut}"


# --- the order of events ----------------------------------------------------------------------

def test_a_response_may_start_and_end_before_the_request_has_ended():
    peers = Peers()
    stream_id = peers.request(body=MESSAGES[:10], end=False)
    peers.respond(stream_id, chunks=[b"early ", b"answer"])
    peers.send_body(peers.client, stream_id, MESSAGES[10:], end=True)
    parser = HttpConnectionParser()
    exchanges = [x for n, segment in enumerate(peers.segments) for x in parser.feed(*segment, n)]
    (x,) = exchanges
    assert (x.request_body, x.response_body, x.complete) == (MESSAGES, b"early answer", True)
    assert x.end_ns == len(peers.segments) - 2      # the response's last byte, not the request's


def test_informational_responses_are_skipped():
    peers = Peers()
    stream_id = peers.request()
    peers.server.send_headers(stream_id, [(":status", "103"), ("link", "</style.css>; rel=preload")])
    peers.server_flush()
    peers.respond(stream_id, status=201, headers=[("content-type", "application/json")], chunks=[b"{}"])
    (x,) = feed(peers.segments)
    assert (x.status, x.response_headers, x.response_body, x.complete) == (
        201, [("content-type", "application/json")], b"{}", True)


def test_a_stream_reset_returns_its_exchange_with_the_error_and_others_go_on():
    peers = Peers()
    cancelled = peers.request()
    other = peers.request()
    peers.respond(cancelled, chunks=[b"data: partial\n\n"], end=False)
    peers.client.reset_stream(cancelled, ErrorCodes.CANCEL)
    peers.client_flush()
    peers.respond(other, chunks=[b"data: whole\n\n"])
    reset, finished = feed(peers.segments)
    assert (reset.stream_id, reset.error, reset.complete) == (cancelled, "HTTP/2 stream reset (CANCEL)", False)
    assert reset.response_body == b"data: partial\n\n" and reset.status == 200
    assert (finished.stream_id, finished.response_body, finished.complete) == (other, b"data: whole\n\n", True)


def test_goaway_ends_the_streams_the_server_did_not_process():
    peers = Peers()
    served = peers.request()
    refused = peers.request()
    peers.respond(served, chunks=[b"ok"])
    peers.server.close_connection(error_code=ErrorCodes.NO_ERROR, last_stream_id=served)
    peers.server_flush()
    done, dropped = feed(peers.segments)
    assert (done.stream_id, done.complete) == (served, True)
    assert dropped.stream_id == refused and not dropped.complete
    assert dropped.error == "HTTP/2 GOAWAY (NO_ERROR): the server did not process the stream"


def test_close_mid_stream_returns_the_partial_exchange_with_an_error():
    peers = Peers()
    stream_id = peers.request()
    peers.respond(stream_id, chunks=[b"data: one\n\n"], end=False)
    (x,) = feed(peers.segments, close_at=99_999)
    assert (x.complete, x.error, x.end_ns) == (False, "connection closed before the response was complete", 99_999)
    assert x.response_body == b"data: one\n\n" and x.request_body == MESSAGES


def test_lost_bytes_end_every_stream_in_flight_and_parsing_stops():
    peers = Peers()
    first, second = peers.request(), peers.request()
    peers.respond(first, chunks=[b"data: one\n\n"], end=False)
    parser = HttpConnectionParser()
    assert [x for n, s in enumerate(peers.segments) for x in parser.feed(*s, n)] == []
    lost = parser.lost(R, 123, 500)
    assert sorted(x.stream_id for x in lost) == [first, second]
    assert all(x.lost_bytes == 123 and x.error == "capture lost 123 bytes of the read stream" for x in lost)
    later = DataFrame(first, data=b"data: two\n\n", flags=["END_STREAM"]).serialize()
    assert parser.feed(R, later, 501) == [] and parser.ignored_bytes == len(later)
    assert parser.close(502) == []


def test_garbage_frames_are_a_protocol_error_for_every_stream_in_flight():
    peers = Peers()
    stream_id = peers.request()
    parser = HttpConnectionParser()
    for n, segment in enumerate(peers.segments):
        parser.feed(*segment, n)
    bad = DataFrame(stream_id, data=b"x").serialize()[:3] + b"\x00\x01\x00\x00\x00\x00"   # DATA on stream 0
    (x,) = parser.feed(R, bad + b"x", 100)
    assert x.error.startswith("protocol error: ") and not x.complete
    assert parser.feed(R, b"more", 101) == [] and parser.ignored_bytes >= 4


def test_a_continuation_flood_is_cut_off_as_a_protocol_error():
    peers = Peers()
    peers.request(end=False)
    parser = HttpConnectionParser()
    for n, segment in enumerate(peers.segments):
        parser.feed(*segment, n)
    exchanges = parser.feed(W, HeadersFrame(3, data=b"\x82").serialize(), 100)     # no END_HEADERS
    continuation = ContinuationFrame(3, data=b"a" * 1000).serialize()
    for n in range(300):
        exchanges += parser.feed(W, continuation, 101 + n)
    (x,) = exchanges
    assert x.stream_id == 1 and x.error == "protocol error: header block on stream 3 over 262144 bytes"


@settings(max_examples=80, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.sampled_from([W, R]))
def test_any_bytes_after_the_preface_never_raise(junk, direction):
    peers = Peers()
    peers.request(end=False)
    parser = HttpConnectionParser()
    for n, segment in enumerate(peers.segments):
        parser.feed(*segment, n)
    exchanges = parser.feed(direction, junk, 100) + parser.close(101)
    assert len(exchanges) <= 1


# --- sizes, encodings, timing -------------------------------------------------------------------

def test_a_large_response_with_flow_control_and_a_gzip_body():
    download = random.Random(3).randbytes(300_000)
    encoded = gzip.compress(download)
    peers = Peers()
    stream_id = peers.request()
    peers.respond(stream_id, headers=[("content-encoding", "gzip")], chunks=[encoded])
    (x,) = feed(peers.segments)
    assert x.response_body == download and x.response_body_size == len(encoded)
    assert len(x.response_reads) == -(-len(encoded) // 16384) and x.complete
    assert ("content-encoding", "gzip") in x.response_headers


def test_bodies_over_max_body_bytes_are_cut_but_fully_counted():
    peers = Peers()
    stream_id = peers.request(body=b"q" * 5000)
    peers.respond(stream_id, chunks=[b"a" * 7000])
    (x,) = feed(peers.segments, parser=HttpConnectionParser(max_body_bytes=1000))
    assert (x.request_body, x.request_body_size, x.request_truncated) == (b"q" * 1000, 5000, True)
    assert (x.response_body, x.response_body_size, x.response_truncated) == (b"a" * 1000, 7000, True)


def test_invalid_utf8_bodies_are_kept_as_bytes():
    junk = b"\xff\xfe\x00\xc3(\x80"
    peers = Peers()
    stream_id = peers.request(body=junk)
    peers.respond(stream_id, chunks=[junk])
    (x,) = feed(peers.segments)
    assert x.request_body == junk and x.response_body == junk


# --- what a connection is, secrets, the accept filter ---------------------------------------------

def test_the_preface_one_byte_at_a_time_makes_an_http2_client():
    peers = Peers()
    stream_id = peers.request()
    peers.respond(stream_id, chunks=[b"ok"])
    wire_preface = peers.segments[0][1]
    parser = HttpConnectionParser()
    for i in range(len(CLIENT_PREFACE)):
        parser.feed(W, wire_preface[i:i + 1], i)
        assert parser.role == ("client" if i == len(CLIENT_PREFACE) - 1 else "unknown")
    assert parser.protocol == "2"
    exchanges = parser.feed(W, wire_preface[len(CLIENT_PREFACE):], 100)
    exchanges += [x for n, segment in enumerate(peers.segments[1:]) for x in parser.feed(*segment, 200 + n)]
    assert [x.response_body for x in exchanges] == [b"ok"]


def test_server_settings_seen_before_the_client_preface_are_kept():
    peers = Peers()
    stream_id = peers.request()
    peers.respond(stream_id, chunks=[b"ok"])
    (preface_write, settings_read), rest = peers.segments[:2], peers.segments[2:]
    (x,) = feed([settings_read, preface_write, *rest])
    assert x.response_body == b"ok" and x.complete


def test_a_process_that_reads_the_preface_is_a_tls_server():
    peers = Peers()
    parser = HttpConnectionParser()
    assert parser.feed(R, peers.segments[0][1], 1) == []
    assert parser.role == "server"
    assert parser.feed(W, peers.segments[1][1], 2) == []
    assert parser.ignored_bytes == len(peers.segments[0][1]) + len(peers.segments[1][1])


def test_secret_headers_never_leave_the_parser_even_when_allowed_and_hpack_indexed():
    peers = Peers()
    for _ in range(2):      # the second time the secrets are dynamic table references
        stream_id = peers.request(path=f"/v1beta/models/g:generateContent?key={SECRET}", headers=[
            *SDK_HEADERS, ("authorization", f"Bearer {SECRET}"), ("x-api-key", SECRET),
            ("x-goog-api-key", SECRET), ("cookie", f"session={SECRET}")])
        peers.respond(stream_id, headers=[("set-cookie", f"id={SECRET}"), ("x-upstream-token", SECRET)],
                      chunks=[b"{}"])
    parser = HttpConnectionParser(request_headers=["*", "x-api-key"], response_headers=["*", "set-cookie"])
    exchanges = feed(peers.segments, parser=parser)
    assert len(exchanges) == 2
    for x in exchanges:
        assert SECRET not in repr(x)
        assert x.target == "/v1beta/models/g:generateContent?key=REDACTED"
        assert x.request_headers == SDK_HEADERS and x.response_headers == []


def test_a_refused_exchange_keeps_hpack_and_framing_but_stores_no_body():
    peers = Peers()
    telemetry = peers.request(path="/telemetry", body=b"t" * 400)
    chat = peers.request()
    peers.respond(telemetry, chunks=[b"r" * 300])
    peers.respond(chat, chunks=[b"data: hi\n\n"])
    refused, kept = feed(peers.segments, parser=HttpConnectionParser(accept=lambda x: x.target == "/v1/messages"))
    assert (refused.accepted, refused.request_body, refused.response_body) == (False, b"", b"")
    assert (refused.request_body_size, refused.response_body_size, refused.complete) == (400, 300, True)
    assert (kept.accepted, kept.response_body, kept.request_headers) == (True, b"data: hi\n\n", SDK_HEADERS)


@pytest.mark.parametrize("cut", [1, 9, 24, 33])
def test_a_request_headers_frame_split_anywhere_still_times_the_request_from_its_first_byte(cut):
    peers = Peers()
    start = len(peers.segments)
    stream_id = peers.request(body=b"")
    peers.respond(stream_id, chunks=[b"ok"])
    parser = HttpConnectionParser()
    for n, segment in enumerate(peers.segments[:start]):
        parser.feed(*segment, n)
    headers_frame = peers.segments[start][1]
    parser.feed(W, headers_frame[:cut], 700)
    parser.feed(W, headers_frame[cut:], 800)
    (x,) = [x for n, segment in enumerate(peers.segments[start + 1:]) for x in parser.feed(*segment, 900 + n)]
    assert x.start_ns == 700
