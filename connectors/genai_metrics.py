"""`genai_metrics` connector: the exporter of a traces pipeline and the receiver of
a metrics pipeline that turns GenAI spans into the GenAI client metrics of semantic
conventions v1.41.0 — the collector's spanmetrics pattern, with GenAI instruments.

Every span of a model call (a `gen_ai.operation.name` other than the agent and tool
operations below) is observed; other spans are ignored. Agent and tool spans
(`invoke_agent`, `create_agent`, `execute_tool`, `invoke_workflow`) are not client
operations of the spec's metrics, and an `invoke_agent` root that sums its calls' usage
or cost would count them twice. From each one:

| metric | kind, unit | value | attributes |
|---|---|---|---|
| `gen_ai.client.operation.duration` | histogram, `s` | span end - start | COMMON + `error.type` |
| `gen_ai.client.token.usage` | histogram, `{token}` | `gen_ai.usage.input_tokens` / `output_tokens` | COMMON + `gen_ai.token.type` |
| `gen_ai.client.operation.time_to_first_chunk` | histogram, `s` | `gen_ai.response.time_to_first_chunk` | COMMON |
| `gen_ai.client.operation.time_per_output_chunk` | histogram, `s` | each of `llmtap.stream.time_per_output_chunk` | COMMON |
| `llmtap.requests` | counter, `{request}` | 1 | BILLING + `error.type` |
| `llmtap.cost` | counter, `USD` | `gen_ai.usage.cost` | BILLING |

COMMON is what the spec lists for the client metrics: `gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
`server.address`, `server.port`. BILLING is operation, provider, request and response
model plus every `llmtap.attribution.<dimension>` the span carries. The histograms use
the spec's explicit bucket boundaries. `error.type` is the span's, or `_OTHER` for a
span whose status is ERROR without one (the spec's fallback). No other attribute ever
becomes a dimension, so prompt or completion text cannot reach a label; string values
are cut at MAX_VALUE_LENGTH characters.

Aggregation, as spanmetrics does it: series are grouped by resource (all of its
attributes, or only `resource_metrics_key_attributes`), at most
`resource_metrics_cache_size` resources are kept (the least recently updated goes
first), and each metric of a resource holds at most `aggregation_cardinality_limit`
attribute sets; further sets are folded into one overflow series whose only
attribute is `otel.metric.overflow = true`, as the OTel SDK's cardinality limit does.
Every `metrics_flush_interval`, and once more at shutdown, all series are sent as one
ExportMetricsServiceRequest: cumulative (what Prometheus needs; series never reset
until they expire) or delta (each flush carries what arrived since the last, then
the series are dropped).

Cost: per span, one pass over its attributes plus a bisect per histogram value;
memory is bounded by resources x metrics x (limit + 1) series. Spans are only read,
never changed: the same request goes on to the pipeline's other exporters.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from llmtap import __version__, attributes
from llmtap.component import Connector, Factory, Host, Kind, PermanentError, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc

SCOPE_NAME = "llmtap.connectors.genai_metrics"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"
MAX_VALUE_LENGTH = 256
OVERFLOW_KEY: tuple = (("otel.metric.overflow", True),)

# The spec's ExplicitBucketBoundaries (gen-ai-metrics.md, v1.41.0).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

COMMON_KEYS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
               "server.address", "server.port")
BILLING_KEYS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model")
ATTRIBUTION_PREFIX = "llmtap.attribution."
_VALUE_KEYS = frozenset({"error.type", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                         "gen_ai.response.time_to_first_chunk", "llmtap.stream.time_per_output_chunk",
                         "gen_ai.usage.cost", *COMMON_KEYS})

CUMULATIVE = "AGGREGATION_TEMPORALITY_CUMULATIVE"
DELTA = "AGGREGATION_TEMPORALITY_DELTA"


@dataclass(frozen=True)
class Instrument:
    name: str
    unit: str
    description: str
    bounds: tuple | None  # None: a monotonic sum (counter)
    integer: bool = False  # a counter of whole things, sent as as_int


TOKEN_USAGE = Instrument("gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.",
                         TOKEN_BUCKETS)
DURATION = Instrument("gen_ai.client.operation.duration", "s", "GenAI operation duration.", SECONDS_BUCKETS)
TIME_TO_FIRST_CHUNK = Instrument(
    "gen_ai.client.operation.time_to_first_chunk", "s",
    "Time to receive the first chunk, measured from when the client issues the generation request to when the "
    "first chunk is received in the response stream.", SECONDS_BUCKETS)
TIME_PER_OUTPUT_CHUNK = Instrument(
    "gen_ai.client.operation.time_per_output_chunk", "s",
    "Time per output chunk, recorded for each chunk received after the first one, measured as the time elapsed "
    "from the end of the previous chunk to the end of the current chunk.", SECONDS_BUCKETS)
REQUESTS = Instrument("llmtap.requests", "{request}", "GenAI operations observed.", None, integer=True)
COST = Instrument("llmtap.cost", "USD", "Cost of GenAI operations in US dollars (gen_ai.usage.cost).", None)
INSTRUMENTS = (DURATION, TOKEN_USAGE, TIME_TO_FIRST_CHUNK, TIME_PER_OUTPUT_CHUNK, REQUESTS, COST)


@dataclass
class Config:
    metrics_flush_interval: Duration = field(default=Duration(15), metadata=doc(
        "How often the metrics are sent downstream (and once more at shutdown). 15s keeps a Prometheus "
        "scrape at most one interval behind."))
    aggregation_temporality: Literal["AGGREGATION_TEMPORALITY_CUMULATIVE", "AGGREGATION_TEMPORALITY_DELTA"] = field(
        default=CUMULATIVE, metadata=doc(
            "`AGGREGATION_TEMPORALITY_CUMULATIVE` (totals since a series began; what Prometheus needs) or "
            "`AGGREGATION_TEMPORALITY_DELTA` (what arrived since the previous flush)."))
    aggregation_cardinality_limit: int = field(default=2000, metadata=doc(
        "Most attribute sets per metric and resource; more are folded into one series with "
        "`otel.metric.overflow=true`. 0: no limit."))
    metrics_expiration: Duration = field(default=Duration(0), metadata=doc(
        "Cumulative series not updated for this long are dropped; 0 keeps them for as long as the process runs."))
    resource_metrics_key_attributes: list[str] = field(default_factory=list, metadata=doc(
        "Resource attributes that identify (and are kept on) a resource's metrics; empty: all of them."))
    resource_metrics_cache_size: int = field(default=1000, metadata=doc(
        "Most resources whose metrics are kept; the least recently updated is dropped first."))

    def validate(self) -> list[str]:
        errors = []
        if self.metrics_flush_interval <= 0:
            errors.append(f"metrics_flush_interval: must be positive; got {self.metrics_flush_interval:g}s")
        if self.aggregation_cardinality_limit < 0:
            errors.append(f"aggregation_cardinality_limit: must not be negative; got "
                          f"{self.aggregation_cardinality_limit}")
        if self.resource_metrics_cache_size < 1:
            errors.append(f"resource_metrics_cache_size: must be at least 1; got {self.resource_metrics_cache_size}")
        errors += [f"resource_metrics_key_attributes[{i}]: must not be empty"
                   for i, key in enumerate(self.resource_metrics_key_attributes) if not key.strip()]
        return errors


# --- reading a span -------------------------------------------------------------------------------

def _dimension(value: Any) -> str | int | None:
    """A value fit for a metric attribute: a (cut) string or an int; anything else is left out."""
    if isinstance(value, str):
        return value[:MAX_VALUE_LENGTH] if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _dimensions(attrs: dict[str, Any], names: tuple[str, ...]) -> tuple:
    """An attribute set: (key, value) in the order of `names`, absent or unfit ones left out."""
    return tuple((k, v) for k in names if (v := _dimension(attrs.get(k))) is not None)


def _measure(value: Any) -> float | None:
    """A finite, non-negative number, else None (a bad value is skipped, not guessed at)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _wanted_attributes(span) -> dict[str, Any]:
    """The few attributes the metrics read, without converting the large ones (messages)."""
    found = {}
    for kv in span.attributes:
        if kv.key in _VALUE_KEYS or kv.key.startswith(ATTRIBUTION_PREFIX):
            found[kv.key] = attributes.to_python(kv.value)
    return found


