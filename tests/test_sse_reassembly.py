"""Stream reassembly: a streamed body → the object the API returns without streaming.

The official SDKs are the oracle: the same bytes go through `openai` (chat.completions
.stream / responses.stream) and `anthropic` (messages.stream) over an httpx MockTransport
and through our reassembler, and the final objects must match. Formats no installed SDK
assembles (DeepSeek's reasoning_content, Groq's x_groq usage, llama.cpp, Gemini, Ollama,
legacy Completions) are checked against the non-streaming object written out by hand
in tests/stream_samples.py. Then: any split of the bytes gives the same result, streams
cut short keep what arrived, and bad input is marked, never raised.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import anthropic
import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.processors.sse_reassembly import choose_framing
from llmtap.processors.sse_reassembly.reassembler import (StreamResult, detect_format, hint_from_request,
                                                          reassemble)
from stream_samples import NOT_STREAMS, SAMPLES, StreamSample, cut, sse

SDK_FORMATS = ("openai.chat_completions", "openai.responses", "anthropic.messages")


def ours(sample: StreamSample, pieces: list[bytes] | None = None, *, hinted: bool = True) -> StreamResult:
    path = urlsplit(sample.url).path
    framing, _ = choose_framing(sample.content_type, sample.body, path)
    hint = hint_from_request(path, sample.request, framing) if hinted else None
    return reassemble(pieces if pieces is not None else sample.events, framing, hint)


def transport(body: bytes, content_type: str) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def sdk_final(sample: StreamSample, body: bytes | None = None):
    """What the provider's SDK assembles from the same bytes."""
    body = sample.body if body is None else body
    request = {k: v for k, v in sample.request.items() if k != "stream"}
    http = transport(body, sample.content_type)
    if sample.format == "anthropic.messages":
        client = anthropic.Anthropic(api_key="sk-ant-test", http_client=http)
        with client.messages.stream(**request) as stream:
            return stream.get_final_message()
    client = openai.OpenAI(api_key="sk-test", base_url=f"https://{sample.host}/v1", http_client=http)
    if sample.format == "openai.responses":
        with client.responses.stream(**request) as stream:
            return stream.get_final_response()
    with client.chat.completions.stream(**request) as stream:
        try:
            return stream.get_final_completion()
        except openai.LengthFinishReasonError:
            # The SDK refuses to finalize a completion cut by max_tokens; what it assembled
            # is its snapshot.
            return stream.current_completion_snapshot


def without_none(value):
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def sdk_view(final) -> dict:
    """The SDK's object as plain JSON, minus what the SDK adds on top of the API's object:
    parsed content and arguments, and the stream's `index` on tool calls (a non-streamed
    message lists its tool calls without it)."""
    data = final.model_dump(mode="json")
    for choice in data.get("choices") or ():
        message = choice["message"]
        message.pop("parsed", None)
        for call in message.get("tool_calls") or ():
            call.pop("index", None)
            call["function"].pop("parsed_arguments", None)
    for item in data.get("output") or ():
        item.pop("parsed_arguments", None)
        for part in item.get("content") or ():
            part.pop("parsed", None)
    for block in data.get("content") or ():
        block.pop("parsed_output", None)
    return without_none(data)


def key_fields(fmt: str, obj: dict) -> dict:
    """What must match in every case: text, tool calls and arguments, finish and stop
    reasons, ids, usage."""
    if fmt == "openai.chat_completions":
        return {"id": obj["id"], "model": obj["model"], "usage": obj.get("usage"), "choices": [
            {"index": c["index"], "finish_reason": c["finish_reason"], "content": c["message"].get("content"),
             "refusal": c["message"].get("refusal"),
             "tool_calls": [(t["id"], t["type"], t["function"]["name"], t["function"]["arguments"])
                            for t in c["message"].get("tool_calls") or ()]}
            for c in obj["choices"]]}
    if fmt == "openai.responses":
        return {"id": obj["id"], "model": obj["model"], "status": obj["status"], "usage": obj.get("usage"),
                "output": obj["output"]}
    return {"id": obj["id"], "model": obj["model"], "content": obj["content"], "stop_reason": obj.get("stop_reason"),
            "stop_sequence": obj.get("stop_sequence"), "usage": obj["usage"]}


