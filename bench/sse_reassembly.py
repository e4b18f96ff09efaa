"""Stream reassembly benchmark: our `sse_reassembly` against the official SDKs' own
stream decoding of the same bytes, in one run (only the ratios carry over between
machines).

Streams: an OpenAI Chat Completions stream and an Anthropic Messages stream of realistic
size — 2 KiB of reply text in about one-token deltas (~4 bytes each, so ~500 events),
with the fields the real APIs send (ids, system_fingerprint, obfuscation, usage chunk;
message_start usage, ping, message_delta usage).

Measured, as MB of stream text per CPU-second:
  ours.processor  what the processor does per span: read the body and read arrays off an
                  eBPF-style OTLP span, parse read by read, reassemble, write the result
                  (JSON) and the stream attributes back;
  ours.core       the sans-IO part alone: StreamReassembler fed read by read + close();
  sdk.decode      the SDK's stream decoding and accumulation without HTTP: openai.Stream
                  (SSEDecoder + chunk models) into ChatCompletionStreamState, or
                  anthropic.Stream into its accumulate_event — the work behind
                  get_final_completion() / get_final_message();
  sdk.full        the SDK end to end through httpx MockTransport:
                  client.chat.completions.stream(...).get_final_completion(),
                  client.messages.stream(...).get_final_message().
The ratio ours.processor / sdk.decode is the figure of merit (target: at least 2).

Usage:

    .venv/bin/python bench/sse_reassembly.py [--seconds 2] [--text-bytes 2048]

Prints one JSON object on stdout, a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

import anthropic
import httpx2
import openai
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from openai.types.chat import ChatCompletionChunk

from llmtap import attributes
from llmtap.processors.sse_reassembly import reassemble_span
from llmtap.processors.sse_reassembly.reassembler import SSE, StreamReassembler

WORDS = ("the agent reviewed the ticket, planned three steps and called the weather tool before answering "
         "with a short friendly summary — naïve café, 日本語 ✓ 🚀").split()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def reply_tokens(text_bytes: int) -> list[str]:
    """About `text_bytes` of text as ~4-byte deltas (words split into token-sized pieces)."""
    tokens, size, i = [], 0, 0
    while size < text_bytes:
        word = " " + WORDS[i % len(WORDS)]
        i += 1
        for start in range(0, len(word), 4):
            tokens.append(word[start:start + 4])
        size += len(word.encode())
    return tokens


def chat_stream(tokens: list[str]) -> list[bytes]:
    head = {"id": "chatcmpl-BzQ8Vf1kGm3sTqLx9aR2uW7nEoYcH", "object": "chat.completion.chunk", "created": 1754326183,
            "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_efad92c60b"}

    def chunk(choices: list, i: int, **extra: Any) -> bytes:
        body = {**head, "choices": choices, "usage": None, **extra, "obfuscation": "xK9qT2"[:1 + i % 6]}
        return f"data: {dumps(body)}\n\n".encode()

    events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                      "finish_reason": None}], 0)]
    events += [chunk([{"index": 0, "delta": {"content": tok}, "logprobs": None, "finish_reason": None}], i)
               for i, tok in enumerate(tokens)]
    events.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], 0))
    usage = {"prompt_tokens": 812, "completion_tokens": len(tokens), "total_tokens": 812 + len(tokens),
             "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                           "rejected_prediction_tokens": 0}}
    events.append(chunk([], 1, usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_stream(tokens: list[str]) -> list[bytes]:
    def ev(kind: str, **body: Any) -> bytes:
        return f"event: {kind}\ndata: {dumps({'type': kind, **body})}\n\n".encode()

    usage = {"input_tokens": 812, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
             "output_tokens": 1, "service_tier": "standard"}
    events = [ev("message_start", message={"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message",
                                           "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
                                           "stop_reason": None, "stop_sequence": None, "usage": usage}),
              ev("content_block_start", index=0, content_block={"type": "text", "text": ""}), ev("ping")]
    events += [ev("content_block_delta", index=0, delta={"type": "text_delta", "text": tok}) for tok in tokens]
    events += [ev("content_block_stop", index=0),
               ev("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None},
                  usage={"output_tokens": len(tokens)}),
               ev("message_stop")]
    return events


CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarise the ticket."}],
                "stream_options": {"include_usage": True}}
MESSAGES_REQUEST = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "Summarise the ticket."}]}


def ebpf_span(events: list[bytes], url: str) -> bytes:
    """A span as the eBPF receiver writes it (one read per event), serialized."""
    span = Span(name="POST", start_time_unix_nano=1_754_326_183_000_000_000)
    ends, end = [], 0
    for e in events:
        end += len(e)
        ends.append(end)
    attributes.add(span.attributes, {
        "http.request.method": "POST", "url.full": url, "server.address": "api.example.com", "server.port": 443,
        "llmtap.http.request.body": dumps(CHAT_REQUEST), "llmtap.http.response.header.content-type":
            ["text/event-stream; charset=utf-8"],
        "llmtap.http.response.body": b"".join(events),
        "llmtap.http.response.read.time_unix_nano": [span.start_time_unix_nano + (400 + 20 * i) * 1_000_000
                                                     for i in range(len(events))],
        "llmtap.http.response.read.end_offset": ends})
    return span.SerializeToString()


def measure(work: Callable[[], Any], stream_bytes: int, seconds: float) -> dict:
    """MB of stream text per CPU-second, over repeated runs for about `seconds`."""
    work()  # warm up
    runs, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        work()
        runs += 1
    return {"mb_per_cpu_s": round(runs * stream_bytes / elapsed / 1e6, 2), "runs": runs,
            "ms_per_stream": round(elapsed / runs * 1e3, 3)}


def transport(body: bytes) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)))


def bench_chat(events: list[bytes], seconds: float) -> dict:
    body = b"".join(events)
    span_bytes = ebpf_span(events, "https://api.openai.com/v1/chat/completions")
    client = openai.OpenAI(api_key="sk-bench", http_client=transport(body))

    def processor() -> None:
        span = Span.FromString(span_bytes)  # a fresh span (the cost of parsing it is included, as in a pipeline)
        reassemble_span(span)

    def core() -> None:
        r = StreamReassembler(SSE, "openai.chat_completions")
        for i, e in enumerate(events):
            r.feed(e, i)
        r.close()

    def sdk_decode() -> None:
        response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=httpx2.ByteStream(body),
                                   request=httpx2.Request("POST", "https://api.openai.com/v1/chat/completions"))
        state = ChatCompletionStreamState()
        for chunk in openai.Stream(cast_to=ChatCompletionChunk, response=response, client=client):
            state.handle_chunk(chunk)
        state.get_final_completion()

    def sdk_full() -> None:
        with client.chat.completions.stream(**CHAT_REQUEST) as stream:
            stream.get_final_completion()

    return run_all(len(body), seconds, processor=processor, core=core, sdk_decode=sdk_decode, sdk_full=sdk_full)


def bench_anthropic(events: list[bytes], seconds: float) -> dict:
    body = b"".join(events)
    span_bytes = ebpf_span(events, "https://api.anthropic.com/v1/messages")
    client = anthropic.Anthropic(api_key="sk-ant-bench", http_client=transport(body))

    def processor() -> None:
        reassemble_span(Span.FromString(span_bytes))

    def core() -> None:
        r = StreamReassembler(SSE, "anthropic.messages")
        for i, e in enumerate(events):
            r.feed(e, i)
        r.close()

    def sdk_decode() -> None:
        response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=httpx2.ByteStream(body),
                                   request=httpx2.Request("POST", "https://api.anthropic.com/v1/messages"))
        snapshot = None
        for event in anthropic.Stream(cast_to=RawMessageStreamEvent, response=response, client=client):
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs={})

    def sdk_full() -> None:
        with client.messages.stream(**MESSAGES_REQUEST) as stream:
            stream.get_final_message()

    return run_all(len(body), seconds, processor=processor, core=core, sdk_decode=sdk_decode, sdk_full=sdk_full)


def run_all(stream_bytes: int, seconds: float, **works: Callable[[], Any]) -> dict:
    results = {name: measure(work, stream_bytes, seconds) for name, work in works.items()}
    ours = results["processor"]["mb_per_cpu_s"]
    return {"stream_bytes": stream_bytes, **results,
            "ratio_processor_to_sdk_decode": round(ours / results["sdk_decode"]["mb_per_cpu_s"], 2),
            "ratio_processor_to_sdk_full": round(ours / results["sdk_full"]["mb_per_cpu_s"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    parser.add_argument("--text-bytes", type=int, default=2048, help="reply text per stream")
    args = parser.parse_args()
    tokens = reply_tokens(args.text_bytes)
    chat, messages = chat_stream(tokens), anthropic_stream(tokens)
    result = {"text_bytes": sum(len(t.encode()) for t in tokens), "deltas": len(tokens),
              "openai.chat_completions": bench_chat(chat, args.seconds),
              "anthropic.messages": bench_anthropic(messages, args.seconds)}
    print(f"{result['deltas']} deltas, {result['text_bytes']} B of text", file=sys.stderr)
    print(f"{'stream':26} {'bytes':>7} {'ours.processor':>15} {'ours.core':>10} {'sdk.decode':>11} {'sdk.full':>9}"
          f" {'vs decode':>10} {'vs full':>8}   (MB/s per CPU-second)", file=sys.stderr)
    for name in ("openai.chat_completions", "anthropic.messages"):
        r = result[name]
        print(f"{name:26} {r['stream_bytes']:>7} {r['processor']['mb_per_cpu_s']:>15} {r['core']['mb_per_cpu_s']:>10}"
              f" {r['sdk_decode']['mb_per_cpu_s']:>11} {r['sdk_full']['mb_per_cpu_s']:>9}"
              f" {r['ratio_processor_to_sdk_decode']:>9}× {r['ratio_processor_to_sdk_full']:>7}×", file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
