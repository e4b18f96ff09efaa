"""HTTP/1.1 reassembly of captured TLS plaintext (and how HttpConnectionParser tells
what a connection is).

The wire bytes come from real, independent peers — an h11 client and an h11
server talking to each other, real gzip/brotli/zstd encoders — or are written out
by hand where a peer cannot produce them (an HTTP/1.0 server, garbage). They are
fed to the parser the way the eBPF probes deliver them: the WRITE (request) and
READ (response) streams in the order they happened, cut into pieces anywhere.
The exchanges must come out the same however the bytes were cut.
"""

from __future__ import annotations

import dataclasses
import gzip
import random
import zlib

import brotli
import h11
import pytest
import zstandard
from hypothesis import given, settings, strategies as st

from llmtap.receiver.ebpf.exchange import Direction, Exchange
from llmtap.receiver.ebpf.http import HttpConnectionParser

W, R = Direction.WRITE, Direction.READ
HOST = "api.openai.com"
CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"stream":true}'
ANSWER = b'{"id":"chatcmpl-1","choices":[{"message":{"role":"assistant","content":"Hi!"}}]}'
SECRET = "sk-proj-TOPSECRET0123456789"


# --- a real client and server, and feeding what they said to the parser ------------------

class Peers:
    """An h11 client and an h11 server talking; every byte either sends is recorded, in order."""

    def __init__(self):
        self.client = h11.Connection(h11.CLIENT)
        self.server = h11.Connection(h11.SERVER)
        self.segments: list[tuple[Direction, bytes]] = []

    def client_sends(self, *events) -> None:
        data = b"".join(self.client.send(event) for event in events)
        if data:    # (receiving b"" would mean the connection closed)
            self.server.receive_data(data)
            _drain(self.server)
            self.segments.append((W, data))

    def server_sends(self, *events) -> None:
        data = b"".join(self.server.send(event) for event in events)
        if data:
            self.client.receive_data(data)
            _drain(self.client)
            self.segments.append((R, data))

    def exchange(self, method="POST", target="/v1/chat/completions", headers=(), body=b"",
                 status=200, response_headers=(), response_body=b"", response_chunks=None) -> None:
        """One whole exchange; `response_chunks` sends the response body in several READ pieces."""
        request_headers = [("host", HOST), ("user-agent", "OpenAI/Python 1.54.0"), *headers]
        if body and not any(name in ("content-length", "transfer-encoding") for name, _ in headers):
            request_headers.append(("content-length", str(len(body))))
        self.client_sends(h11.Request(method=method, target=target, headers=request_headers),
                          *([h11.Data(data=body)] if body else []), h11.EndOfMessage())
        chunks = response_chunks if response_chunks is not None else [response_body]
        self.server_sends(h11.Response(status_code=status, headers=list(response_headers)))
        for chunk in chunks:
            if chunk:
                self.server_sends(h11.Data(data=chunk))
        self.server_sends(h11.EndOfMessage())
        if self.client.states == {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
            self.client.start_next_cycle()
            self.server.start_next_cycle()


def _drain(conn: h11.Connection) -> None:
    while conn.next_event() not in (h11.NEED_DATA, h11.PAUSED):
        pass


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
    """The exchanges without what depends on how the bytes were cut (checking the read offsets first)."""
    for x in exchanges:
        offsets = [end for _, end in x.response_reads]
        assert offsets == sorted(set(offsets))
        assert offsets[-1:] == ([x.response_body_size] if x.response_body_size else [])
    return [dataclasses.replace(x, start_ns=0, end_ns=0, response_reads=[]) for x in exchanges]


def total_length(segments) -> int:
    return sum(len(data) for _, data in segments)


def keep_alive_conversation() -> list[tuple[Direction, bytes]]:
    """Four exchanges on one connection: a GET, a POST with Content-Length, a chunked upload
    with a chunked answer, and a 404."""
    peers = Peers()
    peers.exchange("GET", "/v1/models", response_headers=[("content-length", "11")], response_body=b'{"data":[]}')
    peers.exchange(body=CHAT, headers=[("content-type", "application/json")],
                   response_headers=[("content-type", "application/json"), ("content-length", str(len(ANSWER)))],
                   response_body=ANSWER)
    peers.client_sends(h11.Request(method="POST", target="/v1/files", headers=[
        ("host", HOST), ("transfer-encoding", "chunked")]), h11.Data(data=b"part one;"), h11.Data(data=b"part two"),
        h11.EndOfMessage())
    peers.server_sends(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]),
                       h11.Data(data=b"ok "), h11.Data(data=b"stored"), h11.EndOfMessage())
    peers.client.start_next_cycle()
    peers.server.start_next_cycle()
    peers.exchange("GET", "/v1/nothing", response_headers=[("content-length", "0")], status=404)
    return peers.segments


