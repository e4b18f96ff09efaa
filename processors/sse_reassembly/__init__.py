"""`sse_reassembly` processor: a streamed LLM response captured as raw bytes → the object
the API would have returned without streaming, with the stream's timings and health.

For every span whose `llmtap.http.response.body` is a stream — Server-Sent Events
(`text/event-stream`), NDJSON (`application/x-ndjson` and kin) or Gemini's JSON array
(`:streamGenerateContent` without `alt=sse`) — it writes the attributes of
docs/genai.md ("Output of `sse_reassembly`"): `llmtap.http.response.reassembled` (the
non-streaming object as JSON text, what `genai_semconv` reads in place of the body),
`llmtap.stream.*`, `gen_ai.response.time_to_first_chunk`, and `error.type` + status
ERROR for a provider error event or a stream cut short. Formats: OpenAI Chat
Completions (and the servers that speak it: vLLM, llama.cpp, OpenRouter, Groq, DeepSeek,
Azure, Ollama's /v1), legacy Completions and the Responses API, Anthropic Messages,
Gemini generateContent, Ollama /api/chat and /api/generate.

Which spans: a body whose content-type declares a stream is always reported, with
`llmtap.stream.format = unknown` and `llmtap.stream.error` when it is of no known
format. A body without such a content-type is sniffed (SSE field lines; several JSON
lines; a JSON array) and reported only when its content is a known format, so ordinary
JSON and other traffic go by untouched. The request's URL path and body are hints for
the format; the content decides.

Timings come from `llmtap.http.response.read.time_unix_nano` and `.read.end_offset`:
the body is fed to the parser read by read, so every record is stamped with the read
that completed it. Offsets count body bytes before content decoding; when the body was
content-encoded (or the offsets do not add up to the body) there is no per-read timing.

No settings: everything it does is decided by the data, and it only adds attributes
(dropping the raw ones is `genai_semconv`'s `keep_raw`). Cost per span: O(body bytes)
parsing plus one JSON decode per event and one encode of the result; spans without a
body cost one scan of their attribute keys. Never raises for one span: an internal
failure is logged and named in `llmtap.stream.error`, and the rest of the batch goes on.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap import attributes
from llmtap.component import EmptyConfig, Factory, Kind, Signal, Stability
from llmtap.processorhelper import SpanProcessor

from .reassembler import (JSON_ARRAY, NDJSON, SSE, UNKNOWN, StreamReassembler, StreamResult,
                          hint_from_request)

# Inputs
RESPONSE_BODY = "llmtap.http.response.body"
RESPONSE_TRUNCATED = "llmtap.http.response.body.truncated"
CONTENT_TYPE = "llmtap.http.response.header.content-type"
CONTENT_ENCODING = "llmtap.http.response.header.content-encoding"
READ_TIMES = "llmtap.http.response.read.time_unix_nano"
READ_ENDS = "llmtap.http.response.read.end_offset"
REQUEST_BODY = "llmtap.http.request.body"
URL_FULL, URL_PATH = "url.full", "url.path"
ERROR_TYPE = "error.type"
_INPUTS = frozenset({RESPONSE_BODY, RESPONSE_TRUNCATED, CONTENT_TYPE, CONTENT_ENCODING, READ_TIMES, READ_ENDS,
                     REQUEST_BODY, URL_FULL, URL_PATH, ERROR_TYPE})

# Outputs
REASSEMBLED = "llmtap.http.response.reassembled"
FORMAT = "llmtap.stream.format"
EVENTS = "llmtap.stream.events"
COMPLETE = "llmtap.stream.complete"
STREAM_ERROR = "llmtap.stream.error"
INVALID_EVENTS = "llmtap.stream.invalid_events"
UNKNOWN_EVENTS = "llmtap.stream.unknown_events"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
TIME_PER_OUTPUT_CHUNK = "llmtap.stream.time_per_output_chunk"
DURATION = "llmtap.stream.duration"

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/json-lines", "application/jsonlines", "application/x-jsonlines"})
_TERMINATORS = {"openai.chat_completions": "data: [DONE]", "openai.completions": "data: [DONE]",
                "openai.responses": "response.completed", "anthropic.messages": "message_stop",
                "gemini.generate_content": "a finishReason on every candidate",
                "ollama.chat": '"done": true', "ollama.generate": '"done": true'}
_SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":", b"data\n", b"data\r")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def choose_framing(content_type: str | None, body: bytes, path: str | None) -> tuple[str, bool] | None:
    """(framing, declared) for a response body, or None when it is not a stream. `declared`:
    the content-type (or the endpoint) says it is a stream, rather than its bytes."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return SSE, True
    if media in NDJSON_TYPES:
        return NDJSON, True
    if media not in ("", "application/json", "text/plain"):
        return None
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return JSON_ARRAY, bool(path and path.endswith(":streamGenerateContent"))
    if not media and head.startswith(_SSE_FIELDS):
        return SSE, False
    if head.startswith(b"{") and _several_json_lines(body):
        return NDJSON, False
    return None


def _several_json_lines(body: bytes) -> bool:
    first, newline, rest = body.partition(b"\n")
    if not newline or not rest.strip():
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _ints(value: AnyValue | None) -> list[int] | None:
    """An int[] attribute (a read array: one entry per read, hundreds per stream), read
    without the general to_python; None if it is anything else."""
    if value is None or value.WhichOneof("value") != "array_value":
        return None
    items = value.array_value.values
    # Arrays are homogeneous in practice; the first item tells (checking every one would
    # cost more than reading them). A stray non-int reads as 0, which the offset checks reject.
    if not items or items[0].WhichOneof("value") != "int_value":
        return None
    return [item.int_value for item in items]


