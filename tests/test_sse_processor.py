"""The `sse_reassembly` processor on export requests built as the eBPF receiver builds
them (receiver/ebpf/span.py from captured exchanges): every streamed response gets the
reassembled object and the stream attributes of docs/genai.md, with timings from the
per-read arrays; everything else in the batch goes by untouched."""

from __future__ import annotations

import gzip
import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from llmtap import attributes
from llmtap.component import EmptyConfig, Kind, Signal, Stability
from llmtap.processors import sse_reassembly
from llmtap.receiver.ebpf.exchange import Exchange
from llmtap.receiver.ebpf.span import traces_request
from llmtap.receiver.ebpf.tracker import Observed, ProcessInfo
from stream_samples import SAMPLES, StreamSample, cut

T0 = 1_754_326_183_000_000_000  # kernel clock → Unix time offset of the capture
START_NS = 5_000_000_000  # CLOCK_MONOTONIC of the request's first byte
MS = 1_000_000


def exchange(sample: StreamSample, *, body: bytes | None = None, reads: list[tuple[int, int]] | None = None,
             first_byte_ms: int = 400, gap_ms: int = 20, complete: bool = True, status: int = 200,
             content_encoding: str | None = None, error: str | None = None, truncated: bool = False) -> Observed:
    """The exchange the eBPF receiver would report for `sample`: one read per event, the
    first `first_byte_ms` after the request, then one every `gap_ms`."""
    body = sample.body if body is None else body
    if reads is None:
        reads, end = [], 0
        for i, event in enumerate(sample.events):
            end += len(event)
            if end > len(body) and not truncated:  # (a truncated body's reads go on past its end)
                break
            reads.append((START_NS + (first_byte_ms + i * gap_ms) * MS, end))
    headers = [("content-type", sample.content_type)]
    if content_encoding:
        headers.append(("content-encoding", content_encoding))
    x = Exchange(protocol="2", method="POST", target=sample.path, authority=sample.host, scheme="https",
                 stream_id=1, request_headers=[("content-type", "application/json")],
                 request_body=json.dumps(sample.request).encode(), request_body_size=len(json.dumps(sample.request)),
                 status=status, response_headers=headers, response_body=body, response_body_size=len(body),
                 response_truncated=truncated,
                 response_reads=reads, start_ns=START_NS,
                 end_ns=reads[-1][0] if reads else START_NS, complete=complete, error=error)
    return Observed(x, ProcessInfo(pid=4242, executable_path="/usr/bin/python3.11"), tid=4242)


def request_of(*observed: Observed) -> ExportTraceServiceRequest:
    return traces_request(list(observed), T0, service_name="agent")


async def run(make_settings, capture, request: ExportTraceServiceRequest) -> list:
    processor = sse_reassembly.factory.create(make_settings(Kind.PROCESSOR, "sse_reassembly"), EmptyConfig(),
                                              Signal.TRACES, capture)
    await processor.consume(Signal.TRACES, request)
    [(signal, out)] = capture.received
    assert signal == Signal.TRACES and out is request
    return [span for rs in out.resource_spans for ss in rs.scope_spans for span in ss.spans]


def attrs(span) -> dict:
    return attributes.as_dict(span.attributes)


def test_factory():
    factory = sse_reassembly.factory
    assert (factory.type, factory.kind, factory.signals, factory.stability) == (
        "sse_reassembly", Kind.PROCESSOR, frozenset({Signal.TRACES}), Stability.ALPHA)
    assert factory.default_config() == EmptyConfig()


async def test_a_chat_stream_gets_the_reassembled_completion_and_its_timings(make_settings, capture):
    sample = SAMPLES["openai_chat_text"]
    [span] = await run(make_settings, capture, request_of(exchange(sample)))
    a = attrs(span)
    completion = json.loads(a["llmtap.http.response.reassembled"])
    assert completion["choices"][0]["message"]["content"] == (
        "Bonjour! Naïve café, 日本語 ✓ and a rocket 🚀 — ready to help.")
    assert completion["usage"]["total_tokens"] == 41
    assert (a["llmtap.stream.format"], a["llmtap.stream.events"], a["llmtap.stream.complete"]) == (
        "openai.chat_completions", len(sample.events), True)
    # Read 0 is the role-only chunk (no output); read 1 brings "Bonjour!": 400 + 20 ms.
    assert a["gen_ai.response.time_to_first_chunk"] == 0.42
    tokens = len(sample.events) - 4  # role chunk, finish chunk, usage chunk, [DONE]
    assert a["llmtap.stream.time_per_output_chunk"] == [0.02] * (tokens - 1)
    # First output chunk (read 1) → last event ([DONE], read n-1).
    assert a["llmtap.stream.duration"] == round((len(sample.events) - 2) * 0.02, 9)
    assert "error.type" not in a and span.status.code == Status.STATUS_CODE_UNSET
    # The raw attributes are left for genai_semconv, which drops them.
    assert a["llmtap.http.response.body"] == sample.body.decode()


