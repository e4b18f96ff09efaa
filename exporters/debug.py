"""`debug` exporter: prints what passes through to stdout, as the collector's
debugexporter does, at three verbosities:

- basic: a summary line per request ("Traces: resource spans: 1, spans: 12")
  and one readable line per span, log record or metric;
- normal: the same lines with their attributes appended, compactly (long values
  cut at 256 characters);
- detailed: every field of every item, laid out like the collector's detailed
  output.

`sampling_initial` / `sampling_thereafter` thin the output per signal and second
as the collector's do (print the first N requests of each second, then every
Mth). Each request is rendered to one string and written with one call, so lines
of concurrent requests never interleave; writes go to `sys.stdout` as it is at
call time. Cost: proportional to the request; nothing is kept.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from google.protobuf.message import Message
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap.component import Exporter, Factory, Kind, Settings, Signal, Stability
from llmtap.configtypes import doc
from llmtap.pdata import count_items

COMPACT_VALUE_LIMIT = 256


@dataclass
class Config:
    verbosity: Literal["basic", "normal", "detailed"] = field(default="basic", metadata=doc(
        "`basic`: one line per item and a summary per request; `normal`: adds attributes; "
        "`detailed`: every field."))
    sampling_initial: int = field(default=2, metadata=doc(
        "Requests per signal printed in full each second before sampling starts."))
    sampling_thereafter: int = field(default=1, metadata=doc(
        "After sampling_initial, print every Nth request of that second (1 prints all; 0 prints none)."))

    def validate(self) -> list[str]:
        return [f"{key}: must not be negative; got {getattr(self, key)}"
                for key in ("sampling_initial", "sampling_thereafter") if getattr(self, key) < 0]


# --- values -----------------------------------------------------------------

def _hex(b: bytes) -> str:
    return b.hex()


def _timestamp(ns: int) -> str:
    if not ns:
        return "0"
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def plain_value(value) -> object:
    """AnyValue → a Python value (for compact rendering)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind) if kind else None


