"""`genai_semconv` processor: every span out of it follows the OpenTelemetry GenAI semantic
conventions v1.41.0 (docs/genai.md).

Per span:
- a raw HTTP exchange (it carries `llmtap.http.request.body` or `llmtap.http.response.body`,
  as the eBPF receiver writes them; `llmtap.http.response.reassembled` from sse_reassembly is
  preferred over the body) is mapped by `exchange.map_exchange`: name `{operation} {model}`,
  gen_ai.* attributes, content as JSON strings, error.type and status for HTTP and provider
  errors. Then every `llmtap.http.*` attribute is removed unless `keep_raw` (bodies may hold
  secrets, so this holds for exchanges that turn out not to be model calls too, which are
  marked `llmtap.genai.error` and otherwise left as they were);
- any other span goes to `normalize.normalize_span(span, config)`, which rewrites what other
  instrumentations send (legacy gen_ai.system, OpenLLMetry, OpenInference) to the same shape;
  log requests go to `normalize.normalize_logs(request, config)` (the per-message events);
- last, for `semconv_version: development`, the renames of versions.py.
A span whose mapping fails in an unforeseen way is marked `llmtap.genai.error` and passed on;
the rest of the batch is unaffected.

normalize.py's two entry points are `normalize_span(span: Span, config: Config) -> None` and
`normalize_logs(request: ExportLogsServiceRequest, config: Config) -> None`; they read
capture_content, remove_originals and overwrite from this Config.

Cost: per raw span, one JSON parse of each body plus a walk over its messages; other spans
cost what the normalizer costs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap import attributes
from llmtap.component import Consumer, Factory, Kind, Settings, Signal, Stability
from llmtap.processorhelper import SpanProcessor
from llmtap.configtypes import doc
from llmtap.processors.genai_semconv import versions
from llmtap.processors.genai_semconv.exchange import Exchange, map_exchange

from llmtap.processors.genai_semconv import normalize
from llmtap.receiver.ebpf.headers import is_secret_header

RAW_PREFIX = "llmtap.http."
REQUEST_BODY = "llmtap.http.request.body"
RESPONSE_BODY = "llmtap.http.response.body"
REASSEMBLED = "llmtap.http.response.reassembled"
ERROR_MARKER = "llmtap.genai.error"  # why a span was not (fully) mapped
API_MARKER = "llmtap.genai.api"  # the wire format the exchange was read as
_STATUS_MESSAGE_MAX = 512

# The attributes of a raw span the mapping reads (and the header prefixes below).
_READ = frozenset({"url.full", "url.path", "server.address", "server.port", "http.request.method",
                   "http.response.status_code", "error.type", REQUEST_BODY, RESPONSE_BODY, REASSEMBLED,
                   REQUEST_BODY + ".truncated", RESPONSE_BODY + ".truncated"})
_RAW_READ = ("llmtap.http.request.header.", "llmtap.http.response.header.")


@dataclass
class Config:
    capture_content: Literal["full", "none"] = field(default="full", metadata=doc(
        "full: record gen_ai.system_instructions, gen_ai.input.messages, gen_ai.output.messages and "
        "gen_ai.tool.definitions (redact later in the pipeline, e.g. pii_redaction); none: record none of them."))
    keep_raw: bool = field(default=False, metadata=doc(
        "Keep the raw llmtap.http.* attributes (headers, bodies, read timings) after mapping. They may carry "
        "secrets and large payloads: off by default, also for exchanges that are not model calls. Without it "
        "the captured (allow-listed) headers stay as http.request.header.<name> / http.response.header.<name>."))
    semconv_version: Literal["1.41.0", "development"] = field(default="1.41.0", metadata=doc(
        "1.41.0: the last released GenAI conventions. development: also apply the renames and type changes of "
        "the unreleased development channel (gen_ai.usage.cache_write.input_tokens, integer top_k)."))
    remove_originals: bool = field(default=True, metadata=doc(
        "Normalizing other instrumentations' telemetry: remove the attributes and events that were translated "
        "(gen_ai.system, gen_ai.prompt.*, llm.*, …), so that each fact is recorded once."))
    overwrite: bool = field(default=False, metadata=doc(
        "Normalizing other instrumentations' telemetry: let a translated value replace a v1.41 attribute the "
        "span already has (off: what the instrumentation set in the current conventions wins)."))


def _decode_body(value: Any, truncated: bool, content_type: str, side: str) -> tuple[Any, str | None]:
    """The body's JSON value, or (None, why not)."""
    if value is None:
        return None, None
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, f"{side} body is binary, not JSON"
    if not isinstance(value, str) or not value.strip():
        return None, (f"{side} body is empty" if side == "response" else None)
    try:
        return json.loads(value), None
    except ValueError as e:
        head = value.lstrip()[:16].lower()
        if truncated:
            why = f"{side} body truncated by the capture (llmtap.http.{side}.body.truncated): not valid JSON"
        elif "html" in content_type or head.startswith(("<!doctype", "<html", "<")):
            why = f"{side} body is HTML, not JSON (an error page from a proxy or gateway?)"
        elif "event-stream" in content_type or "ndjson" in content_type or "jsonl" in content_type \
                or head.startswith(("data:", "event:", ":")):
            why = f"{side} body is a stream that was not reassembled (put sse_reassembly before genai_semconv)"
        else:
            why = f"{side} body is not valid JSON: {e}"
        return None, why


