"""The debug exporter prints to stdout: a summary and one readable line per
item (basic), the same with attributes (normal), or every field (detailed)."""

import asyncio
import time

import pytest

from llmtap.component import Signal
from llmtap.configtypes import decode_config
from llmtap.exporters.debug import Config, factory
from otlpdata import logs_request, metrics_request, spans_request


@pytest.fixture
def make_exporter(make_settings):
    def make(**config):
        return factory.create(make_settings("exporter", "debug"), Config(**config))
    return make


async def printed(capsys, exporter, signal, request) -> list[str]:
    await exporter.consume(signal, request)
    return capsys.readouterr().out.splitlines()


async def test_basic_prints_a_summary_and_one_line_per_span(make_exporter, capsys):
    request = spans_request(3)
    lines = await printed(capsys, make_exporter(), Signal.TRACES, request)
    assert lines[0] == "Traces: resource spans: 1, spans: 3"
    assert len(lines) == 4
    spans = request.resource_spans[0].scope_spans[0].spans
    root, child = spans[0], spans[1]
    assert lines[1] == (f'span "chat gpt-4o" trace_id={root.trace_id.hex()} span_id={root.span_id.hex()} '
                        f'kind=internal status=ok duration=250.000ms service=checkout-agent attrs=20')
    assert lines[2] == (f'span "chat claude-sonnet-4" trace_id={child.trace_id.hex()} '
                        f'span_id={child.span_id.hex()} kind=client status=unset duration=250.001ms '
                        f'service=checkout-agent attrs=20')


async def test_basic_shows_errors_with_their_message(make_exporter, capsys):
    lines = await printed(capsys, make_exporter(), Signal.TRACES, spans_request(4))
    assert 'status="error(upstream returned 529 overloaded)"' in lines[4]


async def test_basic_prints_one_line_per_log_record(make_exporter, capsys):
    request = logs_request(3)
    lines = await printed(capsys, make_exporter(), Signal.LOGS, request)
    assert lines[0] == "Logs: resource logs: 1, log records: 3"
    record = request.resource_logs[0].scope_logs[0].log_records[1]
    assert lines[2].startswith(f"log WARN time=2024-05-29T16:26:40.001000000Z trace_id={record.trace_id.hex()} "
                               f"span_id={record.span_id.hex()} service=checkout-agent attrs=8 body=\"tool call 1: ")
    assert len(lines) == 4


async def test_basic_prints_one_line_per_metric_with_its_point_count(make_exporter, capsys):
    lines = await printed(capsys, make_exporter(), Signal.METRICS, metrics_request(points=4))
    assert lines == [
        "Metrics: resource metrics: 1, metrics: 3, data points: 12",
        "metric gen_ai.client.token.usage.total type=sum unit={token} points=4 service=checkout-agent",
        "metric llmtap.queue.depth type=gauge unit=1 points=4 service=checkout-agent",
        "metric gen_ai.client.operation.duration type=histogram unit=s points=4 service=checkout-agent",
    ]


async def test_normal_adds_attributes_compactly(make_exporter, capsys):
    request = spans_request(2, text_bytes=2000)
    lines = await printed(capsys, make_exporter(verbosity="normal"), Signal.TRACES, request)
    child = request.resource_spans[0].scope_spans[0].spans[1]
    assert len(lines) == 3
    assert f"parent_id={child.parent_span_id.hex()}" in lines[2]
    assert "{gen_ai.operation.name=chat, gen_ai.system=openai, gen_ai.request.model=claude-sonnet-4," in lines[2]
    assert "gen_ai.request.temperature=0.2" in lines[2] and "llmtap.streamed=false" in lines[2]
    assert 'gen_ai.response.finish_reasons=["stop"]' in lines[2]
    assert "…(+244 chars)" in lines[2]  # 500-byte prompt parts are cut at 256


async def test_detailed_prints_every_field(make_exporter, capsys):
    request = spans_request(2)
    out = "\n".join(await printed(capsys, make_exporter(verbosity="detailed"), Signal.TRACES, request))
    span = request.resource_spans[0].scope_spans[0].spans[1]
    assert "ResourceSpans #0" in out and "     -> service.name: Str(checkout-agent)" in out
    assert "InstrumentationScope llmtap.tests 0.1.0" in out
    assert f"    Trace ID       : {span.trace_id.hex()}" in out
    assert f"    Parent ID      : {span.parent_span_id.hex()}" in out
    assert "    Kind           : Client" in out
    for kv in span.attributes:  # every attribute, in full
        assert f"-> {kv.key}: " in out
    assert "     -> server.port: Int(443)" in out
    assert "     -> gen_ai.request.temperature: Double(0.2)" in out
    assert '     -> gen_ai.response.finish_reasons: Slice(["stop"])' in out
    assert "SpanEvent #0" in out and "     -> Name: gen_ai.content.completion" in out


async def test_detailed_prints_metric_points_and_log_records(make_exporter, capsys):
    exporter = make_exporter(verbosity="detailed")
    out = "\n".join(await printed(capsys, exporter, Signal.METRICS, metrics_request(points=1)))
    assert "     -> DataType: Histogram" in out and "     -> AggregationTemporality: Delta" in out
    assert "ExplicitBounds #3: 5.0" in out and "Buckets #4, Count: 0" in out
    assert "     -> IsMonotonic: true" in out
    out = "\n".join(await printed(capsys, exporter, Signal.LOGS, logs_request(1)))
    assert "SeverityNumber: INFO(9)" in out and "Body: Str(tool call 0: " in out


async def test_sampling_prints_the_first_requests_of_a_second_then_every_nth(make_exporter, capsys):
    exporter = make_exporter(sampling_initial=2, sampling_thereafter=3)
    if time.monotonic() % 1 > 0.5:  # keep all eight requests inside one second
        await asyncio.sleep(1 - time.monotonic() % 1)
    for seed in range(8):
        await exporter.consume(Signal.TRACES, spans_request(1, seed=seed))
    summaries = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Traces:")]
    assert len(summaries) == 4  # requests 1, 2, then 5 and 8
    telemetry = exporter.settings.telemetry
    assert telemetry.value("llmtap_exporter_sent_spans_total", exporter="debug") == 8


async def test_bad_verbosity_is_a_config_error():
    _, errors = decode_config(Config, {"verbosity": "loud"})
    assert errors == ["verbosity: must be one of basic, normal, detailed; got 'loud'"]
