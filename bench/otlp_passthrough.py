"""OTLP/gRPC passthrough benchmark: receiver → batch → otlp exporter → sink.

Measures, in one run so that the machine's noise hits both sides alike:
  limit       protobuf parse + serialize of the same requests in a tight loop,
              in spans per CPU-second (the in-process ceiling for a Python pipeline);
  throughput  spans exported per CPU-second of the llmtap process under saturating load
              (spans/s per core), reported as a ratio to the limit;
  latency     p50/p99 of receive → export for small probe requests sent under load
              (dominated by the batch processor's timeout), next to the same probes
              sent straight to the sink (the baseline: network and sink alone);
  memory      peak RSS of llmtap while 20k spans/s are offered, next to its RSS at
              rest just before (the baseline).

The load generator and the sink run in their own processes and send pre-serialized
bytes, so llmtap's CPU time is its own. Usage:

    .venv/bin/python bench/otlp_passthrough.py [--seconds 10] [--rate 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import grpc
import psutil
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

SPANS_PER_REQUEST = 100
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROBE_SERVICE = "bench-probe"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def realistic_request(n_spans: int, seed: int = 0, service: str = "bench-agent") -> trace_service_pb2.ExportTraceServiceRequest:
    """Spans of realistic size: 20 attributes carrying ~1 KiB of text in all."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    for i in range(n_spans):
        span = ss.spans.add()
        span.trace_id = os.urandom(16)
        span.span_id = os.urandom(8)
        span.name = "chat gpt-4o"
        span.kind = trace_pb2.Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 1_500_000_000
        for a in range(20):
            text = (f"value {seed}-{i}-{a} " * 8)[:51]   # 20 × ~51 B ≈ 1 KiB
            span.attributes.append(KeyValue(key=f"llmtap.bench.attr_{a:02d}", value=AnyValue(string_value=text)))
    return req


def measure_limit(payloads: list[bytes], seconds: float) -> float:
    """Spans per CPU-second for protobuf parse + serialize, in this process."""
    spans = 0
    start_cpu, start = time.process_time(), time.monotonic()
    while time.monotonic() - start < seconds:
        for body in payloads:
            msg = trace_service_pb2.ExportTraceServiceRequest()
            msg.ParseFromString(body)
            msg.SerializeToString()
            spans += SPANS_PER_REQUEST
    return spans / (time.process_time() - start_cpu)


# --- sink (own process) -------------------------------------------------------

class _Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, counts):
        self.counts = counts
        self.latencies: list[float] = []

    async def Export(self, request, context):
        n = 0
        for rs in request.resource_spans:
            probe = rs.resource.attributes and any(
                kv.key == "service.name" and kv.value.string_value == PROBE_SERVICE for kv in rs.resource.attributes)
            for ss in rs.scope_spans:
                n += len(ss.spans)
                if probe:
                    for span in ss.spans:
                        self.latencies.append((time.time_ns() - span.start_time_unix_nano) / 1e6)
        self.counts.value += n
        return trace_service_pb2.ExportTraceServiceResponse()


def run_sink(port: int, counts, latency_queue, stop) -> None:
    async def main():
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        sink = _Sink(counts)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        latency_queue.put(sink.latencies)
        await server.stop(None)

    asyncio.run(main())


# --- load generator (own process) ---------------------------------------------

def run_load(port: int, payloads: list[bytes], rate: float, seconds: float, sent, concurrency: int = 8) -> None:
    """Send pre-serialized requests; rate 0 = as fast as llmtap accepts them.
    Every 50 ms a one-span probe request stamped with its send time goes too
    (concurrency 0: only the probes)."""

    async def main():
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
        deadline = time.monotonic() + seconds
        interval = SPANS_PER_REQUEST / rate * concurrency if rate else 0.0

        async def worker(k: int):
            i, next_at = k, time.monotonic()
            while time.monotonic() < deadline:
                try:
                    await export(payloads[i % len(payloads)], timeout=10)
                    sent.value += SPANS_PER_REQUEST
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.05)      # refused (memory limiter): back off like an SDK
                i += concurrency
                if interval:
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        async def prober():
            while time.monotonic() < deadline:
                probe = realistic_request(1, service=PROBE_SERVICE)
                probe.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = time.time_ns()
                try:
                    await export(probe.SerializeToString(), timeout=10)
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.05)

        await asyncio.gather(*(worker(k) for k in range(concurrency)), prober())
        await channel.close()

    asyncio.run(main())


# --- the run ------------------------------------------------------------------

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{receiver_port}"}}
processors:
  batch: {{}}