def _first(value: Any) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _headers(raw: dict[str, Any], prefix: str) -> dict[str, list[str]]:
    return {k[len(prefix):]: v if isinstance(v, list) else [v] for k, v in raw.items() if k.startswith(prefix)}


def _take_raw(span: Span, remove: bool) -> dict[str, Any]:
    """The attributes the mapping needs, converted once; with `remove`, every llmtap.http.*
    attribute is then dropped. One pass over the attributes. Those the mapping does not need
    (read timings, sizes, the raw stream when it was reassembled) are never converted: a body is
    the costliest thing to copy. The receiver writes llmtap.http.* in runs, so they are deleted
    as slices (each deletion shifts what follows)."""
    wanted = {}
    runs: list[list[int]] = []
    for i, kv in enumerate(span.attributes):
        key = kv.key
        if key in _READ or key.startswith(_RAW_READ):
            wanted[key] = kv.value
        if remove and key.startswith(RAW_PREFIX):
            if runs and runs[-1][1] == i:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
    if REASSEMBLED in wanted:
        wanted.pop(RESPONSE_BODY, None)
    values = {key: attributes.to_python(value) for key, value in wanted.items()}
    for start, end in reversed(runs):
        del span.attributes[start:end]
    return values


def _set(value: AnyValue, v: Any) -> None:
    """attributes.set_value for the few types a mapping writes, tried most frequent first (the
    general one's isinstance(v, Mapping) is an ABC check that costs more than the write)."""
    if type(v) is str:
        value.string_value = v
    elif type(v) is int:
        value.int_value = v
    elif type(v) is float:
        value.double_value = v
    elif type(v) is list and all(type(x) is str for x in v):
        value.array_value.SetInParent()
        values = value.array_value.values
        del values[:]
        for x in v:
            values.add().string_value = x
    else:
        attributes.set_value(value, v)


def _write(span: Span, updates: dict[str, Any]) -> None:
    """Set each attribute: in place where the span has it already, appended otherwise."""
    pending = dict(updates)
    for kv in span.attributes:
        if kv.key in pending:
            _set(kv.value, pending.pop(kv.key))
    add = span.attributes.add
    for key, v in pending.items():
        _set(add(key=key).value, v)


def _exchange(raw: dict[str, Any]) -> Exchange:
    url = raw.get("url.full") or ""
    parts = urlsplit(url) if url else None
    path = (parts.path if parts else raw.get("url.path")) or "/"
    host = raw.get("server.address") or (parts.hostname if parts else "") or ""
    port = raw.get("server.port")
    if port is None and parts is not None:
        try:
            port = parts.port
        except ValueError:
            port = None
    request_headers = _headers(raw, "llmtap.http.request.header.")
    response_headers = _headers(raw, "llmtap.http.response.header.")
    problems = []
    request, why = _decode_body(raw.get(REQUEST_BODY), bool(raw.get(REQUEST_BODY + ".truncated")),
                                _first(request_headers.get("content-type")).lower(), "request")
    if why:
        problems.append(why)
    if raw.get(REASSEMBLED) is not None:
        response, why = _decode_body(raw[REASSEMBLED], False, "application/json", "reassembled response")
    else:
        response, why = _decode_body(raw.get(RESPONSE_BODY), bool(raw.get(RESPONSE_BODY + ".truncated")),
                                     _first(response_headers.get("content-type")).lower(), "response")
        if why is None and isinstance(response, list):
            why = "response body is a JSON array: a stream that was not reassembled (put sse_reassembly first)"
    if why:
        problems.append(why)
    status = raw.get("http.response.status_code")
    return Exchange(method=str(raw.get("http.request.method") or ""), path=path, host=host,
                    port=port if isinstance(port, int) else None,
                    status=status if isinstance(status, int) else None, request=request, response=response,
                    request_headers=request_headers, response_headers=response_headers, problems=problems)


