"""The genai_metrics connector turns GenAI spans (as genai_semconv, token_count and
cost_attribution leave them) into the semconv v1.41.0 GenAI client metrics with the
spec's buckets, plus request and cost counters by attribution; cumulative or delta,
flushed on an interval and at shutdown, bounded by a cardinality limit with an
overflow series. Prompt text never becomes an attribute."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap import attributes
from llmtap.component import ComponentID, PermanentError, Signal
from llmtap.configtypes import decode_config
from llmtap.connectors import genai_metrics
from llmtap.connectors.genai_metrics import Config, GenAiMetrics, factory
from llmtap.pdata import parse_json
from otlpdata import T0

TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
SECOND_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
PROMPT = "My card number is 4111 1111 1111 1111, book me a flight to Lisbon"
SERVERS = {"openai": ("api.openai.com", 443), "anthropic": ("api.anthropic.com", 443)}


# --- realistic input: spans as the GenAI processors leave them -------------------------------------

def genai_span(*, model: str = "gpt-4o-mini", provider: str = "openai", response_model: str | None = None,
               operation: str = "chat", start_s: float = 0.0, duration_s: float = 1.2,
               input_tokens: int | None = 812, output_tokens: int | None = 64, ttfc: float | None = None,
               per_chunk: list | None = None, cost: float | None = None, tenant: str | None = None,
               error: str | None = None, status_error: bool = False, extra: dict | None = None) -> Span:
    span = Span(name=f"{operation} {model}", kind=Span.SPAN_KIND_CLIENT, trace_id=b"\x01" * 16,
                span_id=b"\x02" * 8)
    span.start_time_unix_nano = T0 + int(start_s * 1e9)
    span.end_time_unix_nano = span.start_time_unix_nano + int(duration_s * 1e9)
    address, port = SERVERS.get(provider, ("localhost", 8000))
    attrs = {
        "gen_ai.operation.name": operation, "gen_ai.provider.name": provider, "gen_ai.request.model": model,
        "gen_ai.response.model": response_model or model, "server.address": address, "server.port": port,
        "gen_ai.response.id": "chatcmpl-BwQx7", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.request.max_tokens": 512, "gen_ai.request.temperature": 0.2,
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a travel agent."}]),
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                               "parts": [{"type": "text", "content": "Booked: TAP 1234."}]}]),
        "process.executable.name": "python3.11", "process.pid": 4242,
        "llmtap.http.request.header.user-agent": ["OpenAI/Python 1.57.0"],
    }
    if input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = output_tokens
    if ttfc is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = ttfc
        attrs["llmtap.stream.format"] = "openai.chat_completions"
        attrs["llmtap.stream.complete"] = True
    if per_chunk is not None:
        attrs["llmtap.stream.time_per_output_chunk"] = per_chunk
    if cost is not None:
        attrs.update({"gen_ai.usage.cost": cost, "llmtap.cost.input": cost * 0.75, "llmtap.cost.output": cost * 0.25,
                      "llmtap.cost.currency": "USD", "llmtap.cost.estimated": False,
                      "llmtap.cost.price_source": "genai-prices 0.0.30"})
    if tenant is not None:
        attrs["llmtap.attribution.tenant"] = tenant
        attrs["llmtap.http.request.header.x-tenant-id"] = [tenant]
    if error is not None:
        attrs["error.type"] = error
    if error is not None or status_error:
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = "rate limited" if error else "upstream failed"
    attrs.update(extra or {})
    attributes.add(span.attributes, attrs)
    return span


def traces(*spans: Span, resource: dict | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    attributes.add(rs.resource.attributes, resource or {"service.name": "travel-agent", "host.name": "node-7"})
    ss = rs.scope_spans.add()
    ss.scope.name = "llmtap.receiver.ebpf"
    for span in spans:
        ss.spans.add().CopyFrom(span)
    return request


def add_traces(request: ExportTraceServiceRequest, *spans: Span, resource: dict) -> None:
    rs = request.resource_spans.add()
    attributes.add(rs.resource.attributes, resource)
    rs.scope_spans.add().spans.extend(spans)


# --- reading the output -----------------------------------------------------------------------------

def metrics_of(request) -> dict[str, list]:
    """metric name → the metric message, one per resource."""
    found: dict[str, list] = {}
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found.setdefault(metric.name, []).append(metric)
    return found


def points(request, name: str) -> dict[tuple, object]:
    """data points of a metric by their attributes (sorted key/value pairs)."""
    out = {}
    for metric in metrics_of(request).get(name, []):
        kind = metric.WhichOneof("data")
        for p in getattr(metric, kind).data_points:
            out[tuple(sorted(attributes.as_dict(p.attributes).items()))] = p
    return out


def labels(**kv) -> tuple:
    return tuple(sorted((k.replace("__", "."), v) for k, v in kv.items()))


OPENAI_MINI = dict(gen_ai__operation__name="chat", gen_ai__provider__name="openai",
                   gen_ai__request__model="gpt-4o-mini", gen_ai__response__model="gpt-4o-mini",
                   server__address="api.openai.com", server__port=443)


@pytest.fixture
async def make_connector(make_settings, host, capture):
    made = []

    async def make(**raw):
        config, errors = decode_config(Config, raw)
        assert not errors, errors
        connector = factory.create(make_settings("connector", "genai_metrics"), config, {Signal.METRICS: capture})
        await connector.start(host)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.shutdown()


async def run(make_connector, capture, *requests, **config):
    """Each request through a connector, then one flush: the metrics request it sends."""
    connector = await make_connector(**config)
    for request in requests:
        await connector.consume(Signal.TRACES, request)
    await connector.flush()
    assert len(capture.received) == 1
    return capture.requests()[0]


# --- the metrics -------------------------------------------------------------------------------------

async def test_every_genai_span_adds_to_the_spec_histograms_with_the_spec_buckets(make_connector, capture):
    out = await run(make_connector, capture, traces(
        genai_span(duration_s=1.2, input_tokens=812, output_tokens=64, ttfc=0.35, per_chunk=[0.02, 0.03, 0.02]),
        genai_span(duration_s=0.3, input_tokens=3, output_tokens=300, ttfc=0.04, per_chunk=[0.5]),
        genai_span(duration_s=45.0, input_tokens=None, output_tokens=None),  # a call that reported no usage
    ))

    by_name = {name: ms[0] for name, ms in metrics_of(out).items()}
    assert {name: (m.unit, m.WhichOneof("data")) for name, m in by_name.items()} == {
        "gen_ai.client.operation.duration": ("s", "histogram"),
        "gen_ai.client.token.usage": ("{token}", "histogram"),
        "gen_ai.client.operation.time_to_first_chunk": ("s", "histogram"),
        "gen_ai.client.operation.time_per_output_chunk": ("s", "histogram"),
        "llmtap.requests": ("{request}", "sum"),
    }
    assert by_name["gen_ai.client.token.usage"].description == "Number of input and output tokens used."

    duration = points(out, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)]
    assert list(duration.explicit_bounds) == SECOND_BOUNDS
    # 0.3 s is in (0.16, 0.32], 1.2 s in (0.64, 1.28], 45 s in (40.96, 81.92]
    assert list(duration.bucket_counts) == [0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0]
    assert (duration.count, duration.sum, duration.min, duration.max) == (3, pytest.approx(46.5), 0.3, 45.0)

    tokens = points(out, "gen_ai.client.token.usage")
    inputs = tokens[labels(**OPENAI_MINI, gen_ai__token__type="input")]
    outputs = tokens[labels(**OPENAI_MINI, gen_ai__token__type="output")]
    assert list(inputs.explicit_bounds) == TOKEN_BOUNDS
    # 3 is in (1, 4], 812 in (256, 1024]; 64 is in (16, 64] (upper bounds inclusive), 300 in (256, 1024]
    assert list(inputs.bucket_counts) == [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert list(outputs.bucket_counts) == [0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert (inputs.count, inputs.sum, outputs.count, outputs.sum) == (2, 815, 2, 364)

    first = points(out, "gen_ai.client.operation.time_to_first_chunk")[labels(**OPENAI_MINI)]
    assert (first.count, first.sum) == (2, pytest.approx(0.39))  # the non-streamed call has none
    assert list(first.bucket_counts)[2:7] == [1, 0, 0, 0, 1]  # 0.04 in (0.02, 0.04], 0.35 in (0.32, 0.64]
    per_chunk = points(out, "gen_ai.client.operation.time_per_output_chunk")[labels(**OPENAI_MINI)]
    assert list(per_chunk.bucket_counts)[:8] == [0, 2, 1, 0, 0, 0, 1, 0]  # one observation per value
    assert (per_chunk.count, per_chunk.sum) == (4, pytest.approx(0.57))


async def test_error_type_is_a_dimension_of_duration_and_requests_only(make_connector, capture):
    out = await run(make_connector, capture, traces(
        genai_span(error="rate_limit_exceeded", input_tokens=None, output_tokens=None, duration_s=0.2),
        genai_span(status_error=True, input_tokens=None, output_tokens=None),  # failed without a type
        genai_span(),
    ))
    duration = points(out, "gen_ai.client.operation.duration")
    assert {dict(k).get("error.type"): p.count for k, p in duration.items()} == {
        "rate_limit_exceeded": 1, "_OTHER": 1, None: 1}
    requests = points(out, "llmtap.requests")
    assert {dict(k).get("error.type"): p.as_int for k, p in requests.items()} == {
        "rate_limit_exceeded": 1, "_OTHER": 1, None: 1}
    assert all("error.type" not in dict(k) for k in points(out, "gen_ai.client.token.usage"))


async def test_cost_and_requests_are_counted_by_provider_model_and_attribution(make_connector, capture):
    out = await run(make_connector, capture, traces(
        genai_span(tenant="acme", cost=0.0123),
        genai_span(tenant="acme", cost=0.0077),
        genai_span(tenant="globex", cost=0.5, provider="anthropic", model="claude-sonnet-4-5",
                   response_model="claude-sonnet-4-5-20250929"),
        genai_span(tenant="globex", provider="anthropic", model="claude-sonnet-4-5",
                   response_model="claude-sonnet-4-5-20250929"),  # an unknown price: counted, no cost
        genai_span(),  # no attribution configured for this caller
    ))
    billing = dict(gen_ai__operation__name="chat", gen_ai__provider__name="openai",
                   gen_ai__request__model="gpt-4o-mini", gen_ai__response__model="gpt-4o-mini")
    claude = dict(gen_ai__operation__name="chat", gen_ai__provider__name="anthropic",
                  gen_ai__request__model="claude-sonnet-4-5", gen_ai__response__model="claude-sonnet-4-5-20250929")
    cost = points(out, "llmtap.cost")
    assert {k: p.as_double for k, p in cost.items()} == {
        labels(**billing, llmtap__attribution__tenant="acme"): pytest.approx(0.02),
        labels(**claude, llmtap__attribution__tenant="globex"): 0.5,
    }
    requests = points(out, "llmtap.requests")
    assert {k: p.as_int for k, p in requests.items()} == {
        labels(**billing, llmtap__attribution__tenant="acme"): 2,
        labels(**claude, llmtap__attribution__tenant="globex"): 2,
        labels(**billing): 1,
    }
    cost_metric = metrics_of(out)["llmtap.cost"][0]
    assert (cost_metric.unit, cost_metric.sum.is_monotonic) == ("USD", True)


async def test_no_prompt_text_or_other_span_attribute_ever_becomes_a_dimension(make_connector, capture):
    long_model = "ft:gpt-4o-mini:acme::" + "x" * 400
    out = await run(make_connector, capture, traces(
        genai_span(tenant="acme", cost=0.01, ttfc=0.2, per_chunk=[0.01]),
        genai_span(model=long_model, extra={"user.id": "u-123", "gen_ai.conversation.id": "conv-9"})))
    allowed = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
               "server.address", "server.port", "error.type", "gen_ai.token.type", "llmtap.attribution.tenant"}
    seen_keys, seen_values = set(), []
    for name in metrics_of(out):
        for key in points(out, name):
            seen_keys |= {k for k, _ in key}
            seen_values += [v for _, v in key]
    assert seen_keys <= allowed
    assert not any(isinstance(v, str) and "4111" in v for v in seen_values)
    assert max(len(v) for v in seen_values if isinstance(v, str)) == genai_metrics.MAX_VALUE_LENGTH


async def test_other_spans_and_bad_values_are_skipped_and_the_rest_of_the_batch_counts(make_connector, capture):
    http_span = Span(name="GET /health", start_time_unix_nano=T0, end_time_unix_nano=T0 + 10**6)
    attributes.add(http_span.attributes, {"http.request.method": "GET", "url.path": "/health"})
    odd = genai_span(input_tokens=None, output_tokens=None, extra={
        "gen_ai.usage.input_tokens": "812",            # a string is no count
        "gen_ai.usage.output_tokens": -5,               # nor is a negative one
        "gen_ai.response.time_to_first_chunk": float("nan"),
        "llmtap.stream.time_per_output_chunk": [0.05, "fast", None, float("inf"), 0.07],
        "gen_ai.usage.cost": True,
    })
    unnamed = genai_span(operation="")  # no operation name: not a GenAI span
    # agent and tool spans are no model calls; a session root summing its calls would count them twice
    agent = genai_span(operation="invoke_agent", input_tokens=900, cost=1.0)
    tool = genai_span(operation="execute_tool")
    out = await run(make_connector, capture, traces(http_span, odd, unnamed, agent, tool, genai_span(input_tokens=100)))

    assert points(out, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)].count == 2
    tokens = points(out, "gen_ai.client.token.usage")
    assert tokens[labels(**OPENAI_MINI, gen_ai__token__type="input")].count == 1
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics_of(out)
    assert points(out, "gen_ai.client.operation.time_per_output_chunk")[labels(**OPENAI_MINI)].count == 2
    assert "llmtap.cost" not in metrics_of(out)


async def test_the_spans_are_only_read_never_changed(make_connector, capture):
    request = traces(genai_span(tenant="acme", cost=0.01), genai_span(error="429"))
    before = request.SerializeToString()
    await run(make_connector, capture, request)
    assert request.SerializeToString() == before


# --- temporality, flushing -------------------------------------------------------------------------

async def test_cumulative_totals_keep_growing_from_one_start_time(make_connector, capture):
    connector = await make_connector()
    await connector.consume(Signal.TRACES, traces(genai_span(tenant="acme", cost=0.25)))
    await connector.flush()
    await connector.consume(Signal.TRACES, traces(genai_span(tenant="acme", cost=0.5), genai_span(tenant="acme")))
    await connector.flush()
    first, second = capture.requests()
    key = labels(gen_ai__operation__name="chat", gen_ai__provider__name="openai",
                 gen_ai__request__model="gpt-4o-mini", gen_ai__response__model="gpt-4o-mini",
                 llmtap__attribution__tenant="acme")
    assert [points(r, "llmtap.requests")[key].as_int for r in (first, second)] == [1, 3]
    assert [points(r, "llmtap.cost")[key].as_double for r in (first, second)] == [0.25, 0.75]
    a, b = points(first, "llmtap.cost")[key], points(second, "llmtap.cost")[key]
    assert a.start_time_unix_nano == b.start_time_unix_nano < b.time_unix_nano
    assert metrics_of(second)["llmtap.cost"][0].sum.aggregation_temporality == \
        AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert points(second, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)].count == 3


async def test_delta_flushes_carry_only_what_arrived_since_the_previous_one(make_connector, capture):
    connector = await make_connector(aggregation_temporality="AGGREGATION_TEMPORALITY_DELTA")
    await connector.consume(Signal.TRACES, traces(genai_span(), genai_span()))
    await connector.flush()
    await connector.flush()  # nothing new: nothing sent
    await connector.consume(Signal.TRACES, traces(genai_span()))
    await connector.flush()
    first, second = capture.requests()
    p1 = points(first, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)]
    p2 = points(second, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)]
    assert (p1.count, p2.count) == (2, 1)
    assert p2.start_time_unix_nano >= p1.time_unix_nano  # intervals never overlap
    assert metrics_of(second)["gen_ai.client.operation.duration"][0].histogram.aggregation_temporality == \
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


async def test_metrics_are_flushed_every_interval_and_at_shutdown(make_connector, capture):
    connector = await make_connector(metrics_flush_interval="20ms")
    await connector.consume(Signal.TRACES, traces(genai_span()))
    await capture.wait_for_items(1)  # the interval's flush, not an explicit one
    await connector.consume(Signal.TRACES, traces(genai_span(), genai_span()))
    await connector.shutdown()
    last = capture.requests()[-1]
    assert points(last, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)].count == 3


async def test_a_failing_metrics_pipeline_is_logged_and_the_next_flush_carries_the_totals(
        make_settings, host, caplog):
    from conftest import CapturingConsumer
    failing = CapturingConsumer(fail_with=RuntimeError("queue is full"))
    connector = factory.create(make_settings("connector", "genai_metrics"), Config(), {Signal.METRICS: failing})
    await connector.start(host)
    await connector.consume(Signal.TRACES, traces(genai_span()))
    with caplog.at_level(logging.WARNING):
        await connector.flush()
    assert "queue is full" in caplog.text
    failing.fail_with = None
    await connector.shutdown()
    assert points(failing.requests()[0], "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)].count == 1


# --- bounds: cardinality, resources, expiration ----------------------------------------------------

async def test_attribute_sets_beyond_the_limit_go_to_one_overflow_series(make_connector, capture, caplog):
    models = [f"llama-3.1-8b-ft-{i}" for i in (0, 1, 2, 3, 4, 4)]
    spans = [genai_span(model=model, input_tokens=10, output_tokens=None) for model in models]
    with caplog.at_level(logging.WARNING):
        out = await run(make_connector, capture, traces(*spans), aggregation_cardinality_limit=3)
    duration = points(out, "gen_ai.client.operation.duration")
    overflow = (("otel.metric.overflow", True),)
    assert len(duration) == 4  # the limit, plus the overflow series
    assert duration[overflow].count == 3  # models 3 and 4, and 4 again
    assert sorted(dict(k)["gen_ai.request.model"] for k in duration if k != overflow) == [
        "llama-3.1-8b-ft-0", "llama-3.1-8b-ft-1", "llama-3.1-8b-ft-2"]
    assert points(out, "gen_ai.client.token.usage")[overflow].sum == 30
    assert caplog.text.count("aggregation_cardinality_limit") == 3  # once per metric that overflowed


async def test_series_are_grouped_by_resource(make_connector, capture):
    request = traces(genai_span(), resource={"service.name": "travel-agent", "host.name": "node-7"})
    add_traces(request, genai_span(), genai_span(), resource={"service.name": "billing-agent", "host.name": "node-7"})
    out = await run(make_connector, capture, request)
    by_service = {attributes.as_dict(rm.resource.attributes)["service.name"]: rm for rm in out.resource_metrics}
    assert sorted(by_service) == ["billing-agent", "travel-agent"]
    billing = by_service["billing-agent"].scope_metrics[0]
    assert (billing.scope.name, billing.schema_url) == ("llmtap.connectors.genai_metrics",
                                                        "https://opentelemetry.io/schemas/1.41.0")
    assert billing.metrics[0].histogram.data_points[0].count == 2


async def test_resource_key_attributes_merge_resources_that_differ_elsewhere(make_connector, capture):
    request = traces(genai_span(), resource={"service.name": "travel-agent", "service.instance.id": "a1"})
    add_traces(request, genai_span(), resource={"service.name": "travel-agent", "service.instance.id": "b2"})
    out = await run(make_connector, capture, request, resource_metrics_key_attributes=["service.name"])
    (rm,) = out.resource_metrics
    assert attributes.as_dict(rm.resource.attributes) == {"service.name": "travel-agent"}
    assert points(out, "gen_ai.client.operation.duration")[labels(**OPENAI_MINI)].count == 2


def test_the_least_recently_updated_resource_goes_when_the_cache_is_full():
    metrics = GenAiMetrics(Config(resource_metrics_cache_size=2))
    for service in ("a", "b", "a", "c"):
        metrics.add(traces(genai_span(), resource={"service.name": service}), now=0.0)
    out = metrics.collect(now=0.0)
    assert sorted(attributes.as_dict(rm.resource.attributes)["service.name"] for rm in out.resource_metrics) == [
        "a", "c"]


def test_series_idle_longer_than_metrics_expiration_are_dropped():
    metrics = GenAiMetrics(Config(metrics_expiration=60))
    metrics.add(traces(genai_span(model="gpt-4o")), now=0.0)
    metrics.add(traces(genai_span(model="gpt-4o-mini")), now=50.0)
    out = metrics.collect(now=100.0)
    assert [dict(k)["gen_ai.request.model"] for k in points(out, "gen_ai.client.operation.duration")] == [
        "gpt-4o-mini"]
    assert not metrics.collect(now=200.0).resource_metrics


# --- wiring and config --------------------------------------------------------------------------------

PIPELINES = """
receivers: {feed: {}}
processors:
  batch: {timeout: 1h}
