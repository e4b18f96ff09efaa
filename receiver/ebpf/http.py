"""`HttpConnectionParser`: one captured TLS connection in, HTTP exchanges out.

Sans-IO: fed the plaintext the traced process wrote (WRITE) and read (READ), in
whatever pieces the probes delivered, each with its kernel timestamp; told when
the capture lost bytes and when the connection ended. No sockets, threads or
clocks inside.

What the connection is, is decided once, from its first bytes:
- WRITE starts with the HTTP/2 client preface → `role="client"`, HTTP/2;
- WRITE starts with an HTTP/1.x request line (token SP target SP HTTP/1.x) →
  `role="client"`, HTTP/1.1;
- READ starts with either of those → `role="server"`: a TLS server process, ignored;
- anything else → `role="not_http"`, ignored: a response first (we attached to a
  connection already in use), or another protocol over TLS.
The decision waits while the bytes seen are still the start of a request line or
preface (a request line may come one byte at a time). One tolerance: READ bytes
that start with an HTTP/2 SETTINGS frame are held until the first WRITE bytes
decide, because an HTTP/2 server may send its SETTINGS before the client's
preface is captured. At most `MAX_UNDECIDED_BYTES` are held undecided (a longer
request line is "not_http"). Bytes lost before the decision make the connection
"not_http" (nothing on it can be trusted to be in step).

Promises: never raises on any input; every byte fed is either parsed or counted in
`ignored_bytes`. Cost: deciding looks at the held bytes again only when the first
line just ended, the preface length was just reached, or their number doubled, so
O(bytes) overall; then the HTTP/1.1 or HTTP/2 parser's own bound (O(bytes fed)).
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from .exchange import CaptureOptions, Direction, Exchange
from .headers import DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS, HeaderAllowList
from .http1 import Http1Connection
from .http2 import CLIENT_PREFACE, Http2Connection

MAX_UNDECIDED_BYTES = 64 * 1024

_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")      # an RFC 9110 token
_TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]+")              # no spaces or controls
_VERSION = re.compile(rb"HTTP/1\.[0-9]\r?\n")

_YES, _NO, _MAYBE = "yes", "no", "maybe"


def _request_line_verdict(start: bytes) -> str:
    """Is `start` an HTTP/1.x request line (yes), the beginning of one (maybe), or neither (no)?"""
    line_end = start.find(b"\n")
    line = start if line_end < 0 else start[:line_end + 1]
    method, space, rest = line.partition(b" ")
    if not _METHOD.fullmatch(method):
        return _NO
    if not space:
        return _MAYBE
    target, space, version = rest.partition(b" ")
    if target and not _TARGET.fullmatch(target):
        return _NO
    if not space:
        return _MAYBE if line_end < 0 else _NO
    if not target:
        return _NO
    if line_end >= 0:
        return _YES if _VERSION.fullmatch(version) else _NO
    return _MAYBE if _may_become_version(version) else _NO


def _may_become_version(text: bytes) -> bool:
    """Can `text` still grow into "HTTP/1.<digit>" + line end?"""
    fixed = b"HTTP/1."
    if len(text) <= len(fixed):
        return fixed.startswith(text)
    return text.startswith(fixed) and text[7:8].isdigit() and text[8:] in (b"", b"\r")


def _preface_verdict(start: bytes) -> str:
    if start.startswith(CLIENT_PREFACE):
        return _YES
    return _MAYBE if CLIENT_PREFACE.startswith(start) else _NO


def _looks_like_settings_frame(start: bytes) -> str:
    """An HTTP/2 SETTINGS frame header on stream 0: type 0x4, stream id 0."""
    if len(start) < 9:
        return _MAYBE
    return _YES if start[3] == 0x4 and start[5:9] == b"\0\0\0\0" else _NO


class HttpConnectionParser:
    """The HTTP exchanges of one captured TLS connection.

    `feed`, `lost` and `close` each return the exchanges that finished with that
    input, every exchange exactly once; `accept` (if given) is asked once per
    exchange, as soon as its request head is known, whether to store its bodies.
    `role`: "unknown", then "client", "server" or "not_http"; `protocol`: "1.1" or
    "2" for a client; `ignored_bytes`: bytes fed that were not parsed as HTTP.
    """

    def __init__(self, *, max_body_bytes: int = 16 * 1024 * 1024,
                 request_headers: Sequence[str] = DEFAULT_REQUEST_HEADERS,
                 response_headers: Sequence[str] = DEFAULT_RESPONSE_HEADERS,
                 accept: Callable[[Exchange], bool] | None = None):
        self.options = CaptureOptions(max_body_bytes, HeaderAllowList(request_headers),
                                      HeaderAllowList(response_headers), accept)
        self.role = "unknown"
        self.protocol: str | None = None      # "1.1" or "2" once role is "client"
        self._parser: Http1Connection | Http2Connection | None = None
        self._held: list[tuple[Direction, bytes, int]] = []     # pieces seen before the decision
        self._held_bytes = 0
        self._starts = {Direction.WRITE: bytearray(), Direction.READ: bytearray()}   # the held bytes per direction
        self._looked_at = {Direction.WRITE: 0, Direction.READ: 0}
        self._line_ended = {Direction.WRITE: False, Direction.READ: False}
        self._ignored = 0
        self._closed = False

    @property
    def ignored_bytes(self) -> int:
        return self._ignored + (self._parser.ignored_bytes if self._parser is not None else 0)

    def feed(self, direction: Direction, data: bytes, ts_ns: int) -> list[Exchange]:
        """The exchanges that finished with this piece."""
        if not data:
            return []
        if self._parser is not None:
            return self._parser.feed(direction, data, ts_ns)
        if self.role != "unknown" or self._closed:
            self._ignored += len(data)
            return []
        self._held.append((direction, bytes(data), ts_ns))
        self._held_bytes += len(data)
        if self._held_bytes > MAX_UNDECIDED_BYTES:
            self._give_up("not_http")
            return []
        start = self._starts[direction]
        start += data
        # Looking costs O(bytes held), so look again only when it may tell more: the first line
        # just ended, the preface length was just reached, or the bytes held doubled. O(bytes) in all.
        first_line_ended = b"\n" in data and not self._line_ended[direction]
        preface_length_reached = len(start) - len(data) < len(CLIENT_PREFACE) <= len(start)
        if first_line_ended or preface_length_reached or len(start) >= 2 * self._looked_at[direction]:
            self._line_ended[direction] = self._line_ended[direction] or b"\n" in data
            self._looked_at[direction] = len(start)
            return self._decide()
        return []

    def lost(self, direction: Direction, nbytes: int, ts_ns: int) -> list[Exchange]:
        """The capture lost `nbytes` here: exchanges in flight end with an error; the connection is desynchronised."""
        if nbytes <= 0:
            return []
        if self._parser is not None:
            return self._parser.lost(direction, nbytes, ts_ns)
        if self.role == "unknown":
            self._give_up("not_http")
        return []

    def close(self, ts_ns: int) -> list[Exchange]:
        """The connection ended: a body read until close completes, every other exchange in flight ends."""
        if self._parser is not None:
            return self._parser.close(ts_ns)
        self._closed = True
        self._ignored += self._held_bytes
        self._held, self._held_bytes = [], 0
        return []

    def _decide(self) -> list[Exchange]:
        writes, reads = self._starts[Direction.WRITE], self._starts[Direction.READ]
        if writes:
            h2, h1 = _preface_verdict(writes), _request_line_verdict(writes)
            if h2 == _YES:
                return self._start(Http2Connection(self.options), "2")
            if h1 == _YES:
                return self._start(Http1Connection(self.options), "1.1")
            if h2 == _NO and h1 == _NO:
                self._give_up("not_http")
            return []
        verdicts = (_preface_verdict(reads), _request_line_verdict(reads))
        if _YES in verdicts:
            self._give_up("server")
        elif _MAYBE not in verdicts and _looks_like_settings_frame(reads) == _NO:
            self._give_up("not_http")
        return []

    def _start(self, parser: Http1Connection | Http2Connection, protocol: str) -> list[Exchange]:
        self.role, self.protocol, self._parser = "client", protocol, parser
        held, self._held, self._held_bytes = self._held, [], 0
        self._starts = {}
        finished: list[Exchange] = []
        for direction, data, ts_ns in held:
            finished += parser.feed(direction, data, ts_ns)
        return finished

    def _give_up(self, role: str) -> None:
        self.role = role
        self._ignored += self._held_bytes
        self._held, self._held_bytes = [], 0
        self._starts = {}
