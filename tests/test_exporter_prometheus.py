"""The prometheus exporter serves the OTLP metrics it is given on a real HTTP scrape
endpoint, named and typed as the OpenTelemetry → Prometheus compatibility rules say;
scrapes are parsed with prometheus_client's own parsers. The examples (alert rules,
Grafana dashboard) use only names a real scrape serves, and the alerts fire on the
series the GenAI pipeline produces (checked with promtool when it is installed)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from llmtap import attributes
from llmtap.component import ComponentID, Signal
from llmtap.configtypes import decode_config
from llmtap.connectors import genai_metrics
from llmtap.exporters.prometheus import Config, PrometheusExporterError, factory, label_name, metric_name
from otlpdata import T0
from test_genai_metrics import genai_span, traces

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
SCOPE = {"otel_scope_name": "llmtap.tests", "otel_scope_version": "1.0"}


# --- OTLP metrics built by hand ----------------------------------------------------------------------

def metrics(resource: dict | None = None, scope=("llmtap.tests", "1.0")):
    """A request with one resource and scope; returns (request, scope metrics to add metrics to)."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    attributes.add(rm.resource.attributes, {"service.name": "travel-agent"} if resource is None else resource)
    sm = rm.scope_metrics.add()
    sm.scope.name, sm.scope.version = scope
    return request, sm


def add_sum(sm, name, unit, values: list[tuple[dict, float]], *, monotonic=True, temporality=CUMULATIVE,
            time_ns=T0 + 10**10):
    metric = sm.metrics.add(name=name, unit=unit, description=f"{name} described")
    metric.sum.is_monotonic, metric.sum.aggregation_temporality = monotonic, temporality
    for attrs, value in values:
        p = metric.sum.data_points.add(start_time_unix_nano=T0, time_unix_nano=time_ns)
        attributes.add(p.attributes, attrs)
        p.as_double = value
    return metric


def add_histogram(sm, name, unit, bounds, counts, total, attrs=None, *, temporality=CUMULATIVE,
                  time_ns=T0 + 10**10):
    metric = sm.metrics.add(name=name, unit=unit)
    metric.histogram.aggregation_temporality = temporality
    p = metric.histogram.data_points.add(start_time_unix_nano=T0, time_unix_nano=time_ns, count=sum(counts),
                                         sum=total)
    p.explicit_bounds.extend(bounds)
    p.bucket_counts.extend(counts)
    attributes.add(p.attributes, attrs or {})
    return metric


# --- a real exporter, scraped over HTTP ---------------------------------------------------------------

@pytest.fixture
async def make_exporter(make_settings, host):
    made = []

    async def make(**raw):
        config, errors = decode_config(Config, {"endpoint": "127.0.0.1:0", **raw})
        assert not errors, errors
        exporter = factory.create(make_settings("exporter", "prometheus"), config)
        await exporter.start(host)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        await exporter.shutdown()


async def scrape_response(port: int, headers: dict | None = None) -> tuple[int, dict, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers or {}) as response:
            return response.status, dict(response.headers), await response.text()


async def scrape(exporter) -> dict:
    """family name → family, as prometheus_client's parser reads the text format."""
    status, _, text = await scrape_response(exporter.port)
    assert status == 200
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, name: str | None = None) -> dict[tuple, float]:
    """(sample name, sorted labels without the scope labels) → value."""
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if not k.startswith("otel_scope_")))): s.value
            for s in family.samples if name is None or s.name == name}


def value(family, sample: str, **match) -> float:
    found = [s.value for s in family.samples if s.name == sample and all(s.labels.get(k) == v
                                                                         for k, v in match.items())]
    assert len(found) == 1, (sample, match, family.samples)
    return found[0]


# --- the GenAI pipeline end to end -----------------------------------------------------------------------

