"""One streamed response body → the object the API would have returned without streaming,
plus what the stream itself told: how many events, whether it ended, what went wrong,
and when each output chunk arrived.

`StreamReassembler` is sans-IO: `feed(piece, time_unix_nano)` each read as it arrived,
then `close()` for a `StreamResult`. Framing (SSE, NDJSON, JSON array) is given by the
caller; the API format is recognised from the first record that shows it (a chunk's
`object`, an event's `type`, the keys of a record), the request's URL path or body being
only a hint for records that show nothing (an error before any content). Records that
come before the format is known wait for it (at most `MAX_UNRECOGNIZED`; after that the
stream is declared of unknown format).

Per the SSE spec an event without its closing blank line is not dispatched; a stream
that ends that way is incomplete. The reassembler still uses such a last event when its
data is whole JSON — a server that closes right after `data: [DONE]` has said all it had.

Nothing here raises on bad input: undecodable records are counted (`invalid_events`)
and the first problem is named in `error`. Cost: the parsers' O(bytes), one JSON decode
per record, and the accumulators' O(record size).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .accumulator import Accumulator, ProviderError
from .anthropic_messages import MessagesAccumulator
from .eventstream import JsonArrayParser, NdjsonParser, ServerSentEvent, SseParser
from .gemini_generate_content import GenerateContentAccumulator
from .ollama import OllamaChatAccumulator, OllamaGenerateAccumulator
from .openai_chat import ChatCompletionsAccumulator, CompletionsAccumulator
from .openai_responses import ResponsesAccumulator

SSE, NDJSON, JSON_ARRAY = "sse", "ndjson", "json_array"
UNKNOWN = "unknown"
MAX_UNRECOGNIZED = 32

ACCUMULATORS: dict[str, type[Accumulator]] = {cls.format: cls for cls in (
    ChatCompletionsAccumulator, CompletionsAccumulator, ResponsesAccumulator, MessagesAccumulator,
    GenerateContentAccumulator, OllamaChatAccumulator, OllamaGenerateAccumulator)}
CHAT, COMPLETIONS, RESPONSES = "openai.chat_completions", "openai.completions", "openai.responses"
ANTHROPIC, GEMINI = "anthropic.messages", "gemini.generate_content"
OLLAMA_CHAT, OLLAMA_GENERATE = "ollama.chat", "ollama.generate"

_ANTHROPIC_TYPES = frozenset({"message_start", "content_block_start", "content_block_delta",
                              "content_block_stop", "message_delta", "message_stop", "ping"})
_GEMINI_KEYS = ("candidates", "usageMetadata", "promptFeedback")


def detect_format(record: Any, hint: str | None = None) -> str | None:
    """The API format a decoded record belongs to, from its content; `hint` decides for a
    record that shows none (e.g. an error before any content). None: cannot tell yet."""
    if not isinstance(record, dict):
        return None
    kind = record.get("type")
    if isinstance(kind, str):
        if kind.startswith("response."):
            return RESPONSES
        if kind in _ANTHROPIC_TYPES:
            return ANTHROPIC
        if kind == "error":
            # Anthropic nests the error ({"type":"error","error":{...}}); Responses does not.
            return ANTHROPIC if isinstance(record.get("error"), dict) else RESPONSES
    kind = record.get("object")
    if kind == "chat.completion.chunk":
        return CHAT
    if kind == "error" and hint is None:
        return CHAT  # vLLM's error object, an OpenAI-compatible server's
    if kind == "text_completion":
        return COMPLETIONS
    if any(key in record for key in _GEMINI_KEYS):
        return GEMINI
    if "done" in record and "model" in record:
        if "message" in record:
            return OLLAMA_CHAT
        if "response" in record:
            return OLLAMA_GENERATE
    choices = record.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        if "delta" in choices[0]:
            return CHAT
        if "text" in choices[0]:
            return COMPLETIONS
    error = record.get("error")
    if hint is None and isinstance(error, dict) and "status" in error and "code" in error:
        return GEMINI  # google.rpc.Status
    return hint


_PATH_HINTS = [(re.compile(pattern), fmt) for pattern, fmt in (
    (r":streamGenerateContent$|:generateContent$", GEMINI),
    (r"/chat/completions$", CHAT),
    (r"/completions$", COMPLETIONS),
    (r"/responses(/[^/]+)?$", RESPONSES),
    (r"/messages$", ANTHROPIC),
    (r"/api/chat$", OLLAMA_CHAT),
    (r"/api/generate$", OLLAMA_GENERATE),
)]


def hint_from_request(path: str | None, request_body: Any = None, framing: str = SSE) -> str | None:
    """A guess at the API format from the request: its URL path first, then its body's keys."""
    if path:
        for pattern, fmt in _PATH_HINTS:
            if pattern.search(path):
                return fmt
    body = request_body
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return None
    ollama = framing == NDJSON
    if "contents" in body:
        return GEMINI
    if "messages" in body:
        return OLLAMA_CHAT if ollama else CHAT
    if "input" in body:
        return RESPONSES
    if "prompt" in body:
        return OLLAMA_GENERATE if ollama else COMPLETIONS
    return None


_scan_once = json.JSONDecoder().scan_once


