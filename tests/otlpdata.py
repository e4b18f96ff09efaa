"""Realistic OTLP export requests for tests: what an instrumented agent really
sends. Every builder is deterministic for a given `seed`, so two calls with the
same arguments give byte-identical requests.

- spans_request: one resource (service.name + the usual SDK attributes), one
  scope, N LLM-client spans with 20 attributes each (about 1 KiB of attribute
  text per span), an event on every span, errors on some.
- logs_request: N log records with severity, body, trace context, 8 attributes.
- metrics_request: a counter (sum), a gauge and a histogram, each with
  `points` data points.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

T0 = 1_717_000_000_000_000_000  # a fixed wall-clock instant, ns since the epoch

_MODELS = ["gpt-4o", "claude-sonnet-4", "llama-3.1-70b"]
_WORDS = ("the agent asked the model to plan a trip, summarise the ticket and call the weather tool "
          "before answering the user with a short friendly message").split()


def any_value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v)) for k, v in value.items())
        return out
    return AnyValue(string_value=str(value))


def attributes(mapping: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in mapping.items()]


def _text(rng: random.Random, n_bytes: int) -> str:
    words = []
    size = 0
    while size < n_bytes:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:n_bytes]


def _resource_attributes(service: str) -> dict:
    return {"service.name": service, "service.version": "1.4.2", "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry", "host.name": "agent-7f9c"}


def _span_attributes(rng: random.Random, i: int, n: int, text_bytes: int) -> dict:
    model = _MODELS[i % len(_MODELS)]
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.usage.input_tokens": 100 + i,
        "gen_ai.usage.output_tokens": 40 + i,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(48):012x}",
        "server.address": "api.openai.com",
        "server.port": 443,
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "llmtap.streamed": i % 2 == 0,
        "url.full": "https://api.openai.com/v1/chat/completions",
    }
    # Fill to n attributes with prompt-like text, spreading text_bytes over them.
    keys = list(base)[:n]
    attrs = {k: base[k] for k in keys}
    extra = max(0, n - len(attrs))
    for j in range(extra):
        attrs[f"app.prompt.part{j}"] = _text(rng, max(1, text_bytes // max(1, extra)))
    return attrs


def spans_request(n_spans: int = 10, *, service: str = "checkout-agent", n_attributes: int = 20,
                  text_bytes: int = 1024, seed: int = 1, scope: str = "llmtap.tests") -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(attributes(_resource_attributes(service)))
    rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.scope.version = "0.1.0"
    trace_id = rng.randbytes(16)
    root_id = rng.randbytes(8)
    for i in range(n_spans):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = root_id if i == 0 else rng.randbytes(8)
        if i:
            span.parent_span_id = root_id
        model = _MODELS[i % len(_MODELS)]
        span.name = f"chat {model}"
        span.kind = Span.SPAN_KIND_CLIENT if i else Span.SPAN_KIND_INTERNAL
        span.start_time_unix_nano = T0 + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + 250_000_000 + i * 1_000
        span.attributes.extend(attributes(_span_attributes(rng, i, n_attributes, text_bytes)))
        event = span.events.add()
        event.name = "gen_ai.content.completion"
        event.time_unix_nano = span.end_time_unix_nano - 1_000
        event.attributes.extend(attributes({"gen_ai.completion": _text(rng, 64)}))
        if i % 7 == 3:
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = "upstream returned 529 overloaded"
        elif i % 3 == 0:
            span.status.code = Status.STATUS_CODE_OK
    return request


def logs_request(n_records: int = 10, *, service: str = "checkout-agent", seed: int = 1) -> ExportLogsServiceRequest:
    rng = random.Random(seed)
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(attributes(_resource_attributes(service)))
    sl = rl.scope_logs.add()
    sl.scope.name = "llmtap.tests.logs"
    trace_id = rng.randbytes(16)
    for i in range(n_records):
        record = sl.log_records.add()
        record.time_unix_nano = T0 + i * 1_000_000
        record.observed_time_unix_nano = record.time_unix_nano + 5_000
        record.severity_number = SeverityNumber.SEVERITY_NUMBER_WARN if i % 4 == 1 else SeverityNumber.SEVERITY_NUMBER_INFO
        record.severity_text = "WARN" if i % 4 == 1 else "INFO"
        record.body.string_value = f"tool call {i}: " + _text(rng, 120)
        record.trace_id = trace_id
        record.span_id = rng.randbytes(8)
        record.attributes.extend(attributes({
            "code.function": "run_tool", "code.lineno": 40 + i, "thread.name": "MainThread",
            "gen_ai.tool.name": "get_weather", "retry": i % 3, "latency_ms": 12.5 + i,
            "cached": i % 2 == 0, "user.id": f"u-{rng.getrandbits(32):08x}"}))
    return request


def metrics_request(points: int = 5, *, service: str = "checkout-agent", seed: int = 1) -> ExportMetricsServiceRequest:
    """Three metrics (sum, gauge, histogram), `points` data points each: 3 × points points."""
    rng = random.Random(seed)
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(attributes(_resource_attributes(service)))
    sm = rm.scope_metrics.add()
    sm.scope.name = "llmtap.tests.metrics"

    tokens = sm.metrics.add()
    tokens.name = "gen_ai.client.token.usage.total"
    tokens.unit = "{token}"
    tokens.description = "Tokens used"
    tokens.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    tokens.sum.is_monotonic = True
    gauge = sm.metrics.add()
    gauge.name = "llmtap.queue.depth"
    gauge.unit = "1"
    duration = sm.metrics.add()
    duration.name = "gen_ai.client.operation.duration"
    duration.unit = "s"
    duration.histogram.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    for i in range(points):
        labels = attributes({"gen_ai.request.model": _MODELS[i % len(_MODELS)], "gen_ai.operation.name": "chat"})
        p = tokens.sum.data_points.add()
        p.attributes.extend(labels)
        p.start_time_unix_nano = T0
        p.time_unix_nano = T0 + 10_000_000_000
        p.as_int = 1000 + rng.randrange(5000)
        g = gauge.gauge.data_points.add()
        g.attributes.extend(labels)
        g.time_unix_nano = T0 + 10_000_000_000
        g.as_double = rng.random() * 10
        h = duration.histogram.data_points.add()
        h.attributes.extend(labels)
        h.start_time_unix_nano = T0
        h.time_unix_nano = T0 + 10_000_000_000
        h.explicit_bounds.extend([0.1, 0.5, 1.0, 5.0])
        h.bucket_counts.extend([1, 4, 2, 1, 0])
        h.count = 8
        h.sum = 9.75
        h.min = 0.05
        h.max = 4.2
    return request
