"""HTTP/1.x exchanges from a client connection's two captured byte streams, parsed by h11.

Two h11 connections do the parsing, one per direction:
- `_requests` (our_role=SERVER) reads the WRITE stream, i.e. the requests. After
  each request has ended we send it a minimal made-up response, which is all h11
  needs to move on to the next request (keep-alive and pipelining).
- `_responses` (our_role=CLIENT) reads the READ stream. Before the response of an
  exchange can be read we send it a minimal copy of that exchange's request
  (method, and the Upgrade header if any), so that h11 frames the response as the
  real client did: no body after HEAD, a tunnel after 101 or a 2xx to CONNECT.
Responses come in request order, so the exchanges waiting for one form a queue.

Promises: exchanges are handed out in the order they finish, each exactly once;
nothing raises on malformed input — a protocol error ends every exchange in flight
with `error="protocol error: ..."` and the parser then only counts bytes (in
`ignored_bytes`), as after lost bytes (the stream is desynchronised) or after a
protocol switch (101, CONNECT: no more HTTP on this connection).
Cost: O(bytes fed) time overall (h11's receive buffer is linear, our own work is
O(1) per h11 event plus the bytes we store). Memory: per direction one incomplete
head (≤ `MAX_HEAD_BYTES`) plus h11's buffer of the current piece, plus the stored
bodies of the exchanges in flight (≤ `max_body_bytes` each per direction).
"""

from __future__ import annotations

from collections import deque

import h11

from .exchange import CaptureOptions, Direction, Exchange, ExchangeAssembly, decode_header_block

MAX_HEAD_BYTES = 256 * 1024