def _loads(text: str) -> Any:
    """json.loads, minus its Python-level wrapper on the common case of a record that starts
    with its value (one record per event makes that wrapper a tenth of the decoding time)."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)  # leading whitespace, or not JSON: its own error message
    if end != len(text) and text[end:].strip():
        return json.loads(text)  # raises "Extra data"
    return value


@dataclass
class StreamResult:
    format: str  # one of ACCUMULATORS, or UNKNOWN
    reassembled: dict | None  # the non-streaming object
    events: int  # records parsed (SSE events, NDJSON lines, array elements)
    complete: bool | None  # the stream's terminator came (None: unknown format, cannot tell)
    error: str | None = None  # the first problem met
    invalid_events: int = 0  # records that did not decode
    unknown_events: int = 0  # records of a type the format does not define (ignored)
    provider_error: ProviderError | None = None
    output_times: list[int] = field(default_factory=list)  # read time of each output-carrying record
    last_time: int | None = None  # read time of the last record


class StreamReassembler:
    """Feed a streamed body read by read; `close()` gives the StreamResult."""

    def __init__(self, framing: str, hint: str | None = None):
        self.framing = framing
        self.hint = hint
        self._parser = {SSE: SseParser, NDJSON: NdjsonParser, JSON_ARRAY: JsonArrayParser}[framing]()
        self._accumulator: Accumulator | None = None
        self._waiting: list[tuple[int, str, Any, int | None]] = []  # (number, type, record, time) before the
        # format was known
        self._done_marker = False
        self._events = 0
        self._invalid = 0
        self._error: str | None = None
        self._output_times: list[int] = []
        self._last_time: int | None = None
        self._gave_up = False

    def feed(self, piece: bytes, time_unix_nano: int | None = None) -> None:
        if self._gave_up:
            return
        for record in self._parser.feed(piece):
            self._record(record, time_unix_nano, tail=False)

    def _record(self, record: ServerSentEvent | str, time: int | None, tail: bool) -> bool:
        if isinstance(record, ServerSentEvent):
            event, data = record.event, record.data
        else:
            event, data = "message", record
        if data.startswith("[DONE]"):
            self._events += 1
            self._last_time = time
            self._done_marker = True
            if self._accumulator is not None:
                self._accumulator.done_marker()
            return True
        try:
            value = _loads(data)
        except ValueError as e:
            if tail:
                return False  # the stream was cut inside its last record: incomplete, not invalid
            self._events += 1
            if data.strip():
                self._invalid += 1
                self._note(f"invalid JSON in event {self._events}: {e}")
            return False
        self._events += 1
        self._last_time = time
        if self._accumulator is None:
            fmt = detect_format(value, self.hint)
            if fmt is None:
                if len(self._waiting) >= MAX_UNRECOGNIZED:
                    self._gave_up = True
                else:
                    self._waiting.append((self._events, event, value, time))
                return True
            self._start(fmt)
        self._apply(self._events, event, value, time)
        return True

    def _start(self, fmt: str) -> None:
        self._accumulator = ACCUMULATORS[fmt]()
        waiting, self._waiting = self._waiting, []
        for number, event, value, time in waiting:
            self._apply(number, event, value, time)

    def _apply(self, number: int, event: str, value: Any, time: int | None) -> None:
        try:
            if self._accumulator.add(event, value) and time is not None:
                self._output_times.append(time)
        except Exception as e:  # a record of an unexpected shape costs that record only
            self._invalid += 1
            self._note(f"unexpected content in event {number}: {type(e).__name__}: {e}")

    def _note(self, problem: str) -> None:
        if self._error is None:
            self._error = problem

    def close(self) -> StreamResult:
        tail = None if self._gave_up else self._parser.close()
        clean = self._parser.ended_cleanly
        if tail is not None:
            clean = self._record(tail, self._last_time, tail=True) and self.framing != JSON_ARRAY
        if self._accumulator is None and self._waiting and self.hint is not None:
            self._start(self.hint)
        acc = self._accumulator
        if acc is None:
            return StreamResult(UNKNOWN, None, self._events, None, self._error or self._unknown_reason(),
                                self._invalid)
        if self._done_marker:
            acc.done_marker()
        acc.end(clean)
        try:
            reassembled = acc.result()
        except Exception as e:
            reassembled = None
            self._note(f"cannot build the final object: {type(e).__name__}: {e}")
        if acc.problem:
            self._note(acc.problem)
        return StreamResult(acc.format, reassembled, self._events, acc.complete, self._error, self._invalid,
                            acc.unknown_events, acc.error, self._output_times, self._last_time)

    def _unknown_reason(self) -> str:
        if self._events == 0:
            what = {SSE: "no server-sent events", NDJSON: "no JSON lines", JSON_ARRAY: "no JSON array elements"}
            return f"not a stream of a known LLM API: {what[self.framing]} in the body"
        return f"not a stream of a known LLM API: {self._events} records, none of a known format"


def reassemble(pieces, framing: str, hint: str | None = None) -> StreamResult:
    """Convenience: `pieces` is an iterable of bytes or of (bytes, time_unix_nano)."""
    reassembler = StreamReassembler(framing, hint)
    for piece in pieces:
        if isinstance(piece, tuple):
            reassembler.feed(*piece)
        else:
            reassembler.feed(piece)
    return reassembler.close()