def _read_boundaries(times: list[int] | None, ends: list[int] | None, size: int, truncated: bool,
                     encoded: bool) -> list[tuple[int, int]] | None:
    """[(end offset, time)] of the reads, when they describe this body; None otherwise."""
    if encoded or not times or not ends or len(times) != len(ends):
        return None
    if any(b < a for a, b in zip(ends, ends[1:])) or ends[0] < 0:
        return None
    if ends[-1] != size and not (truncated and ends[-1] >= size):
        return None  # content-decoded, or not this body's reads
    return list(zip(ends, times))


def reassemble_span(span: Span) -> bool:
    """Write the stream attributes on `span` if its body is a stream. True if it was."""
    found: dict[str, Any] = {}
    for kv in span.attributes:
        if kv.key in _INPUTS:
            found[kv.key] = kv.value
    if RESPONSE_BODY not in found:
        return False
    body = attributes.to_python(found[RESPONSE_BODY])
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes) or not body:
        return False

    def value(key: str) -> Any:
        return attributes.to_python(found[key]) if key in found else None

    url = value(URL_FULL) or value(URL_PATH)
    path = urlsplit(url).path if isinstance(url, str) else None
    choice = choose_framing(_first(value(CONTENT_TYPE)), body, path)
    if choice is None:
        return False
    framing, declared = choice
    hint = hint_from_request(path, None, framing)
    if hint is None and REQUEST_BODY in found:
        hint = hint_from_request(None, value(REQUEST_BODY), framing)

    encoding = str(_first(value(CONTENT_ENCODING)) or "").strip().lower()
    truncated = bool(value(RESPONSE_TRUNCATED))
    reads = _read_boundaries(_ints(found.get(READ_TIMES)), _ints(found.get(READ_ENDS)), len(body), truncated,
                             encoded=encoding not in ("", "identity"))
    reassembler = StreamReassembler(framing, hint)
    if reads is None:
        reassembler.feed(body)
    else:
        start = 0
        for end, time in reads:
            end = min(end, len(body))
            if end > start:
                reassembler.feed(body[start:end], time)
                start = end
        if start < len(body):
            reassembler.feed(body[start:], reads[-1][1])
    result = reassembler.close()
    if result.format == UNKNOWN and not declared:
        return False
    if truncated and result.complete is False:
        # The capture kept only the start of the body: the stream's end is unknown, not missing.
        result.error = result.error or f"the capture kept only the first {len(body)} bytes of the body"
        result.complete = None
    _write(span, result, reads is not None, ERROR_TYPE in found)
    return True


def _write(span: Span, result: StreamResult, timed: bool, had_error: bool) -> None:
    out: dict[str, Any] = {
        REASSEMBLED: None if result.reassembled is None else json.dumps(
            result.reassembled, ensure_ascii=False, separators=(",", ":")),
        FORMAT: result.format,
        EVENTS: result.events,
        COMPLETE: result.complete,
        STREAM_ERROR: result.error,
        INVALID_EVENTS: result.invalid_events or None,
        UNKNOWN_EVENTS: result.unknown_events or None,
        TIME_TO_FIRST_CHUNK: None, TIME_PER_OUTPUT_CHUNK: None, DURATION: None,
    }
    intervals: list[float] = []
    if timed and result.output_times:
        first = result.output_times[0]
        out[TIME_TO_FIRST_CHUNK] = (first - span.start_time_unix_nano) / 1e9
        times = result.output_times
        intervals = [(b - a) / 1e9 for a, b in zip(times, times[1:])]
        out[DURATION] = ((result.last_time or first) - first) / 1e9
    status = span.status
    if result.provider_error is not None:
        out[ERROR_TYPE] = result.provider_error.type
        status.code = Status.STATUS_CODE_ERROR
        status.message = result.provider_error.message or result.provider_error.type
    elif result.complete is False and not had_error and status.code != Status.STATUS_CODE_ERROR:
        out[ERROR_TYPE] = "incomplete"
        status.code = Status.STATUS_CODE_ERROR
        status.message = f"the stream ended before its end ({_TERMINATORS.get(result.format, 'terminator')})"
    attributes.update(span.attributes, out)
    if intervals:
        # One double per output chunk: filled here directly rather than through set_value's
        # general dispatch per element.
        values = span.attributes.add(key=TIME_PER_OUTPUT_CHUNK).value.array_value.values
        for interval in intervals:
            values.add(double_value=interval)


class SseReassemblyProcessor(SpanProcessor):
    def process_span(self, span: Span, resource=None) -> None:
        try:
            reassemble_span(span)
        except Exception as e:  # one bad span must not cost the batch
            self.logger.warning("cannot reassemble the stream of a span: %s", e, exc_info=True,
                                extra={"fields": {"processor": str(self.id), "span": span.name}})
            try:
                attributes.update(span.attributes, {STREAM_ERROR: f"internal error: {type(e).__name__}: {e}"})
            except Exception:
                pass


factory = Factory(
    type="sse_reassembly",
    kind=Kind.PROCESSOR,
    config_class=EmptyConfig,
    create=SseReassemblyProcessor,
    signals=frozenset({Signal.TRACES}),
    stability=Stability.ALPHA,
    description="Rebuilds streamed LLM responses (SSE, NDJSON, Gemini JSON arrays) into the non-streaming "
                "object, with time to first chunk, per-chunk times and completeness",
)
