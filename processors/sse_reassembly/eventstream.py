"""Sans-IO parsers for the three ways LLM APIs stream: Server-Sent Events, newline-delimited
JSON, and Gemini's streamed JSON array.

Each parser is fed the response body in whatever pieces it arrived (`feed(piece)`) and
returns the records completed by that piece; `close()` says what the stream was in the
middle of when it ended. No sockets, clocks or threads: the same parser serves captured
bytes, replayed files and tests.

- `SseParser`: `text/event-stream` exactly as the WHATWG HTML standard interprets it
  ("9.2.6 Interpreting an event stream"): one leading BOM ignored; lines end in CR, LF or
  CRLF, also when the CR ends one piece and the LF starts the next; `:` starts a comment;
  `field:value` with one leading space of the value stripped, a line without a colon is a
  field with an empty value; `data` lines are joined with LF; `event` sets the type
  (default `message`); `id` (unless it holds NUL) sets the last event ID, which persists;
  `retry` (ASCII digits only) sets the reconnection time; other fields are ignored; a blank
  line dispatches the event unless no `data` line came. Text is UTF-8 with invalid
  sequences replaced by U+FFFD, as the spec's decoder does.
- `NdjsonParser`: one JSON text per LF-terminated line (CRLF accepted), blank lines skipped.
- `JsonArrayParser`: the elements of one top-level JSON array, each returned as soon as
  its closing bracket arrives (`[{...},\\r\\n{...}]`, how `:streamGenerateContent` answers
  without `alt=sse`).

Cost: O(bytes) overall, whatever the split. Every byte is looked at a bounded number of
times: line ends are found in the new piece only (C-level `replace`/`split`/regex), and a
line or element that spans pieces is collected in a bytearray that is only appended to
and read out once when it ends, never rescanned as it grows. Memory: one incomplete line
(SSE, NDJSON) or element (JSON array) plus the event being built.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    """A dispatched event: what an EventSource hands to its `message` listeners.
    (A NamedTuple: one is made per event, and it is the cheapest immutable record.)"""

    data: str
    event: str = "message"  # the event type
    id: str = ""  # the last event ID at dispatch (it persists across events)
    retry: int | None = None  # the reconnection time (ms) last set by the stream, if any


def _text(raw: bytes | bytearray) -> str:
    return raw.decode("utf-8", "replace")


_EVENT_TYPES: dict[bytes, str] = {b"": "message"}  # a stream repeats a few event types: decode each once


def _event_type(raw: bytes) -> str:
    if not raw:
        return "message"
    name = _EVENT_TYPES.get(raw)
    if name is None:
        name = _text(raw)
        if len(_EVENT_TYPES) < 256 and len(raw) <= 64:
            _EVENT_TYPES[raw] = name
    return name


class _LineSplitter:
    """Splits a byte stream into lines ended by CR, LF or CRLF (`universal` = False:
    LF only, a CR before it dropped), without rescanning a line that spans pieces."""

    def __init__(self, universal: bool):
        self._universal = universal
        self._partial = bytearray()  # the line in progress, when it began in an earlier piece
        self._after_cr = False  # the previous piece ended in CR: an LF starting this one is its pair

    def feed(self, piece: bytes) -> list[bytes]:
        if self._universal:
            if self._after_cr and piece[:1] == b"\n":
                piece = piece[1:]
            if not piece:
                self._after_cr = False
                return []
            self._after_cr = piece[-1:] == b"\r"
            if b"\r" in piece:
                piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in piece:
            self._partial += piece
            return []
        lines = piece.split(b"\n")
        if self._partial:
            lines[0] = bytes(self._partial) + lines[0]
            self._partial.clear()
        last = lines.pop()
        if last:
            self._partial += last
        if not self._universal:
            lines = [line[:-1] if line[-1:] == b"\r" else line for line in lines]
        return lines

    def rest(self) -> bytes:
        """The unterminated last line, taken out."""
        rest = bytes(self._partial)
        self._partial.clear()
        if not self._universal and rest[-1:] == b"\r":
            rest = rest[:-1]
        return rest


class SseParser:
    """WHATWG event-stream interpretation, fed in pieces. See the module docstring."""

    def __init__(self) -> None:
        self._lines = _LineSplitter(universal=True)
        self._head: bytearray | None = bytearray()  # first bytes, until we know whether they are a BOM
        self._data: list[bytes] = []  # the data buffer, one entry per `data` line
        self._event = b""  # the event type buffer
        self.last_event_id = ""
        self.retry: int | None = None
        self.ended_cleanly = True  # set by close(): nothing was left half-received

    def feed(self, piece: bytes) -> list[ServerSentEvent]:
        if self._head is not None:
            self._head += piece
            if len(self._head) < 3 and _BOM.startswith(self._head):
                return []  # could still be a BOM split across pieces
            head, self._head = bytes(self._head), None
            piece = head[3:] if head.startswith(_BOM) else head
        if not piece:
            return []
        lines = self._lines.feed(piece)
        if not lines:
            return []
        events: list[ServerSentEvent] = []
        data = self._data
        for line in lines:
            # The lines LLM streams are made of come first, inline (this loop is the hot path
            # of the processor); _line has the general rule.
            if not line:
                if data:
                    text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
                    event_type = _EVENT_TYPES.get(self._event) or _event_type(self._event)
                    events.append(ServerSentEvent(text, event_type, self.last_event_id, self.retry))
                    data = self._data = []
                self._event = b""
            elif line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[:6] == b"event:":
                self._event = line[7:] if line[6:7] == b" " else line[6:]
            else:
                self._line(line, events)
                data = self._data
        return events

    def _line(self, line: bytes, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == 0x3A:  # ':' comment (OpenRouter's ": OPENROUTER PROCESSING" keep-alives)
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = _text(value)
        elif name == b"retry":
            if value and value.isdigit():  # bytes.isdigit: ASCII digits only, as the spec asks
                self.retry = int(value)

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if not self._data:
            self._event = b""
            return
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        events.append(ServerSentEvent(_text(data), _event_type(self._event), self.last_event_id, self.retry))
        self._data = []
        self._event = b""

    def close(self) -> ServerSentEvent | None:
        """End of stream. Returns the event it stopped in the middle of (what a blank line
        would have dispatched now, counting an unterminated last line), or None. The spec
        discards it; it is returned apart so a caller can report a stream cut short."""
        if self._head is not None:
            head, self._head = bytes(self._head), None
            for line in self._lines.feed(head):
                self._line(line, [])
        rest = self._lines.rest()
        self.ended_cleanly = not rest and not self._data and not self._event
        if rest:
            self._line(rest, [])
        pending: list[ServerSentEvent] = []
        self._dispatch(pending)
        return pending[0] if pending else None


class NdjsonParser:
    """Newline-delimited JSON (Ollama): returns each non-blank line's text."""

    def __init__(self) -> None:
        self._lines = _LineSplitter(universal=False)
        self.ended_cleanly = True

    def feed(self, piece: bytes) -> list[str]:
        return [_text(line) for line in self._lines.feed(piece) if line.strip()]

    def close(self) -> str | None:
        """The unterminated last line, if it holds anything."""
        rest = self._lines.rest()
        self.ended_cleanly = not rest.strip()
        return _text(rest) if rest.strip() else None