# --- one exchange, field by field ---------------------------------------------------------

def test_a_post_and_its_answer_become_one_exchange_field_by_field():
    peers = Peers()
    peers.exchange(body=CHAT, headers=[("content-type", "application/json"), ("x-stainless-lang", "python")],
                   response_headers=[("content-type", "application/json"), ("content-length", str(len(ANSWER))),
                                     ("x-request-id", "req_1"), ("strict-transport-security", "max-age=1")],
                   response_body=ANSWER)
    (x,) = feed(peers.segments)
    assert x == Exchange(
        protocol="1.1", method="POST", target="/v1/chat/completions", authority=HOST, scheme="https",
        stream_id=None,
        request_headers=[("host", HOST), ("user-agent", "OpenAI/Python 1.54.0"), ("content-type", "application/json"),
                         ("x-stainless-lang", "python"), ("content-length", str(len(CHAT)))],
        request_body=CHAT, request_body_size=len(CHAT), request_truncated=False,
        status=200,
        response_headers=[("content-type", "application/json"), ("content-length", str(len(ANSWER))),
                          ("x-request-id", "req_1")],
        response_body=ANSWER, response_body_size=len(ANSWER), response_truncated=False,
        response_reads=[(3000, len(ANSWER))], start_ns=1000, end_ns=3000, lost_bytes=0, error=None, complete=True,
        user_agent="OpenAI/Python 1.54.0", content_encoding_error=None, accepted=True)


def test_an_exchange_comes_out_of_the_feed_that_finishes_it():
    peers = Peers()
    peers.exchange(body=CHAT, response_headers=[("content-length", "4")], response_chunks=[b"ok", b"ok"])
    parser = HttpConnectionParser()
    request, head, first, last = peers.segments
    assert parser.feed(*request, 1) == []
    assert parser.role == "client" and parser.protocol == "1.1"
    assert parser.feed(*head, 2) == []
    assert parser.feed(*first, 3) == []
    (x,) = parser.feed(*last, 4)
    assert x.response_body == b"okok" and x.complete
    assert parser.close(5) == []


def test_start_is_the_first_request_byte_and_end_the_last_response_byte():
    peers = Peers()
    peers.exchange(body=CHAT, response_headers=[("content-length", "10")], response_chunks=[b"01234", b"56789"])
    request = peers.segments[0][1]
    head = peers.segments[1][1]
    parser = HttpConnectionParser()
    assert parser.feed(W, request[:5], 10) == []
    assert parser.feed(W, request[5:], 20) == []
    assert parser.feed(R, head, 40) == []
    assert parser.feed(R, b"01234", 50) == []
    (x,) = parser.feed(R, b"56789", 60)
    assert (x.start_ns, x.end_ns, x.response_reads) == (10, 60, [(50, 5), (60, 10)])
    assert x.complete


# --- cut anywhere, same exchanges ---------------------------------------------------------------

def test_keep_alive_exchanges_are_the_same_wherever_the_bytes_are_cut():
    segments = keep_alive_conversation()
    expected = untimed(feed(segments))
    assert [(x.method, x.target, x.status, x.request_body, x.response_body) for x in expected] == [
        ("GET", "/v1/models", 200, b"", b'{"data":[]}'),
        ("POST", "/v1/chat/completions", 200, CHAT, ANSWER),
        ("POST", "/v1/files", 200, b"part one;part two", b"ok stored"),
        ("GET", "/v1/nothing", 404, b"", b""),
    ]
    assert all(x.complete and x.error is None for x in expected)
    for cut in range(1, total_length(segments)):
        assert untimed(feed(segments, {cut})) == expected, f"cut at {cut}"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_keep_alive_exchanges_are_the_same_however_many_cuts(data):
    segments = keep_alive_conversation()
    cuts = data.draw(st.sets(st.integers(1, total_length(segments) - 1), max_size=40))
    assert untimed(feed(segments, cuts)) == untimed(feed(segments))


