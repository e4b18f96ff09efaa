"""The otlp receiver over gRPC, driven by real grpc.aio channels: the generated
opentelemetry-proto service stubs for good requests, raw byte calls for bad ones.
Every failure gets the status code the OTLP spec names, and the receiver keeps
taking good requests afterwards."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from conftest import CapturingConsumer, ReadyHost
from llmtap.component import PermanentError, RefusedError, Signal
from otlpdata import logs_request, metrics_request, spans_request
from receiver_otlp_support import accepted, auth_host, pki, refused, start_otlp  # noqa: F401 (fixtures)

LOCAL = {"grpc": {"endpoint": "127.0.0.1:0"}}
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
async def channels():
    opened = []

    def open_channel(receiver, credentials=None, **kwargs):
        target = receiver.endpoints["grpc"]
        channel = (grpc.aio.secure_channel(target, credentials, **kwargs) if credentials
                   else grpc.aio.insecure_channel(target, **kwargs))
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        await channel.close()


def raw_export(channel, method=TRACE_EXPORT):
    """A unary call that sends bytes as they are."""
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


async def assert_still_serves(channel, capture):
    request = spans_request(3, seed=99)
    assert await trace_service_pb2_grpc.TraceServiceStub(channel).Export(request) == ExportTraceServiceResponse()
    assert capture.requests() == [request]


async def failed_call(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


# --- good requests ---------------------------------------------------------------------------

@pytest.mark.parametrize("signal, stub, request_, response, item", [
    (Signal.TRACES, trace_service_pb2_grpc.TraceServiceStub, spans_request(10), ExportTraceServiceResponse(), "spans"),
    (Signal.METRICS, metrics_service_pb2_grpc.MetricsServiceStub, metrics_request(4), ExportMetricsServiceResponse(),
     "metric_points"),
    (Signal.LOGS, logs_service_pb2_grpc.LogsServiceStub, logs_request(6), ExportLogsServiceResponse(), "log_records"),
])
async def test_each_signal_reaches_the_pipeline_unchanged(start_otlp, capture, channels, signal, stub, request_,
                                                          response, item):
    receiver = await start_otlp(LOCAL)

    assert await stub(channels(receiver)).Export(request_) == response

    assert [d.SerializeToString() for d in capture.requests(signal)] == [request_.SerializeToString()]
    assert accepted(receiver, item, "grpc") == capture.items(signal) > 0


async def test_gzip_compressed_calls_are_accepted(start_otlp, capture, channels):
    receiver = await start_otlp(LOCAL)
    channel = channels(receiver, compression=grpc.Compression.Gzip)

    await trace_service_pb2_grpc.TraceServiceStub(channel).Export(spans_request(10))

    assert capture.requests() == [spans_request(10)]


async def test_one_receiver_serves_both_protocols(start_otlp, capture, channels):
    receiver = await start_otlp({**LOCAL, "http": {"endpoint": "127.0.0.1:0"}})

    assert set(receiver.endpoints) == {"grpc", "http"}
    await trace_service_pb2_grpc.TraceServiceStub(channels(receiver)).Export(spans_request(2))
    assert capture.items() == 2


# --- bad requests --------------------------------------------------------------------------------

async def test_malformed_protobuf_is_invalid_argument(start_otlp, capture, channels):
    receiver = await start_otlp(LOCAL)
    channel = channels(receiver)

    error = await failed_call(raw_export(channel)(b"\x0a\xff\xff\xff\x0f nope"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot decode OTLP protobuf traces request" in error.details()
    assert capture.calls == 0
    await assert_still_serves(channel, capture)


async def test_message_over_max_recv_msg_size_is_resource_exhausted(start_otlp, capture, channels):
    receiver = await start_otlp({"grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 1}})
    channel = channels(receiver)
    big = spans_request(1500).SerializeToString()
    assert len(big) > 1024 * 1024

    error = await failed_call(raw_export(channel)(big))

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert capture.calls == 0
    await assert_still_serves(channel, capture)


async def test_a_signal_without_pipeline_is_unimplemented(start_otlp, channels):
    traces_only = CapturingConsumer()
    receiver = await start_otlp(LOCAL, {Signal.TRACES: traces_only})
    channel = channels(receiver)

    error = await failed_call(logs_service_pb2_grpc.LogsServiceStub(channel).Export(logs_request(2)))

    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    await assert_still_serves(channel, traces_only)


# --- what the pipeline says ----------------------------------------------------------------------

def retry_delay(error: grpc.aio.AioRpcError) -> tuple[float, float]:
    """The delay in both trailers: the rich status (grpc-status-details-bin) and the
    bare RetryInfo the OpenTelemetry Python SDK reads."""
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == error.code().value[0] and status.message == error.details()
    from_status = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(from_status)
    bare = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    return (from_status.retry_delay.ToTimedelta().total_seconds(), bare.retry_delay.ToTimedelta().total_seconds())


@pytest.mark.parametrize("throttle, code", [(False, grpc.StatusCode.UNAVAILABLE),
                                            (True, grpc.StatusCode.RESOURCE_EXHAUSTED)])
async def test_a_refusal_is_retryable_with_retry_info(start_otlp, channels, throttle, code):
    refusing = CapturingConsumer(fail_with=RefusedError("memory limit reached", retry_after=2.5, throttle=throttle))
    receiver = await start_otlp(LOCAL, {Signal.TRACES: refusing})

    error = await failed_call(trace_service_pb2_grpc.TraceServiceStub(channels(receiver)).Export(spans_request(7)))

    assert (error.code(), error.details()) == (code, "memory limit reached")
    assert retry_delay(error) == (2.5, 2.5)
    assert refused(receiver, "spans", "grpc") == 7
    assert accepted(receiver, "spans", "grpc") == 0


async def test_permanent_pipeline_error_is_invalid_argument(start_otlp, channels):
    receiver = await start_otlp(LOCAL, {Signal.TRACES: CapturingConsumer(fail_with=PermanentError("no name"))})

    error = await failed_call(trace_service_pb2_grpc.TraceServiceStub(channels(receiver)).Export(spans_request(2)))

    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "no name")
    assert refused(receiver, "spans", "grpc") == 2


async def test_unexpected_pipeline_error_is_internal_and_logged(start_otlp, channels, caplog):
    receiver = await start_otlp(LOCAL, {Signal.TRACES: CapturingConsumer(fail_with=KeyError("oops"))})

    with caplog.at_level(logging.ERROR):
        error = await failed_call(trace_service_pb2_grpc.TraceServiceStub(channels(receiver)).Export(spans_request(2)))

    assert error.code() == grpc.StatusCode.INTERNAL
    assert any("export failed unexpectedly" in r.getMessage() and r.exc_info for r in caplog.records)


# --- authentication ------------------------------------------------------------------------------

AUTHED = {"grpc": {"endpoint": "127.0.0.1:0", "auth": {"authenticator": "bearertokenauth"}}}


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer wrong"),), (("authorization", "s3cret"),)])
async def test_calls_without_the_token_are_unauthenticated(start_otlp, capture, channels, metadata):
    receiver = await start_otlp(AUTHED, host=await auth_host())
    stub = trace_service_pb2_grpc.TraceServiceStub(channels(receiver))

    error = await failed_call(stub.Export(spans_request(2), metadata=metadata))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert capture.calls == 0


async def test_unauthenticated_calls_are_turned_away_before_parsing(start_otlp, capture, channels):
    receiver = await start_otlp(AUTHED, host=await auth_host())

    error = await failed_call(raw_export(channels(receiver))(b"\x0a\xff\xff\xff\x0f nope"))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_calls_with_the_token_are_accepted(start_otlp, capture, channels):
    receiver = await start_otlp(AUTHED, host=await auth_host())
    request = spans_request(2)

    await trace_service_pb2_grpc.TraceServiceStub(channels(receiver)).Export(
        request, metadata=(("authorization", "Bearer s3cret"),))

    assert capture.requests() == [request]


async def test_start_fails_when_the_authenticator_is_not_running(start_otlp):
    with pytest.raises(RuntimeError, match="protocols.grpc.auth.authenticator: extension 'bearertokenauth'"):
        await start_otlp(AUTHED, host=ReadyHost())


@pytest.mark.parametrize("endpoint", ["0.0.0.0:0", ":0"])
async def test_listening_on_every_interface_without_auth_is_warned_about(start_otlp, caplog, endpoint):
    with caplog.at_level(logging.WARNING):
        await start_otlp({"grpc": {"endpoint": endpoint}})

    warning = next(r for r in caplog.records if "UNAUTHENTICATED" in r.getMessage())
    assert warning.fields["protocol"] == "grpc"
    assert warning.fields["key"] == "protocols.grpc.auth.authenticator"


# --- TLS -----------------------------------------------------------------------------------------

def tls_config(pki, mutual=False):
    tls = {"cert_file": pki.server_cert, "key_file": pki.server_key}
    if mutual:
        tls["client_ca_file"] = pki.ca
    return {"grpc": {"endpoint": "127.0.0.1:0", "tls": tls}}


def credentials(pki, cert=None, key=None):
    return grpc.ssl_channel_credentials(
        root_certificates=Path(pki.ca).read_bytes(),
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None)


async def test_tls(start_otlp, capture, channels, pki):
    receiver = await start_otlp(tls_config(pki))
    request = spans_request(3)

    await trace_service_pb2_grpc.TraceServiceStub(channels(receiver, credentials(pki))).Export(request)

    assert capture.requests() == [request]
    plaintext = trace_service_pb2_grpc.TraceServiceStub(channels(receiver))
    assert (await failed_call(plaintext.Export(request, timeout=5))).code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate_from_the_trusted_ca(start_otlp, capture, channels, pki):
    receiver = await start_otlp(tls_config(pki, mutual=True))
    request = spans_request(3)

    for untrusted in (credentials(pki), credentials(pki, pki.stranger_cert, pki.stranger_key)):
        stub = trace_service_pb2_grpc.TraceServiceStub(channels(receiver, untrusted))
        assert (await failed_call(stub.Export(request, timeout=5))).code() == grpc.StatusCode.UNAVAILABLE
    assert capture.calls == 0

    trusted = channels(receiver, credentials(pki, pki.client_cert, pki.client_key))
    await trace_service_pb2_grpc.TraceServiceStub(trusted).Export(request)
    assert capture.requests() == [request]


async def test_start_fails_naming_an_unreadable_client_ca(start_otlp, pki, tmp_path):
    missing = str(tmp_path / "missing-ca.pem")
    config = tls_config(pki)
    config["grpc"]["tls"]["client_ca_file"] = missing
    with pytest.raises(RuntimeError, match=r"protocols.grpc: tls.client_ca_file: cannot load"):
        await start_otlp(config)


# --- lifecycle -----------------------------------------------------------------------------------

async def test_start_fails_when_the_port_is_taken(start_otlp):
    first = await start_otlp(LOCAL)
    with pytest.raises(RuntimeError, match=f"protocols.grpc: cannot listen on {first.endpoints['grpc']}"):
        await start_otlp({"grpc": {"endpoint": first.endpoints["grpc"]}}, id="otlp/second")


async def test_shutdown_lets_calls_in_progress_finish(start_otlp, channels):
    gate = asyncio.Event()
    slow = CapturingConsumer(gate=gate)
    receiver = await start_otlp(LOCAL, {Signal.TRACES: slow})
    stub = trace_service_pb2_grpc.TraceServiceStub(channels(receiver))
    request = spans_request(5)

    in_flight = asyncio.ensure_future(stub.Export(request))
    while slow.calls == 0:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(receiver.shutdown())
    await asyncio.sleep(0.1)

    late = await failed_call(stub.Export(spans_request(1), timeout=5))  # new calls are turned away
    assert late.code() == grpc.StatusCode.UNAVAILABLE
    assert not stopping.done()

    gate.set()
    assert await in_flight == ExportTraceServiceResponse()
    await stopping
    assert slow.requests() == [request]
    assert accepted(receiver, "spans", "grpc") == 5