connectors:
  genai_metrics: {metrics_flush_interval: 1h}
exporters:
  file: {path: %s}
  capture: {}
service:
  pipelines:
    traces: {receivers: [feed], processors: [batch], exporters: [genai_metrics, capture]}
    metrics: {receivers: [genai_metrics], processors: [batch], exporters: [file]}
"""


async def test_in_a_service_the_metrics_reach_the_metrics_pipeline_as_otlp(service_from_yaml, feed_receivers,
                                                                          capture_exporters, tmp_path):
    path = tmp_path / "metrics.jsonl"
    service = service_from_yaml(PIPELINES % path, factory)
    await service.start()
    sent = traces(genai_span(tenant="acme", cost=0.02, ttfc=0.3, per_chunk=[0.02]))
    await feed_receivers["feed"].consumers[Signal.TRACES].consume(Signal.TRACES, sent)
    await service.shutdown()  # both batches and the connector's last flush drain on the way down

    assert capture_exporters["capture"].sink.requests() == [sent]  # the traces went on untouched
    (line,) = path.read_text().splitlines()
    written = parse_json(Signal.METRICS, line)
    assert sorted(metrics_of(written)) == [
        "gen_ai.client.operation.duration", "gen_ai.client.operation.time_per_output_chunk",
        "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.token.usage", "llmtap.cost",
        "llmtap.requests"]
    assert service.connectors[ComponentID("genai_metrics")].config.metrics_flush_interval == 3600


async def test_a_connector_without_a_metrics_pipeline_says_so(make_settings):
    connector = factory.create(make_settings("connector", "genai_metrics"), Config(), {})
    await connector.consume(Signal.TRACES, traces(genai_span()))
    with pytest.raises(PermanentError, match="feeds no metrics pipeline"):
        await connector.flush()
    with pytest.raises(PermanentError, match="takes traces"):
        await connector.consume(Signal.LOGS, traces())


def test_it_connects_traces_to_metrics_only():
    assert factory.signals == {(Signal.TRACES, Signal.METRICS)}
    assert factory.default_config() == Config(metrics_flush_interval=15, aggregation_cardinality_limit=2000)


@pytest.mark.parametrize("raw, message", [
    ({"metrics_flush_interval": "0s"}, "metrics_flush_interval: must be positive; got 0s"),
    ({"aggregation_cardinality_limit": -1}, "aggregation_cardinality_limit: must not be negative; got -1"),
    ({"resource_metrics_cache_size": 0}, "resource_metrics_cache_size: must be at least 1; got 0"),
    ({"resource_metrics_key_attributes": ["service.name", " "]},
     "resource_metrics_key_attributes[1]: must not be empty"),
    ({"aggregation_temporality": "cumulative"}, "aggregation_temporality: must be one of "
                                                "AGGREGATION_TEMPORALITY_CUMULATIVE, AGGREGATION_TEMPORALITY_DELTA"),
    ({"metrics_flush_interval": "soon"}, "metrics_flush_interval: invalid duration 'soon'"),
    ({"dimensions": []}, "dimensions: unknown key"),
])
def test_config_errors_name_the_key(raw, message):
    _, errors = decode_config(Config, raw)
    assert any(e.startswith(message) for e in errors), errors


def test_docs_describe_every_config_key():
    from pathlib import Path

    from llmtap.configtypes import describe_fields
    docs = (Path(__file__).resolve().parent.parent / "docs" / "genai.md").read_text()
    section = docs[docs.index("## `genai_metrics` and `prometheus`"):]
    assert [key for key, *_ in describe_fields(Config) if f"`{key}`" not in section] == []