# Samples where the SDK is known to assemble less than the API returns: (why, key fields it
# lacks). The other key fields must still match exactly; the hand-written non-streaming
# objects cover the rest.
SDK_SHORTFALLS = {
    "openrouter_chat": ("the SDK appends a `role` repeated in every delta (assistantassistant…) and keeps "
                        "choice fields such as native_finish_reason from the first chunk only", ()),
    "groq_chat": ("the SDK does not know x_groq.usage", ("usage",)),
    "llamacpp_chat": ("the SDK keeps top-level fields of the first chunk only (drops `timings`)", ()),
    "azure_chat": ("the SDK skips Azure's prompt-filter chunk and keeps a choice's content_filter_results "
                   "from its first chunk", ()),
}
ORACLE_SAMPLES = [name for name, s in SAMPLES.items() if s.format in SDK_FORMATS
                  and name not in ("anthropic_overloaded", "openai_responses_failed", "openai_responses_incomplete")]


@pytest.mark.parametrize("name", ORACLE_SAMPLES)
def test_the_sdk_assembles_the_same_object(name):
    sample = SAMPLES[name]
    result = ours(sample)
    expected = sdk_view(sdk_final(sample))
    got = without_none(result.reassembled)
    assert (result.format, result.complete, result.error, result.invalid_events) == (sample.format, True, None, 0)
    lacking = SDK_SHORTFALLS.get(name, ("", ()))[1]
    mine, theirs = key_fields(sample.format, got), key_fields(sample.format, expected)
    assert {k: v for k, v in mine.items() if k not in lacking} == {k: v for k, v in theirs.items() if k not in lacking}
    if name not in SDK_SHORTFALLS:
        assert got == expected


@pytest.mark.parametrize("name", [name for name, s in SAMPLES.items() if s.expected is not None])
def test_the_non_streaming_object_is_rebuilt(name):
    sample = SAMPLES[name]
    result = ours(sample)
    assert (result.format, result.complete, result.error, result.provider_error) == (sample.format, True, None, None)
    assert result.reassembled == sample.expected


def test_reasoning_content_is_kept_beside_the_answer():
    message = ours(SAMPLES["deepseek_reasoning"]).reassembled["choices"][0]["message"]
    assert message["reasoning_content"] == "Greeting requested — 日本語 not needed."
    assert message["content"] == "Hello! 👋"


def test_groq_usage_is_the_usage():
    obj = ours(SAMPLES["groq_chat"]).reassembled
    assert obj["usage"]["prompt_tokens"] == 18 and obj["usage"]["completion_tokens"] == 9
    assert obj["x_groq"] == {"id": "req_01k1x8w2m3n4p5q6r7s8t9v0wx"}


def test_parallel_tool_calls_are_merged_by_index():
    message = ours(SAMPLES["openai_chat_parallel_tool_calls"]).reassembled["choices"][0]["message"]
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]] == [
        ("call_Xy7Qz0LmN3pR5sT8uV1wA2bC", {"city": "Paris", "unit": "celsius"}),
        ("call_Db4Ef6Gh8Ij0Kl2Mn4Op6Qr8", {"city": "São Paulo", "unit": "celsius"})]