PIPELINE = """
receivers: {feed: {}}
connectors:
  genai_metrics: {metrics_flush_interval: 1h}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
  debug: {verbosity: basic}
service:
  pipelines:
    traces: {receivers: [feed], exporters: [genai_metrics]}
    metrics: {receivers: [genai_metrics], exporters: [prometheus, debug]}
"""

TRAFFIC = [
    genai_span(tenant="acme", cost=1.0, duration_s=0.9, input_tokens=812, output_tokens=64, ttfc=0.3,
               per_chunk=[0.02, 0.03]),
    genai_span(tenant="acme", cost=0.0, duration_s=2.0, input_tokens=2000, output_tokens=300, ttfc=0.6,
               per_chunk=[0.05]),
    genai_span(tenant="globex", cost=2.0, duration_s=45.0, input_tokens=150000, output_tokens=4000,
               provider="anthropic", model="claude-sonnet-4-5", response_model="claude-sonnet-4-5-20250929"),
    genai_span(tenant="globex", duration_s=0.1, error="rate_limit_error", input_tokens=None, output_tokens=None,
               provider="anthropic", model="claude-sonnet-4-5", response_model="claude-sonnet-4-5-20250929"),
    genai_span(tenant="globex", duration_s=0.1, error="429", input_tokens=None, output_tokens=None,
               provider="anthropic", model="claude-sonnet-4-5", response_model="claude-sonnet-4-5-20250929"),
    genai_span(tenant="trial", cost=0.5, duration_s=1.5, input_tokens=90, output_tokens=20),
    genai_span(duration_s=3.0, status_error=True, input_tokens=None, output_tokens=None, model="gpt-4o"),
]


@pytest.fixture
async def genai_scrape(service_from_yaml, feed_receivers):
    """The scrape of a real service after the TRAFFIC spans went through connector and exporter."""
    service = service_from_yaml(PIPELINE, genai_metrics.factory, factory)
    await service.start()
    try:
        await feed_receivers["feed"].consumers[Signal.TRACES].consume(Signal.TRACES, traces(*TRAFFIC))
        await service.connectors[ComponentID("genai_metrics")].flush()
        _, _, text = await scrape_response(service.exporters[ComponentID("prometheus")].port)
    finally:
        await service.shutdown()
    return text


async def test_the_genai_metrics_are_served_named_the_prometheus_way(genai_scrape):
    families = {f.name: f for f in text_string_to_metric_families(genai_scrape)}
    assert {name: f.type for name, f in families.items()} == {
        "gen_ai_client_operation_duration_seconds": "histogram",
        "gen_ai_client_token_usage": "histogram",
        "gen_ai_client_operation_time_to_first_chunk_seconds": "histogram",
        "gen_ai_client_operation_time_per_output_chunk_seconds": "histogram",
        "llmtap_requests": "counter",
        "llmtap_cost_USD": "counter",
        "target_info": "gauge",
    }
    assert "llmtap_cost_USD_total{" in genai_scrape and "gen_ai_client_token_usage_bucket{" in genai_scrape
    assert value(families["target_info"], "target_info", job="travel-agent") == 1
    assert value(families["target_info"], "target_info", job="travel-agent", host_name="node-7") == 1


