"""What the HTTP reassembly hands out: one `Exchange` per request/response pair seen
on a captured TLS connection, and the `Direction` of each captured byte stream.

`ExchangeAssembly` is the shared bookkeeping of one exchange while the HTTP/1.1 or
HTTP/2 parser is still seeing it: it applies the header allow-lists and secret
removal, calls the user's `accept` filter once the request head is known, stores
bodies up to a cap, records per-read timestamps, and content-decodes the bodies
when the exchange ends. Nothing here parses wire bytes.

Costs: storing a body is O(bytes stored) time and holds at most `max_body_bytes`
per direction (bytes beyond the cap are only counted); finishing costs one
content decoding per body, bounded by `max_body_bytes` of output.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable

from .content_encoding import decode_body
from .headers import HeaderAllowList, scrub_authority, scrub_url


class Direction(enum.Enum):
    WRITE = "write"   # bytes the traced process wrote (SSL_write*)
    READ = "read"     # bytes the traced process read (SSL_read*)


@dataclass
class Exchange:
    """One HTTP request and its response, as the traced client process saw them."""

    protocol: str                 # "1.1" or "2" (network.protocol.version; "1.0" when the response says HTTP/1.0)
    method: str = ""
    target: str = ""              # request target as sent (path + query), credentials in the query REDACTED; h2 :path
    authority: str = ""           # Host header or :authority (may include :port)
    scheme: str = "https"
    stream_id: int | None = None  # HTTP/2 stream id
    request_headers: list[tuple[str, str]] = field(default_factory=list)   # lower-case, allow-listed, no secrets
    request_body: bytes = b""     # transfer-decoded and content-decoded (as the server app would see it)
    request_body_size: int = 0    # body bytes after transfer decoding, before content decoding
    request_truncated: bool = False
    status: int | None = None     # final (non-1xx) status
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""    # transfer-decoded and content-decoded
    response_body_size: int = 0   # body bytes after transfer decoding, before content decoding
    response_truncated: bool = False
    # One entry per READ piece that carried response body bytes: (ts_ns, end offset of
    # those bytes in the transfer-decoded, not content-decoded, body).
    response_reads: list[tuple[int, int]] = field(default_factory=list)
    start_ns: int = 0             # ts of the piece holding the first request byte
    end_ns: int = 0               # ts of the last response byte (of the close/loss when incomplete)
    lost_bytes: int = 0           # bytes the capture lost on the connection while this exchange was in flight
    error: str | None = None
    complete: bool = False        # request and response both fully seen
    user_agent: str = ""          # user-agent header value (kept even if not allow-listed)
    content_encoding_error: str | None = None   # "request body: ..." / "response body: ..."
    accepted: bool = True         # False: the `accept` filter refused it; bodies were not stored


@dataclass(frozen=True)
class CaptureOptions:
    """What every exchange of one connection is held to."""

    max_body_bytes: int
    request_headers: HeaderAllowList
    response_headers: HeaderAllowList
    accept: Callable[[Exchange], bool] | None = None


class _BodyRecorder:
    """One body: stores the first `limit` bytes, counts all of them."""

    def __init__(self, limit: int, store: bool):
        self.limit = limit
        self.store = store
        self.size = 0
        self.truncated = False
        self._pieces: list[bytes] = []
        self._stored = 0

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if not self.store:
            return
        room = self.limit - self._stored
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if data:
            self._pieces.append(bytes(data))
            self._stored += len(data)

    def stored(self) -> bytes:
        return b"".join(self._pieces)


class ExchangeAssembly:
    """An exchange being put together from parsed HTTP events; `finish()` hands out the Exchange."""

    def __init__(self, protocol: str, options: CaptureOptions, start_ns: int, stream_id: int | None = None):
        self.exchange = Exchange(protocol=protocol, stream_id=stream_id, start_ns=start_ns)
        self.options = options
        self.request_ended = False
        self.response_ended = False
        self._request_coding = ""
        self._response_coding = ""
        self._request_body = _BodyRecorder(options.max_body_bytes, store=True)
        self._response_body = _BodyRecorder(options.max_body_bytes, store=True)
        self._last_read_piece: int | None = None

    @property
    def has_response_head(self) -> bool:
        return self.exchange.status is not None

    def set_request_head(self, method: str, target: str, authority: str, scheme: str,
                         headers: list[tuple[str, str]]) -> None:
        """Record the request head, then ask `accept` whether to keep the bodies."""
        ex = self.exchange
        ex.method, ex.target, ex.scheme = method, scrub_url(target), scheme
        ex.authority = scrub_authority(authority)
        for name, value in headers:
            if name == "user-agent" and not ex.user_agent:
                ex.user_agent = value
        self._request_coding = _joined(headers, "content-encoding")
        ex.request_headers = self.options.request_headers.filter(headers)
        if self.options.accept is not None and not self.options.accept(ex):
            ex.accepted = False
            self._request_body.store = False
            self._response_body.store = False

    def set_response_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.exchange.status = status
        self._response_coding = _joined(headers, "content-encoding")
        self.exchange.response_headers = self.options.response_headers.filter(headers)

    def add_request_body(self, data: bytes) -> None:
        self._request_body.add(data)

    def add_response_body(self, data: bytes, ts_ns: int, read_piece: int) -> None:
        """`read_piece` numbers the READ pieces of the connection: one response_reads entry per piece."""
        if not data:
            return
        self._response_body.add(data)
        entry = (ts_ns, self._response_body.size)
        reads = self.exchange.response_reads
        if self._last_read_piece == read_piece and reads:
            reads[-1] = entry
        else:
            reads.append(entry)
        self._last_read_piece = read_piece

    def add_lost(self, nbytes: int) -> None:
        self.exchange.lost_bytes += nbytes

    def finish(self, end_ns: int, error: str | None = None) -> Exchange:
        """The Exchange with decoded bodies. Complete when both messages ended and no error was given."""
        ex = self.exchange
        ex.end_ns = end_ns
        ex.error = error
        ex.complete = error is None and self.request_ended and self.response_ended
        ex.request_body_size = self._request_body.size
        ex.response_body_size = self._response_body.size
        ex.request_body, ex.request_truncated, request_error = self._decoded(
            self._request_body, self._request_coding, self.request_ended)
        ex.response_body, ex.response_truncated, response_error = self._decoded(
            self._response_body, self._response_coding, self.response_ended)
        errors = [f"{which} body: {err}" for which, err in (("request", request_error), ("response", response_error))
                  if err]
        ex.content_encoding_error = "; ".join(errors) or None
        return ex

    def _decoded(self, body: _BodyRecorder, coding: str, ended: bool) -> tuple[bytes, bool, str | None]:
        if not body.store:
            return b"", False, None
        wire = body.stored()
        decoded = decode_body(wire, coding, self.options.max_body_bytes,
                              input_complete=ended and not body.truncated)
        return decoded.data, body.truncated or decoded.truncated, decoded.error


def _joined(headers: list[tuple[str, str]], name: str) -> str:
    return ", ".join(value for key, value in headers if key == name)


def decode_header_block(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Wire header (name, value) bytes as text: names lower-cased ASCII, values UTF-8
    (undecodable bytes kept as backslash escapes)."""
    return [(name.decode("ascii", "backslashreplace").lower(), value.decode("utf-8", "backslashreplace"))
            for name, value in raw]