_OUTSIDE_STRING = re.compile(rb'["\[\]{}]')
_INSIDE_STRING = re.compile(rb'["\\]')


class JsonArrayParser:
    """The object and array elements of one top-level JSON array, as their text.

    Only brackets and strings are tracked (commas and whitespace between elements are
    skipped; scalars at the top level are skipped too: no LLM API streams those), so
    each element is checked by the JSON decoder that reads it, not here."""

    def __init__(self) -> None:
        self._element = bytearray()  # the element in progress, when it began in an earlier piece
        self._depth = 0  # bracket depth; the outer array is depth 1
        self._in_string = False
        self._escaped = False  # inside a string, the previous byte was a backslash
        self.opened = False  # the outer '[' was seen
        self.closed = False  # the outer ']' was seen
        self.stray_bytes = False  # non-whitespace before the '[' or after the ']'
        self.ended_cleanly = True

    def feed(self, piece: bytes) -> list[str]:
        elements: list[str] = []
        if self.closed:
            self.stray_bytes = self.stray_bytes or bool(piece.strip())
            return elements
        pos, end = 0, len(piece)
        start = 0 if self._depth >= 2 else -1  # where the element in progress starts in this piece
        while pos < end:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                    pos += 1
                    continue
                m = _INSIDE_STRING.search(piece, pos)
                if m is None:
                    break
                pos = m.end()
                if piece[m.start()] == 0x5C:  # backslash: the next byte is taken as is
                    self._escaped = True
                else:
                    self._in_string = False
                continue
            m = _OUTSIDE_STRING.search(piece, pos)
            if m is None:
                break
            at, pos = m.start(), m.end()
            c = piece[at]
            if self._depth == 0:
                if c == 0x5B:
                    self.stray_bytes = self.stray_bytes or bool(piece[:at].strip())
                    self._depth, self.opened = 1, True
                else:
                    self.stray_bytes = True
                    if c == 0x22:
                        self._in_string = True
                continue
            if c == 0x22:
                self._in_string = True
            elif c in (0x7B, 0x5B):  # { [
                if self._depth == 1:
                    start = at
                self._depth += 1
            else:  # } ]
                self._depth -= 1
                if self._depth == 1:
                    if self._element:
                        self._element += piece[max(start, 0):pos]
                        elements.append(_text(self._element))
                        self._element.clear()
                    else:
                        elements.append(_text(piece[start:pos]))
                    start = -1
                elif self._depth == 0:
                    self.closed = True
                    self.stray_bytes = self.stray_bytes or bool(piece[pos:].strip())
                    return elements
        if self._depth >= 2:
            self._element += piece[max(start, 0):]
        return elements

    def close(self) -> str | None:
        """The element in progress when the stream ended (incomplete JSON text), or None."""
        self.ended_cleanly = self.closed
        if self._element:
            rest = _text(self._element)
            self._element.clear()
            return rest
        return None
