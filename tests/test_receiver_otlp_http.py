"""The otlp receiver over HTTP, driven by a raw aiohttp client: what a client
sends, what it gets back, what reaches the pipeline — including every kind of bad
request, after which the receiver still takes good ones and nothing else is lost."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import ssl
import zlib

import aiohttp
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from conftest import CapturingConsumer, ReadyHost
from llmtap.component import ComponentID, PermanentError, RefusedError, Signal
from llmtap.pdata import to_json
from otlpdata import logs_request, metrics_request, spans_request
from receiver_otlp_support import accepted, auth_host, http_url, pki, refused, start_otlp  # noqa: F401 (fixtures)

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
LOCAL = {"http": {"endpoint": "127.0.0.1:0"}}


@pytest.fixture
async def client():
    async with aiohttp.ClientSession() as session:
        yield session


async def post(client, url, body, headers=PROTOBUF, **kwargs):
    async with client.post(url, data=body, headers=headers, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


def error_status(body: bytes) -> status_pb2.Status:
    status = status_pb2.Status()
    status.ParseFromString(body)
    return status


async def assert_still_serves(client, receiver, capture):
    """A good request right after a bad one is accepted, and it is all that arrived."""
    request = spans_request(3, seed=99)
    status, _, _ = await post(client, http_url(receiver), request.SerializeToString())
    assert status == 200
    assert capture.requests() == [request]


# --- good requests ---------------------------------------------------------------------------

async def test_protobuf_request_reaches_the_pipeline_unchanged(start_otlp, capture, client):
    receiver = await start_otlp(LOCAL)
    request = spans_request(10)

    status, headers, body = await post(client, http_url(receiver), request.SerializeToString())

    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(body) == ExportTraceServiceResponse()
    assert [d.SerializeToString() for d in capture.requests(Signal.TRACES)] == [request.SerializeToString()]
    assert accepted(receiver, "spans", "http") == 10
    assert refused(receiver, "spans", "http") == 0


async def test_json_with_hex_ids_round_trips_and_is_answered_in_json(start_otlp, capture, client):
    receiver = await start_otlp(LOCAL)
    request = spans_request(4)
    text = to_json(request)
    span = request.resource_spans[0].scope_spans[0].spans[1]
    assert f'"traceId":"{span.trace_id.hex()}"' in text and f'"spanId":"{span.span_id.hex()}"' in text

    status, headers, body = await post(client, http_url(receiver), text.encode(),
                                       headers={"Content-Type": "application/json; charset=utf-8"})

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {}
    assert capture.requests() == [request]


@pytest.mark.parametrize("signal, path, request_, item", [
    (Signal.TRACES, "/v1/traces", spans_request(5), "spans"),
    (Signal.METRICS, "/v1/metrics", metrics_request(4), "metric_points"),
    (Signal.LOGS, "/v1/logs", logs_request(6), "log_records"),
])
async def test_each_signal_has_its_path(start_otlp, capture, client, signal, path, request_, item):
    receiver = await start_otlp(LOCAL)

    for encoding, body in ((PROTOBUF, request_.SerializeToString()), (JSON, to_json(request_).encode())):
        status, _, _ = await post(client, http_url(receiver, path), body, headers=encoding)
        assert status == 200

    assert capture.requests(signal) == [request_, request_]
    assert accepted(receiver, item, "http") == capture.items(signal)


async def test_url_paths_are_configurable(start_otlp, capture, client):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0", "traces_url_path": "/otlp/spans",
                                          "logs_url_path": "ingest/logs"}})
    request = spans_request(2)

    assert (await post(client, http_url(receiver, "/otlp/spans"), request.SerializeToString()))[0] == 200
    assert (await post(client, http_url(receiver, "/ingest/logs"), logs_request(1).SerializeToString()))[0] == 200
    assert (await post(client, http_url(receiver, "/v1/traces"), request.SerializeToString()))[0] == 404
    assert capture.requests(Signal.TRACES) == [request]


@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("identity", lambda body: body),
])
async def test_compressed_bodies_are_decompressed(start_otlp, capture, client, encoding, compress):
    receiver = await start_otlp(LOCAL)
    request = spans_request(10)

    status, _, _ = await post(client, http_url(receiver), compress(request.SerializeToString()),
                              headers={**PROTOBUF, "Content-Encoding": encoding})

    assert status == 200
    assert capture.requests() == [request]


async def test_several_gzip_members_make_one_body(start_otlp, capture, client):
    receiver = await start_otlp(LOCAL)
    body = spans_request(10).SerializeToString()
    two_members = gzip.compress(body[:100]) + gzip.compress(body[100:])

    status, _, _ = await post(client, http_url(receiver), two_members, headers={**PROTOBUF, "Content-Encoding": "gzip"})

    assert status == 200
    assert capture.requests() == [spans_request(10)]


async def test_an_empty_request_is_answered_without_touching_the_pipeline(start_otlp, capture, client):
    receiver = await start_otlp(LOCAL)

    status, _, body = await post(client, http_url(receiver), b"")

    assert (status, body) == (200, b"")
    assert capture.calls == 0


# --- bad requests: a clear answer, nothing reaches the pipeline, good requests still work -----

BAD_BODIES = [
    pytest.param(PROTOBUF, b"\x0a\xff\xff\xff\x0f nope", 400, "cannot decode OTLP protobuf traces request",
                 id="malformed-protobuf"),
    pytest.param(JSON, b'{"resourceSpans": [', 400, "cannot decode OTLP/JSON traces request", id="malformed-json"),
    pytest.param(JSON, b'{"resourceSpans": 7}', 400, "invalid OTLP/JSON traces request", id="json-wrong-shape"),
    pytest.param(JSON, b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"not-hex"}]}]}]}', 400,
                 "invalid hex ID 'not-hex'", id="json-bad-hex-id"),
    pytest.param({**PROTOBUF, "Content-Encoding": "gzip"}, b"this is not gzip", 400,
                 "cannot decompress gzip request body", id="bad-gzip"),
    pytest.param({**PROTOBUF, "Content-Encoding": "gzip"}, gzip.compress(b"x" * 1000)[:20], 400,
                 "gzip request body is truncated", id="truncated-gzip"),
    pytest.param({**PROTOBUF, "Content-Encoding": "deflate"}, b"\x00\x01garbage", 400,
                 "cannot decompress deflate request body", id="bad-deflate"),
    pytest.param({**PROTOBUF, "Content-Encoding": "br"}, b"\x0b", 415,
                 "unsupported Content-Encoding 'br', supported: gzip, deflate, identity", id="unknown-encoding"),
]


@pytest.mark.parametrize("headers, body, status, message", BAD_BODIES)
async def test_bad_bodies_get_a_status_naming_the_problem(start_otlp, capture, client, headers, body, status,
                                                          message):
    receiver = await start_otlp(LOCAL)

    got, response_headers, response_body = await post(client, http_url(receiver), body, headers=headers)

    assert got == status
    if response_headers["Content-Type"] == "application/json":
        error = json.loads(response_body)
        assert error["code"] == code_pb2.INVALID_ARGUMENT and message in error["message"]
    else:
        assert response_headers["Content-Type"] == "application/x-protobuf"
        error = error_status(response_body)
        assert error.code == code_pb2.INVALID_ARGUMENT and message in error.message
    assert capture.calls == 0
    await assert_still_serves(client, receiver, capture)


async def test_body_over_max_request_body_size_gets_413(start_otlp, capture, client):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0", "max_request_body_size": "64KiB"}})
    big = spans_request(200).SerializeToString()
    assert len(big) > 64 * 1024

    status, _, body = await post(client, http_url(receiver), big)

    assert status == 413
    assert "larger than max_request_body_size (65536 bytes)" in error_status(body).message
    assert capture.calls == 0
    await assert_still_serves(client, receiver, capture)


async def test_body_over_the_limit_without_content_length_gets_413(start_otlp, capture, client):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0", "max_request_body_size": "64KiB"}})

    async def chunks():
        for _ in range(20):
            yield b"\x00" * 8192

    status, _, body = await post(client, http_url(receiver), chunks())

    assert status == 413
    assert capture.calls == 0
    await assert_still_serves(client, receiver, capture)


async def test_zip_bomb_is_stopped_at_the_decompressed_limit(start_otlp, capture, client):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0", "max_request_body_size": "1MiB"}})
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024))  # 64 MiB of zeros in about 64 KiB
    assert len(bomb) < 1024 * 1024

    status, _, body = await post(client, http_url(receiver), bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})

    assert status == 413
    assert "decompressed request body is larger than max_request_body_size" in error_status(body).message
    assert capture.calls == 0
    await assert_still_serves(client, receiver, capture)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_get_405_with_allow_post(start_otlp, capture, client, method):
    receiver = await start_otlp(LOCAL)

    async with client.request(method, http_url(receiver)) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert "405 method not allowed, supported: [POST]" in await response.text()
    await assert_still_serves(client, receiver, capture)


@pytest.mark.parametrize("content_type", ["text/plain", "application/protobuf", "application/x-www-form-urlencoded"])
async def test_other_content_types_get_415_listing_the_supported_ones(start_otlp, capture, client, content_type):
    receiver = await start_otlp(LOCAL)

    status, _, body = await post(client, http_url(receiver), b"{}", headers={"Content-Type": content_type})

    assert status == 415
    assert body.decode() == "415 unsupported media type, supported: [application/json, application/x-protobuf]"
    assert capture.calls == 0
    await assert_still_serves(client, receiver, capture)


async def test_a_signal_without_pipeline_is_not_served(start_otlp, client):
    traces_only = CapturingConsumer()
    receiver = await start_otlp(LOCAL, {Signal.TRACES: traces_only})

    status, _, _ = await post(client, http_url(receiver, "/v1/logs"), logs_request(2).SerializeToString())

    assert status == 404
    assert (await post(client, http_url(receiver), spans_request(1).SerializeToString()))[0] == 200
    assert traces_only.items() == 1


# --- what the pipeline says ----------------------------------------------------------------------

@pytest.mark.parametrize("throttle, status, code", [(False, 503, code_pb2.UNAVAILABLE),
                                                     (True, 429, code_pb2.RESOURCE_EXHAUSTED)])
@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
async def test_a_refusal_is_retryable_with_retry_after(start_otlp, client, throttle, status, code, encoding):
    refusing = CapturingConsumer(fail_with=RefusedError("memory limit reached", retry_after=2.5, throttle=throttle))
    receiver = await start_otlp(LOCAL, {Signal.TRACES: refusing})
    request = spans_request(7)
    body = request.SerializeToString() if encoding is PROTOBUF else to_json(request).encode()

    got, headers, response_body = await post(client, http_url(receiver), body, headers=encoding)

    assert got == status
    assert headers["Retry-After"] == "3"
    if encoding is PROTOBUF:
        error = error_status(response_body)
        assert (error.code, error.message) == (code, "memory limit reached")
        retry = error_details_pb2.RetryInfo()
        assert error.details[0].Unpack(retry) and retry.retry_delay.ToTimedelta().total_seconds() == 2.5
    else:
        error = json.loads(response_body)
        assert (error["code"], error["message"]) == (code, "memory limit reached")
        assert error["details"][0]["retryDelay"] == "2.500s"
    assert refused(receiver, "spans", "http") == 7
    assert accepted(receiver, "spans", "http") == 0


async def test_permanent_pipeline_error_is_400(start_otlp, client):
    rejecting = CapturingConsumer(fail_with=PermanentError("span has no name"))
    receiver = await start_otlp(LOCAL, {Signal.TRACES: rejecting})

    status, headers, body = await post(client, http_url(receiver), spans_request(2).SerializeToString())

    assert status == 400
    assert "Retry-After" not in headers
    assert error_status(body).message == "span has no name"
    assert refused(receiver, "spans", "http") == 2


async def test_unexpected_pipeline_error_is_500_and_logged(start_otlp, client, caplog):
    broken = CapturingConsumer(fail_with=ZeroDivisionError("division by zero"))
    receiver = await start_otlp(LOCAL, {Signal.TRACES: broken})

    with caplog.at_level(logging.ERROR):
        status, _, body = await post(client, http_url(receiver), spans_request(2).SerializeToString())

    assert status == 500
    assert error_status(body).code == code_pb2.INTERNAL
    assert any("export failed unexpectedly" in r.getMessage() and r.exc_info for r in caplog.records)


# --- authentication ------------------------------------------------------------------------------

AUTHED = {"http": {"endpoint": "127.0.0.1:0", "auth": {"authenticator": "bearertokenauth"}}}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                                     {"Authorization": "Basic czNjcmV0"}])
async def test_requests_without_the_token_get_401(start_otlp, capture, client, headers):
    receiver = await start_otlp(AUTHED, host=await auth_host())

    status, response_headers, body = await post(client, http_url(receiver), spans_request(2).SerializeToString(),
                                                headers={**PROTOBUF, **headers})

    assert status == 401
    assert response_headers["WWW-Authenticate"] == "Bearer"
    assert capture.calls == 0


async def test_requests_with_the_token_are_accepted(start_otlp, capture, client):
    receiver = await start_otlp(AUTHED, host=await auth_host())
    request = spans_request(2)

    status, _, _ = await post(client, http_url(receiver), request.SerializeToString(),
                              headers={**PROTOBUF, "authorization": "Bearer s3cret"})

    assert status == 200
    assert capture.requests() == [request]


async def test_start_fails_when_the_authenticator_is_not_running(start_otlp):
    with pytest.raises(RuntimeError, match="protocols.http.auth.authenticator: extension 'bearertokenauth' "
                                           "is not running"):
        await start_otlp(AUTHED, host=ReadyHost())


async def test_start_fails_when_the_extension_is_not_an_authenticator(start_otlp):
    host = ReadyHost()
    host.extensions[ComponentID("bearertokenauth")] = object()
    with pytest.raises(RuntimeError, match="'bearertokenauth' is not an authenticator"):
        await start_otlp(AUTHED, host=host)


@pytest.mark.parametrize("endpoint, warned", [("0.0.0.0:0", True), (":0", True), ("127.0.0.1:0", False),
                                              ("localhost:0", False)])
async def test_listening_beyond_loopback_without_auth_is_warned_about(start_otlp, caplog, endpoint, warned):
    with caplog.at_level(logging.WARNING):
        await start_otlp({"http": {"endpoint": endpoint}})

    warnings = [r for r in caplog.records if "UNAUTHENTICATED" in r.getMessage()]
    assert bool(warnings) == warned
    if warned:
        assert warnings[0].fields["endpoint"] == endpoint
        assert warnings[0].fields["key"] == "protocols.http.auth.authenticator"


async def test_no_warning_when_an_authenticator_guards_a_public_endpoint(start_otlp, caplog):
    with caplog.at_level(logging.WARNING):
        await start_otlp({"http": {"endpoint": "0.0.0.0:0", "auth": {"authenticator": "bearertokenauth"}}},
                         host=await auth_host())

    assert not [r for r in caplog.records if "UNAUTHENTICATED" in r.getMessage()]


# --- TLS -----------------------------------------------------------------------------------------

def tls_config(pki, mutual=False):
    tls = {"cert_file": pki.server_cert, "key_file": pki.server_key}
    if mutual:
        tls["client_ca_file"] = pki.ca
    return {"http": {"endpoint": "127.0.0.1:0", "tls": tls}}


def client_tls(pki, cert=None, key=None):
    context = ssl.create_default_context(cafile=pki.ca)
    if cert:
        context.load_cert_chain(cert, key)
    return context


async def test_tls(start_otlp, capture, client, pki):
    receiver = await start_otlp(tls_config(pki))
    request = spans_request(3)

    status, _, _ = await post(client, http_url(receiver, scheme="https"), request.SerializeToString(),
                              ssl=client_tls(pki))

    assert status == 200
    assert capture.requests() == [request]
    with pytest.raises(aiohttp.ClientError):
        await post(client, http_url(receiver), request.SerializeToString())  # plain HTTP to a TLS port


async def test_mutual_tls_requires_a_client_certificate_from_the_trusted_ca(start_otlp, capture, client, pki):
    receiver = await start_otlp(tls_config(pki, mutual=True))
    request = spans_request(3)
    url = http_url(receiver, scheme="https")

    for untrusted in (client_tls(pki), client_tls(pki, pki.stranger_cert, pki.stranger_key)):
        with pytest.raises(aiohttp.ClientError):
            await post(client, url, request.SerializeToString(), ssl=untrusted)
    assert capture.calls == 0

    status, _, _ = await post(client, url, request.SerializeToString(),
                              ssl=client_tls(pki, pki.client_cert, pki.client_key))
    assert status == 200
    assert capture.requests() == [request]


async def test_start_fails_naming_an_unreadable_certificate(start_otlp, tmp_path):
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(RuntimeError, match=r"protocols.http: tls.cert_file/key_file: cannot load"):
        await start_otlp({"http": {"endpoint": "127.0.0.1:0", "tls": {"cert_file": missing, "key_file": missing}}})


# --- lifecycle -----------------------------------------------------------------------------------

async def test_start_fails_when_the_port_is_taken(start_otlp):
    first = await start_otlp(LOCAL)
    with pytest.raises(RuntimeError, match=f"protocols.http: cannot listen on {first.endpoints['http']}"):
        await start_otlp({"http": {"endpoint": first.endpoints["http"]}}, id="otlp/second")


async def test_shutdown_lets_requests_in_progress_finish(start_otlp, client):
    gate = asyncio.Event()
    slow = CapturingConsumer(gate=gate)
    receiver = await start_otlp(LOCAL, {Signal.TRACES: slow})
    url = http_url(receiver)
    request = spans_request(5)

    in_flight = asyncio.create_task(post(client, url, request.SerializeToString()))
    while slow.calls == 0:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(receiver.shutdown())
    await asyncio.sleep(0.1)

    async with aiohttp.ClientSession() as fresh:  # a new connection is no longer accepted
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(fresh, url, request.SerializeToString())
    assert not stopping.done()

    gate.set()
    status, _, _ = await in_flight
    await stopping
    assert status == 200
    assert slow.requests() == [request]
    assert accepted(receiver, "spans", "http") == 5