def test_two_choices_keep_their_own_text_and_finish_reason():
    choices = ours(SAMPLES["openai_chat_two_choices"]).reassembled["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "Salut ! Ça roule ?", "stop"), (1, "Bonjour, enchanté — 日本語 aussi", "length")]


def test_anthropic_tool_input_is_parsed_and_thinking_keeps_its_signature():
    content = ours(SAMPLES["anthropic_tool_use"]).reassembled["content"]
    assert [b.get("input") for b in content] == [None, {"city": "Paris", "unit": "celsius"},
                                                 {"city": "São Paulo", "unit": "celsius"}]
    assert ours(SAMPLES["anthropic_tool_use_no_arguments"]).reassembled["content"][0]["input"] == {}
    thinking = ours(SAMPLES["anthropic_thinking"]).reassembled["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"].startswith("EqQBCgIYAhIM")


def test_anthropic_message_delta_usage_is_cumulative_and_keeps_cache_counts():
    usage = ours(SAMPLES["anthropic_cache_usage"]).reassembled["usage"]
    assert usage == {"input_tokens": 5, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 12000,
                     "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
                     "output_tokens": 19, "service_tier": "standard"}


def test_responses_incomplete_is_the_response_of_its_terminal_event():
    # The SDK's get_final_response() only accepts response.completed; the API's answer for
    # max_output_tokens is the response.incomplete response, which is what we return.
    sample = SAMPLES["openai_responses_incomplete"]
    result = ours(sample)
    terminal = json.loads(sample.events[-1].split(b"data: ", 1)[1])["response"]
    assert result.reassembled == terminal
    assert (result.complete, result.provider_error) == (True, None)
    assert result.reassembled["incomplete_details"] == {"reason": "max_output_tokens"}


def test_responses_failed_is_a_provider_error():
    result = ours(SAMPLES["openai_responses_failed"])
    assert result.reassembled["status"] == "failed"
    assert result.provider_error.type == "server_error"
    assert result.provider_error.message.startswith("The server had an error")


def test_anthropic_error_event_is_the_sdks_error_and_keeps_what_arrived():
    sample = SAMPLES["anthropic_overloaded"]
    with pytest.raises(anthropic.APIStatusError) as raised:
        sdk_final(sample)
    result = ours(sample)
    assert result.provider_error.type == raised.value.body["error"]["type"] == "overloaded_error"
    assert result.provider_error.message == "Overloaded"
    assert result.reassembled["content"] == [{"type": "text", "text": "Bonjour, j’ai"}]
    assert result.complete is False


# --- format detection --------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_format_is_recognised_from_the_content_alone(name):
    sample = SAMPLES[name]
    assert ours(sample, hinted=False).reassembled == ours(sample).reassembled
    assert ours(sample, hinted=False).format == sample.format


def test_content_beats_a_misleading_hint():
    # An Anthropic stream relayed by a gateway under an OpenAI-looking path.
    result = reassemble(SAMPLES["anthropic_text"].events, "sse", hint="openai.chat_completions")
    assert result.format == "anthropic.messages"


@pytest.mark.parametrize("path, body, expected", [
    ("/v1/chat/completions", None, "openai.chat_completions"),
    ("/openai/deployments/gpt-4o/chat/completions", None, "openai.chat_completions"),
    ("/v1/completions", None, "openai.completions"),
    ("/v1/responses", None, "openai.responses"),
    ("/v1/messages", None, "anthropic.messages"),
    ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", None, "gemini.generate_content"),
    ("/api/chat", None, "ollama.chat"),
    ("/api/generate", None, "ollama.generate"),
    ("/proxy", '{"model": "m", "contents": []}', "gemini.generate_content"),
    ("/proxy", '{"model": "m", "input": "hi"}', "openai.responses"),
    ("/proxy", b"not json", None),
])
def test_request_hints(path, body, expected):
    assert hint_from_request(path, body) == expected


def test_an_error_before_any_content_takes_the_hint():
    error = sse({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    assert detect_format(json.loads(error[6:])) is None
    result = reassemble([error], "sse", hint="openai.chat_completions")
    assert (result.format, result.provider_error.type) == ("openai.chat_completions", "rate_limit_exceeded")


# --- any split, same result --------------------------------------------------------------

def summary(result: StreamResult) -> tuple:
    return (result.format, result.reassembled, result.events, result.complete, result.error, result.invalid_events,
            result.unknown_events, result.provider_error, len(result.output_times))


def timed(pieces: list[bytes]) -> list[tuple[bytes, int]]:
    return [(piece, 1_000 + i) for i, piece in enumerate(pieces)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(SAMPLES)), st.data())
def test_any_split_gives_the_same_result(name, data):
    sample = SAMPLES[name]
    body = sample.body
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(body) - 1), max_size=40))))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    assert summary(ours(sample, timed(pieces))) == summary(ours(sample, timed(list(sample.events))))


@pytest.mark.parametrize("name", list(SAMPLES))
def test_splits_inside_characters_and_between_cr_and_lf(name):
    sample = SAMPLES[name]
    body = sample.body
    awkward = [i for i in range(1, len(body))
               if 0x80 <= body[i] < 0xC0 or (body[i - 1:i + 1] == b"\r\n")]
    pieces = [body[a:b] for a, b in zip([0, *awkward], [*awkward, len(body)])]
    assert summary(ours(sample, timed(pieces))) == summary(ours(sample, timed(list(sample.events))))
    assert summary(ours(sample, timed([body[i:i + 1] for i in range(len(body))]))) == summary(
        ours(sample, timed(list(sample.events))))