def _semconv_headers(x: Exchange) -> dict[str, list[str]]:
    """The captured headers under the HTTP conventions' names. The receiver never captures a
    credential; the same check runs again here for spans from anywhere else."""
    out = {}
    for side, headers in (("request", x.request_headers), ("response", x.response_headers)):
        for name, values in headers.items():
            values = [str(v) for v in values]
            if not any(is_secret_header(name, v) for v in values):
                out[f"http.{side}.header.{name}"] = values
    return out


class GenAISemconvProcessor(SpanProcessor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer):
        super().__init__(settings, config, signal, next)
        self._capture_content = config.capture_content == "full"

    def process_span(self, span: Span, resource=None) -> None:
        """Map or normalize one span in place; never raises."""
        raw = any(kv.key in (REQUEST_BODY, RESPONSE_BODY) for kv in span.attributes)
        try:
            if raw:
                self._map_raw(span)
            else:
                normalize.normalize_span(span, self.config)
            versions.apply(span.attributes, self.config.semconv_version)
        except Exception as e:  # one bad span must not cost the batch
            self.logger.warning("cannot map span %r: %s: %s", span.name, type(e).__name__, e)
            attributes.update(span.attributes, {ERROR_MARKER: f"internal error: {type(e).__name__}: {e}"})
            if raw and not self.config.keep_raw:  # the mapping may have failed before it removed them
                attributes.remove(span.attributes, lambda key: key.startswith(RAW_PREFIX))

    def _map_raw(self, span: Span) -> None:
        raw = _take_raw(span, remove=not self.config.keep_raw)
        x = _exchange(raw)
        mapped = map_exchange(x, self._capture_content)
        # The captured headers are allow-listed and free of secrets: they stay, under the HTTP
        # conventions' own names (later processors read them, e.g. cost attribution by tenant).
        headers = {} if self.config.keep_raw else _semconv_headers(x)
        if mapped is None:
            attributes.update(span.attributes, {
                **headers, ERROR_MARKER: f"not a GenAI API call: {x.method or 'request'} {x.path}"})
            return
        updates = {**headers, **mapped.attributes}
        updates[API_MARKER] = mapped.api.name
        if mapped.problems:
            updates[ERROR_MARKER] = "; ".join(mapped.problems)
        if mapped.error_type is not None:
            existing = raw.get("error.type")
            # The receiver's error.type is the bare status code; the provider's code says more.
            # Anything else it set (incomplete, capture) describes the exchange itself: kept.
            if existing is None or existing == str(x.status):
                updates["error.type"] = mapped.error_type
            span.status.code = Status.STATUS_CODE_ERROR
            if mapped.error_message and not span.status.message:
                span.status.message = mapped.error_message[:_STATUS_MESSAGE_MAX]
        _write(span, updates)
        span.name = mapped.span_name
        span.kind = Span.SPAN_KIND_CLIENT

    def process_logs(self, request: Message) -> None:
        try:
            normalize.normalize_logs(request, self.config)
        except Exception as e:
            self.logger.warning("cannot normalize logs: %s: %s", type(e).__name__, e)
        if self.config.semconv_version != "1.41.0":
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        versions.apply(record.attributes, self.config.semconv_version)


factory = Factory(
    type="genai_semconv",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=GenAISemconvProcessor,
    signals=frozenset({Signal.TRACES, Signal.LOGS}),
    stability=Stability.ALPHA,
    description="Maps raw LLM HTTP exchanges to, and normalizes other GenAI telemetry to, "
                "the OpenTelemetry GenAI semantic conventions v1.41.0",
)
