"""The `otlphttp` exporter against real HTTP servers: an aiohttp OTLP/HTTP sink
that can be told to fail, and a second llmtap.

Retries use short intervals (50 ms, up to 200 ms) so that failure cases run fast.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import ssl
import time

import pytest

from conftest import ReadyHost, new_settings
from llmtap.component import ComponentID, Signal
from llmtap.configtypes import decode_config
from llmtap.exporters import otlphttp
from llmtap.exporters.otlpclient import ExporterStartError
from llmtap.extensions import bearertokenauth
from llmtap.pdata import parse_json
from llmtap.service import FanOut
from otlp_sinks import HttpSink, Reply, free_port
from otlpdata import logs_request, metrics_request, spans_request
from receiver_otlp_support import pki  # noqa: F401  (fixture)

FAST_RETRY = {"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": "10s"}


@pytest.fixture
async def http_sink():
    sinks: list[HttpSink] = []

    async def start(port: int = 0, ssl_context: ssl.SSLContext | None = None) -> HttpSink:
        sink = await HttpSink(ssl_context).start(port)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        await sink.stop()


@pytest.fixture
async def exporter():
    """start(endpoint, host=None, **config) -> a started otlphttp exporter; all are shut down after the test."""
    started: list[otlphttp.OtlpHttpExporter] = []

    async def start(endpoint: str, host: ReadyHost | None = None, id: str = "otlphttp",
                    **raw) -> otlphttp.OtlpHttpExporter:
        raw = {"timeout": "2s", **raw}
        raw["retry_on_failure"] = {**FAST_RETRY, **raw.get("retry_on_failure", {})}
        config, errors = decode_config(otlphttp.Config, {"endpoint": endpoint, **raw})
        assert errors == []
        instance = otlphttp.factory.create(new_settings("exporter", id), config)
        await instance.start(host or ReadyHost())
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await shut_down(instance, within=0.5)


async def shut_down(instance, within: float) -> None:
    instance.host.shutdown_deadline = asyncio.get_running_loop().time() + within
    await instance.shutdown()


def count(instance, what: str, signal: Signal = Signal.TRACES, **labels) -> float:
    item = {Signal.TRACES: "spans", Signal.METRICS: "metric_points", Signal.LOGS: "log_records"}[signal]
    return instance.settings.telemetry.value(f"llmtap_exporter_{what}_{item}_total", exporter=str(instance.id),
                                             **labels)


async def until_counted(instance, what: str, n: float, signal: Signal = Signal.TRACES, **labels) -> None:
    for _ in range(500):
        if count(instance, what, signal, **labels) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} {labels} is {count(instance, what, signal, **labels)}, expected {n}")


def server_tls(pki, client_ca: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_every_signal_arrives_gzipped_protobuf_and_byte_identical(http_sink, exporter):
    sink = await http_sink()
    otlphttp_exporter = await exporter(sink.url)
    sent = {Signal.TRACES: spans_request(7), Signal.METRICS: metrics_request(4), Signal.LOGS: logs_request(12)}
    for signal, request in sent.items():
        await otlphttp_exporter.consume(signal, request)
    await sink.wait_for_requests(3)

    for signal, request in sent.items():
        (arrived,) = sink.accepted(signal)
        assert arrived.path == f"/v1/{signal}"
        assert arrived.headers["Content-Type"] == "application/x-protobuf"
        assert arrived.headers["Content-Encoding"] == "gzip"  # and aiohttp could gunzip it
        assert arrived.body == request.SerializeToString()
    for signal, n in ((Signal.TRACES, 7), (Signal.METRICS, 12), (Signal.LOGS, 12)):
        await until_counted(otlphttp_exporter, "sent", n, signal)


async def test_a_big_batch_arrives_intact(http_sink, exporter):
    sink = await http_sink()
    otlphttp_exporter = await exporter(sink.url, headers={"content-type": "text/plain"})
    request = spans_request(400)  # about 500 KiB: compressed off the event loop
    await otlphttp_exporter.consume(Signal.TRACES, request)
    await sink.wait_for_items(400)
    assert sink.received[0].body == request.SerializeToString()
    assert sink.received[0].headers["Content-Type"] == "application/x-protobuf"


async def test_json_encoding_with_hex_ids_and_a_json_partial_success(http_sink, exporter, caplog):
    caplog.set_level(logging.WARNING)
    sink = await http_sink()
    sink.script(Reply(rejected=1, error_message="one span was too large"))
    otlphttp_exporter = await exporter(sink.url, encoding="json", compression="none")
    request = spans_request(4)
    await otlphttp_exporter.consume(Signal.TRACES, request)
    await until_counted(otlphttp_exporter, "dropped", 1, reason="rejected_by_destination")

    (arrived,) = sink.received
    assert arrived.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in arrived.headers
    assert parse_json(Signal.TRACES, arrived.body) == request
    first_span = json.loads(arrived.body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert first_span["traceId"] == request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    assert count(otlphttp_exporter, "sent") == 3
    assert "one span was too large" in caplog.text


async def test_signal_endpoints_replace_the_base_url(http_sink, exporter):
    sink = await http_sink()
    otlphttp_exporter = await exporter("", traces_endpoint=f"{sink.url}/custom/traces",
                                       logs_endpoint=f"{sink.url}/custom/logs")
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(2))
    await otlphttp_exporter.consume(Signal.LOGS, logs_request(2))
    await otlphttp_exporter.consume(Signal.METRICS, metrics_request(1))  # no URL for metrics
    await sink.wait_for_items(4)
    await until_counted(otlphttp_exporter, "dropped", 3, Signal.METRICS, reason="permanent_error")

    assert sorted(r.path for r in sink.received) == ["/custom/logs", "/custom/traces"]


async def test_data_sent_while_the_target_is_down_arrives_once_it_is_up(http_sink, exporter):
    port = free_port()
    otlphttp_exporter = await exporter(f"http://127.0.0.1:{port}")
    requests = [spans_request(5, seed=seed) for seed in range(3)]
    for request in requests:
        await otlphttp_exporter.consume(Signal.TRACES, request)
    await asyncio.sleep(0.3)  # a few refused connections

    sink = await http_sink(port)
    await sink.wait_for_items(15)
    assert sorted(r.body for r in sink.received) == sorted(r.SerializeToString() for r in requests)
    await until_counted(otlphttp_exporter, "sent", 15)


async def test_400_is_dropped_and_counted_with_the_servers_message_and_never_retried(http_sink, exporter, caplog):
    sink = await http_sink()
    sink.script(Reply(status=400, message="span 2: trace id must be 16 bytes"))
    otlphttp_exporter = await exporter(sink.url)
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5))
    await until_counted(otlphttp_exporter, "dropped", 5, reason="permanent_error")
    await asyncio.sleep(0.3)  # several retry intervals: nothing else may arrive

    assert len(sink.received) == 1
    assert count(otlphttp_exporter, "send_failed") == 5
    assert "HTTP 400: span 2: trace id must be 16 bytes" in caplog.text


async def test_503_with_retry_after_is_retried_no_earlier_than_asked(http_sink, exporter):
    sink = await http_sink()
    sink.script(Reply(status=503, retry_after="1"))
    otlphttp_exporter = await exporter(sink.url)
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)

    refused, retried = sink.received
    assert retried.at - refused.at >= 1.0 - 0.01  # Retry-After, not the 50ms backoff
    assert retried.body == refused.body


@pytest.mark.parametrize("status, retried", [
    (429, True), (502, True), (504, True), (401, False), (404, False), (413, False), (500, False),
])
async def test_which_statuses_are_retried(http_sink, exporter, status, retried):
    sink = await http_sink()
    sink.script(Reply(status=status, message="no"))
    otlphttp_exporter = await exporter(sink.url)
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(3))
    if retried:
        await sink.wait_for_items(3)
        assert len(sink.received) == 2
    else:
        await until_counted(otlphttp_exporter, "dropped", 3, reason="permanent_error")
        await asyncio.sleep(0.2)
        assert len(sink.received) == 1


async def test_a_redirect_is_not_followed_and_the_error_names_the_new_location(http_sink, exporter, caplog):
    sink = await http_sink()
    sink.script(Reply(status=308, headers={"Location": "https://elsewhere.example/v1/traces"}))
    otlphttp_exporter = await exporter(sink.url)
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(3))
    await until_counted(otlphttp_exporter, "dropped", 3, reason="permanent_error")
    assert "redirected to https://elsewhere.example/v1/traces" in caplog.text


async def test_a_partial_success_is_logged_counted_and_not_retried(http_sink, exporter, caplog):
    caplog.set_level(logging.WARNING)
    sink = await http_sink()
    sink.script(Reply(rejected=2, error_message="2 spans are older than the retention"))
    otlphttp_exporter = await exporter(sink.url)
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5))
    await until_counted(otlphttp_exporter, "dropped", 2, reason="rejected_by_destination")
    await asyncio.sleep(0.3)

    assert len(sink.received) == 1
    assert count(otlphttp_exporter, "sent") == 3
    assert "2 spans are older than the retention" in caplog.text


async def test_a_full_queue_counts_enqueue_failed_and_consume_does_not_wait(http_sink, exporter):
    sink = await http_sink()
    sink.script(Reply(hang=True))
    otlphttp_exporter = await exporter(sink.url, timeout="30s", sending_queue={"num_consumers": 1, "queue_size": 1})
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5, seed=1))   # in flight, never answered
    await sink.wait_for_requests(1)
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5, seed=2))   # queued
    await asyncio.wait_for(otlphttp_exporter.consume(Signal.TRACES, spans_request(5, seed=3)), 2.0)

    assert count(otlphttp_exporter, "enqueue_failed") == 5
    assert count(otlphttp_exporter, "dropped", reason="queue_full") == 5


async def test_a_hung_server_does_not_stall_the_other_exporter(http_sink, exporter):
    hung, healthy = await http_sink(), await http_sink()
    hung.script(*[Reply(hang=True)] * 100)
    to_hung = await exporter(hung.url, id="otlphttp/hung", timeout="30s")
    to_healthy = await exporter(healthy.url, id="otlphttp/healthy")
    fan_out = FanOut([to_hung, to_healthy], copy=True)

    for seed in range(5):
        await asyncio.wait_for(fan_out.consume(Signal.TRACES, spans_request(4, seed=seed)), 2.0)
    await healthy.wait_for_items(20)
    assert count(to_hung, "sent") == 0


async def test_shutdown_drains_the_queue(http_sink, exporter):
    sink = await http_sink()
    sink.script(*[Reply(status=503)] * 3)
    otlphttp_exporter = await exporter(sink.url, sending_queue={"num_consumers": 2})
    for seed in range(6):
        await otlphttp_exporter.consume(Signal.TRACES, spans_request(5, seed=seed))
    await shut_down(otlphttp_exporter, within=10)

    assert sink.items() == 30
    assert count(otlphttp_exporter, "sent") == 30


async def test_with_a_dead_target_shutdown_ends_at_the_deadline_and_counts_the_rest(exporter):
    otlphttp_exporter = await exporter(f"http://127.0.0.1:{free_port()}", sending_queue={"num_consumers": 1})
    for seed in range(3):
        await otlphttp_exporter.consume(Signal.TRACES, spans_request(5, seed=seed))
    await asyncio.wait_for(shut_down(otlphttp_exporter, within=0.3), 5.0)

    assert count(otlphttp_exporter, "dropped", reason="shutdown") == 15
    assert count(otlphttp_exporter, "sent") == 0


async def test_headers_and_the_bearer_token_reach_the_server(http_sink, exporter):
    sink = await http_sink()
    auth = bearertokenauth.factory.create(new_settings("extension", "bearertokenauth"),
                                          bearertokenauth.Config(token="s3cret", header="X-Api-Key", scheme=""))
    host = ReadyHost()
    host.extensions[ComponentID("bearertokenauth", "backend")] = auth
    otlphttp_exporter = await exporter(sink.url, host=host, headers={"X-Tenant": "acme"},
                                       auth={"authenticator": "bearertokenauth/backend"})
    await otlphttp_exporter.consume(Signal.LOGS, logs_request(3))
    await sink.wait_for_items(3)

    headers = sink.received[0].headers
    assert headers["X-Tenant"] == "acme"
    assert headers["X-Api-Key"] == "s3cret"
    assert headers["User-Agent"].startswith("llmtap/")


async def test_an_authenticator_that_is_not_running_fails_the_start():
    config, _ = decode_config(otlphttp.Config, {"endpoint": "http://127.0.0.1:4318",
                                                "auth": {"authenticator": "bearertokenauth"}})
    instance = otlphttp.factory.create(new_settings("exporter", "otlphttp"), config)
    with pytest.raises(ExporterStartError, match="auth.authenticator: extension bearertokenauth is not running"):
        await instance.start(ReadyHost())


async def test_tls_with_a_private_ca_and_client_certificates(http_sink, exporter, pki):
    sink = await http_sink(ssl_context=server_tls(pki, client_ca=pki.ca))
    otlphttp_exporter = await exporter(sink.url, tls={"ca_file": pki.ca, "cert_file": pki.client_cert,
                                                      "key_file": pki.client_key})
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)


async def test_insecure_skip_verify_accepts_any_server_certificate(http_sink, exporter, pki):
    sink = await http_sink(ssl_context=server_tls(pki))
    otlphttp_exporter = await exporter(sink.url, tls={"insecure_skip_verify": True})
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)


async def test_a_server_certificate_from_an_unknown_ca_is_refused(http_sink, exporter, pki):
    sink = await http_sink(ssl_context=server_tls(pki))
    otlphttp_exporter = await exporter(sink.url, tls={"ca_file": pki.other_ca},
                                       retry_on_failure={"max_elapsed_time": "300ms"})
    await otlphttp_exporter.consume(Signal.TRACES, spans_request(5))
    await until_counted(otlphttp_exporter, "dropped", 5, reason="retries_exhausted")
    assert sink.received == []


async def test_server_name_override_checks_the_certificate_against_that_name(http_sink, exporter, pki):
    sink = await http_sink(ssl_context=server_tls(pki))
    good = await exporter(sink.url, id="otlphttp/good", tls={"ca_file": pki.ca, "server_name_override": "localhost"})
    bad = await exporter(sink.url, id="otlphttp/bad", tls={"ca_file": pki.ca, "server_name_override": "example.com"},
                         retry_on_failure={"enabled": False})
    await good.consume(Signal.TRACES, spans_request(5))
    await bad.consume(Signal.TRACES, spans_request(5, seed=2))
    await sink.wait_for_items(5)
    await until_counted(bad, "dropped", 5, reason="retry_disabled")
    assert len(sink.received) == 1


@pytest.mark.parametrize("encoding", ["proto", "json"])
async def test_exporting_to_a_second_llmtap(exporter, service_from_yaml, capture_exporters, encoding):
    second = service_from_yaml("""
