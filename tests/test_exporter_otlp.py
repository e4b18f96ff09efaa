"""The `otlp` (gRPC) exporter against real gRPC servers: a sink built on the
opentelemetry-proto service stubs that can be told to fail, and a second llmtap.

Retries use short intervals (50 ms, up to 200 ms) so that failure cases run fast.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc.aio import Metadata

from conftest import ReadyHost, new_settings
from llmtap.component import ComponentID, Signal
from llmtap.configtypes import decode_config
from llmtap.exporters import otlp
from llmtap.exporters.otlpclient import ExporterStartError
from llmtap.extensions import bearertokenauth
from llmtap.service import FanOut
from otlp_sinks import GrpcSink, Reply, free_port
from otlpdata import logs_request, metrics_request, spans_request
from receiver_otlp_support import pki  # noqa: F401  (fixture)

FAST_RETRY = {"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": "10s"}


@pytest.fixture
async def grpc_sink():
    sinks: list[GrpcSink] = []

    async def start(port: int = 0, **tls) -> GrpcSink:
        sink = await GrpcSink(**tls).start(port)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        await sink.stop()


@pytest.fixture
async def exporter():
    """start(endpoint, host=None, **config) -> a started otlp exporter; all are shut down after the test."""
    started: list[otlp.OtlpGrpcExporter] = []

    async def start(endpoint: str, host: ReadyHost | None = None, id: str = "otlp", **raw) -> otlp.OtlpGrpcExporter:
        raw = {"tls": {"insecure": True}, "timeout": "2s", **raw}
        raw["retry_on_failure"] = {**FAST_RETRY, **raw.get("retry_on_failure", {})}
        config, errors = decode_config(otlp.Config, {"endpoint": endpoint, **raw})
        assert errors == []
        instance = otlp.factory.create(new_settings("exporter", id), config)
        await instance.start(host or ReadyHost())
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await shut_down(instance, within=0.5)


async def shut_down(instance: otlp.OtlpGrpcExporter, within: float) -> None:
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


async def test_every_signal_arrives_complete_and_byte_identical(grpc_sink, exporter):
    sink = await grpc_sink()
    otlp_exporter = await exporter(sink.endpoint)
    sent = {Signal.TRACES: [spans_request(7, seed=1), spans_request(3, seed=2)],
            Signal.METRICS: [metrics_request(4)],
            Signal.LOGS: [logs_request(12)]}
    for signal, requests in sent.items():
        for request in requests:
            await otlp_exporter.consume(signal, request)
    await sink.wait_for_requests(4)

    for signal, requests in sent.items():
        arrived = sink.accepted(signal)
        assert sorted(r.body for r in arrived) == sorted(req.SerializeToString() for req in requests)
    assert (sink.items(Signal.TRACES), sink.items(Signal.METRICS), sink.items(Signal.LOGS)) == (10, 12, 12)
    for signal, n in ((Signal.TRACES, 10), (Signal.METRICS, 12), (Signal.LOGS, 12)):
        await until_counted(otlp_exporter, "sent", n, signal)
        assert count(otlp_exporter, "sent", signal) == n


async def test_an_http_scheme_means_plaintext_and_compression_can_be_off(grpc_sink, exporter):
    sink = await grpc_sink()
    otlp_exporter = await exporter(f"http://{sink.endpoint}", tls={}, compression="none")
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)


async def test_the_collectors_channel_settings_are_accepted(grpc_sink, exporter):
    sink = await grpc_sink()
    otlp_exporter = await exporter(sink.endpoint, balancer_name="round_robin", authority="otlp.example",
                                   wait_for_ready=True,
                                   keepalive={"time": "30s", "timeout": "5s", "permit_without_stream": True})
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)


async def test_data_sent_while_the_target_is_down_arrives_once_it_is_up(grpc_sink, exporter):
    port = free_port()
    otlp_exporter = await exporter(f"127.0.0.1:{port}")
    requests = [spans_request(5, seed=seed) for seed in range(3)]
    for request in requests:
        await otlp_exporter.consume(Signal.TRACES, request)
    await asyncio.sleep(0.3)  # a few failed attempts against the closed port

    sink = await grpc_sink(port)
    await sink.wait_for_items(15)
    assert sorted(r.body for r in sink.received) == sorted(r.SerializeToString() for r in requests)  # no duplicates
    await until_counted(otlp_exporter, "sent", 15)
    assert count(otlp_exporter, "dropped", reason="retries_exhausted") == 0


async def test_unavailable_is_retried_until_accepted(grpc_sink, exporter):
    sink = await grpc_sink()
    sink.script(Reply(code=grpc.StatusCode.UNAVAILABLE), Reply(code=grpc.StatusCode.UNAVAILABLE))
    otlp_exporter = await exporter(sink.endpoint)
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)
    assert len(sink.received) == 3
    await until_counted(otlp_exporter, "sent", 5)


async def test_invalid_argument_is_dropped_and_counted_without_a_retry(grpc_sink, exporter, caplog):
    sink = await grpc_sink()
    sink.script(Reply(code=grpc.StatusCode.INVALID_ARGUMENT, message="span 3 has no trace id"))
    otlp_exporter = await exporter(sink.endpoint)
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await until_counted(otlp_exporter, "dropped", 5, reason="permanent_error")
    await asyncio.sleep(0.3)  # several retry intervals: nothing else may arrive

    assert len(sink.received) == 1
    assert count(otlp_exporter, "send_failed") == 5
    assert "INVALID_ARGUMENT: span 3 has no trace id" in caplog.text


async def test_resource_exhausted_is_retried_only_with_retry_info_and_not_before_its_delay(grpc_sink, exporter):
    sink = await grpc_sink()
    sink.script(Reply(code=grpc.StatusCode.RESOURCE_EXHAUSTED, message="quota"),
                Reply(code=grpc.StatusCode.RESOURCE_EXHAUSTED, message="slow down", retry_delay=0.6))
    otlp_exporter = await exporter(sink.endpoint)
    await otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=1))   # no RetryInfo: dropped
    await until_counted(otlp_exporter, "dropped", 5, reason="permanent_error")
    await otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=2))   # RetryInfo 600ms: retried
    await sink.wait_for_items(5)

    first, throttled, retried = sink.received
    assert throttled.request == retried.request
    assert retried.at - throttled.at >= 0.6 - 0.01  # the server's delay, not the 50ms backoff


async def test_a_partial_success_is_logged_counted_and_not_retried(grpc_sink, exporter, caplog):
    caplog.set_level(logging.WARNING)
    sink = await grpc_sink()
    sink.script(Reply(rejected=2, error_message="2 spans are older than the retention"))
    otlp_exporter = await exporter(sink.endpoint)
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await until_counted(otlp_exporter, "dropped", 2, reason="rejected_by_destination")
    await asyncio.sleep(0.3)

    assert len(sink.received) == 1
    assert count(otlp_exporter, "sent") == 3
    assert "2 spans are older than the retention" in caplog.text


async def test_a_full_queue_counts_enqueue_failed_and_consume_does_not_wait(grpc_sink, exporter):
    sink = await grpc_sink()
    sink.script(Reply(hang=True))
    otlp_exporter = await exporter(sink.endpoint, timeout="30s", sending_queue={"num_consumers": 1, "queue_size": 1})
    await otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=1))   # in flight, never answered
    await sink.wait_for_requests(1)
    await otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=2))   # queued
    # The server never answers: had consume waited for it, this would time out.
    await asyncio.wait_for(otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=3)), 2.0)

    assert count(otlp_exporter, "enqueue_failed") == 5
    assert count(otlp_exporter, "dropped", reason="queue_full") == 5


async def test_a_hung_server_does_not_stall_the_other_exporter(grpc_sink, exporter):
    hung, healthy = await grpc_sink(), await grpc_sink()
    hung.script(*[Reply(hang=True)] * 100)
    to_hung = await exporter(hung.endpoint, id="otlp/hung", timeout="30s")
    to_healthy = await exporter(healthy.endpoint, id="otlp/healthy")
    fan_out = FanOut([to_hung, to_healthy], copy=True)

    for seed in range(5):
        await asyncio.wait_for(fan_out.consume(Signal.TRACES, spans_request(4, seed=seed)), 2.0)
    await healthy.wait_for_items(20)
    assert count(to_hung, "sent") == 0


async def test_shutdown_drains_the_queue(grpc_sink, exporter):
    sink = await grpc_sink()
    sink.script(*[Reply(code=grpc.StatusCode.UNAVAILABLE)] * 3)
    otlp_exporter = await exporter(sink.endpoint, sending_queue={"num_consumers": 2})
    for seed in range(6):
        await otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=seed))
    await shut_down(otlp_exporter, within=10)

    assert sink.items() == 30
    assert count(otlp_exporter, "sent") == 30


async def test_with_a_dead_target_shutdown_ends_at_the_deadline_and_counts_the_rest(exporter):
    otlp_exporter = await exporter(f"127.0.0.1:{free_port()}", sending_queue={"num_consumers": 1})
    for seed in range(3):
        await otlp_exporter.consume(Signal.TRACES, spans_request(5, seed=seed))
    await asyncio.wait_for(shut_down(otlp_exporter, within=0.3), 5.0)

    assert count(otlp_exporter, "dropped", reason="shutdown") == 15
    assert count(otlp_exporter, "sent") == 0


async def test_headers_and_the_bearer_token_reach_the_server(grpc_sink, exporter):
    sink = await grpc_sink()
    auth = bearertokenauth.factory.create(new_settings("extension", "bearertokenauth"),
                                          bearertokenauth.Config(token="s3cret"))
    host = ReadyHost()
    host.extensions[ComponentID("bearertokenauth")] = auth
    otlp_exporter = await exporter(sink.endpoint, host=host, headers={"X-Tenant": "acme"},
                                   auth={"authenticator": "bearertokenauth"})
    await otlp_exporter.consume(Signal.LOGS, logs_request(3))
    await sink.wait_for_items(3)

    metadata = sink.received[0].headers
    assert metadata["x-tenant"] == "acme"
    assert metadata["authorization"] == "Bearer s3cret"


async def test_an_authenticator_that_is_not_running_fails_the_start():
    config, _ = decode_config(otlp.Config, {"endpoint": "127.0.0.1:4317", "auth": {"authenticator": "oauth2"}})
    instance = otlp.factory.create(new_settings("exporter", "otlp"), config)
    with pytest.raises(ExporterStartError, match="auth.authenticator: extension oauth2 is not running"):
        await instance.start(ReadyHost())


async def test_tls_with_a_private_ca_and_client_certificates(grpc_sink, exporter, pki):
    sink = await grpc_sink(tls=(pki.server_cert, pki.server_key), client_ca=pki.ca)
    otlp_exporter = await exporter(sink.endpoint, tls={"ca_file": pki.ca, "cert_file": pki.client_cert,
                                                       "key_file": pki.client_key})
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await sink.wait_for_items(5)

    by_name = await exporter(f"https://localhost:{sink.port}", id="otlp/by_name",
                             tls={"ca_file": pki.ca, "cert_file": pki.client_cert, "key_file": pki.client_key})
    await by_name.consume(Signal.TRACES, spans_request(5, seed=2))
    await sink.wait_for_items(10)


async def test_a_server_certificate_from_an_unknown_ca_is_refused(grpc_sink, exporter, pki):
    sink = await grpc_sink(tls=(pki.server_cert, pki.server_key))
    otlp_exporter = await exporter(sink.endpoint, tls={"ca_file": pki.other_ca},
                                   retry_on_failure={"max_elapsed_time": "300ms"})
    await otlp_exporter.consume(Signal.TRACES, spans_request(5))
    await until_counted(otlp_exporter, "dropped", 5, reason="retries_exhausted")
    assert sink.received == []


async def test_an_unreadable_ca_file_fails_the_start(tmp_path):
    missing = str(tmp_path / "nope.pem")
    config, _ = decode_config(otlp.Config, {"endpoint": "127.0.0.1:4317", "tls": {"ca_file": missing}})
    instance = otlp.factory.create(new_settings("exporter", "otlp"), config)
    with pytest.raises(ExporterStartError, match=r"tls.ca_file: cannot read '.*nope.pem': No such file"):
        await instance.start(ReadyHost())


async def test_a_ca_file_that_is_not_pem_fails_the_start(tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    config, _ = decode_config(otlp.Config, {"endpoint": "127.0.0.1:4317", "tls": {"ca_file": str(garbage)}})
    instance = otlp.factory.create(new_settings("exporter", "otlp"), config)
    with pytest.raises(ExporterStartError, match=r"tls.ca_file: cannot load '.*ca.pem'"):
        await instance.start(ReadyHost())


async def test_exporting_to_a_second_llmtap(exporter, service_from_yaml, capture_exporters):
    second = service_from_yaml("""