def test_every_piece_may_be_a_single_byte():
    segments = keep_alive_conversation()
    assert untimed(feed(segments, set(range(total_length(segments))))) == untimed(feed(segments))


def test_a_hundred_exchanges_on_one_connection_in_random_pieces():
    peers = Peers()
    for n in range(100):
        answer = b'{"n":%d}' % n
        peers.exchange(target=f"/v1/embeddings?n={n}", body=CHAT,
                       response_headers=[("content-length", str(len(answer)))], response_body=answer)
    rng = random.Random(11)
    cuts = {rng.randrange(1, total_length(peers.segments)) for _ in range(500)}
    exchanges = feed(peers.segments, cuts)
    assert [(x.target, x.response_body, x.complete) for x in exchanges] == [
        (f"/v1/embeddings?n={n}", b'{"n":%d}' % n, True) for n in range(100)]


def test_pipelined_requests_are_answered_in_order():
    # Three requests written at once (each made by its own h11 client), answered by one h11 server.
    requests = b""
    for i in range(3):
        client = h11.Connection(h11.CLIENT)
        body = b'{"n":%d}' % i
        requests += client.send(h11.Request(method="POST", target=f"/v1/embeddings?n={i}", headers=[
            ("host", HOST), ("content-length", str(len(body)))])) + client.send(h11.Data(data=body))
        requests += client.send(h11.EndOfMessage())
    server = h11.Connection(h11.SERVER)
    server.receive_data(requests)
    responses = b""
    for i in range(3):
        _drain(server)
        answer = b"answer %d" % i
        responses += server.send(h11.Response(status_code=200, headers=[("content-length", str(len(answer)))]))
        responses += server.send(h11.Data(data=answer)) + server.send(h11.EndOfMessage())
        server.start_next_cycle()
    segments = [(W, requests), (R, responses)]
    exchanges = feed(segments)
    assert [(x.target, x.request_body, x.response_body, x.complete) for x in exchanges] == [
        (f"/v1/embeddings?n={i}", b'{"n":%d}' % i, b"answer %d" % i, True) for i in range(3)]
    assert all(x.start_ns == 1000 for x in exchanges)
    for cut in range(1, total_length(segments)):
        assert untimed(feed(segments, {cut})) == untimed(exchanges)


# --- streaming, sizes, encodings -----------------------------------------------------------------