receivers:
  otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
exporters:
  capture:
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], exporters: [capture]}
    metrics: {receivers: [otlp], exporters: [capture]}
""")
    await second.start()
    try:
        endpoint = second.receivers[ComponentID("otlp")].endpoints["http"]
        otlphttp_exporter = await exporter(f"http://{endpoint}", encoding=encoding)
        requests = [(Signal.TRACES, spans_request(8)), (Signal.METRICS, metrics_request(2))]
        for signal, request in requests:
            await otlphttp_exporter.consume(signal, request)
        captured = capture_exporters["capture"].sink
        await captured.wait_for_items(14)
        assert sorted(d.SerializeToString() for _, d in captured.received) == \
            sorted(r.SerializeToString() for _, r in requests)
        await until_counted(otlphttp_exporter, "sent", 6, Signal.METRICS)
    finally:
        await second.shutdown()


@pytest.mark.parametrize("raw, error", [
    ({}, "endpoint: must be set (or traces_endpoint, metrics_endpoint and logs_endpoint)"),
    ({"endpoint": "collector:4318"}, "endpoint: 'collector:4318' must be an http:// or https:// URL"),
    ({"traces_endpoint": "https://api.example.com:http/v1/traces"},
     "traces_endpoint: 'https://api.example.com:http/v1/traces' has an invalid port"),
    ({"endpoint": "https://api.example.com", "headers": {"x-key:": "v"}}, "headers.x-key:: not a valid header name"),
    ({"endpoint": "https://api.example.com", "headers": {"x-key": "a\r\nInjected: 1"}},
     "headers.x-key: value must be a string without line breaks"),
    ({"endpoint": "https://api.example.com", "encoding": "protobuf"},
     "encoding: must be one of proto, json; got 'protobuf'"),
])
def test_config_errors_name_the_key(raw, error):
    assert decode_config(otlphttp.Config, raw)[1] == [error]


def test_signal_urls_are_the_base_url_plus_the_signal_path():
    config, _ = decode_config(otlphttp.Config, {"endpoint": "https://otlp.example.com/otlp/",
                                                "logs_endpoint": "https://logs.example.com/ingest"})
    assert config.signal_url(Signal.TRACES) == "https://otlp.example.com/otlp/v1/traces"
    assert config.signal_url(Signal.METRICS) == "https://otlp.example.com/otlp/v1/metrics"
    assert config.signal_url(Signal.LOGS) == "https://logs.example.com/ingest"


def test_retry_after_takes_seconds_or_an_http_date():
    assert otlphttp.parse_retry_after("120") == 120
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= otlphttp.parse_retry_after(in_a_minute) <= 60
    assert otlphttp.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past: no wait
    assert otlphttp.parse_retry_after("soon") is None
    assert otlphttp.parse_retry_after(None) is None


def test_defaults_are_the_collectors():
    config = otlphttp.Config()
    assert (config.encoding, config.compression, config.timeout) == ("proto", "gzip", 30)