Measurement = tuple[Instrument, tuple, list[float]]  # instrument, attribute set, values
NOT_MODEL_CALLS = frozenset({"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"})


def observe(span) -> list[Measurement] | None:
    """What one span contributes to the metrics, or None when it is no GenAI span."""
    attrs = _wanted_attributes(span)
    operation = attrs.get("gen_ai.operation.name")
    if not isinstance(operation, str) or not operation or operation in NOT_MODEL_CALLS:
        return None

    error = _dimension(attrs.get("error.type"))
    if error is None and span.status.code == Status.STATUS_CODE_ERROR:
        error = "_OTHER"
    with_error = (("error.type", error),) if error is not None else ()
    common = _dimensions(attrs, COMMON_KEYS)
    billing = _dimensions(attrs, BILLING_KEYS)
    attribution = tuple(sorted((k, v) for k, raw in attrs.items()
                               if k.startswith(ATTRIBUTION_PREFIX) and (v := _dimension(raw)) is not None))
    points: list[Measurement] = []
    if span.end_time_unix_nano >= span.start_time_unix_nano > 0:
        duration = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
        points.append((DURATION, common + with_error, [duration]))
    for token_type in ("input", "output"):
        tokens = _measure(attrs.get(f"gen_ai.usage.{token_type}_tokens"))
        if tokens is not None:
            points.append((TOKEN_USAGE, common + (("gen_ai.token.type", token_type),), [tokens]))
    first_chunk = _measure(attrs.get("gen_ai.response.time_to_first_chunk"))
    if first_chunk is not None:
        points.append((TIME_TO_FIRST_CHUNK, common, [first_chunk]))
    per_chunk = attrs.get("llmtap.stream.time_per_output_chunk")
    if isinstance(per_chunk, list):
        values = [v for v in map(_measure, per_chunk) if v is not None]
        if values:
            points.append((TIME_PER_OUTPUT_CHUNK, common, values))
    points.append((REQUESTS, billing + with_error + attribution, [1.0]))
    cost = _measure(attrs.get("gen_ai.usage.cost"))
    if cost is not None:
        points.append((COST, billing + attribution, [cost]))
    return points