def test_a_chunked_sse_stream_in_small_irregular_pieces_keeps_per_read_timestamps():
    events = [b'data: {"choices":[{"delta":{"content":"tok%d"}}]}\n\n' % i for i in range(40)] + [b"data: [DONE]\n\n"]
    # The response as a server writes it, with every byte marked body or framing.
    wire = bytearray(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    body_bytes_before = [0] * len(wire)
    body_so_far = 0
    is_body = [False] * len(wire)
    for event in events:
        for part, body in ((b"%x\r\n" % len(event), False), (event, True), (b"\r\n", False)):
            for _ in part:
                body_so_far += body
                is_body.append(body)
                body_bytes_before.append(body_so_far)
            wire += part
    wire += b"0\r\n\r\n"
    is_body += [False] * 5
    body_bytes_before += [body_so_far] * 5
    parser = HttpConnectionParser()
    parser.feed(W, b"POST /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\ncontent-length: 2\r\n\r\n{}", 1)
    sizes = [1, 2, 5, 13, 3, 40, 7, 1, 90, 4]
    position, k, expected_reads, exchanges = 0, 0, [], []
    while position < len(wire):
        end = min(position + sizes[k % len(sizes)], len(wire))
        ts = 10_000 + k
        exchanges += parser.feed(R, bytes(wire[position:end]), ts)
        if any(is_body[position:end]):
            expected_reads.append((ts, body_bytes_before[end - 1]))
        position, k = end, k + 1
    (x,) = exchanges
    assert x.response_body == b"".join(events) and x.complete
    assert x.response_reads == expected_reads
    assert x.end_ns == 10_000 + k - 1


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def zstd_streamed(data: bytes) -> bytes:
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("coding, encode", [
    ("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate), ("br", brotli.compress),
    ("zstd", zstd_streamed), ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
], ids=["gzip", "deflate-zlib", "deflate-raw", "br", "zstd", "gzip-then-br"])
def test_compressed_responses_are_decoded_and_sized_on_the_wire(coding, encode):
    answer = ANSWER * 50
    encoded = encode(answer)
    peers = Peers()
    peers.exchange(body=CHAT, response_headers=[("content-encoding", coding), ("transfer-encoding", "chunked")],
                   response_chunks=[encoded[:7], encoded[7:100], encoded[100:]])
    (x,) = feed(peers.segments)
    assert x.response_body == answer
    assert x.response_body_size == len(encoded)
    assert x.response_reads[-1] == (x.end_ns - 1000, len(encoded))
    assert ("content-encoding", coding) in x.response_headers
    assert x.content_encoding_error is None and x.complete


def test_a_gzip_request_body_is_decoded_too():
    peers = Peers()
    peers.exchange(body=gzip.compress(CHAT), headers=[("content-encoding", "gzip")],
                   response_headers=[("content-length", "0")])
    (x,) = feed(peers.segments)
    assert x.request_body == CHAT and x.request_body_size == len(gzip.compress(CHAT))


def test_a_corrupt_compressed_body_is_kept_as_sent_with_an_error():
    peers = Peers()
    peers.exchange(response_headers=[("content-encoding", "gzip"), ("content-length", "9")], response_body=b"not gzip!")
    (x,) = feed(peers.segments)
    assert x.response_body == b"not gzip!" and x.complete
    assert x.content_encoding_error.startswith("response body: corrupt gzip data")


def test_a_1_mib_request_and_a_5_mib_response_in_16_kib_pieces():
    rng = random.Random(5)
    upload, download = rng.randbytes(1024 * 1024), rng.randbytes(5 * 1024 * 1024)
    peers = Peers()
    peers.exchange(body=upload, response_headers=[("transfer-encoding", "chunked")],
                   response_chunks=[download[i:i + 65536] for i in range(0, len(download), 65536)])
    wire = b"".join(data for _, data in peers.segments)
    request_end = len(peers.segments[0][1])
    cuts = set(range(16384, len(wire), 16384)) | {request_end}
    (x,) = feed(peers.segments, cuts)
    assert x.request_body == upload and x.response_body == download
    assert (x.request_body_size, x.response_body_size) == (len(upload), len(download))
    assert not x.request_truncated and not x.response_truncated and x.complete
    assert len(x.response_reads) >= len(download) // 16384


def test_bodies_over_max_body_bytes_are_cut_but_fully_counted():
    peers = Peers()
    peers.exchange(body=b"q" * 5000, response_headers=[("content-length", "7000")], response_body=b"a" * 7000)
    (x,) = feed(peers.segments, parser=HttpConnectionParser(max_body_bytes=1000))
    assert (x.request_body, x.request_body_size, x.request_truncated) == (b"q" * 1000, 5000, True)
    assert (x.response_body, x.response_body_size, x.response_truncated) == (b"a" * 1000, 7000, True)
    assert x.response_reads[-1][1] == 7000 and x.complete


def test_a_compressed_body_that_expands_over_max_body_bytes_is_cut():
    encoded = gzip.compress(b"z" * 100_000)
    peers = Peers()
    peers.exchange(response_headers=[("content-encoding", "gzip"), ("content-length", str(len(encoded)))],
                   response_body=encoded)
    (x,) = feed(peers.segments, parser=HttpConnectionParser(max_body_bytes=4096))
    assert x.response_body == b"z" * 4096 and x.response_truncated
    assert x.response_body_size == len(encoded) and x.content_encoding_error is None


def test_invalid_utf8_bodies_are_kept_as_bytes():
    junk = b"\xff\xfe\x00\xc3(\x80 caf\xe9"
    peers = Peers()
    peers.exchange(body=junk, response_headers=[("content-length", str(len(junk)))], response_body=junk)
    (x,) = feed(peers.segments)
    assert x.request_body == junk and x.response_body == junk


# --- responses without a body, 1xx, read until close ----------------------------------------------

def test_head_has_no_response_body_even_with_a_content_length():
    peers = Peers()
    peers.exchange("HEAD", "/v1/models", response_headers=[("content-length", "1000")])
    peers.exchange("GET", "/v1/models", response_headers=[("content-length", "2")], response_body=b"{}")
    head, get = feed(peers.segments)
    assert (head.method, head.status, head.response_body, head.complete) == ("HEAD", 200, b"", True)
    assert (get.method, get.response_body, get.complete) == ("GET", b"{}", True)


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body(status):
    peers = Peers()
    peers.exchange("DELETE" if status == 204 else "GET", "/v1/files/f1", status=status)
    peers.exchange("GET", "/v1/models", response_headers=[("content-length", "2")], response_body=b"{}")
    first, second = feed(peers.segments)
    assert (first.status, first.response_body, first.complete) == (status, b"", True)
    assert second.response_body == b"{}" and second.complete


def test_100_continue_and_103_early_hints_are_skipped():
    peers = Peers()
    peers.client_sends(h11.Request(method="POST", target="/v1/uploads", headers=[
        ("host", HOST), ("expect", "100-continue"), ("content-length", str(len(CHAT)))]))
    peers.server_sends(h11.InformationalResponse(status_code=100, headers=[]))
    peers.client_sends(h11.Data(data=CHAT), h11.EndOfMessage())
    peers.server_sends(h11.InformationalResponse(status_code=103, headers=[("link", "</s.css>; rel=preload")]),
                       h11.Response(status_code=201, headers=[("content-length", "2")]), h11.Data(data=b"{}"),
                       h11.EndOfMessage())
    expected = untimed(feed(peers.segments))
    (x,) = expected
    assert (x.status, x.request_body, x.response_body, x.complete) == (201, CHAT, b"{}", True)
    for cut in range(1, total_length(peers.segments)):
        assert untimed(feed(peers.segments, {cut})) == expected


def test_a_response_without_length_is_read_until_close():
    request = b"GET /stream HTTP/1.1\r\nHost: legacy.example\r\n\r\n"
    response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, "
    parser = HttpConnectionParser()
    assert parser.feed(W, request, 1) == []
    assert parser.feed(R, response, 2) == []
    assert parser.feed(R, b"world", 3) == []
    (x,) = parser.close(9)
    assert (x.protocol, x.status, x.response_body, x.complete, x.error) == ("1.0", 200, b"hello, world", True, None)
    assert x.end_ns == 3 and x.response_reads == [(2, 7), (3, 12)]


def test_connection_close_ends_the_exchange_at_its_last_byte():
    peers = Peers()
    peers.exchange(body=CHAT, response_headers=[("connection", "close"), ("content-length", "2")], response_body=b"{}")
    parser = HttpConnectionParser()
    exchanges = feed(peers.segments, parser=parser)
    assert [(x.response_body, x.complete) for x in exchanges] == [(b"{}", True)]


def test_an_upgrade_to_websocket_ends_http_on_the_connection():
    peers = Peers()
    peers.client_sends(h11.Request(method="GET", target="/v1/realtime", headers=[
        ("host", HOST), ("connection", "upgrade"), ("upgrade", "websocket")]), h11.EndOfMessage())
    peers.server_sends(h11.InformationalResponse(status_code=101, headers=[
        ("connection", "upgrade"), ("upgrade", "websocket")]))
    parser = HttpConnectionParser()
    exchanges = parser.feed(*peers.segments[0], 1) + parser.feed(*peers.segments[1], 2)
    assert [(x.status, x.complete) for x in exchanges] == [(101, True)]
    frames = b"\x81\x85\x01\x02\x03\x04hello"
    assert parser.feed(W, frames, 3) == [] and parser.feed(R, b"\x81\x02hi", 4) == []
    assert parser.ignored_bytes == len(frames) + 4
    assert parser.close(5) == []


@pytest.mark.parametrize("status, tunnel", [(200, True), (407, False)])
def test_a_connect_answered_2xx_is_a_tunnel_and_otherwise_the_connection_goes_on(status, tunnel):
    parser = HttpConnectionParser()
    assert parser.feed(W, b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n", 1) == []
    (connect,) = parser.feed(R, b"HTTP/1.1 %d Whatever\r\ncontent-length: 0\r\n\r\n" % status, 2)
    assert (connect.method, connect.status, connect.complete) == ("CONNECT", status, True)
    parser.feed(W, b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", 3)
    after = parser.feed(R, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", 4)
    assert [x.response_body for x in after] == ([] if tunnel else [b"{}"])


def test_an_early_error_response_before_the_upload_ended():
    peers = Peers()
    peers.client_sends(h11.Request(method="POST", target="/v1/files", headers=[
        ("host", HOST), ("content-length", "1000000")]), h11.Data(data=b"u" * 1000))
    peers.server_sends(h11.Response(status_code=413, headers=[("connection", "close"), ("content-length", "9")]),
                       h11.Data(data=b"too large"), h11.EndOfMessage())
    (x,) = feed(peers.segments)
    assert (x.status, x.response_body, x.request_body_size) == (413, b"too large", 1000)
    assert (x.complete, x.error) == (False, "connection closed before the request was complete")


def test_an_empty_piece_is_nothing():
    parser = HttpConnectionParser()
    parser.feed(W, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", 1)
    assert parser.feed(R, b"", 2) == [] and parser.feed(W, b"", 3) == []
    (x,) = parser.feed(R, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 4)
    assert x.complete


# --- the connection ends, bytes are lost, bytes are garbage ----------------------------------------

def test_close_mid_response_returns_the_partial_exchange_with_an_error():
    peers = Peers()
    peers.client_sends(h11.Request(method="GET", target="/v1/models", headers=[("host", HOST)]), h11.EndOfMessage())
    peers.server_sends(h11.Response(status_code=200, headers=[("content-length", "100")]))
    peers.server_sends(h11.Data(data=b"x" * 40))      # 40 of 100 body bytes; then the connection ends
    (x,) = feed(peers.segments, close_at=7777)
    assert (x.complete, x.error) == (False, "connection closed before the response was complete")
    assert (x.status, x.response_body, x.response_body_size, x.end_ns) == (200, b"x" * 40, 40, 7777)


def test_close_before_any_response_returns_the_request():
    (x,) = feed([(W, b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}")])
    assert (x.method, x.request_body, x.status, x.complete) == ("POST", b"{}", None, False)
    assert x.error == "connection closed before the response was complete"


def test_lost_bytes_mid_body_end_the_exchange_and_desynchronise_the_connection():
    peers = Peers()
    peers.exchange(body=CHAT, response_headers=[("content-length", "100")], response_chunks=[b"x" * 40, b"y" * 60])
    peers.exchange("GET", "/v1/models", response_headers=[("content-length", "2")], response_body=b"{}")
    parser = HttpConnectionParser()
    for ts, segment in enumerate(peers.segments[:3]):
        assert parser.feed(*segment, ts) == []
    (x,) = parser.lost(R, 60, 50)
    assert (x.lost_bytes, x.complete, x.error) == (60, False, "capture lost 60 bytes of the read stream")
    assert x.response_body == b"x" * 40
    later = peers.segments[4:]          # the second exchange: parsed no more
    for ts, segment in enumerate(later):
        assert parser.feed(*segment, 100 + ts) == []
    assert parser.ignored_bytes == total_length(later)
    assert parser.close(200) == []


def test_garbage_instead_of_a_response_is_a_protocol_error_and_parsing_stops():
    parser = HttpConnectionParser()
    parser.feed(W, b"GET /v1/models HTTP/1.1\r\nhost: a\r\n\r\n", 1)
    (x,) = parser.feed(R, b"\x16\x03\x03\x00\x02garbage\r\n\r\n", 2)
    assert x.error.startswith("protocol error: ") and not x.complete
    assert parser.feed(W, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", 3) == []
    assert parser.ignored_bytes >= 27
    assert parser.close(4) == []


def test_garbage_between_requests_stops_parsing_without_inventing_an_exchange():
    peers = Peers()
    peers.exchange("GET", "/v1/models", response_headers=[("content-length", "2")], response_body=b"{}")
    parser = HttpConnectionParser()
    assert len([x for segment in peers.segments for x in parser.feed(*segment, 1)]) == 1
    assert parser.feed(W, b"\x00\x01\x02 not a request\r\n\r\n", 2) == []
    assert parser.ignored_bytes > 0
    assert parser.close(3) == []


@settings(max_examples=80, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.sampled_from([W, R]))
def test_any_bytes_after_a_request_never_raise(junk, direction):
    parser = HttpConnectionParser()
    parser.feed(W, b"POST /v1/x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n", 1)
    exchanges = parser.feed(direction, junk, 2) + parser.close(3)
    assert len(exchanges) <= 1


# --- what a connection is -----------------------------------------------------------------

def test_a_request_line_one_byte_at_a_time_is_recognised_at_its_end():
    request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}"
    line_end = request.index(b"\n")
    parser = HttpConnectionParser()
    for i in range(len(request)):
        parser.feed(W, request[i:i + 1], i)
        assert parser.role == ("unknown" if i < line_end else "client"), i
    (x,) = parser.feed(R, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 999)
    assert (x.request_body, x.start_ns, x.complete) == (b"{}", 0, True)


@pytest.mark.parametrize("first", [
    b"\x00\x00\x00\x0chello binary",                          # a custom binary protocol over TLS
    b"EHLO mail.example.com\r\n",                             # a line protocol
    b"GET /x HTTP/2.0\r\n",                                   # not HTTP/1.x
    b"get  /x HTTP/1.1\r\n",
])
def test_a_connection_that_does_not_start_with_a_request_is_not_http(first):
    parser = HttpConnectionParser()
    assert parser.feed(W, first, 1) == []
    assert parser.role == "not_http"
    assert parser.feed(R, b"HTTP/1.1 200 OK\r\n\r\n", 2) == []
    assert parser.ignored_bytes == len(first) + 19


def test_attaching_mid_connection_a_response_first_is_not_http():
    parser = HttpConnectionParser()
    assert parser.feed(R, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", 1) == []
    assert parser.role == "not_http"
    assert parser.feed(W, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", 2) == []


def test_a_request_read_by_the_process_means_a_tls_server():
    parser = HttpConnectionParser()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}"
    assert parser.feed(R, request, 1) == []
    assert parser.role == "server"
    assert parser.feed(W, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 2) == []
    assert parser.ignored_bytes == len(request) + 38


def test_lost_bytes_before_the_first_request_line_make_it_not_http():
    parser = HttpConnectionParser()
    parser.feed(W, b"POS", 1)
    assert parser.lost(W, 10, 2) == []
    assert parser.role == "not_http" and parser.ignored_bytes == 3


# --- secrets and the accept filter -----------------------------------------------------------------

def test_secrets_never_leave_the_parser_even_when_every_header_is_allowed():
    peers = Peers()
    peers.exchange(target=f"/v1beta/models/gemini:streamGenerateContent?alt=sse&key={SECRET}", body=CHAT,
                   headers=[("authorization", f"Bearer {SECRET}"), ("x-api-key", SECRET), ("cookie", f"s={SECRET}"),
                            ("x-goog-api-key", SECRET), ("x-custom-token", SECRET), ("x-stainless-os", "Linux")],
                   response_headers=[("set-cookie", f"__cf_bm={SECRET}"), ("content-length", "2")], response_body=b"{}")
    parser = HttpConnectionParser(request_headers=["*", "authorization", "x-api-key"], response_headers=["*"])
    (x,) = feed(peers.segments, parser=parser)
    assert SECRET not in repr(x)
    assert x.target == "/v1beta/models/gemini:streamGenerateContent?alt=sse&key=REDACTED"
    assert ("x-stainless-os", "Linux") in x.request_headers
    assert {name for name, _ in x.request_headers} == {"host", "user-agent", "x-stainless-os", "content-length"}
    assert x.response_headers == [("content-length", "2")]


def test_a_refused_exchange_keeps_its_framing_but_stores_no_body():
    seen = []

    def accept(x: Exchange) -> bool:
        seen.append((x.method, x.target, x.authority, dict(x.request_headers).get("content-type")))
        return x.target.startswith("/v1/chat")

    peers = Peers()
    peers.exchange(target="/telemetry", body=b"t" * 500, headers=[("content-type", "application/json")],
                   response_headers=[("content-length", "300")], response_body=b"r" * 300)
    peers.exchange(body=CHAT, headers=[("content-type", "application/json")],
                   response_headers=[("content-length", "2")], response_body=b"{}")
    refused, kept = feed(peers.segments, parser=HttpConnectionParser(accept=accept))
    assert seen == [("POST", "/telemetry", HOST, "application/json"),
                    ("POST", "/v1/chat/completions", HOST, "application/json")]
    assert (refused.accepted, refused.request_body, refused.response_body) == (False, b"", b"")
    assert (refused.request_body_size, refused.response_body_size, refused.complete) == (500, 300, True)
    assert (kept.accepted, kept.request_body, kept.response_body) == (True, CHAT, b"{}")