# --- streams cut short -------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in SAMPLES if n != "anthropic_overloaded"])
def test_a_stream_cut_anywhere_never_raises_and_keeps_a_prefix(name):
    sample = SAMPLES[name]
    body = sample.body
    for end in range(0, len(body), max(1, len(body) // 97)):
        result = ours(sample, [body[:end]])
        if end < len(body) - len(sample.events[-1]):
            # (Chat and Completions streams are whole once every choice has finished, [DONE] or not.)
            assert result.complete is not True or sample.format.startswith("openai.c"), f"cut at {end}"


def test_chat_cut_mid_stream_keeps_the_text_so_far_and_is_incomplete():
    sample = SAMPLES["openai_chat_text"]
    result = ours(sample, [cut(sample, 6)])
    assert result.complete is False
    assert result.reassembled["choices"][0]["message"]["content"] == "Bonjour! Naïve café, 日本語 ✓"
    assert result.reassembled["choices"][0]["finish_reason"] is None


def test_chat_without_done_but_finished_counts_as_whole():
    # Everything the API sends except the terminator: every choice has its finish_reason.
    sample = SAMPLES["openai_chat_text"]
    assert ours(sample, [cut(sample, len(sample.events) - 1)]).complete is True
    assert ours(sample, [cut(sample, len(sample.events) - 3)]).complete is False


def test_anthropic_cut_inside_a_tool_input_keeps_the_arguments_that_arrived():
    sample = SAMPLES["anthropic_tool_use"]
    # Up to the fragment '{"city": "Par' of the first tool call.
    end = next(i for i, e in enumerate(sample.events) if b'Par' in e) + 1
    result = ours(sample, [cut(sample, end)])
    assert result.complete is False
    assert result.reassembled["content"][1]["input"] == {"city": "Par"}
    assert result.reassembled["stop_reason"] is None


def test_a_last_event_without_its_blank_line_is_used_when_whole():
    # Per the SSE spec it is not dispatched; a server that closed right after it said all it had.
    sample = SAMPLES["anthropic_text"]
    body = sample.body[:-1]  # message_stop without the final blank line
    result = ours(sample, [body])
    assert result.complete is True and result.reassembled == ours(sample).reassembled
    body = SAMPLES["openai_chat_text"].body.removesuffix(b"\n\n")
    assert ours(SAMPLES["openai_chat_text"], [body]).complete is True


def test_gemini_array_without_its_closing_bracket_is_incomplete():
    sample = SAMPLES["gemini_array_text"]
    result = ours(sample, [sample.body[:-1]])
    assert result.complete is False and result.reassembled == sample.expected


def test_responses_without_a_terminal_event_assembles_what_arrived():
    sample = SAMPLES["openai_responses_function_calls"]
    result = ours(sample, [cut(sample, 6)])  # created, in_progress, added, 3 argument deltas
    assert result.complete is False
    assert result.reassembled["status"] == "in_progress"
    assert result.reassembled["output"][0]["arguments"] == '{"city":"Zür'


# --- bad input ---------------------------------------------------------------------------

def test_invalid_json_in_one_chunk_costs_that_chunk_only():
    sample = SAMPLES["openai_chat_text"]
    events = list(sample.events)
    events[3] = (b'data: {"id":"chatcmpl-BzQ8Vf1kGm3sTqLx9aR2uW7nEoYcH",'
                 b'"choices":[{"index":0,"delta":{"content":"x"}\n\n')
    result = reassemble(events, "sse")
    assert result.invalid_events == 1 and result.error.startswith("invalid JSON in event 4")
    assert result.complete is True
    assert result.reassembled["choices"][0]["message"]["content"] == (
        "Bonjour! Naïve 日本語 ✓ and a rocket 🚀 — ready to help.")
    assert result.reassembled["usage"]["total_tokens"] == 41


def test_an_unknown_event_type_is_counted_and_ignored_like_the_sdk_does():
    sample = SAMPLES["anthropic_text"]
    events = list(sample.events)
    events.insert(3, sse({"type": "content_block_annotation", "index": 0, "note": "new in some future API"},
                         event="content_block_annotation"))
    body = b"".join(events)
    result = reassemble([body], "sse")
    assert result.unknown_events == 1 and result.error is None and result.complete is True
    assert without_none(result.reassembled) == sdk_view(sdk_final(sample, body))


def test_a_record_of_the_wrong_shape_is_marked_not_raised():
    events = [sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}),
              sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "oops"}]}}]}),
              sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": "not a list"}),
              b"data: [DONE]\n\n"]
    result = reassemble(events, "sse")
    assert result.format == "openai.chat_completions" and result.complete is True
    assert result.reassembled["choices"][0]["message"]["content"] == "Hi"


@pytest.mark.parametrize("name", list(NOT_STREAMS))
def test_a_body_that_is_not_an_llm_stream_is_unknown(name):
    _, body = NOT_STREAMS[name]
    result = reassemble([body], "sse", hint=None)
    assert result.format == "unknown" and result.reassembled is None and result.complete is None
    assert result.error


def test_unknown_format_names_the_reason():
    assert reassemble([NOT_STREAMS["html_error_page"][1]], "sse").error == (
        "not a stream of a known LLM API: no server-sent events in the body")
    assert reassemble([NOT_STREAMS["other_sse_app"][1]], "sse").error == (
        "not a stream of a known LLM API: 2 records, none of a known format")
    assert reassemble([b"\x00\x01garbage\n{not json\n"], "ndjson").error.startswith("invalid JSON in event 1")


