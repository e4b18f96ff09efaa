"""token_count benchmark: the processor's estimating throughput as a ratio to raw tiktoken.

Measures, in one run and one process so that the machine's noise hits both sides alike:
  raw        tiktoken `encode_ordinary` of exactly the texts the processor encodes for those
             spans (message contents, role names, tool names/arguments), one call per text,
             in spans per CPU-second — the ceiling of any tiktoken-based estimate;
  raw_batch  the same texts through `encode_ordinary_batch` (tiktoken's thread pool), one call
             per span's texts, for comparison;
  processor  `TokenCountProcessor.consume` of requests of 100 GenAI spans without usage (each
             with ~4 KiB of message text: a system prompt, a 3-turn history, the reply), in
             spans per CPU-second: attribute reads, JSON parse of the content attributes, the
             chat-format walk, counting, and writing the estimate back; once with each
             `counter` (toktok, the default, and tiktoken);
  ratio      processor / raw (target >= 0.9: the processor adds little to tiktoken itself).
Requests are copied before the clock starts; each side runs `--rounds` times interleaved and
the best round of each counts. Usage:

    .venv/bin/python bench/token_count.py [--spans 2000] [--rounds 5] [--text-bytes 4096]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtap import attributes
from llmtap.component import ComponentID, Consumer, Kind, Settings, Signal
from llmtap.processors.token_count import Config, TokenCountProcessor, vocabulary
from llmtap.telemetry import SelfTelemetry

SPANS_PER_REQUEST = 100
_WORDS = ("the of and to in is that for it as with was on be by this are from or have an not they which you "
          "model token request latency agent retrieval embedding function deploy cluster service memory error "
          "customer invoice refund order shipping weather Paris London 2024 42 3.14 API JSON HTTP").split()
_CODE = ("def handler(event, context):\n    items = [x for x in event['items'] if x.get('ok')]\n"
         "    return {\"count\": len(items), \"status\": 200}\n")


def _text(rng: random.Random, n_bytes: int) -> str:
    parts, size = [], 0
    while size < n_bytes:
        if rng.random() < 0.08:
            chunk = _CODE
        else:
            chunk = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 18))) + rng.choice(".?!,;:") + " "
        parts.append(chunk)
        size += len(chunk)
    return "".join(parts)[:n_bytes]


def _span_contents(rng: random.Random, text_bytes: int) -> tuple[list, list, list]:
    """(system instructions, input messages, output messages) holding ~text_bytes of text."""
    share = text_bytes // 8
    system = [{"type": "text", "content": _text(rng, share)}]
    messages = []
    for turn in range(3):
        messages.append({"role": "user", "parts": [{"type": "text", "content": _text(rng, share)}]})
        messages.append({"role": "assistant", "parts": [{"type": "text", "content": _text(rng, share)}]})
    messages.append({"role": "user", "parts": [{"type": "text", "content": _text(rng, share // 2)}]})
    reply = _text(rng, text_bytes - 7 * share - share // 2)
    output = [{"role": "assistant", "parts": [{"type": "text", "content": reply}], "finish_reason": "stop"}]
    return system, messages, output


def build_requests(n_spans: int, text_bytes: int, seed: int = 7) -> tuple[list[ExportTraceServiceRequest], list[str]]:
    """Requests of GenAI spans without usage, and every text the processor will encode for them."""
    rng = random.Random(seed)
    requests, texts = [], []
    for first in range(0, n_spans, SPANS_PER_REQUEST):
        request = ExportTraceServiceRequest()
        ss = request.resource_spans.add().scope_spans.add()
        for i in range(first, min(first + SPANS_PER_REQUEST, n_spans)):
            system, messages, output = _span_contents(rng, text_bytes)
            span = ss.spans.add(name="chat gpt-4o", trace_id=i.to_bytes(16, "big"), span_id=i.to_bytes(8, "big"))
            attributes.add(span.attributes, {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06", "server.address": "api.openai.com",
                "gen_ai.system_instructions": json.dumps(system), "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(output), "gen_ai.response.finish_reasons": ["stop"]})
            texts += ["system"] + [p["content"] for p in system]
            for m in messages:
                texts += [m["role"]] + [p["content"] for p in m["parts"]]
            texts += [p["content"] for m in output for p in m["parts"]]
        requests.append(request)
    return requests, texts


class _Discard(Consumer):
    async def consume(self, signal, data) -> None:
        pass


def run_processor(processor: TokenCountProcessor, requests: list[ExportTraceServiceRequest]) -> float:
    copies = []
    for r in requests:
        c = ExportTraceServiceRequest()
        c.CopyFrom(r)
        copies.append(c)

    async def go() -> float:
        start = time.process_time()
        for c in copies:
            await processor.consume(Signal.TRACES, c)
        return time.process_time() - start

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--text-bytes", type=int, default=4096)
    args = parser.parse_args()

    requests, texts = build_requests(args.spans, args.text_bytes)
    encoding = vocabulary.encoding("o200k_base")  # built before the clock starts, as in a warm process
    settings = Settings(ComponentID("token_count"), Kind.PROCESSOR, SelfTelemetry(), logging.getLogger("bench"))
    processors = {c: TokenCountProcessor(settings, Config(counter=c), Signal.TRACES, _Discard())
                  for c in ("toktok", "tiktoken")}
    per_span = len(texts) // args.spans
    batches = [texts[i:i + per_span] for i in range(0, len(texts), per_span)]

    best = {"raw": float("inf"), "raw_batch": float("inf"), "toktok": float("inf"), "tiktoken": float("inf")}
    for _ in range(args.rounds):
        start = time.process_time()
        raw_tokens = sum(len(encoding.encode_ordinary(t)) for t in texts)
        best["raw"] = min(best["raw"], time.process_time() - start)
        start = time.process_time()
        for batch in batches:  # one span's texts per call, as a processor could batch them
            encoding.encode_ordinary_batch(batch)
        best["raw_batch"] = min(best["raw_batch"], time.process_time() - start)
        for counter, processor in processors.items():
            best[counter] = min(best[counter], run_processor(processor, requests))

    # what the processor wrote: input + output estimates equal the raw count plus the chat framing
    check = ExportTraceServiceRequest()
    check.CopyFrom(requests[0])
    asyncio.run(processors["toktok"].consume(Signal.TRACES, check))
    first = attributes.as_dict(check.resource_spans[0].scope_spans[0].spans[0].attributes)
    rate = {k: args.spans / v for k, v in best.items()}
    print(json.dumps({
        "spans": args.spans, "text_bytes_per_span": args.text_bytes, "texts_per_span": per_span,
        "tokens_per_span": round(raw_tokens / args.spans),
        "raw_spans_per_cpu_s": round(rate["raw"]), "raw_batch_spans_per_cpu_s": round(rate["raw_batch"]),
        "processor_toktok_spans_per_cpu_s": round(rate["toktok"]),
        "processor_tiktoken_spans_per_cpu_s": round(rate["tiktoken"]),
        "ratio_processor_toktok_to_raw": round(rate["toktok"] / rate["raw"], 3),
        "ratio_processor_tiktoken_to_raw": round(rate["tiktoken"] / rate["raw"], 3),
        "example_estimate": {k: first[k] for k in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                                                   "llmtap.usage.encoding")},
    }, indent=2))


if __name__ == "__main__":
    main()