class Http1Connection:
    """The HTTP/1.x exchanges of one client connection; same inputs and outputs as HttpConnectionParser."""

    def __init__(self, options: CaptureOptions):
        self.options = options
        self.ignored_bytes = 0
        self._requests = h11.Connection(our_role=h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._responses = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._in_flight: dict[ExchangeAssembly, None] = {}   # an ordered set: request order, O(1) removal
        self._writing: ExchangeAssembly | None = None        # its request body is being read
        # Exchanges waiting for their response, each with the request to replay to _responses; [0]'s is sent.
        self._awaiting_response: deque[tuple[ExchangeAssembly, h11.Request]] = deque()
        self._next_request_start_ns: int | None = None
        self._read_piece = 0
        self._last_read_ns = 0
        self._unanswerable_read_bytes = 0                    # READ bytes seen while no request was waiting
        self._stopped = False
        self._done: list[Exchange] = []

    # --- the three inputs ---------------------------------------------------------

    def feed(self, direction: Direction, data: bytes, ts_ns: int) -> list[Exchange]:
        if self._stopped:
            self.ignored_bytes += len(data)
            return []
        if not data:
            return []       # (h11 would take b"" for the end of the stream)
        try:
            if direction is Direction.WRITE:
                self._feed_requests(data, ts_ns)
            else:
                self._feed_responses(data, ts_ns)
        except h11.ProtocolError as exc:
            self._finish_all(ts_ns, f"protocol error: {exc}")
            self._stop_parsing(ignored_now=len(data))
        return self._take_done()

    def lost(self, direction: Direction, nbytes: int, ts_ns: int) -> list[Exchange]:
        if self._stopped:
            return []
        for assembly in self._in_flight:
            assembly.add_lost(nbytes)
        self._finish_all(ts_ns, f"capture lost {nbytes} bytes of the {direction.value} stream")
        self._stop_parsing()
        return self._take_done()

    def close(self, ts_ns: int) -> list[Exchange]:
        if self._stopped:
            return []
        try:
            if self._awaiting_response:
                self._responses.receive_data(b"")   # ends a body that is read until close
                self._read_responses(self._last_read_ns)
        except h11.ProtocolError:
            pass        # a body cut short: reported below like any other unfinished exchange
        for assembly in self._in_flight:
            missing = "request" if assembly.response_ended else "response"
            self._done.append(assembly.finish(ts_ns, f"connection closed before the {missing} was complete"))
        self._in_flight.clear()
        self._stop_parsing()
        return self._take_done()

    # --- WRITE: requests ------------------------------------------------------------

    def _feed_requests(self, data: bytes, ts_ns: int) -> None:
        if self._next_request_start_ns is None:
            self._next_request_start_ns = ts_ns
        self._requests.receive_data(data)
        some_request_ended = False
        while True:
            event = self._requests.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.Request):
                self._start_exchange(event)
            elif isinstance(event, h11.Data):
                self._writing.add_request_body(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._end_request(ts_ns)
                some_request_ended = True
        # The next request starts in this piece if bytes of it are already here, else in a later one.
        # (Checked once per piece: what h11 still holds are bytes of this piece.)
        if some_request_ended and self._writing is None and not self._requests.trailing_data[0]:
            self._next_request_start_ns = None

    def _start_exchange(self, request: h11.Request) -> None:
        headers = decode_header_block(list(request.headers))
        assembly = ExchangeAssembly(request.http_version.decode("ascii"), self.options,
                                    start_ns=self._next_request_start_ns or 0)
        host = next((value for name, value in headers if name == "host"), "")
        assembly.set_request_head(request.method.decode("ascii"), request.target.decode("ascii", "replace"),
                                  host, "https", headers)
        self._in_flight[assembly] = None
        self._writing = assembly
        self._awaiting_response.append((assembly, _replayable(request)))
        self._replay_next_request()
        self._read_responses(self._last_read_ns)   # READ bytes may have come before this head was complete

    def _end_request(self, ts_ns: int) -> None:
        assembly, self._writing = self._writing, None
        assembly.request_ended = True
        # Any non-2xx status will do (a 2xx would accept a CONNECT as a tunnel); the real one is on READ.
        self._requests.send(h11.Response(status_code=404, headers=[("content-length", "0")]))
        self._requests.send(h11.EndOfMessage())
        if self._requests.states == {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
            self._requests.start_next_cycle()
        self._next_request_start_ns = ts_ns
        self._finish_if_done(assembly, assembly.exchange.end_ns or ts_ns)

    # --- READ: responses ------------------------------------------------------------

    def _feed_responses(self, data: bytes, ts_ns: int) -> None:
        self._read_piece += 1
        self._last_read_ns = ts_ns
        if not self._awaiting_response:
            self._unanswerable_read_bytes += len(data)
            if self._unanswerable_read_bytes > MAX_HEAD_BYTES:
                raise h11.RemoteProtocolError("response bytes without a request")
        self._responses.receive_data(data)
        self._read_responses(ts_ns)

    def _replay_next_request(self) -> None:
        if self._awaiting_response and self._responses.our_state is h11.IDLE:
            self._responses.send(self._awaiting_response[0][1])
            self._responses.send(h11.EndOfMessage())
            self._unanswerable_read_bytes = 0

    def _read_responses(self, ts_ns: int) -> None:
        while self._awaiting_response:
            assembly = self._awaiting_response[0][0]
            event = self._responses.next_event()
            if event is h11.PAUSED and self._responses.their_state is h11.SWITCHED_PROTOCOL:
                self._switched_protocol(assembly, ts_ns)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, h11.InformationalResponse):    # 100 Continue, 103 Early Hints, 101
                if event.status_code == 101:
                    self._response_head(assembly, event)
            elif isinstance(event, h11.Response):
                self._response_head(assembly, event)
            elif isinstance(event, h11.Data):
                assembly.add_response_body(event.data, ts_ns, self._read_piece)
            elif isinstance(event, h11.EndOfMessage):
                self._end_response(assembly, ts_ns)

    def _response_head(self, assembly: ExchangeAssembly, response: h11.Response | h11.InformationalResponse) -> None:
        version = response.http_version.decode("ascii")
        assembly.exchange.protocol = version
        assembly.set_response_head(response.status_code, decode_header_block(list(response.headers)))

    def _end_response(self, assembly: ExchangeAssembly, ts_ns: int) -> None:
        self._awaiting_response.popleft()
        assembly.response_ended = True
        assembly.exchange.end_ns = ts_ns
        if self._responses.states == {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
            self._responses.start_next_cycle()
            self._replay_next_request()
        self._finish_if_done(assembly, ts_ns)

    def _switched_protocol(self, assembly: ExchangeAssembly, ts_ns: int) -> None:
        """After 101 Switching Protocols or a 2xx to CONNECT the bytes are no longer HTTP."""
        self._awaiting_response.popleft()
        assembly.response_ended = True
        assembly.exchange.end_ns = ts_ns
        self._finish_if_done(assembly, ts_ns)
        self._finish_all(ts_ns, "the connection switched to another protocol")
        self._stop_parsing()

    # --- finishing ------------------------------------------------------------------

    def _finish_if_done(self, assembly: ExchangeAssembly, end_ns: int) -> None:
        if assembly.request_ended and assembly.response_ended:
            del self._in_flight[assembly]
            self._done.append(assembly.finish(end_ns))

    def _finish_all(self, ts_ns: int, error: str) -> None:
        for assembly in self._in_flight:
            self._done.append(assembly.finish(ts_ns, error))
        self._in_flight.clear()

    def _stop_parsing(self, ignored_now: int = 0) -> None:
        """No more HTTP on this connection: what h11 still holds, and all later bytes, are ignored."""
        self._awaiting_response.clear()
        self._writing = None
        self._stopped = True
        self.ignored_bytes += ignored_now + self._buffered_bytes()

    def _buffered_bytes(self) -> int:
        return sum(len(conn.trailing_data[0]) for conn in (self._requests, self._responses)
                   if conn.their_state is not h11.ERROR)

    def _take_done(self) -> list[Exchange]:
        done, self._done = self._done, []
        return done


def _replayable(request: h11.Request) -> h11.Request:
    """What `_responses` must have seen sent to frame the response like the real client: the method, and
    an Upgrade proposal if there was one. Nothing else (no target query, no credentials) is kept."""
    headers = [("host", "captured")]
    upgrade = [value for name, value in request.headers if name == b"upgrade"]
    if upgrade:
        headers += [("connection", "upgrade"), ("upgrade", upgrade[0])]
    return h11.Request(method=request.method, target="/", headers=headers)