async def test_histogram_buckets_sums_and_counts_match_the_spans_sent(genai_scrape):
    families = {f.name: f for f in text_string_to_metric_families(genai_scrape)}
    tokens = families["gen_ai_client_token_usage"]
    mini_input = dict(gen_ai_request_model="gpt-4o-mini", gen_ai_token_type="input", job="travel-agent",
                      gen_ai_provider_name="openai", server_address="api.openai.com", server_port="443")
    # inputs of gpt-4o-mini: 812, 2000, 90 → cumulative buckets at le=64: 0, 256: 1, 1024: 2, 4096: 3
    assert [value(tokens, "gen_ai_client_token_usage_bucket", le=le, **mini_input)
            for le in ("64.0", "256.0", "1024.0", "4096.0", "+Inf")] == [0, 1, 2, 3, 3]
    assert value(tokens, "gen_ai_client_token_usage_sum", **mini_input) == 2902
    assert value(tokens, "gen_ai_client_token_usage_count", **mini_input) == 3
    les = [s.labels["le"] for s in tokens.samples if s.name.endswith("_bucket") and s.labels == {
        **next(s for s in tokens.samples if s.name.endswith("_bucket")).labels, "le": s.labels["le"]}]
    assert [float(le) for le in les] == [*genai_metrics.TOKEN_BUCKETS, float("inf")]

    duration = families["gen_ai_client_operation_duration_seconds"]
    claude = dict(gen_ai_request_model="claude-sonnet-4-5", gen_ai_response_model="claude-sonnet-4-5-20250929")
    assert value(duration, "gen_ai_client_operation_duration_seconds_count", error_type="rate_limit_error",
                 **claude) == 1
    ok_claude = {s.labels["le"]: s.value for s in duration.samples if s.name.endswith("_bucket")
                 and s.labels["gen_ai_request_model"] == "claude-sonnet-4-5" and "error_type" not in s.labels}
    assert (ok_claude["40.96"], ok_claude["81.92"]) == (0, 1)  # the 45 s call
    assert value(duration, "gen_ai_client_operation_duration_seconds_count", error_type="_OTHER") == 1

    first = families["gen_ai_client_operation_time_to_first_chunk_seconds"]
    assert value(first, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == 2
    assert value(first, "gen_ai_client_operation_time_to_first_chunk_seconds_sum") == pytest.approx(0.9)
    per_chunk = families["gen_ai_client_operation_time_per_output_chunk_seconds"]
    assert value(per_chunk, "gen_ai_client_operation_time_per_output_chunk_seconds_count") == 3


async def test_cost_and_requests_are_served_per_tenant(genai_scrape):
    families = {f.name: f for f in text_string_to_metric_families(genai_scrape)}
    cost = families["llmtap_cost_USD"]
    by_tenant = {}
    for s in cost.samples:
        by_tenant[s.labels.get("llmtap_attribution_tenant")] = by_tenant.get(
            s.labels.get("llmtap_attribution_tenant"), 0) + s.value
    assert by_tenant == {"acme": 1.0, "globex": 2.0, "trial": 0.5}
    requests = families["llmtap_requests"]
    assert value(requests, "llmtap_requests_total", llmtap_attribution_tenant="globex", error_type="429") == 1
    assert sum(s.value for s in requests.samples) == len(TRAFFIC)


# --- translation -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, unit, kind, expected", [
    ("gen_ai.client.token.usage", "{token}", "histogram", "gen_ai_client_token_usage"),
    ("gen_ai.client.operation.duration", "s", "histogram", "gen_ai_client_operation_duration_seconds"),
    ("llmtap.cost", "USD", "counter", "llmtap_cost_USD_total"),
    ("llmtap.requests", "{request}", "counter", "llmtap_requests_total"),
    ("system.filesystem.usage", "By", "gauge", "system_filesystem_usage_bytes"),
    ("system.network.dropped", "{packets}", "counter", "system_network_dropped_total"),
    ("system.network.dropped", "packets", "gauge", "system_network_dropped_packets"),
    ("system.memory.utilization", "1", "gauge", "system_memory_utilization_ratio"),
    ("system.network.io", "By/s", "gauge", "system_network_io_bytes_per_second"),
    ("http.server.request.duration", "ms", "histogram", "http_server_request_duration_milliseconds"),
    ("process.runtime.uptime.seconds", "s", "gauge", "process_runtime_uptime_seconds"),  # unit already there
    ("requests.total", "", "counter", "requests_total"),  # one _total, at the end
    ("(lambda).function.executions(#)", "", "gauge", "lambda_function_executions"),
    ("2xx.responses", "", "gauge", "_2xx_responses"),
])
def test_metric_names_follow_the_otel_to_prometheus_rules(name, unit, kind, expected):
    assert metric_name(name, unit, counter=kind == "counter", gauge=kind == "gauge") == expected