# --- aggregation ----------------------------------------------------------------------------------

class HistogramPoint:
    __slots__ = ("counts", "sum", "count", "min", "max", "start_ns", "updated")

    def __init__(self, buckets: int, start_ns: int, now: float):
        self.counts = [0] * buckets
        self.sum = 0.0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf
        self.start_ns = start_ns
        self.updated = now

    def record(self, bounds: tuple, values: list[float]) -> None:
        counts = self.counts
        for value in values:
            # Bucket i holds (bounds[i-1], bounds[i]]: upper bounds are inclusive in OTLP.
            counts[bisect_left(bounds, value)] += 1
        self.sum += sum(values)
        self.count += len(values)
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))


class SumPoint:
    __slots__ = ("value", "start_ns", "updated")

    def __init__(self, start_ns: int, now: float):
        self.value = 0.0
        self.start_ns = start_ns
        self.updated = now

    def record(self, bounds: None, values: list[float]) -> None:
        self.value += sum(values)


class ResourceSeries:
    """The series of one resource: per instrument, attribute key → point."""

    def __init__(self, resource_attributes: tuple):
        self.resource_attributes = resource_attributes
        self.series: dict[Instrument, dict[tuple, HistogramPoint | SumPoint]] = {i: {} for i in INSTRUMENTS}

    def is_empty(self) -> bool:
        return not any(self.series.values())


