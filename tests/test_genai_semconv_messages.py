"""messages.py: provider message formats → the spec's message JSON. Tables of one provider
shape each, then the promise that no input, however odd, makes a converter raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.processors.genai_semconv import messages as m
from test_genai_semconv import check_parts


@pytest.mark.parametrize("source,mime,modality,part", [
    ("data:image/png;base64,iVBORw0KGgo=", None, None,
     {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="}),
    ("data:text/plain,hello%20world", None, "document",
     {"type": "blob", "modality": "document", "mime_type": "text/plain", "content": "aGVsbG8gd29ybGQ="}),
    ("https://example.com/a.jpg", None, "image",
     {"type": "uri", "modality": "image", "uri": "https://example.com/a.jpg"}),
    ("gs://bucket/clip.mp4", "video/mp4", None,
     {"type": "uri", "modality": "video", "mime_type": "video/mp4", "uri": "gs://bucket/clip.mp4"}),
    ("UklGRg==", "audio/wav", None,
     {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "UklGRg=="}),
])
def test_media_part(source, mime, modality, part):
    assert m.media_part(source, mime, modality) == part


def test_tool_call_arguments_are_parsed_when_they_are_json():
    assert m.tool_call_part("c1", "f", '{"a": 1}') == {"type": "tool_call", "id": "c1", "name": "f",
                                                       "arguments": {"a": 1}}
    assert m.tool_call_part("c1", "f", '{"a": 1')["arguments"] == '{"a": 1'  # cut short: kept as sent
    assert m.tool_call_part(None, "f", None) == {"type": "tool_call", "name": "f"}


def test_openai_legacy_function_call_and_refusal():
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that.",
               "function_call": {"name": "old_style", "arguments": "{}"}}
    assert m.openai_chat_message(message) == {"role": "assistant", "parts": [
        {"type": "refusal", "content": "I can't help with that."},
        {"type": "tool_call", "name": "old_style", "arguments": {}}]}
    assert m.openai_tool_definitions([{"name": "old_style", "parameters": {"type": "object"}}]) == [
        {"type": "function", "name": "old_style", "parameters": {"type": "object"}}]


def test_openai_tool_message_with_text_parts():
    message = {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "a"},
                                                                     {"type": "text", "text": "b"}]}
    assert m.openai_chat_message(message) == {"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "call_1", "response": "ab"}]}


def test_openai_file_data_part():
    block = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    assert m.openai_content_parts([block]) == [
        {"type": "blob", "modality": "document", "mime_type": "application/pdf", "content": "JVBERi0="}]


def test_responses_input_items_keep_their_turns():
    items = [
        {"type": "message", "role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        {"type": "item_reference", "id": "msg_123"},
    ]
    assert m.responses_input_messages(items) == [
        {"role": "developer", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello"},
                                        {"type": "tool_call", "id": "c1", "name": "f", "arguments": {}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "ok"},
                                   {"type": "tool_call_response", "id": "c2", "response": "two"}]},
        {"role": "user", "parts": [{"type": "item_reference", "id": "msg_123"}]},
    ]


def test_anthropic_tool_result_with_an_image_and_an_error():
    block = {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": [
        {"type": "text", "text": "see"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGOD=="}}]}
    assert m.anthropic_content_parts([block]) == [{"type": "tool_call_response", "id": "toolu_1", "is_error": True,
                                                   "response": [
        {"type": "text", "content": "see"},
        {"type": "blob", "modality": "image", "mime_type": "image/gif", "content": "R0lGOD=="}]}]


def test_anthropic_file_and_text_document_sources():
    assert m.anthropic_content_parts([
        {"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."}},
    ]) == [{"type": "file", "modality": "document", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
           {"type": "text", "content": "The grass is green."}]


def test_gemini_snake_case_parts_and_code_execution():
    parts = [{"inline_data": {"mime_type": "audio/mp3", "data": "SUQz"}},
             {"function_call": {"id": "fc1", "name": "f", "args": {}}},
             {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
             {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
             {"thoughtSignature": "c2ln"}]
    assert m.gemini_parts(parts) == [
        {"type": "blob", "modality": "audio", "mime_type": "audio/mp3", "content": "SUQz"},
        {"type": "tool_call", "id": "fc1", "name": "f", "arguments": {}},
        {"type": "server_tool_call", "name": "code_execution",
         "server_tool_call": {"type": "code_execution", "language": "PYTHON", "code": "print(1)"}},
        {"type": "server_tool_call_response",
         "server_tool_call_response": {"type": "code_execution", "outcome": "OUTCOME_OK", "output": "1\n"}}]


def test_gemini_candidates_in_index_order():
    out = m.gemini_output([{"index": 1, "content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"},
                           {"index": 0, "content": {"role": "model", "parts": [{"text": "a"}]},
                            "finishReason": "STOP"}])
    assert out == [{"role": "assistant", "parts": [{"type": "text", "content": "a"}], "finish_reason": "stop"},
                   {"role": "assistant", "parts": [{"type": "text", "content": "b"}], "finish_reason": "length"}]


@pytest.mark.parametrize("raw,mapped", [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_call"), ("content_filter", "content_filter"),
    ("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_call"), ("STOP", "stop"),
    ("SAFETY", "content_filter"), ("something_new", "something_new"), (None, "error"),
])
def test_output_finish_reason(raw, mapped):
    assert m.output_finish_reason(raw) == mapped


def test_to_json_keeps_non_ascii():
    assert m.to_json([m.text_part("café ✓")]) == '[{"type":"text","content":"café ✓"}]'


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["type", "role", "content", "text", "parts", "source", "data", "url",
                                         "image_url", "tool_calls", "function", "name", "arguments", "input",
                                         "inlineData", "functionCall", "message", "index", "finishReason", "output",
                                         "summary", "call_id", "file", "media_type", "thinking", "images"]),
                        inner, max_size=5), max_leaves=20)
PART_CONVERTERS = [m.openai_content_parts, m.anthropic_system, m.anthropic_content_parts, m.gemini_parts,
                   m.gemini_system]
MESSAGE_CONVERTERS = [lambda v: [m.openai_chat_message(v)], m.openai_chat_messages, m.openai_chat_output,
                      m.completions_prompt_messages, m.completions_output, m.responses_input_messages,
                      lambda v: m.responses_output(v, None), m.anthropic_messages,
                      lambda v: m.anthropic_output(v, "end_turn"), m.gemini_contents, m.gemini_output,
                      m.ollama_chat_messages, lambda v: m.ollama_message_output(v, "stop")]
DEFINITION_CONVERTERS = [m.openai_tool_definitions, m.responses_tool_definitions, m.anthropic_tool_definitions,
                         m.gemini_tool_definitions]


@settings(max_examples=150, deadline=None)
@given(value=JSON)
def test_no_input_makes_a_converter_raise(value):
    for convert in PART_CONVERTERS:
        parts = convert(value)
        check_parts(parts, base64_content=False)
        m.to_json(parts)
    for convert in MESSAGE_CONVERTERS:
        for message in convert(value):
            assert isinstance(message["role"], str)
            check_parts(message["parts"], base64_content=False)  # garbage in, garbage kept
        m.to_json(convert(value))
    for convert in DEFINITION_CONVERTERS:
        assert all(isinstance(d, dict) for d in convert(value))