receivers:
  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}
exporters:
  capture:
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], exporters: [capture]}
    logs: {receivers: [otlp], exporters: [capture]}
""")
    await second.start()
    try:
        endpoint = second.receivers[ComponentID("otlp")].endpoints["grpc"]
        otlp_exporter = await exporter(endpoint)
        requests = [(Signal.TRACES, spans_request(8)), (Signal.LOGS, logs_request(6))]
        for signal, request in requests:
            await otlp_exporter.consume(signal, request)
        captured = capture_exporters["capture"].sink
        await captured.wait_for_items(14)
        assert sorted(d.SerializeToString() for _, d in captured.received) == \
            sorted(r.SerializeToString() for _, r in requests)
    finally:
        await second.shutdown()


@pytest.mark.parametrize("raw, error", [
    ({}, "endpoint: must be set"),
    ({"endpoint": "collector"}, "endpoint: 'collector' must be host:port, http://host:port or https://host:port"),
    ({"endpoint": "unix:///run/otlp.sock"},
     "endpoint: 'unix:///run/otlp.sock': scheme unix:// is not supported (use host:port, http:// or https://)"),
    ({"endpoint": "collector:99999"}, "endpoint: 'collector:99999': port 99999 is out of range"),
    ({"endpoint": "collector:4317", "tls": {"insecure_skip_verify": True}},
     "tls.insecure_skip_verify: not supported by the gRPC exporter (grpcio cannot skip certificate "
     "verification); set tls.ca_file to the server's CA, or use otlphttp"),
    ({"endpoint": "collector:4317", "headers": {"grpc-timeout": "1S"}},
     "headers.grpc-timeout: reserved (grpc-*) or binary (*-bin) metadata keys cannot be set"),
    ({"endpoint": "collector:4317", "headers": {"x tenant": "acme"}}, "headers.x tenant: not a valid header name"),
    ({"endpoint": "collector:4317", "tls": {"cert_file": "client.pem"}},
     "tls: cert_file and key_file must be set together"),
    ({"endpoint": "collector:4317", "compression": "zstd"}, "compression: must be one of gzip, none; got 'zstd'"),
    ({"endpoint": "collector:4317", "balancer_name": "random"},
     "balancer_name: must be pick_first or round_robin; got 'random'"),
])
def test_config_errors_name_the_key(raw, error):
    assert decode_config(otlp.Config, raw)[1] == [error]


@pytest.mark.parametrize("endpoint, tls", [
    ("collector:4317", True), ("http://collector:4317", False), ("https://collector:4317", True),
    ("[::1]:4317", True), ("http://10.0.0.7:4317/", False),
])
def test_accepted_endpoints_and_whether_they_use_tls(endpoint, tls):
    config, errors = decode_config(otlp.Config, {"endpoint": endpoint})
    assert errors == [] and config.uses_tls() is tls


def test_defaults_are_the_collectors():
    config = otlp.Config()
    assert (config.compression, config.timeout, config.tls.insecure) == ("gzip", 5, False)


RETRYABLE_PER_OTLP_SPEC = {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}


def retry_info_trailer(seconds: float) -> Metadata:
    status = status_pb2.Status(code=8, message="slow down")
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromNanoseconds(int(seconds * 1e9))
    status.details.add().Pack(info)
    return Metadata(("grpc-status-details-bin", status.SerializeToString()))


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK], ids=lambda c: c.name)
def test_which_status_codes_are_retried(code):
    without_retry_info = otlp.send_error(grpc.aio.AioRpcError(code, Metadata(), Metadata(), "x"))
    assert without_retry_info.retryable is (code.name in RETRYABLE_PER_OTLP_SPEC)
    with_retry_info = otlp.send_error(grpc.aio.AioRpcError(code, Metadata(), retry_info_trailer(2.5), "x"))
    assert with_retry_info.retryable is (code.name in RETRYABLE_PER_OTLP_SPEC | {"RESOURCE_EXHAUSTED"})
    assert with_retry_info.retry_after == 2.5


def test_retry_delay_is_read_from_either_trailer_and_garbage_is_ignored():
    bare = error_details_pb2.RetryInfo()
    bare.retry_delay.FromMilliseconds(1500)
    assert otlp.retry_delay(Metadata(("google.rpc.retryinfo-bin", bare.SerializeToString()))) == 1.5
    assert otlp.retry_delay(retry_info_trailer(0.25)) == 0.25
    assert otlp.retry_delay(Metadata(("grpc-status-details-bin", b"\xff\xff not a status"))) is None
    assert otlp.retry_delay(Metadata()) is None