async def test_several_events_in_one_read_share_its_time(make_settings, capture):
    sample = SAMPLES["anthropic_text"]
    body = sample.body
    reads = [(START_NS + 300 * MS, len(cut(sample, 3))),  # message_start, block start, ping: no output
             (START_NS + 350 * MS, len(cut(sample, 6))),  # three text deltas
             (START_NS + 500 * MS, len(body))]  # everything else
    [span] = await run(make_settings, capture, request_of(exchange(sample, reads=reads)))
    a = attrs(span)
    assert a["gen_ai.response.time_to_first_chunk"] == 0.35
    deltas = sum(1 for e in sample.events if b"text_delta" in e)
    assert a["llmtap.stream.time_per_output_chunk"] == [0.0, 0.0, 0.15] + [0.0] * (deltas - 4)
    assert a["llmtap.stream.duration"] == 0.15
    message = json.loads(a["llmtap.http.response.reassembled"])
    assert (message["id"], message["stop_reason"], message["usage"]["output_tokens"]) == (
        "msg_01XFDUDYJgAACzvnptvVoYEL", "end_turn", 15)


async def test_one_batch_of_every_kind(make_settings, capture):
    chat, cut_short, overloaded = SAMPLES["openai_chat_parallel_tool_calls"], SAMPLES["anthropic_tool_use"], \
        SAMPLES["anthropic_overloaded"]
    gemini, ollama = SAMPLES["gemini_array_text"], SAMPLES["ollama_generate"]
    json_answer = StreamSample("plain_json", "", "/v1/chat/completions", "api.openai.com", {"model": "gpt-4o"},
                               "application/json", (b'{"id":"chatcmpl-1","object":"chat.completion"}\n',))
    html = StreamSample("html", "", "/v1/chat/completions", "gateway.internal", {}, "text/event-stream",
                        (b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",))
    request = request_of(
        exchange(chat),
        exchange(cut_short, body=cut(cut_short, next(i for i, e in enumerate(cut_short.events) if b"Par" in e) + 1),
                 complete=False),
        exchange(overloaded),
        exchange(gemini),
        exchange(ollama),
        exchange(json_answer),
        exchange(html),
    )
    spans = await run(make_settings, capture, request)
    by_name = [attrs(s) for s in spans]
    a = by_name[0]
    calls = json.loads(a["llmtap.http.response.reassembled"])["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ['{"city": "Paris", "unit": "celsius"}',
                                                          '{"city": "São Paulo", "unit": "celsius"}']
    assert spans[0].status.code == Status.STATUS_CODE_UNSET

    a = by_name[1]  # cut short inside the first tool call's arguments
    assert a["llmtap.stream.complete"] is False and a["error.type"] == "incomplete"
    assert spans[1].status.code == Status.STATUS_CODE_ERROR
    assert spans[1].status.message == "the stream ended before its end (message_stop)"
    content = json.loads(a["llmtap.http.response.reassembled"])["content"]
    assert content[0]["text"] == "I'll check the weather in both cities — un instant."
    assert content[1]["input"] == {"city": "Par"}

    a = by_name[2]
    assert (a["error.type"], spans[2].status.code, spans[2].status.message) == (
        "overloaded_error", Status.STATUS_CODE_ERROR, "Overloaded")

    assert json.loads(by_name[3]["llmtap.http.response.reassembled"]) == gemini.expected
    assert by_name[3]["llmtap.stream.format"] == "gemini.generate_content"
    assert json.loads(by_name[4]["llmtap.http.response.reassembled"]) == ollama.expected

    assert not any(k.startswith("llmtap.stream") for k in by_name[5])  # an ordinary JSON answer

    a = by_name[6]
    assert a["llmtap.stream.format"] == "unknown"
    assert a["llmtap.stream.error"] == "not a stream of a known LLM API: no server-sent events in the body"
    assert "llmtap.http.response.reassembled" not in a and "error.type" not in a
    assert spans[6].status.code == Status.STATUS_CODE_UNSET


async def test_an_exchange_the_receiver_marked_failed_keeps_its_error(make_settings, capture):
    sample = SAMPLES["openai_chat_text"]
    observed = exchange(sample, body=cut(sample, 5), complete=False, error="connection closed mid-response")
    [span] = await run(make_settings, capture, request_of(observed))
    a = attrs(span)
    assert a["llmtap.stream.complete"] is False
    assert (a["error.type"], span.status.message) == ("incomplete", "connection closed mid-response")


async def test_a_content_encoded_body_is_reassembled_without_per_read_timing(make_settings, capture):
    sample = SAMPLES["openai_chat_text"]
    wire = gzip.compress(sample.body)  # read offsets count these bytes, the body is decoded
    reads = [(START_NS + 400 * MS, len(wire) // 2), (START_NS + 700 * MS, len(wire))]
    [span] = await run(make_settings, capture, request_of(exchange(sample, reads=reads, content_encoding="gzip")))
    a = attrs(span)
    assert json.loads(a["llmtap.http.response.reassembled"])["usage"]["total_tokens"] == 41
    assert not {"gen_ai.response.time_to_first_chunk", "llmtap.stream.time_per_output_chunk",
                "llmtap.stream.duration"} & a.keys()


async def test_reads_that_do_not_add_up_to_the_body_give_no_timing(make_settings, capture):
    sample = SAMPLES["anthropic_text"]
    reads = [(START_NS + 400 * MS, 10), (START_NS + 500 * MS, len(sample.body) + 99)]
    [span] = await run(make_settings, capture, request_of(exchange(sample, reads=reads)))
    a = attrs(span)
    assert a["llmtap.stream.complete"] is True and "gen_ai.response.time_to_first_chunk" not in a


async def test_any_span_carrying_the_raw_stream_is_reassembled(make_settings, capture):
    # A span from elsewhere (another collector, a replayed file): body as bytes, no headers,
    # no read times; the stream is recognised from its bytes.
    sample = SAMPLES["openai_responses_text"]
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(name="POST /v1/responses", start_time_unix_nano=T0)
    attributes.add(span.attributes, {"url.full": sample.url, "llmtap.http.response.body": sample.body})
    other = request.resource_spans[0].scope_spans[0].spans.add(name="chat gpt-4o")
    attributes.add(other.attributes, {"gen_ai.operation.name": "chat"})
    spans = await run(make_settings, capture, request)
    a = attrs(spans[0])
    assert a["llmtap.stream.format"] == "openai.responses" and a["llmtap.stream.complete"] is True
    assert json.loads(a["llmtap.http.response.reassembled"])["output"][0]["content"][0]["text"].startswith("Bonjour!")
    assert attrs(spans[1]) == {"gen_ai.operation.name": "chat"}


async def test_a_failure_inside_the_processor_costs_one_span(make_settings, capture, monkeypatch, caplog):
    # Stands in for a bug: closing the chat stream's reassembler raises.
    close = sse_reassembly.StreamReassembler.close

    def failing_close(self):
        if self.hint == "openai.chat_completions":
            raise RuntimeError("boom")
        return close(self)

    monkeypatch.setattr(sse_reassembly.StreamReassembler, "close", failing_close)
    spans = await run(make_settings, capture, request_of(exchange(SAMPLES["openai_chat_text"]),
                                                         exchange(SAMPLES["anthropic_text"])))
    assert attrs(spans[0])["llmtap.stream.error"] == "internal error: RuntimeError: boom"
    assert "cannot reassemble the stream of a span" in caplog.text
    assert attrs(spans[1])["llmtap.stream.complete"] is True


async def test_reprocessing_a_span_gives_the_same_attributes(make_settings, capture):
    sample = SAMPLES["gemini_sse_text"]
    request = request_of(exchange(sample))
    [span] = await run(make_settings, capture, request)
    first = attrs(span)
    sse_reassembly.reassemble_span(span)
    assert attrs(span) == first


async def test_an_ordinary_json_array_answer_is_not_taken_for_a_stream(make_settings, capture):
    listing = StreamSample("batch_list", "", "/v1/batches", "api.example.com", {}, "application/json",
                           (b'[{"id": "batch_1", "status": "completed"}, {"id": "batch_2", "status": "failed"}]',))
    ndjson_without_type = StreamSample("ollama_no_type", "", "/api/chat", "localhost:11434", {}, "",
                                       SAMPLES["ollama_chat"].events)
    [listed, sniffed] = await run(make_settings, capture, request_of(exchange(listing), exchange(ndjson_without_type)))
    assert not any(k.startswith("llmtap.stream") for k in attrs(listed))
    assert attrs(sniffed)["llmtap.stream.format"] == "ollama.chat"


async def test_a_body_the_capture_truncated_is_not_a_stream_cut_short(make_settings, capture):
    # max_body_bytes kept the first 2000 bytes; the reads go on past them.
    sample = SAMPLES["openai_chat_text"]
    [span] = await run(make_settings, capture, request_of(exchange(sample, body=sample.body[:2000], truncated=True,
                                                                   reads=None)))
    a = attrs(span)
    assert a["llmtap.http.response.body.truncated"] is True
    assert "llmtap.stream.complete" not in a and "error.type" not in a
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert a["llmtap.stream.error"] == "the capture kept only the first 2000 bytes of the body"
    assert json.loads(a["llmtap.http.response.reassembled"])["choices"][0]["message"]["content"].startswith("Bonjour!")
    assert a["gen_ai.response.time_to_first_chunk"] == 0.42
