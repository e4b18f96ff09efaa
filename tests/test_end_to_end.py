"""`llmtap run` as a real process: data in over OTLP, out to a real OTLP/gRPC
server and a file; SIGTERM drains what is in flight; a dead target is given up
at `shutdown_timeout` and the loss is reported; the memory limiter keeps the
process's RSS bounded when an exporter backs up; self-metrics on the telemetry
address; the built-in default config starts and delivers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import psutil
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from llmtap.component import Signal
from llmtap.pdata import parse_json
from otlp_sinks import GrpcSink, Reply, free_port
from otlpdata import spans_request

LLMTAP = [sys.executable, "-m", "llmtap.cli"]


class Llmtap:
    """One `llmtap run` process; its output goes to files so it can never block."""

    def __init__(self, tmp_path: Path, config: str | None, env: dict[str, str] | None = None):
        self.metrics_port = free_port()
        self.stderr_path = tmp_path / "llmtap.stderr"
        self.stdout_path = tmp_path / "llmtap.stdout"
        args = [*LLMTAP, "run"]
        if config is not None:
            config_path = tmp_path / "llmtap.yaml"
            config_path.write_text(config.replace("METRICS_ADDRESS", f"127.0.0.1:{self.metrics_port}"))
            args += ["--config", str(config_path)]
        self.process = subprocess.Popen(args, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                        stdout=self.stdout_path.open("wb"),
                                        stderr=self.stderr_path.open("wb"),
                                        env={**os.environ, "LLMTAP_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
                                             **(env or {})})

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "everything is ready" not in self.stderr:
            assert self.process.poll() is None, f"llmtap exited early:\n{self.stderr}"
            assert time.monotonic() < deadline, f"llmtap did not get ready:\n{self.stderr}"
            await asyncio.sleep(0.05)

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of every sample called `name` whose labels include `labels`."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    async def until_metric(self, name: str, value: float, timeout: float = 20.0, **labels: str) -> None:
        deadline = time.monotonic() + timeout
        while (current := await self.metric(name, **labels)) < value:
            assert time.monotonic() < deadline, f"{name}{labels} stayed at {current}, expected {value}"
            await asyncio.sleep(0.05)

    async def terminate(self, timeout: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
async def start_llmtap(tmp_path):
    started: list[Llmtap] = []

    async def start(config: str | None, env: dict[str, str] | None = None) -> Llmtap:
        llmtap = Llmtap(tmp_path, config, env)
        started.append(llmtap)
        await llmtap.ready()
        return llmtap

    yield start
    for llmtap in started:
        llmtap.kill()


@pytest.fixture
async def grpc_sink():
    sinks: list[GrpcSink] = []

    async def start() -> GrpcSink:
        sinks.append(await GrpcSink().start())
        return sinks[-1]

    yield start
    for sink in sinks:
        await sink.stop()


async def export_spans(endpoint: str, requests) -> list[grpc.StatusCode]:
    """Sends each request with the proto stubs; the status of each call."""
    codes = []
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for request in requests:
            try:
                await stub.Export(request, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as e:
                codes.append(e.code())
    return codes


def spans_by_id(requests) -> dict[bytes, bytes]:
    """Every span, serialized, by span ID: equal maps mean byte-identical spans."""
    return {span.span_id: span.SerializeToString(deterministic=True)
            for request in requests for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}


PIPELINE = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc_port}"}}
processors:
  memory_limiter: {{check_interval: 100ms, limit_mib: {limit_mib}, spike_limit_mib: {spike_mib}}}
  batch: {{timeout: {batch_timeout}, send_batch_size: 100000}}
exporters:
  otlp:
    endpoint: {target}
    tls: {{insecure: true}}
    timeout: {export_timeout}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
    sending_queue: {{queue_size: 100000}}
  file: {{path: out.jsonl}}
service:
  shutdown_timeout: {shutdown_timeout}
  telemetry: {{metrics: {{address: METRICS_ADDRESS}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp, file]}}
"""


def pipeline(target: str, *, grpc_port: int, limit_mib: int = 2000, spike_mib: int = 400,
             batch_timeout: str = "1h", export_timeout: str = "5s", shutdown_timeout: str = "30s") -> str:
    return PIPELINE.format(**locals())


async def test_sigterm_exports_everything_accepted_before_it(start_llmtap, grpc_sink, tmp_path):
    sink = await grpc_sink()
    grpc_port = free_port()
    llmtap = await start_llmtap(pipeline(sink.endpoint, grpc_port=grpc_port))
    sent = [spans_request(50, seed=seed) for seed in range(10)]

    assert await export_spans(f"127.0.0.1:{grpc_port}", sent) == [grpc.StatusCode.OK] * 10
    await llmtap.until_metric("llmtap_receiver_accepted_spans_total", 500, receiver="otlp", transport="grpc")
    assert sink.items() == 0  # all of it waits in the batch processor (timeout 1h)

    assert await llmtap.terminate() == 0
    assert sink.items() == 500
    assert spans_by_id(r.request for r in sink.received) == spans_by_id(sent)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert spans_by_id(parse_json(Signal.TRACES, line) for line in lines) == spans_by_id(sent)
    assert "ERROR" not in llmtap.stderr.upper().replace("ERRORS", "")