exporters:
  otlp:
    endpoint: "127.0.0.1:{sink_port}"
    tls: {{insecure: true}}
    compression: none
service:
  telemetry: {{metrics: {{level: none}}, logs: {{level: warn}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
"""


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def direct_latency(payloads, seconds: float) -> dict:
    """Probe latency straight to the sink, no llmtap in between: the latency baseline."""
    ctx = mp.get_context("spawn")
    sink_port = free_port()
    counts, sent = ctx.Value("q", 0), ctx.Value("q", 0)
    stop, latency_queue = ctx.Event(), ctx.Queue()
    sink = ctx.Process(target=run_sink, args=(sink_port, counts, latency_queue, stop))
    sink.start()
    try:
        wait_for_port(sink_port)
        load = ctx.Process(target=run_load, args=(sink_port, payloads, 0, seconds, sent, 0))
        load.start()
        load.join()
        stop.set()
        latencies = latency_queue.get(timeout=30)
    finally:
        stop.set()
        sink.join(timeout=30)
    return percentiles(latencies)


def percentiles(latencies: list[float]) -> dict:
    latencies = sorted(latencies)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")  # noqa: E731
    return {
        "latency_p50_ms": pick(0.50),
        "latency_p99_ms": pick(0.99),
        "latency_probes": len(latencies),
        "latency_mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
    }


def phase(payloads, rate: float, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    receiver_port, sink_port = free_port(), free_port()
    counts, sent = ctx.Value("q", 0), ctx.Value("q", 0)
    stop, latency_queue = ctx.Event(), ctx.Queue()
    sink = ctx.Process(target=run_sink, args=(sink_port, counts, latency_queue, stop))
    sink.start()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(CONFIG.format(receiver_port=receiver_port, sink_port=sink_port))
    llmtap = subprocess.Popen([sys.executable, "-m", "llmtap.cli", "run", "--config", f.name])
    try:
        wait_for_port(receiver_port)
        wait_for_port(sink_port)
        proc = psutil.Process(llmtap.pid)
        idle_rss = proc.memory_info().rss
        load = ctx.Process(target=run_load, args=(receiver_port, payloads, rate, seconds, sent))
        cpu0, exported0, t0 = sum(proc.cpu_times()[:2]), counts.value, time.monotonic()
        load.start()
        peak_rss = 0
        while load.is_alive():
            peak_rss = max(peak_rss, proc.memory_info().rss)
            time.sleep(0.1)
        cpu1, exported1, t1 = sum(proc.cpu_times()[:2]), counts.value, time.monotonic()
        time.sleep(0.5)                                        # let the last batch arrive for the latency probes
        stop.set()
        latencies = latency_queue.get(timeout=30)
    finally:
        llmtap.terminate()
        llmtap.wait(timeout=60)
        stop.set()
        sink.join(timeout=30)
        os.unlink(f.name)
    exported = exported1 - exported0
    return {
        "offered_spans_per_s": sent.value / (t1 - t0),
        "exported_spans_per_s": exported / (t1 - t0),
        "spans_per_cpu_second": exported / max(cpu1 - cpu0, 1e-9),
        "llmtap_cpu_utilisation": (cpu1 - cpu0) / (t1 - t0),
        "idle_rss_mib": idle_rss / 2**20,
        "peak_rss_mib": peak_rss / 2**20,
        "peak_rss_to_idle": peak_rss / idle_rss,
        **percentiles(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20000.0, help="spans/s offered in the memory phase")
    args = parser.parse_args()
    payloads = [realistic_request(SPANS_PER_REQUEST, seed).SerializeToString() for seed in range(20)]
    print(f"request size: {len(payloads[0])} bytes for {SPANS_PER_REQUEST} spans", file=sys.stderr)
    limit = measure_limit(payloads, min(args.seconds, 5.0))
    saturated = phase(payloads, rate=0, seconds=args.seconds)
    paced = phase(payloads, rate=args.rate, seconds=args.seconds)
    direct = direct_latency(payloads, min(args.seconds, 5.0))
    result = {
        "limit_spans_per_cpu_second": limit,
        "saturated": saturated,
        "paced": paced,
        "direct_to_sink": direct,
        "throughput_ratio_to_limit": saturated["spans_per_cpu_second"] / limit,
        "paced_added_latency_p50_ms": paced["latency_p50_ms"] - direct["latency_p50_ms"],
        "paced_added_latency_p99_ms": paced["latency_p99_ms"] - direct["latency_p99_ms"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