class GenAiMetrics:
    """Sans-IO aggregation: `add(request, now)` spans in, `collect(now)` a metrics request out.

    `now` is monotonic seconds (for expiration); timestamps in the output are wall-clock ns
    passed to `collect` and taken at `add`."""

    def __init__(self, config: Config, on_overflow=lambda instrument: None):
        self.config = config
        self.delta = config.aggregation_temporality == DELTA
        self.resources: OrderedDict[tuple, ResourceSeries] = OrderedDict()
        self.interval_start_ns = time.time_ns()
        self.on_overflow = on_overflow

    def _resource(self, resource) -> ResourceSeries:
        keep = self.config.resource_metrics_key_attributes
        items = [(kv.key, attributes.to_python(kv.value)) for kv in resource.attributes
                 if not keep or kv.key in keep]
        # Values may be lists or maps: their repr is a faithful, hashable identity.
        key = tuple(sorted((k, repr(v)) for k, v in items))
        group = self.resources.get(key)
        if group is None:
            group = self.resources[key] = ResourceSeries(tuple(items))
            if len(self.resources) > self.config.resource_metrics_cache_size:
                self.resources.popitem(last=False)
        else:
            self.resources.move_to_end(key)
        return group

    def add(self, request: Message, now: float, now_ns: int | None = None) -> int:
        """Observe every GenAI span of a traces request; return how many there were."""
        start_ns = self.interval_start_ns if self.delta else (now_ns or time.time_ns())
        observed = 0
        for rs in request.resource_spans:
            group = None
            for ss in rs.scope_spans:
                for span in ss.spans:
                    measurements = observe(span)
                    if measurements is None:
                        continue
                    observed += 1
                    group = group or self._resource(rs.resource)
                    for instrument, key, values in measurements:
                        self._point(group, instrument, key, start_ns, now).record(instrument.bounds, values)
        return observed

    def _point(self, group: ResourceSeries, instrument: Instrument, key: tuple, start_ns: int, now: float):
        series = group.series[instrument]
        point = series.get(key)
        if point is None:
            limit = self.config.aggregation_cardinality_limit
            if limit and len(series) - (OVERFLOW_KEY in series) >= limit:
                key = OVERFLOW_KEY
                point = series.get(key)
                if point is None:
                    self.on_overflow(instrument)
            if point is None:
                point = series[key] = (HistogramPoint(len(instrument.bounds) + 1, start_ns, now)
                                       if instrument.bounds else SumPoint(start_ns, now))
        point.updated = now
        return point

    def _expire(self, now: float) -> None:
        ttl = self.config.metrics_expiration
        if not ttl:
            return
        for key, group in list(self.resources.items()):
            for series in group.series.values():
                for attrs in [a for a, p in series.items() if now - p.updated > ttl]:
                    del series[attrs]
            if group.is_empty():
                del self.resources[key]

    def collect(self, now: float, now_ns: int | None = None) -> ExportMetricsServiceRequest:
        """Every series as OTLP metrics (delta: then forgotten). Empty when there is nothing."""
        now_ns = now_ns or time.time_ns()
        if self.delta:
            resources, self.resources = self.resources, OrderedDict()
            self.interval_start_ns = now_ns
        else:
            self._expire(now)
            resources = self.resources
        temporality = (AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA if self.delta
                       else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE)
        request = ExportMetricsServiceRequest()
        for group in resources.values():
            if group.is_empty():
                continue
            rm = request.resource_metrics.add()
            attributes.add(rm.resource.attributes, dict(group.resource_attributes))
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version, sm.schema_url = SCOPE_NAME, __version__, SCHEMA_URL
            for instrument, series in group.series.items():
                if series:
                    _write_metric(sm.metrics.add(), instrument, series, temporality, now_ns)
        return request