async def test_self_metrics_count_what_was_accepted_and_sent(start_llmtap, grpc_sink):
    sink = await grpc_sink()
    grpc_port = free_port()
    llmtap = await start_llmtap(pipeline(sink.endpoint, grpc_port=grpc_port, batch_timeout="10ms"))
    await export_spans(f"127.0.0.1:{grpc_port}", [spans_request(30, seed=seed) for seed in range(3)])

    await llmtap.until_metric("llmtap_exporter_sent_spans_total", 90, exporter="otlp")
    await llmtap.until_metric("llmtap_exporter_sent_spans_total", 90, exporter="file")
    assert await llmtap.metric("llmtap_receiver_accepted_spans_total", receiver="otlp") == 90
    assert await llmtap.metric("llmtap_receiver_refused_spans_total") == 0
    assert await llmtap.metric("llmtap_exporter_send_failed_spans_total") == 0
    assert await llmtap.metric("llmtap_exporter_queue_size", exporter="otlp") == 0
    assert await llmtap.metric("llmtap_process_memory_rss") > 0
    assert sink.items() == 90
    assert await llmtap.terminate() == 0


async def test_a_dead_target_is_given_up_at_the_shutdown_timeout_and_the_loss_reported(start_llmtap, tmp_path):
    grpc_port = free_port()
    llmtap = await start_llmtap(pipeline(f"127.0.0.1:{free_port()}", grpc_port=grpc_port, batch_timeout="10ms",
                                         shutdown_timeout="1s"))
    await export_spans(f"127.0.0.1:{grpc_port}", [spans_request(40)])
    await llmtap.until_metric("llmtap_exporter_sent_spans_total", 40, exporter="file")
    await llmtap.until_metric("llmtap_exporter_send_failed_spans_total", 0, exporter="otlp")

    started = time.monotonic()
    assert await llmtap.terminate() == 0
    assert time.monotonic() - started < 20  # the retry window (300s) is cut short by shutdown_timeout
    assert "shutdown deadline reached" in llmtap.stderr
    # What the file exporter got is not lost because its neighbour could not deliver.
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert sum(len(parse_json(Signal.TRACES, line).resource_spans[0].scope_spans[0].spans) for line in lines) == 40


async def test_a_backed_up_exporter_makes_clients_retry_while_rss_stays_bounded(start_llmtap, grpc_sink):
    # The target accepts connections but never answers, so every accepted request
    # piles up in the exporter's (large) queue until the memory limiter refuses.
    hung = await grpc_sink()
    hung.script(*[Reply(hang=True)] * 10_000)
    grpc_port = free_port()
    limit_mib = 200
    llmtap = await start_llmtap(pipeline(hung.endpoint, grpc_port=grpc_port, limit_mib=limit_mib, spike_mib=40,
                                         batch_timeout="10ms", export_timeout="1h", shutdown_timeout="1s"))
    process = psutil.Process(llmtap.process.pid)
    request = spans_request(400)  # 0.75 MiB
    codes: list[grpc.StatusCode] = []
    rss_while_refusing: list[int] = []
    while codes.count(grpc.StatusCode.UNAVAILABLE) < 300:  # 225 MiB offered past the limit
        assert len(codes) < 1000, "the memory limiter never refused"
        codes += await export_spans(f"127.0.0.1:{grpc_port}", [request] * 10)
        if grpc.StatusCode.UNAVAILABLE in codes:
            rss_while_refusing.append(process.memory_info().rss)

    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}  # retryable, never an error
    # Once refusing, memory does not grow with what is offered: no copy of a refused
    # request outlives its refusal.
    settled = rss_while_refusing[len(rss_while_refusing) // 2:]
    assert max(settled) < limit_mib * 2**20, f"RSS while refusing, MiB: {[rss >> 20 for rss in rss_while_refusing]}"
    assert await llmtap.metric("llmtap_processor_memory_limiter_refused_total") > 0
    refused = await llmtap.metric("llmtap_receiver_refused_spans_total", receiver="otlp")
    assert refused == codes.count(grpc.StatusCode.UNAVAILABLE) * 400
    llmtap.kill()


async def test_the_readme_quickstart_against_the_built_in_default_config(start_llmtap, tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    quickstart = readme.split(".venv/bin/python - <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    grpc_port, health_port = free_port(), free_port()
    llmtap = await start_llmtap(None, env={
        "LLMTAP_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
        "LLMTAP_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "LLMTAP_HEALTH_ENDPOINT": f"127.0.0.1:{health_port}",
        "LLMTAP_PROMETHEUS_ENDPOINT": f"127.0.0.1:{free_port()}",
    })
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{health_port}/", timeout=5).read())
    assert health["status"] == "Server available"

    subprocess.run([sys.executable, "-c", quickstart], check=True, timeout=60,
                   env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_port}"})

    assert await llmtap.terminate() == 0
    lines = (tmp_path / "llmtap-output.jsonl").read_text().splitlines()
    # The file holds the GenAI metrics derived from the spans too: one request per line, of either signal.
    spans = [span for line in lines for rs in json.loads(line).get("resourceSpans", []) for ss in rs["scopeSpans"]
             for span in ss["spans"]]
    assert sorted(span["name"] for span in spans) == ["chat gpt-4o", "execute_tool ls"]
    assert llmtap.stdout.count('span "chat gpt-4o"') == 1  # the debug exporter's one line per span
    assert llmtap.stdout.count('span "execute_tool ls"') == 1
