"""The whole GenAI chain, per CPU-second: sse_reassembly → genai_semconv → token_count →
cost_attribution → genai_metrics, on typical streamed chat exchanges as the eBPF receiver
hands them over (a ~4 KiB request with a system prompt, a tool call and its result; a ~2 KiB
reply in ~4-byte deltas, one read per event).

Two mixes: OpenAI Chat Completions without a usage chunk (token_count must estimate both
counts) and Anthropic Messages (provider usage; nothing to estimate). Every component is
built by its factory with its default config, as the built-in config does.

Measured in one run, so that the machine's noise hits both sides alike:
  baseline  per request: parse the serialized ExportTraceServiceRequest and serialize it again
            (what receiving and exporting it costs at the least: the OTLP passthrough's floor);
  chain     per request: parse it, run it through the five components, serialize it.
Reported: spans per CPU-second (best of --repeat rounds) and chain/baseline.

    .venv/bin/python bench/genai_chain.py [--spans 400] [--batch 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

sys.path.insert(0, str(Path(__file__).resolve().parent))
from genai_semconv import anthropic_exchange, openai_exchange  # noqa: E402  (the 4 KiB requests)
from sse_reassembly import anthropic_stream, chat_stream, reply_tokens  # noqa: E402  (the 2 KiB streams)

from llmtap import attributes  # noqa: E402
from llmtap.component import ComponentID, Consumer, Kind, Settings, Signal  # noqa: E402
from llmtap.configtypes import decode_config  # noqa: E402
from llmtap.registry import default_registry  # noqa: E402
from llmtap.telemetry import SelfTelemetry  # noqa: E402

CHAIN = ("sse_reassembly", "genai_semconv", "token_count", "cost_attribution")


class Drop(Consumer):
    async def consume(self, signal, data) -> None:
        pass


def build():
    """The processors, first to last, ending in the genai_metrics connector."""
    registry, telemetry = default_registry(), SelfTelemetry()

    def settings(type_: str, kind: Kind) -> Settings:
        return Settings(ComponentID(type_), kind, telemetry, logging.getLogger(f"bench.{type_}"))

    factory = registry.get(Kind.CONNECTOR, "genai_metrics")
    nxt = factory.create(settings("genai_metrics", Kind.CONNECTOR), factory.default_config(), {Signal.METRICS: Drop()})
    for type_ in reversed(CHAIN):
        factory = registry.get(Kind.PROCESSOR, type_)
        config, errors = decode_config(factory.config_class, {})
        assert not errors, errors
        nxt = factory.create(settings(type_, Kind.PROCESSOR), config, Signal.TRACES, nxt)
    return nxt


def exchange_span(url: str, request: dict, events: list[bytes]) -> Span:
    span = Span(name="POST", kind=Span.SPAN_KIND_CLIENT, trace_id=b"\x01" * 16, span_id=b"\x02" * 8,
                start_time_unix_nano=1_764_633_600_000_000_000)
    ends, end = [], 0
    for e in events:
        end += len(e)
        ends.append(end)
    span.end_time_unix_nano = span.start_time_unix_nano + (500 + 20 * len(events)) * 1_000_000
    attributes.add(span.attributes, {
        "http.request.method": "POST", "url.full": url, "server.address": url.split("/")[2], "server.port": 443,
        "http.response.status_code": 200, "process.pid": 4242, "process.executable.name": "python3",
        "llmtap.http.request.header.content-type": ["application/json"],
        "llmtap.http.response.header.content-type": ["text/event-stream; charset=utf-8"],
        "llmtap.http.request.body": json.dumps({**request, "stream": True}),
        "llmtap.http.response.body": b"".join(events),
        "llmtap.http.response.read.time_unix_nano": [span.start_time_unix_nano + (400 + 20 * i) * 1_000_000
                                                     for i in range(len(events))],
        "llmtap.http.response.read.end_offset": ends})
    return span


def mixes() -> dict[str, Span]:
    tokens = reply_tokens(2048)
    openai_request, _, _ = openai_exchange()
    anthropic_request, _, _ = anthropic_exchange()
    without_usage = [e for e in chat_stream(tokens) if b'"usage":{' not in e]
    return {"openai chat, no usage (estimated)": exchange_span("https://api.openai.com/v1/chat/completions",
                                                               openai_request, without_usage),
            "anthropic messages (reported)": exchange_span("https://api.anthropic.com/v1/messages",
                                                           anthropic_request, anthropic_stream(tokens))}


def cpu_rate(work, items: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return items / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=400, help="spans per round")
    parser.add_argument("--batch", type=int, default=50, help="spans per export request")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    chain = build()
    loop = asyncio.new_event_loop()
    print(f"{'exchange':<36} {'baseline':>10} {'chain':>10} {'ratio':>6}   (spans per CPU-second)")
    for name, template in mixes().items():
        request = ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add().spans
        for _ in range(args.batch):
            spans.add().CopyFrom(template)
        wire = request.SerializeToString()
        rounds = max(1, args.spans // args.batch)

        def baseline():
            for _ in range(rounds):
                ExportTraceServiceRequest.FromString(wire).SerializeToString()

        def through_chain():
            for _ in range(rounds):
                data = ExportTraceServiceRequest.FromString(wire)
                loop.run_until_complete(chain.consume(Signal.TRACES, data))
                data.SerializeToString()

        check = ExportTraceServiceRequest.FromString(wire)
        loop.run_until_complete(chain.consume(Signal.TRACES, check))
        got = attributes.as_dict(check.resource_spans[0].scope_spans[0].spans[0].attributes)
        assert got.get("gen_ai.usage.cost", 0) > 0 and "llmtap.genai.error" not in got, got
        base = cpu_rate(baseline, rounds * args.batch, args.repeat)
        rate = cpu_rate(through_chain, rounds * args.batch, args.repeat)
        print(f"{name:<36} {base:>10.0f} {rate:>10.0f} {rate / base:>6.3f}")


if __name__ == "__main__":
    main()