@pytest.mark.parametrize("key, expected", [
    ("gen_ai.provider.name", "gen_ai_provider_name"), ("llmtap.attribution.tenant", "llmtap_attribution_tenant"),
    ("http.response.status_code", "http_response_status_code"), ("2fa.method", "key_2fa_method"),
    ("_private", "key_private"), ("__reserved", "__reserved"), ("k8s.pod-name", "k8s_pod_name"),
])
def test_label_names_follow_the_otel_to_prometheus_rules(key, expected):
    assert label_name(key) == expected


async def test_resource_identity_becomes_job_and_instance_and_the_rest_target_info(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics({"service.name": "travel-agent", "service.namespace": "shop",
                           "service.instance.id": "pod-7f9c", "k8s.namespace.name": "agents",
                           "host.name": "node-7"})
    add_sum(sm, "llmtap.requests", "{request}", [({"gen_ai.request.model": "gpt-4o"}, 3)])
    await exporter.consume(Signal.METRICS, request)
    families = await scrape(exporter)
    assert samples(families["llmtap_requests"]) == {("llmtap_requests_total", (
        ("gen_ai_request_model", "gpt-4o"), ("instance", "pod-7f9c"), ("job", "shop/travel-agent"))): 3}
    assert samples(families["target_info"]) == {("target_info", (
        ("host_name", "node-7"), ("instance", "pod-7f9c"), ("job", "shop/travel-agent"),
        ("k8s_namespace_name", "agents"))): 1}
    assert value(families["llmtap_requests"], "llmtap_requests_total", **SCOPE) == 3
    assert families["llmtap_requests"].documentation == "llmtap.requests described"


async def test_namespace_const_labels_and_resource_attributes_on_every_series(make_exporter):
    exporter = await make_exporter(namespace="acme", const_labels={"cluster": "eu-1"},
                                   resource_to_telemetry_conversion={"enabled": True})
    request, sm = metrics({"service.name": "travel-agent", "k8s.pod.name": "agent-0"})
    add_sum(sm, "llmtap.cost", "USD", [({"llmtap.attribution.tenant": "globex"}, 0.25)])
    await exporter.consume(Signal.METRICS, request)
    families = await scrape(exporter)
    assert samples(families["acme_llmtap_cost_USD"]) == {("acme_llmtap_cost_USD_total", (
        ("cluster", "eu-1"), ("job", "travel-agent"), ("k8s_pod_name", "agent-0"),
        ("llmtap_attribution_tenant", "globex"), ("service_name", "travel-agent"))): 0.25}
    assert value(families["target_info"], "target_info", cluster="eu-1") == 1


async def test_attribute_keys_that_collide_after_sanitizing_have_their_values_joined(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics()
    add_sum(sm, "calls", "", [({"peer.name": "a", "peer_name": "b", "retry": 2, "cached": True,
                                "tags": ["x", "y"]}, 1)])
    await exporter.consume(Signal.METRICS, request)
    (labels,) = [s.labels for s in (await scrape(exporter))["calls"].samples]
    assert (labels["peer_name"], labels["retry"], labels["cached"], labels["tags"]) == ("a;b", "2", "true",
                                                                                         '["x","y"]')


# --- types and temporality ---------------------------------------------------------------------------------

async def test_delta_sums_and_histograms_are_accumulated_into_cumulative_series(make_exporter):
    exporter = await make_exporter()
    for i in range(3):
        request, sm = metrics()
        add_sum(sm, "llmtap.cost", "USD", [({"tenant": "acme"}, 0.5)], temporality=DELTA)
        add_histogram(sm, "gen_ai.client.operation.duration", "s", [1.0, 10.0], [1, 2, 0], 9.0,
                      temporality=DELTA)
        await exporter.consume(Signal.METRICS, request)
    families = await scrape(exporter)
    assert value(families["llmtap_cost_USD"], "llmtap_cost_USD_total") == 1.5
    duration = families["gen_ai_client_operation_duration_seconds"]
    name = "gen_ai_client_operation_duration_seconds"
    assert [value(duration, f"{name}_bucket", le=le) for le in ("1.0", "10.0", "+Inf")] == [3, 9, 9]
    assert (value(duration, f"{name}_sum"), value(duration, f"{name}_count")) == (27.0, 9)


async def test_a_histogram_without_buckets_serves_its_count_as_the_inf_bucket(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics()
    add_histogram(sm, "gen_ai.client.operation.duration", "s", [1.0, 10.0], [], 4.0)
    sm.metrics[0].histogram.data_points[0].count = 2
    await exporter.consume(Signal.METRICS, request)
    duration = (await scrape(exporter))["gen_ai_client_operation_duration_seconds"]
    assert {s.labels.get("le"): s.value for s in duration.samples if s.name.endswith("_bucket")} == {"+Inf": 2}


async def test_a_cumulative_point_replaces_the_last_and_an_older_one_is_ignored(make_exporter):
    exporter = await make_exporter()
    for total, time_ns in ((5, T0 + 2 * 10**10), (7, T0 + 3 * 10**10), (6, T0 + 10**10)):
        request, sm = metrics()
        add_sum(sm, "llmtap.requests", "{request}", [({}, total)], time_ns=time_ns)
        await exporter.consume(Signal.METRICS, request)
    assert value((await scrape(exporter))["llmtap_requests"], "llmtap_requests_total") == 7


async def test_gauges_non_monotonic_sums_and_summaries(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics()
    gauge = sm.metrics.add(name="llmtap.queue.utilization", unit="1")
    gauge.gauge.data_points.add(time_unix_nano=T0, as_double=0.25)
    add_sum(sm, "gen_ai.requests.in_flight", "{request}", [({}, 4)], monotonic=False)
    summary = sm.metrics.add(name="rpc.latency", unit="ms")
    p = summary.summary.data_points.add(time_unix_nano=T0, count=10, sum=125.0)
    p.quantile_values.add(quantile=0.5, value=11.0)
    p.quantile_values.add(quantile=0.99, value=40.0)
    await exporter.consume(Signal.METRICS, request)
    families = await scrape(exporter)
    assert {name: f.type for name, f in families.items() if name != "target_info"} == {
        "llmtap_queue_utilization_ratio": "gauge", "gen_ai_requests_in_flight": "gauge",
        "rpc_latency_milliseconds": "summary"}
    assert value(families["gen_ai_requests_in_flight"], "gen_ai_requests_in_flight") == 4
    latency = families["rpc_latency_milliseconds"]
    assert value(latency, "rpc_latency_milliseconds", quantile="0.99") == 40.0
    assert value(latency, "rpc_latency_milliseconds_count") == 10


async def test_what_prometheus_cannot_represent_is_dropped_and_counted(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics()
    add_sum(sm, "queue.delta", "{item}", [({}, 3), ({"q": "b"}, 1)], monotonic=False, temporality=DELTA)
    expo = sm.metrics.add(name="gen_ai.client.operation.duration", unit="s")
    expo.exponential_histogram.aggregation_temporality = CUMULATIVE
    expo.exponential_histogram.data_points.add(count=1, scale=3)
    add_sum(sm, "llmtap.requests", "{request}", [({}, 1)])
    await exporter.consume(Signal.METRICS, request)
    assert set(await scrape(exporter)) == {"llmtap_requests"}
    telemetry = exporter.settings.telemetry
    assert telemetry.value("llmtap_exporter_dropped_metric_points_total", exporter="prometheus",
                           reason="non_monotonic_delta_sum") == 2
    assert telemetry.value("llmtap_exporter_dropped_metric_points_total", exporter="prometheus",
                           reason="exponential_histogram") == 1
    assert telemetry.value("llmtap_exporter_sent_metric_points_total", exporter="prometheus") == 1


async def test_a_name_served_as_one_type_is_not_served_as_another(make_exporter, caplog):
    exporter = await make_exporter()
    request, sm = metrics()
    add_sum(sm, "llmtap.requests", "{request}", [({}, 1)])
    gauge = sm.metrics.add(name="llmtap.requests", unit="{request}")  # same Prometheus name, other type
    gauge.gauge.data_points.add(as_double=9)
    await exporter.consume(Signal.METRICS, request)
    assert "metric llmtap_requests dropped: already served as a counter, not a gauge" in caplog.text
    families = await scrape(exporter)
    assert (families["llmtap_requests"].type, value(families["llmtap_requests"], "llmtap_requests_total")) == (
        "counter", 1)
    assert exporter.settings.telemetry.value("llmtap_exporter_dropped_metric_points_total",
                                             exporter="prometheus", reason="name_conflict") == 1


async def test_a_point_flagged_no_recorded_value_ends_its_series(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics()
    add_sum(sm, "llmtap.requests", "{request}", [({"m": "a"}, 1), ({"m": "b"}, 2)])
    await exporter.consume(Signal.METRICS, request)
    request, sm = metrics()
    metric = add_sum(sm, "llmtap.requests", "{request}", [({"m": "a"}, 0)], time_ns=T0 + 2 * 10**10)
    metric.sum.data_points[0].flags = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    await exporter.consume(Signal.METRICS, request)
    assert [s.labels["m"] for s in (await scrape(exporter))["llmtap_requests"].samples] == ["b"]


async def test_series_not_updated_for_metric_expiration_are_no_longer_served(make_exporter):
    clock = [1000.0]
    exporter = await make_exporter(metric_expiration="5m")
    exporter.store.clock = lambda: clock[0]
    for model in ("gpt-4o", "gpt-4o-mini"):
        request, sm = metrics()
        add_sum(sm, "llmtap.requests", "{request}", [({"model": model}, 1)])
        await exporter.consume(Signal.METRICS, request)
        clock[0] += 200
    assert [s.labels["model"] for s in (await scrape(exporter))["llmtap_requests"].samples] == ["gpt-4o-mini"]
    clock[0] += 200
    assert set(await scrape(exporter)) == set()  # target_info went with its resource's series


# --- HTTP --------------------------------------------------------------------------------------------------

async def test_open_metrics_is_served_to_a_scraper_that_asks_for_it_when_enabled(make_exporter):
    request, sm = metrics()
    add_histogram(sm, "gen_ai.client.operation.duration", "s", [1.0], [2, 1], 4.5, {"gen_ai.request.model": "x"})
    accept = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"}

    plain = await make_exporter()
    await plain.consume(Signal.METRICS, request)
    _, headers, _ = await scrape_response(plain.port, accept)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")

    exporter = await make_exporter(enable_open_metrics=True)
    await exporter.consume(Signal.METRICS, request)
    status, headers, text = await scrape_response(exporter.port, accept)
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    (duration,) = parse_openmetrics(text)
    assert (duration.name, duration.type, duration.unit) == ("gen_ai_client_operation_duration_seconds",
                                                             "histogram", "seconds")
    assert value(duration, "gen_ai_client_operation_duration_seconds_count") == 3


async def test_the_scrape_is_gzipped_for_a_scraper_that_accepts_it(make_exporter):
    exporter = await make_exporter()
    request, sm = metrics()
    add_sum(sm, "llmtap.requests", "{request}", [({"gen_ai.request.model": f"m{i}"}, i) for i in range(50)])
    await exporter.consume(Signal.METRICS, request)
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(f"http://127.0.0.1:{exporter.port}/metrics",
                               headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            body = gzip.decompress(await response.read()).decode()
    assert 'llmtap_requests_total{gen_ai_request_model="m7"' in body


async def test_an_endpoint_in_use_fails_start_naming_it(make_exporter, make_settings, host):
    first = await make_exporter()
    config, _ = decode_config(Config, {"endpoint": f"127.0.0.1:{first.port}"})
    second = factory.create(make_settings("exporter", "prometheus"), config)
    with pytest.raises(PrometheusExporterError, match=f"cannot listen on 127.0.0.1:{first.port}"):
        await second.start(host)


@pytest.mark.parametrize("raw, message", [
    ({"endpoint": "9464"}, "endpoint: must be host:port; got '9464'"),
    ({"namespace": "acme-prod"}, "namespace: must be letters, digits and _"),
    ({"const_labels": {"cluster.name": "eu"}}, "const_labels.cluster.name: not a valid label name"),
    ({"metric_expiration": "soon"}, "metric_expiration: invalid duration"),
    ({"resource_to_telemetry_conversion": {"enabled": "yes"}}, "resource_to_telemetry_conversion.enabled: "
                                                                 "expected bool"),
    ({"send_timestamps": True}, "send_timestamps: unknown key"),
])
def test_config_errors_name_the_key(raw, message):
    _, errors = decode_config(Config, raw)
    assert any(e.startswith(message) for e in errors), errors


def test_defaults_are_the_collectors():
    assert factory.default_config() == Config(endpoint="localhost:9464", metric_expiration=300)
    assert factory.signals == {Signal.METRICS}


# --- the examples ------------------------------------------------------------------------------------------

def alert_rules() -> dict:
    return yaml.safe_load((EXAMPLES / "prometheus" / "llmtap-alerts.yaml").read_text())


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((EXAMPLES / "grafana" / "llmtap-genai-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def rule_expressions() -> list[str]:
    return [rule["expr"] for group in alert_rules()["groups"] for rule in group["rules"]]


SERVED_NAME = re.compile(r"\b(?:gen_ai_\w+|llmtap_\w+|target_info)\b")
NAME_REGEX = re.compile(r'__name__=~"([^"]*)"')


def names_used(expr: str) -> set[str]:
    return set(SERVED_NAME.findall(NAME_REGEX.sub("", expr)))


def test_the_alert_rules_file_is_prometheus_rule_groups():
    groups = alert_rules()["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["alert"] for r in rules if "alert" in r} == {
        "LLMHighErrorRate", "LLMRateLimited", "LLMHighP99Latency", "LLMTenantDailyBudgetExceeded",
        "LLMTapMetricsCardinalityOverflow"}
    assert all({"expr", "labels", "annotations"} <= set(r) for r in rules if "alert" in r)


async def test_the_examples_use_only_names_a_real_scrape_serves(genai_scrape):
    families = list(text_string_to_metric_families(genai_scrape))
    served = {s.name for f in families for s in f.samples} | {k for f in families for s in f.samples
                                                                for k in s.labels}
    for expr in rule_expressions() + dashboard_expressions():
        unknown = names_used(expr) - served
        assert not unknown, f"{unknown} in {expr!r} is neither a served metric nor a served label"
        for pattern in NAME_REGEX.findall(expr):  # {__name__=~"…"} must select served series
            assert any(re.fullmatch(pattern, name) for name in served), pattern
    used = {n for e in rule_expressions() + dashboard_expressions() for n in names_used(e)}
    assert {"gen_ai_client_operation_duration_seconds_bucket", "gen_ai_client_operation_duration_seconds_count",
            "gen_ai_client_token_usage_sum", "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
            "llmtap_cost_USD_total", "llmtap_requests_total"} <= used


# `make test` puts it next to the venv's python (from Debian's prometheus package).
PROMTOOL = shutil.which("promtool", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_accepts_the_rules_and_the_dashboard_queries(tmp_path):
    check = subprocess.run([PROMTOOL, "check", "rules", str(EXAMPLES / "prometheus" / "llmtap-alerts.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Each dashboard query as a recording rule, with Grafana's variables filled in, must parse as PromQL.
    filled = [re.sub(r"\$__rate_interval", "5m", re.sub(r"\$(provider|model|tenant)", ".*", e))
              for e in dashboard_expressions() if not e.startswith("label_values")]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{i}", "expr": e}
                                                        for i, e in enumerate(filled)]}]}
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_the_alerts_fire_on_the_series_the_genai_pipeline_serves(genai_scrape, tmp_path):
    """promtool replays the scraped series as if the same traffic came every minute for an hour,
    then stopped (flat for 20 minutes: a rule group's evaluation offset within the minute, which
    promtool derives from the rule file's path, then cannot change what a rolling sum reads)."""
    series = []
    for family in text_string_to_metric_families(genai_scrape):
        if family.type not in ("counter", "histogram"):
            continue
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            series.append({"series": f"{s.name}{{{labels}}}", "values": f"0+{s.value:g}x60 {60 * s.value:g}x20"})
    alerting = {"severity": "warning"}
    claude = {"gen_ai_provider_name": "anthropic", "gen_ai_request_model": "claude-sonnet-4-5"}
    tests = {
        "rule_files": [str(EXAMPLES / "prometheus" / "llmtap-alerts.yaml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                # 2 of the 3 claude calls a minute fail, both rate-limited; gpt-4o's one call a minute
                # always fails, but one call a minute is below the alert's traffic floor.
                {"eval_time": "30m", "alertname": "LLMHighErrorRate", "exp_alerts": [
                    {"exp_labels": {**alerting, **claude}, "exp_annotations": {
                        "summary": "anthropic claude-sonnet-4-5: 66.67% of calls fail",
                        "description": "More than 5% of GenAI calls to this provider and model have ended in an "
                                       "error for 10 minutes."}}]},
                {"eval_time": "30m", "alertname": "LLMRateLimited", "exp_alerts": [
                    {"exp_labels": {**alerting, **claude}, "exp_annotations": {
                        "summary": "anthropic claude-sonnet-4-5: 2 rate-limited calls per minute",
                        "description": "The provider has been refusing calls for exceeding a rate limit for "
                                       "5 minutes."}}]},
                # a third of claude's calls take 45 s: p99 is interpolated in the (40.96, 81.92] bucket
                {"eval_time": "30m", "alertname": "LLMHighP99Latency", "exp_alerts": [
                    {"exp_labels": {**alerting, **claude}, "exp_annotations": {
                        "summary": "anthropic claude-sonnet-4-5: p99 latency 1m 20s",
                        "description": "The 99th percentile of GenAI call duration has been above 30 s for "
                                       "10 minutes."}}]},
                # an hour of traffic: acme 60 USD (budget 250), globex 120 (default 100), trial 30 (budget 20)
                {"eval_time": "70m", "alertname": "LLMTenantDailyBudgetExceeded", "exp_alerts": [
                    {"exp_labels": {"severity": "critical", "llmtap_attribution_tenant": tenant},
                     "exp_annotations": {
                         "summary": f"Tenant {tenant} spent {spent} USD in the last 24 hours",
                         "description": "GenAI spend attributed to this tenant over the last 24 hours is above "
                                        "its daily budget."}}
                    for tenant, spent in (("globex", "120.00"), ("trial", "30.00"))]},
                {"eval_time": "60m", "alertname": "LLMTapMetricsCardinalityOverflow", "exp_alerts": []},
            ],
        }],
    }
    path = tmp_path / "alerts-test.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_describe_every_config_key():
    from llmtap.configtypes import describe_fields
    docs = (EXAMPLES.parent / "docs" / "genai.md").read_text()
    section = docs[docs.index("## `genai_metrics` and `prometheus`"):]
    keys = [key for key, type_, *_ in describe_fields(Config) if type_ != "map"]
    assert [key for key in keys if f"`{key}`" not in section] == []