def _write_metric(metric, instrument: Instrument, series: dict, temporality: int, now_ns: int) -> None:
    metric.name, metric.unit, metric.description = instrument.name, instrument.unit, instrument.description
    if instrument.bounds:
        metric.histogram.aggregation_temporality = temporality
        for key, p in series.items():
            dp = metric.histogram.data_points.add()
            attributes.add(dp.attributes, dict(key))
            dp.start_time_unix_nano, dp.time_unix_nano = p.start_ns, now_ns
            dp.count, dp.sum, dp.min, dp.max = p.count, p.sum, p.min, p.max
            dp.bucket_counts.extend(p.counts)
            dp.explicit_bounds.extend(instrument.bounds)
    else:
        metric.sum.aggregation_temporality = temporality
        metric.sum.is_monotonic = True
        for key, p in series.items():
            dp = metric.sum.data_points.add()
            attributes.add(dp.attributes, dict(key))
            dp.start_time_unix_nano, dp.time_unix_nano = p.start_ns, now_ns
            if instrument.integer:
                dp.as_int = round(p.value)
            else:
                dp.as_double = p.value


# --- the connector --------------------------------------------------------------------------------

class GenAiMetricsConnector(Connector):
    def __init__(self, settings: Settings, config: Config, consumers):
        super().__init__(settings, config, consumers)
        self.metrics = GenAiMetrics(config, on_overflow=self._overflowed)
        self._warned: set[str] = set()
        self._stop = asyncio.Event()
        self._flusher: asyncio.Task | None = None
        self._flush_lock = asyncio.Lock()

    def _overflowed(self, instrument: Instrument) -> None:
        if instrument.name in self._warned:  # once per metric: a delta flush resets the series each interval
            return
        self._warned.add(instrument.name)
        self.logger.warning(
            "%s reached aggregation_cardinality_limit (%d attribute sets for one resource); further sets are "
            "folded into the otel.metric.overflow=true series", instrument.name,
            self.config.aggregation_cardinality_limit,
            extra={"fields": {"connector": str(self.id), "metric": instrument.name}})

    async def start(self, host: Host) -> None:
        self._flusher = asyncio.create_task(self._flush_periodically(), name=f"{self.id} flusher")

    async def consume(self, signal: Signal, data: Message) -> None:
        if signal is not Signal.TRACES:
            raise PermanentError(f"connector {self.id} takes traces, not {signal}")
        self.metrics.add(data, time.monotonic())

    async def flush(self) -> None:
        """Send every series now (what each interval and shutdown do)."""
        async with self._flush_lock:  # a delta flush must not interleave with another
            request = self.metrics.collect(time.monotonic())
            if not request.resource_metrics:
                return
            consumer = self.consumers.get(Signal.METRICS)
            if consumer is None:
                raise PermanentError(f"connector {self.id} feeds no metrics pipeline")
            try:
                await consumer.consume(Signal.METRICS, request)
            except Exception as e:
                # Cumulative: the next flush carries the same totals. Delta: this interval is lost.
                self.logger.warning("metrics pipeline did not take the GenAI metrics: %s", e, extra={"fields": {
                    "connector": str(self.id), "lost": self.metrics.delta}})

    async def _flush_periodically(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.metrics_flush_interval)
            except TimeoutError:
                try:
                    await self.flush()
                except PermanentError as e:
                    self.logger.error("%s", e)

    async def shutdown(self) -> None:
        # Stopped between flushes, never in the middle of one, so no delta interval is cut off.
        self._stop.set()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.flush()


factory = Factory(
    type="genai_metrics",
    kind=Kind.CONNECTOR,
    config_class=Config,
    create=GenAiMetricsConnector,
    signals=frozenset({(Signal.TRACES, Signal.METRICS)}),
    stability=Stability.ALPHA,
    description="Derives the GenAI client metrics (semconv v1.41.0), request counts and cost from GenAI spans",
)