def typed_value(value) -> str:
    """AnyValue as the collector's detailed output shows it: Str(...), Int(...)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return f"Str({value.string_value})"
    if kind == "int_value":
        return f"Int({value.int_value})"
    if kind == "double_value":
        return f"Double({value.double_value!r})"
    if kind == "bool_value":
        return f"Bool({str(value.bool_value).lower()})"
    if kind == "bytes_value":
        return f"Bytes({base64.b64encode(value.bytes_value).decode()})"
    if kind == "array_value":
        return f"Slice({json.dumps(plain_value(value), ensure_ascii=False)})"
    if kind == "kvlist_value":
        return f"Map({json.dumps(plain_value(value), ensure_ascii=False)})"
    return "Empty()"


def _compact(v: object) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    if len(text) > COMPACT_VALUE_LIMIT:
        text = text[:COMPACT_VALUE_LIMIT] + f"…(+{len(text) - COMPACT_VALUE_LIMIT} chars)"
    return text


def compact_attributes(attrs) -> str:
    return "{" + ", ".join(f"{kv.key}={_compact(plain_value(kv.value))}" for kv in attrs) + "}"


def _word(text: str) -> str:
    """Names with spaces or quotes are quoted so a line still splits into fields."""
    return json.dumps(text, ensure_ascii=False) if not text or any(c in text for c in ' "=\t\n') else text


def service_name(resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return str(plain_value(kv.value))
    return ""


def _enum_name(enum, number: int, prefix: str) -> str:
    try:
        return enum.Name(number).removeprefix(prefix).lower()
    except ValueError:
        return str(number)


def span_kind(kind: int) -> str:
    return _enum_name(Span.SpanKind, kind, "SPAN_KIND_")


def status_text(status) -> str:
    code = _enum_name(Status.StatusCode, status.code, "STATUS_CODE_")
    return f"{code}({status.message})" if status.message else code


def severity_text(record) -> str:
    if record.severity_text:
        return record.severity_text
    return _enum_name(SeverityNumber, record.severity_number, "SEVERITY_NUMBER_").upper()


def _metric_kind(metric) -> str:
    return metric.WhichOneof("data") or "empty"


def _points(metric):
    kind = metric.WhichOneof("data")
    return getattr(metric, kind).data_points if kind else ()


# --- basic and normal: one line per item --------------------------------------

def summary_line(signal: Signal, data: Message) -> str:
    if signal is Signal.TRACES:
        return f"Traces: resource spans: {len(data.resource_spans)}, spans: {count_items(signal, data)}"
    if signal is Signal.LOGS:
        return f"Logs: resource logs: {len(data.resource_logs)}, log records: {count_items(signal, data)}"
    metrics = sum(len(sm.metrics) for rm in data.resource_metrics for sm in rm.scope_metrics)
    return (f"Metrics: resource metrics: {len(data.resource_metrics)}, metrics: {metrics}, "
            f"data points: {count_items(signal, data)}")


def span_line(span, service: str, with_attributes: bool) -> str:
    duration_ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    line = (f"span {_word(span.name)} trace_id={_hex(span.trace_id)} span_id={_hex(span.span_id)} "
            f"kind={span_kind(span.kind)} status={_word(status_text(span.status))} duration={duration_ms:.3f}ms "
            f"service={_word(service)} attrs={len(span.attributes)}")
    if with_attributes:
        if span.parent_span_id:
            line += f" parent_id={_hex(span.parent_span_id)}"
        if span.events:
            line += f" events={len(span.events)}"
        line += " " + compact_attributes(span.attributes)
    return line


def log_line(record, service: str, with_attributes: bool) -> str:
    body = _compact(plain_value(record.body)) if record.HasField("body") else ""
    line = (f"log {severity_text(record)} time={_timestamp(record.time_unix_nano or record.observed_time_unix_nano)} "
            f"trace_id={_hex(record.trace_id)} span_id={_hex(record.span_id)} service={_word(service)} "
            f"attrs={len(record.attributes)} body={_word(body)}")
    if with_attributes:
        line += " " + compact_attributes(record.attributes)
    return line


def metric_line(metric, service: str, with_attributes: bool) -> str:
    line = (f"metric {_word(metric.name)} type={_metric_kind(metric)} unit={_word(metric.unit)} "
            f"points={len(_points(metric))} service={_word(service)}")
    if with_attributes:
        line += " " + " ".join(compact_attributes(p.attributes) for p in _points(metric))
    return line


def render_lines(signal: Signal, data: Message, with_attributes: bool) -> list[str]:
    lines = [summary_line(signal, data)]
    if signal is Signal.TRACES:
        for rs in data.resource_spans:
            service = service_name(rs.resource)
            lines.extend(span_line(s, service, with_attributes) for ss in rs.scope_spans for s in ss.spans)
    elif signal is Signal.LOGS:
        for rl in data.resource_logs:
            service = service_name(rl.resource)
            lines.extend(log_line(r, service, with_attributes) for sl in rl.scope_logs for r in sl.log_records)
    else:
        for rm in data.resource_metrics:
            service = service_name(rm.resource)
            lines.extend(metric_line(m, service, with_attributes) for sm in rm.scope_metrics for m in sm.metrics)
    return lines


# --- detailed: every field ---------------------------------------------------

class _Detail:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        self.lines.append(text)

    def attributes(self, title: str, attrs, indent: str = "     ") -> None:
        if not attrs:
            return
        self.add(title)
        for kv in attrs:
            self.add(f"{indent}-> {kv.key}: {typed_value(kv.value)}")

    def resource(self, title: str, i: int, holder) -> None:
        self.add(f"{title} #{i}")
        self.add(f"Resource SchemaURL: {holder.schema_url}")
        self.attributes("Resource attributes:", holder.resource.attributes)

    def scope(self, title: str, i: int, holder) -> None:
        self.add(f"{title} #{i}")
        self.add(f"{title} SchemaURL: {holder.schema_url}")
        self.add(f"InstrumentationScope {holder.scope.name} {holder.scope.version}".rstrip())
        self.attributes("InstrumentationScope attributes:", holder.scope.attributes)

    def span(self, i: int, span) -> None:
        self.add(f"Span #{i}")
        for label, value in (("Trace ID", _hex(span.trace_id)), ("Parent ID", _hex(span.parent_span_id)),
                             ("ID", _hex(span.span_id)), ("Name", span.name),
                             ("Kind", span_kind(span.kind).capitalize()), ("TraceState", span.trace_state),
                             ("Start time", _timestamp(span.start_time_unix_nano)),
                             ("End time", _timestamp(span.end_time_unix_nano)),
                             ("Status code", _enum_name(Status.StatusCode, span.status.code, "STATUS_CODE_").capitalize()),
                             ("Status message", span.status.message), ("Flags", span.flags)):
            self.add(f"    {label:<15}: {value}")
        self.attributes("Attributes:", span.attributes)
        if span.events:
            self.add("Events:")
        for j, event in enumerate(span.events):
            self.add(f"SpanEvent #{j}")
            self.add(f"     -> Name: {event.name}")
            self.add(f"     -> Timestamp: {_timestamp(event.time_unix_nano)}")
            self.add(f"     -> DroppedAttributesCount: {event.dropped_attributes_count}")
            self.attributes("     -> Attributes::", event.attributes, "          ")
        if span.links:
            self.add("Links:")
        for j, link in enumerate(span.links):
            self.add(f"SpanLink #{j}")
            self.add(f"     -> Trace ID: {_hex(link.trace_id)}")
            self.add(f"     -> ID: {_hex(link.span_id)}")
            self.add(f"     -> TraceState: {link.trace_state}")
            self.add(f"     -> DroppedAttributesCount: {link.dropped_attributes_count}")
            self.attributes("     -> Attributes::", link.attributes, "          ")

    def log(self, i: int, record) -> None:
        self.add(f"LogRecord #{i}")
        self.add(f"ObservedTimestamp: {_timestamp(record.observed_time_unix_nano)}")
        self.add(f"Timestamp: {_timestamp(record.time_unix_nano)}")
        self.add(f"SeverityText: {record.severity_text}")
        self.add(f"SeverityNumber: {_enum_name(SeverityNumber, record.severity_number, 'SEVERITY_NUMBER_').upper()}"
                 f"({record.severity_number})")
        if getattr(record, "event_name", ""):
            self.add(f"EventName: {record.event_name}")
        self.add(f"Body: {typed_value(record.body)}")
        self.attributes("Attributes:", record.attributes)
        self.add(f"Trace ID: {_hex(record.trace_id)}")
        self.add(f"Span ID: {_hex(record.span_id)}")
        self.add(f"Flags: {record.flags}")

    def metric(self, i: int, metric) -> None:
        kind = _metric_kind(metric)
        self.add(f"Metric #{i}")
        self.add("Descriptor:")
        self.add(f"     -> Name: {metric.name}")
        self.add(f"     -> Description: {metric.description}")
        self.add(f"     -> Unit: {metric.unit}")
        self.add(f"     -> DataType: {kind.replace('_', ' ').title().replace(' ', '')}")
        body = getattr(metric, kind) if kind != "empty" else None
        if kind == "sum":
            self.add(f"     -> IsMonotonic: {str(body.is_monotonic).lower()}")
        if kind in ("sum", "histogram", "exponential_histogram"):
            temporality = _enum_name(AggregationTemporality, body.aggregation_temporality,
                                     "AGGREGATION_TEMPORALITY_").capitalize()
            self.add(f"     -> AggregationTemporality: {temporality}")
        for j, point in enumerate(_points(metric)):
            self.point(kind, j, point)

    def point(self, kind: str, j: int, p) -> None:
        title = {"sum": "NumberDataPoints", "gauge": "NumberDataPoints", "histogram": "HistogramDataPoints",
                 "exponential_histogram": "ExponentialHistogramDataPoints",
                 "summary": "SummaryDataPoints"}[kind]
        self.add(f"{title} #{j}")
        self.attributes("Data point attributes:", p.attributes)
        self.add(f"StartTimestamp: {_timestamp(p.start_time_unix_nano)}")
        self.add(f"Timestamp: {_timestamp(p.time_unix_nano)}")
        if kind in ("sum", "gauge"):
            value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
            self.add(f"Value: {value}")
        elif kind == "histogram":
            self.add(f"Count: {p.count}")
            for label, has in (("Sum", "sum"), ("Min", "min"), ("Max", "max")):
                if p.HasField(has):
                    self.add(f"{label}: {getattr(p, has)!r}")
            for b, bound in enumerate(p.explicit_bounds):
                self.add(f"ExplicitBounds #{b}: {bound!r}")
            for b, count in enumerate(p.bucket_counts):
                self.add(f"Buckets #{b}, Count: {count}")
        elif kind == "exponential_histogram":
            self.add(f"Count: {p.count}")
            for label, has in (("Sum", "sum"), ("Min", "min"), ("Max", "max")):
                if p.HasField(has):
                    self.add(f"{label}: {getattr(p, has)!r}")
            self.add(f"Scale: {p.scale}")
            self.add(f"ZeroCount: {p.zero_count}")
            self.add(f"Positive: offset {p.positive.offset}, bucket counts {list(p.positive.bucket_counts)}")
            self.add(f"Negative: offset {p.negative.offset}, bucket counts {list(p.negative.bucket_counts)}")
        elif kind == "summary":
            self.add(f"Count: {p.count}")
            self.add(f"Sum: {p.sum!r}")
            for q, quantile in enumerate(p.quantile_values):
                self.add(f"QuantileValue #{q}: Quantile {quantile.quantile!r}, Value {quantile.value!r}")
        if getattr(p, "exemplars", None):
            self.add(f"Exemplars: {len(p.exemplars)}")


def render_detailed(signal: Signal, data: Message) -> list[str]:
    d = _Detail()
    d.add(summary_line(signal, data))
    if signal is Signal.TRACES:
        for i, rs in enumerate(data.resource_spans):
            d.resource("ResourceSpans", i, rs)
            for j, ss in enumerate(rs.scope_spans):
                d.scope("ScopeSpans", j, ss)
                for k, span in enumerate(ss.spans):
                    d.span(k, span)
    elif signal is Signal.LOGS:
        for i, rl in enumerate(data.resource_logs):
            d.resource("ResourceLog", i, rl)
            for j, sl in enumerate(rl.scope_logs):
                d.scope("ScopeLogs", j, sl)
                for k, record in enumerate(sl.log_records):
                    d.log(k, record)
    else:
        for i, rm in enumerate(data.resource_metrics):
            d.resource("ResourceMetrics", i, rm)
            for j, sm in enumerate(rm.scope_metrics):
                d.scope("ScopeMetrics", j, sm)
                for k, metric in enumerate(sm.metrics):
                    d.metric(k, metric)
    return d.lines


def render(verbosity: str, signal: Signal, data: Message) -> str:
    lines = render_detailed(signal, data) if verbosity == "detailed" else \
        render_lines(signal, data, with_attributes=verbosity == "normal")
    return "\n".join(lines) + "\n"


class DebugExporter(Exporter):
    def __init__(self, settings: Settings, config: Config):
        super().__init__(settings, config)
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        self._windows: dict[Signal, tuple[int, int]] = {}  # signal → (second, requests seen in it)

    def _sampled(self, signal: Signal) -> bool:
        second = int(time.monotonic())
        window_second, seen = self._windows.get(signal, (second, 0))
        seen = seen + 1 if window_second == second else 1
        self._windows[signal] = (second, seen)
        if seen <= self.config.sampling_initial:
            return True
        every = self.config.sampling_thereafter
        return every > 0 and (seen - self.config.sampling_initial) % every == 0

    async def consume(self, signal: Signal, data: Message) -> None:
        if self._sampled(signal):
            out = sys.stdout
            out.write(render(self.config.verbosity, signal, data))
            out.flush()
        self._telemetry.count("exporter", "sent", signal, count_items(signal, data), exporter=self._label)


factory = Factory(
    type="debug",
    kind=Kind.EXPORTER,
    config_class=Config,
    create=DebugExporter,
    signals=frozenset(Signal),
    stability=Stability.DEVELOPMENT,
    description="Prints data to the console: a line per span, log record or metric, or every field",
)
