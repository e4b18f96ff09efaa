"""HTTP/2 exchanges from a client connection's two captured byte streams.

hyperframe cuts each direction into frames; one hpack Decoder per direction keeps
that direction's header compression state (the dynamic table lives as long as the
connection, so every header block is decoded, even of streams we do not track).
Each client stream is one exchange: the request is what the WRITE side sent on it
(HEADERS [+ CONTINUATION], DATA, trailers), the response what the READ side sent
(1xx HEADERS skipped, final HEADERS, DATA, trailers). An exchange is handed out
once both sides ended their stream (END_STREAM), or with an error when the stream
was reset (RST_STREAM), refused by GOAWAY, or the connection closed. Frames that
carry no exchange data (SETTINGS, PING, WINDOW_UPDATE, PRIORITY, unknown types)
are skipped, except that SETTINGS_HEADER_TABLE_SIZE tells the other direction's
decoder how large a table its peer may use.

Promises: nothing raises on malformed input — a framing or HPACK error ends every
exchange in flight with `error="protocol error: ..."`, after which the parser only
counts bytes (`ignored_bytes`), as it does after lost bytes (HPACK state is gone).
Response body bytes are timed by the READ piece in which their DATA frame became
complete (a frame is at most 16 KiB unless the client allowed larger ones).
Cost: O(bytes fed) time; memory per direction: one incomplete frame (≤ 16 MiB +
9 bytes, the largest frame the format allows) and the HPACK table, plus the stored
bodies of the streams in flight (≤ `max_body_bytes` each per direction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import hpack
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PushPromiseFrame,
                              RstStreamFrame, SettingsFrame)

from .exchange import CaptureOptions, Direction, Exchange, ExchangeAssembly, decode_header_block

CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEADER_LIST_BYTES = 256 * 1024
_FRAME_HEADER = 9

ERROR_CODES = ("NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED")


class _ProtocolError(Exception):
    pass


def error_code_name(code: int) -> str:
    return ERROR_CODES[code] if 0 <= code < len(ERROR_CODES) else f"0x{code:x}"


class FrameReader:
    """Cuts one direction's bytes into frames, yielding each with the timestamp of
    the piece that held its first byte.

    Each byte is appended to the buffer once and copied out once with its frame; the
    consumed prefix is dropped once per piece, which moves only the bytes of an
    incomplete frame. So O(bytes) time, and memory of one incomplete frame + one piece.
    """

    def __init__(self, expect_preface: bool):
        self._buffer = bytearray()
        self._preface_left = len(CLIENT_PREFACE) if expect_preface else 0
        self._first_byte_ns = 0

    def feed(self, data: bytes, ts_ns: int) -> list[tuple[Frame, int]]:
        if not self._buffer:
            self._first_byte_ns = ts_ns
        self._buffer += data
        position = self._skip_preface()
        frames = []
        while len(self._buffer) - position >= _FRAME_HEADER:
            header = bytes(self._buffer[position:position + _FRAME_HEADER])
            try:
                frame, length = Frame.parse_frame_header(memoryview(header))
            except HyperframeError as exc:
                raise _ProtocolError(f"bad HTTP/2 frame header: {exc}") from None
            end = position + _FRAME_HEADER + length
            if len(self._buffer) < end:
                break
            try:
                frame.parse_body(memoryview(bytes(self._buffer[position + _FRAME_HEADER:end])))
            except HyperframeError as exc:
                raise _ProtocolError(f"bad HTTP/2 {type(frame).__name__}: {exc}") from None
            frames.append((frame, self._first_byte_ns))
            self._first_byte_ns = ts_ns
            position = end
        del self._buffer[:position]
        return frames

    def _skip_preface(self) -> int:
        if not self._preface_left:
            return 0
        seen = len(CLIENT_PREFACE) - self._preface_left
        piece = bytes(self._buffer[:self._preface_left])
        if piece != CLIENT_PREFACE[seen:seen + len(piece)]:
            raise _ProtocolError("the connection does not start with the HTTP/2 client preface")
        self._preface_left -= len(piece)
        return len(piece)

    @property
    def buffered(self) -> int:
        return len(self._buffer)


@dataclass
class _HeaderBlock:
    """A header block spread over HEADERS/PUSH_PROMISE + CONTINUATION frames."""
    stream_id: int
    end_stream: bool
    is_push_promise: bool
    first_byte_ns: int
    fragments: list[bytes] = field(default_factory=list)
    size: int = 0


class Http2Connection:
    """The HTTP/2 exchanges of one client connection; same inputs and outputs as HttpConnectionParser."""

    def __init__(self, options: CaptureOptions):
        self.options = options
        self.ignored_bytes = 0
        self._readers = {Direction.WRITE: FrameReader(expect_preface=True),
                         Direction.READ: FrameReader(expect_preface=False)}
        self._decoders = {direction: hpack.Decoder(max_header_list_size=MAX_HEADER_LIST_BYTES)
                          for direction in Direction}
        self._open_blocks: dict[Direction, _HeaderBlock | None] = {direction: None for direction in Direction}
        self._streams: dict[int, ExchangeAssembly] = {}
        self._highest_stream_id = 0
        self._read_piece = 0
        self._stopped = False
        self._done: list[Exchange] = []

    # --- the three inputs ---------------------------------------------------------

    def feed(self, direction: Direction, data: bytes, ts_ns: int) -> list[Exchange]:
        if self._stopped:
            self.ignored_bytes += len(data)
            return []
        if direction is Direction.READ:
            self._read_piece += 1
        try:
            for frame, first_byte_ns in self._readers[direction].feed(data, ts_ns):
                self._on_frame(direction, frame, first_byte_ns, ts_ns)
        except _ProtocolError as exc:
            self._finish_all(ts_ns, f"protocol error: {exc}")
            self._stop_parsing()
        return self._take_done()

    def lost(self, direction: Direction, nbytes: int, ts_ns: int) -> list[Exchange]:
        if self._stopped:
            return []
        for assembly in self._streams.values():
            assembly.add_lost(nbytes)
        self._finish_all(ts_ns, f"capture lost {nbytes} bytes of the {direction.value} stream")
        self._stop_parsing()
        return self._take_done()

    def close(self, ts_ns: int) -> list[Exchange]:
        if self._stopped:
            return []
        for assembly in self._streams.values():
            missing = "request" if assembly.response_ended else "response"
            self._done.append(assembly.finish(ts_ns, f"connection closed before the {missing} was complete"))
        self._streams.clear()
        self._stop_parsing()
        return self._take_done()

    # --- frames ---------------------------------------------------------------------

    def _on_frame(self, direction: Direction, frame: Frame, first_byte_ns: int, ts_ns: int) -> None:
        block = self._open_blocks[direction]
        if block is not None:
            if not isinstance(frame, ContinuationFrame) or frame.stream_id != block.stream_id:
                raise _ProtocolError(f"expected a CONTINUATION frame on stream {block.stream_id}, "
                                     f"got {type(frame).__name__} on stream {frame.stream_id}")
            block.fragments.append(frame.data)
            block.size += len(frame.data)
            if block.size > MAX_HEADER_LIST_BYTES:      # a CONTINUATION flood
                raise _ProtocolError(f"header block on stream {block.stream_id} over {MAX_HEADER_LIST_BYTES} bytes")
            if "END_HEADERS" in frame.flags:
                self._open_blocks[direction] = None
                self._on_header_block(direction, block, ts_ns)
        elif isinstance(frame, (HeadersFrame, PushPromiseFrame)):
            block = _HeaderBlock(frame.stream_id, "END_STREAM" in frame.flags,
                                 isinstance(frame, PushPromiseFrame), first_byte_ns, [frame.data], len(frame.data))
            if "END_HEADERS" in frame.flags:
                self._on_header_block(direction, block, ts_ns)
            else:
                self._open_blocks[direction] = block
        elif isinstance(frame, ContinuationFrame):
            raise _ProtocolError(f"CONTINUATION frame on stream {frame.stream_id} without HEADERS")
        elif isinstance(frame, DataFrame):
            self._on_data(direction, frame, ts_ns)
        elif isinstance(frame, RstStreamFrame):
            self._on_reset(frame, ts_ns)
        elif isinstance(frame, GoAwayFrame) and direction is Direction.READ:
            self._on_goaway(frame, ts_ns)
        elif isinstance(frame, SettingsFrame) and SettingsFrame.HEADER_TABLE_SIZE in frame.settings:
            # What one side allows is what the other side's encoder may use, i.e. our decoder of the other side.
            # Never lowered: a block encoded before the peer saw the new setting may still use the old size.
            peer_decoder = self._decoders[Direction.READ if direction is Direction.WRITE else Direction.WRITE]
            size = frame.settings[SettingsFrame.HEADER_TABLE_SIZE]
            peer_decoder.max_allowed_table_size = max(peer_decoder.max_allowed_table_size, size)

    def _on_header_block(self, direction: Direction, block: _HeaderBlock, ts_ns: int) -> None:
        try:
            raw = self._decoders[direction].decode(b"".join(block.fragments), raw=True)
        except hpack.HPACKError as exc:
            raise _ProtocolError(f"HPACK: {exc}") from None
        if block.is_push_promise:
            return      # kept HPACK in step; a pushed stream is no exchange of the client
        headers = decode_header_block(raw)
        if direction is Direction.WRITE:
            self._on_request_headers(block, headers, ts_ns)
        else:
            self._on_response_headers(block, headers, ts_ns)

    def _on_request_headers(self, block: _HeaderBlock, headers: list[tuple[str, str]], ts_ns: int) -> None:
        assembly = self._streams.get(block.stream_id)
        if assembly is None:
            if block.stream_id <= self._highest_stream_id or block.stream_id % 2 == 0:
                return      # a stream already over, or not one the client opened
            self._highest_stream_id = block.stream_id
            assembly = ExchangeAssembly("2", self.options, start_ns=block.first_byte_ns, stream_id=block.stream_id)
            self._streams[block.stream_id] = assembly
            pseudo = {name: value for name, value in headers if name.startswith(":")}
            regular = [(name, value) for name, value in headers if not name.startswith(":")]
            authority = pseudo.get(":authority") or next((v for n, v in regular if n == "host"), "")
            assembly.set_request_head(pseudo.get(":method", ""), pseudo.get(":path", ""), authority,
                                      pseudo.get(":scheme", "https"), regular)
        # else: trailers, which we do not keep
        if block.end_stream:
            assembly.request_ended = True
            self._finish_if_done(block.stream_id, ts_ns)

    def _on_response_headers(self, block: _HeaderBlock, headers: list[tuple[str, str]], ts_ns: int) -> None:
        assembly = self._streams.get(block.stream_id)
        if assembly is None:
            return
        if not assembly.has_response_head:
            status_text = next((value for name, value in headers if name == ":status"), "")
            if not status_text.isdigit():
                raise _ProtocolError(f"response HEADERS on stream {block.stream_id} without a valid :status")
            status = int(status_text)
            if 100 <= status < 200:
                return      # 100 Continue, 103 Early Hints
            assembly.set_response_head(status, [(n, v) for n, v in headers if not n.startswith(":")])
        # else: trailers, which we do not keep
        if block.end_stream:
            assembly.response_ended = True
            assembly.exchange.end_ns = ts_ns
            self._finish_if_done(block.stream_id, ts_ns)

    def _on_data(self, direction: Direction, frame: DataFrame, ts_ns: int) -> None:
        assembly = self._streams.get(frame.stream_id)
        if assembly is None:
            return
        if direction is Direction.WRITE:
            assembly.add_request_body(frame.data)
        else:
            assembly.add_response_body(frame.data, ts_ns, self._read_piece)
        if "END_STREAM" in frame.flags:
            if direction is Direction.WRITE:
                assembly.request_ended = True
            else:
                assembly.response_ended = True
                assembly.exchange.end_ns = ts_ns
            self._finish_if_done(frame.stream_id, ts_ns)

    def _on_reset(self, frame: RstStreamFrame, ts_ns: int) -> None:
        assembly = self._streams.pop(frame.stream_id, None)
        if assembly is not None:
            self._done.append(assembly.finish(ts_ns, f"HTTP/2 stream reset ({error_code_name(frame.error_code)})"))

    def _on_goaway(self, frame: GoAwayFrame, ts_ns: int) -> None:
        """The server will not process streams above last_stream_id: those exchanges end now."""
        refused = [sid for sid in self._streams if sid > frame.last_stream_id]
        for stream_id in refused:
            self._done.append(self._streams.pop(stream_id).finish(
                ts_ns, f"HTTP/2 GOAWAY ({error_code_name(frame.error_code)}): the server did not process the stream"))

    # --- finishing ------------------------------------------------------------------

    def _finish_if_done(self, stream_id: int, ts_ns: int) -> None:
        assembly = self._streams[stream_id]
        if assembly.request_ended and assembly.response_ended:
            del self._streams[stream_id]
            self._done.append(assembly.finish(assembly.exchange.end_ns or ts_ns))

    def _finish_all(self, ts_ns: int, error: str) -> None:
        for assembly in self._streams.values():
            self._done.append(assembly.finish(ts_ns, error))
        self._streams.clear()

    def _stop_parsing(self) -> None:
        """No more HTTP/2 on this connection: what is buffered, and all later bytes, are ignored."""
        self._stopped = True
        self.ignored_bytes += sum(reader.buffered for reader in self._readers.values())

    def _take_done(self) -> list[Exchange]:
        done, self._done = self._done, []
        return done
