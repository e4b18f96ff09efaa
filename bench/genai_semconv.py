"""genai_semconv mapping throughput: raw exchange spans → v1.41 GenAI spans, per CPU-second.

Workload: typical chat exchanges as the eBPF receiver hands them over — a 4 KiB request
(system prompt, a few turns, a tool call and its result, one tool definition) and a 2 KiB
answer — for OpenAI Chat Completions and Anthropic Messages, each non-streamed (the answer in
llmtap.http.response.body) and streamed (the SSE text in the body, the final object from
sse_reassembly in llmtap.http.response.reassembled).

Measured in one run, so that the machine's noise hits both sides alike:
  baseline  per span: copy the template span (what receiving it costs), find the request body and
            the response JSON among its attributes and json.loads both — the floor under any
            mapping of the bodies;
  mapped    per span: copy the template span and run GenAISemconvProcessor.process_span on it
            (capture_content full, then none).
Reported: spans per CPU-second (best of --repeat rounds of --spans spans) and mapped/baseline.

    .venv/bin/python bench/genai_semconv.py [--spans 3000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap import attributes
from llmtap.component import ComponentID, Kind, Settings, Signal
from llmtap.processors.genai_semconv import Config, GenAISemconvProcessor
from llmtap.telemetry import SelfTelemetry

FILLER = ("The quarterly report covers revenue, churn, hiring and the roadmap for the platform team; "
          "summarize the risks and name the owners. ")


def _pad(text: str, size: int, used: int) -> str:
    return text + FILLER * max(0, (size - used) // len(FILLER))


def openai_exchange() -> tuple[dict, dict, str]:
    tool = {"type": "function", "function": {"name": "lookup_metric", "description": "Fetch a metric by name",
                                             "parameters": {"type": "object",
                                                            "properties": {"name": {"type": "string"}},
                                                            "required": ["name"]}}}
    messages = [
        {"role": "system", "content": "You are an analyst. Be precise."},
        {"role": "user", "content": "What was churn last quarter?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_abc123", "type": "function", "function": {
            "name": "lookup_metric", "arguments": "{\"name\": \"churn_q3\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"value\": 0.031}"},
        {"role": "user", "content": ""},
    ]
    request = {"messages": messages, "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 800, "tools": [tool]}
    messages[-1]["content"] = _pad("Now write the summary. ", 4096, len(json.dumps(request)))
    answer = {"role": "assistant", "content": "", "refusal": None, "annotations": []}
    response = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
                "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_06737a9306",
                "choices": [{"index": 0, "message": answer, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1011, "completion_tokens": 412, "total_tokens": 1423,
                          "prompt_tokens_details": {"cached_tokens": 768, "audio_tokens": 0},
                          "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}}
    answer["content"] = _pad("Summary: ", 2048, len(json.dumps(response)))
    chunks = [{"id": response["id"], "object": "chat.completion.chunk", "created": 1, "model": response["model"],
               "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
              for word in answer["content"].split(" ")]
    sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return request, response, sse


def anthropic_exchange() -> tuple[dict, dict, str]:
    request = {"max_tokens": 1024, "model": "claude-sonnet-4-5-20250929", "system": "You are an analyst.",
               "tools": [{"name": "lookup_metric", "description": "Fetch a metric by name",
                          "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}}}],
               "messages": [
                   {"role": "user", "content": "What was churn last quarter?"},
                   {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                                                      "name": "lookup_metric", "input": {"name": "churn_q3"}}]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                                                 "content": "{\"value\": 0.031}"},
                                                {"type": "text", "text": ""}]}]}
    request["messages"][-1]["content"][1]["text"] = _pad("Now write the summary. ", 4096, len(json.dumps(request)))
    block = {"type": "text", "text": ""}
    response = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5-20250929", "content": [block], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": 210, "cache_creation_input_tokens": 0,
                                                 "cache_read_input_tokens": 800, "output_tokens": 400}}
    block["text"] = _pad("Summary: ", 2048, len(json.dumps(response)))
    events = [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": word + " "}})
              for word in block["text"].split(" ")]
    sse = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return request, response, sse


def template(url: str, request: dict, response: dict, sse: str | None) -> Span:
    span = Span(name="POST /", kind=Span.SPAN_KIND_CLIENT, trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    host = url.split("/")[2]
    attrs = {"http.request.method": "POST", "url.full": url, "server.address": host, "server.port": 443,
             "network.protocol.name": "http", "network.protocol.version": "1.1", "http.response.status_code": 200,
             "process.pid": 4242, "process.executable.name": "python3",
             "llmtap.http.request.header.content-type": ["application/json"],
             "llmtap.http.request.header.user-agent": ["OpenAI/Python 3.57.0"],
             "llmtap.http.response.header.content-type": ["text/event-stream" if sse else "application/json"],
             "llmtap.http.response.header.x-request-id": ["req_8d1f4c2b9e"],
             "llmtap.http.request.body": json.dumps(request),
             "llmtap.http.response.body": sse if sse else json.dumps(response)}
    if sse:
        attrs["llmtap.http.response.reassembled"] = json.dumps(response)
        attrs["llmtap.stream.format"] = "openai.chat_completions"
        attrs["gen_ai.response.time_to_first_chunk"] = 0.31
    attributes.add(span.attributes, attrs)
    return span


def cpu_rate(work, spans: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(spans):
            work()
        best = min(best, time.process_time() - start)
    return spans / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    def processor(**config) -> GenAISemconvProcessor:
        settings = Settings(ComponentID("genai_semconv"), Kind.PROCESSOR, SelfTelemetry(), logging.getLogger("bench"))
        return GenAISemconvProcessor(settings, Config(**config), Signal.TRACES, None)

    full, none = processor(), processor(capture_content="none")
    cases = [("openai chat", "https://api.openai.com/v1/chat/completions", openai_exchange()),
             ("anthropic messages", "https://api.anthropic.com/v1/messages", anthropic_exchange())]
    print(f"{'exchange':<32} {'req/resp KiB':>12} {'baseline':>10} {'mapped':>10} {'ratio':>6} "
          f"{'no content':>10} {'ratio':>6}   (spans per CPU-second)")
    for name, url, (request, response, sse) in cases:
        for streamed in (False, True):
            tpl = template(url, request, response, sse if streamed else None)
            raw = attributes.as_dict(tpl.attributes)
            response_key = "llmtap.http.response.reassembled" if streamed else "llmtap.http.response.body"

            def baseline():
                span = Span()
                span.CopyFrom(tpl)
                for kv in span.attributes:
                    if kv.key in ("llmtap.http.request.body", response_key):
                        json.loads(kv.value.string_value)

            def mapped(p=full):
                span = Span()
                span.CopyFrom(tpl)
                p.process_span(span)

            check = Span()
            check.CopyFrom(tpl)
            full.process_span(check)
            assert check.name.startswith("chat "), check.name
            assert "llmtap.genai.error" not in attributes.as_dict(check.attributes)
            base = cpu_rate(baseline, args.spans, args.repeat)
            rate = cpu_rate(mapped, args.spans, args.repeat)
            rate_none = cpu_rate(lambda: mapped(none), args.spans, args.repeat)
            sizes = f"{len(raw['llmtap.http.request.body']) / 1024:.1f}/{len(raw[response_key]) / 1024:.1f}"
            label = f"{name}{' (streamed)' if streamed else ''}"
            print(f"{label:<32} {sizes:>12} {base:>10.0f} {rate:>10.0f} {rate / base:>6.2f} "
                  f"{rate_none:>10.0f} {rate_none / base:>6.2f}")


if __name__ == "__main__":
    main()