# --- provider errors and servers' variations ---------------------------------------------

def test_responses_completed_without_output_takes_the_items_that_arrived():
    # Some servers leave `output` out of response.completed; the SDK recovers it from the
    # output_item.done events, and so do we.
    sample = SAMPLES["openai_responses_reasoning"]
    events = list(sample.events)
    terminal = json.loads(events[-1].split(b"data: ", 1)[1])
    del terminal["response"]["output"]
    events[-1] = sse(terminal, event="response.completed")
    body = b"".join(events)
    assert without_none(reassemble([body], "sse").reassembled) == sdk_view(sdk_final(sample, body))


def test_a_responses_error_event_is_the_provider_error():
    events = list(SAMPLES["openai_responses_text"].events[:5])
    events.append(sse({"type": "error", "code": "rate_limit_exceeded", "message": "Rate limit reached for gpt-4.1-mini",
                       "param": None, "sequence_number": 5}, event="error"))
    result = reassemble(events, "sse")
    assert (result.provider_error.type, result.provider_error.message) == (
        "rate_limit_exceeded", "Rate limit reached for gpt-4.1-mini")
    assert result.complete is False


def test_a_chat_error_chunk_mid_stream_is_the_sdks_error():
    sample = SAMPLES["openai_chat_text"]
    error = {"message": "The server had an error processing your request.", "type": "server_error", "param": None,
             "code": None}
    body = cut(sample, 5) + sse({"error": error})
    with pytest.raises(openai.APIError) as raised:
        sdk_final(sample, body)
    result = reassemble([body], "sse")
    assert result.provider_error.message == raised.value.message == error["message"]
    assert result.provider_error.type == raised.value.body["type"] == "server_error"
    assert result.reassembled["choices"][0]["message"]["content"] == "Bonjour! Naïve café, 日本語"


def test_a_vllm_error_object_is_the_provider_error():
    body = cut(SAMPLES["vllm_chat"], 3) + sse({"object": "error", "message": "The model ran out of KV cache blocks",
                                               "type": "InternalServerError", "param": None, "code": 500})
    result = reassemble([body], "sse")
    assert (result.provider_error.type, result.provider_error.message) == (
        "InternalServerError", "The model ran out of KV cache blocks")
    assert result.reassembled["choices"][0]["message"]["content"] == "Hallo Welt"
    assert reassemble([sse({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400})],
                      "sse").provider_error.type == "BadRequestError"


def test_a_gemini_error_element_names_its_status():
    body = (b'[{\n  "error": {\n    "code": 429,\n    "message": "Resource has been exhausted (e.g. check quota).",\n'
            b'    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n]')
    result = reassemble([body], "json_array", hint="gemini.generate_content")
    assert result.format == "gemini.generate_content"
    assert (result.provider_error.type, result.complete) == ("RESOURCE_EXHAUSTED", False)
    sse_error = sse({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
                    eol="\r\n")
    assert reassemble([sse_error], "sse").provider_error.type == "UNAVAILABLE"


def test_an_ollama_error_line_has_no_type():
    lines = [b'{"model":"llama3.2","created_at":"2025-08-04T16:49:40.1Z","message":{"role":"assistant","content":"Hi"},'
             b'"done":false}\n', b'{"error":"an error was encountered while running the model: unexpected EOF"}\n']
    result = reassemble(lines, "ndjson")
    assert (result.provider_error.type, result.provider_error.message) == (
        "_OTHER", "an error was encountered while running the model: unexpected EOF")
    assert result.reassembled["message"]["content"] == "Hi" and result.complete is False


def test_tool_calls_from_servers_that_repeat_ids_and_names_or_omit_index():
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "local"}

    def chunk(delta, finish=None):
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": None}),
              # every chunk repeats the role, id and name (seen from some OpenAI-compatible servers)
              chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                          "function": {"name": "lookup", "arguments": '{"q": '}}]}),
              chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                          "function": {"name": "lookup", "arguments": '"é"}'}}]}),
              # a second call sent whole, without index
              chunk({"tool_calls": [{"id": "call_2", "type": "function",
                                     "function": {"name": "lookup", "arguments": '{"q": "ü"}'}}]}),
              chunk({}, "tool_calls"), b"data: [DONE]\n\n"]
    message = reassemble(events, "sse").reassembled["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "é"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "ü"}'}}]
