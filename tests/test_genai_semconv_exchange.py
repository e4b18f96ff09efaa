"""genai_semconv, per API: one realistic exchange each (bodies as the providers' API references and
SDK types define them), the attributes it must give, value by value; then the provider table,
the token arithmetic and the output types."""

from __future__ import annotations

import json

import pytest

from test_genai_semconv import check_schema, content, one, raw_span


def picked(attrs: dict, expected: dict) -> dict:
    return {k: attrs.get(k) for k in expected}


# ---- OpenAI Chat Completions: tools, images, audio, reasoning -----------------------------------

def test_openai_chat_with_tools_images_and_tool_results():
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You help with weather."}]},
            {"role": "user", "name": "ada", "content": [
                {"type": "text", "text": "Weather where this photo was taken?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg==", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/paris.png"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_VSPygqKTWdrhaFErNvMV18Yl", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_VSPygqKTWdrhaFErNvMV18Yl", "content": "rainy, 57°F"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather", "strict": True,
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                           "required": ["location"]}}}],
        "n": 2, "max_tokens": 300, "stop": "END", "response_format": {"type": "json_schema", "json_schema": {
            "name": "w", "schema": {"type": "object"}}},
    }
    response = {
        "id": "chatcmpl-C1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": 1, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_2", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"location\": \"Lyon\"}"}}]}},
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{\"t\": 14}"}},
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", request, response))
    assert picked(attrs, {"gen_ai.request.choice.count": 0, "gen_ai.request.max_tokens": 0,
                          "gen_ai.request.stop_sequences": 0, "gen_ai.output.type": 0,
                          "gen_ai.response.finish_reasons": 0}) == {
        "gen_ai.request.choice.count": 2, "gen_ai.request.max_tokens": 300, "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.output.type": "json", "gen_ai.response.finish_reasons": ["stop", "tool_calls"]}
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs  # not reported: not invented
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You help with weather."}]},
        {"role": "user", "name": "ada", "parts": [
            {"type": "text", "content": "Weather where this photo was taken?"},
            {"type": "blob", "modality": "image", "mime_type": "image/jpeg", "content": "/9j/4AAQSkZJRg=="},
            {"type": "uri", "modality": "image", "uri": "https://example.com/paris.png"},
            {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "UklGRiQAAABXQVZF"},
            {"type": "file", "modality": "document", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                                         "name": "get_weather", "arguments": {"location": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                                    "response": "rainy, 57°F"}]},
    ]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "{\"t\": 14}"}], "finish_reason": "stop"},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_2", "name": "get_weather",
                                         "arguments": {"location": "Lyon"}}], "finish_reason": "tool_call"},
    ]
    assert content(attrs, "gen_ai.tool.definitions") == [
        {"type": "function", "name": "get_weather", "description": "Current weather",
         "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]
    check_schema(attrs)


def test_deepseek_reasoning_content_and_cache_hit_tokens():
    request = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "9.11 or 9.8?"}]}
    response = {
        "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e", "object": "chat.completion", "created": 1,
        "model": "deepseek-reasoner", "system_fingerprint": "fp_a1b2",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "9.8 is larger.", "reasoning_content": "Compare 0.11 and 0.8…"}}],
        "usage": {"prompt_tokens": 13, "completion_tokens": 90, "total_tokens": 103, "prompt_cache_hit_tokens": 0,
                  "prompt_cache_miss_tokens": 13, "completion_tokens_details": {"reasoning_tokens": 80}},
    }
    _, attrs = one(raw_span("https://api.deepseek.com/chat/completions", request, response))
    assert picked(attrs, {"gen_ai.provider.name": 0, "gen_ai.usage.input_tokens": 0,
                          "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.output_tokens": 0,
                          "gen_ai.usage.reasoning.output_tokens": 0}) == {
        "gen_ai.provider.name": "deepseek", "gen_ai.usage.input_tokens": 13,
        "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.output_tokens": 90,
        "gen_ai.usage.reasoning.output_tokens": 80}
    assert content(attrs, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "reasoning", "content": "Compare 0.11 and 0.8…"}, {"type": "text", "content": "9.8 is larger."}]
    assert not [k for k in attrs if k.startswith("openai.")]


def test_openai_completions_legacy():
    request = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7,
               "temperature": 0, "seed": 1}
    response = {"id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": 1589478378,
                "model": "gpt-3.5-turbo-instruct",
                "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None,
                             "finish_reason": "length"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    span, attrs = one(raw_span("https://api.openai.com/v1/completions", request, response))
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert picked(attrs, {"gen_ai.operation.name": 0, "gen_ai.request.max_tokens": 0,
                          "gen_ai.request.temperature": 0, "gen_ai.response.finish_reasons": 0}) == {
        "gen_ai.operation.name": "text_completion", "gen_ai.request.max_tokens": 7,
        "gen_ai.request.temperature": 0.0, "gen_ai.response.finish_reasons": ["length"]}
    assert "openai.api.type" not in attrs  # defined for chat_completions and responses only
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Say this is a test"}]}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "\n\nThis is indeed a test"}],
         "finish_reason": "length"}]


# ---- OpenAI Responses API --------------------------------------------------------------------------

RESPONSES_REQUEST = {
    "model": "o4-mini", "instructions": "Use tools when needed.", "max_output_tokens": 2000,
    "conversation": "conv_689667905b048191b4740501625afd940c7533ace33a2dab",
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}},
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "What's in this file, and the weather?"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=",
                                      "detail": "auto"},
                                     {"type": "input_file", "file_id": "file-abc"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need the weather."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp\": 14}"},
    ],
    "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "strict": True,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
              {"type": "web_search"}],
    "service_tier": "flex",
}
RESPONSES_RESPONSE = {
    "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41", "object": "response", "created_at": 1741476777,
    "status": "completed", "error": None, "incomplete_details": None, "model": "o4-mini-2025-04-16",
    "conversation": {"id": "conv_689667905b048191b4740501625afd940c7533ace33a2dab"},
    "output": [
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "Answer now."}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "x"}},
        {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "{\"answer\": \"14C\"}", "annotations": []}]},
    ],
    "service_tier": "flex",
    "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 256}, "output_tokens": 552,
              "output_tokens_details": {"reasoning_tokens": 448}, "total_tokens": 880},
}


def test_openai_responses_api():
    span, attrs = one(raw_span("https://api.openai.com/v1/responses", RESPONSES_REQUEST, RESPONSES_RESPONSE))
    assert span.name == "chat o4-mini"
    expected = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "o4-mini",
        "gen_ai.request.max_tokens": 2000, "gen_ai.output.type": "json",
        "gen_ai.conversation.id": "conv_689667905b048191b4740501625afd940c7533ace33a2dab",
        "gen_ai.response.id": RESPONSES_RESPONSE["id"], "gen_ai.response.model": "o4-mini-2025-04-16",
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.usage.input_tokens": 328,
        "gen_ai.usage.cache_read.input_tokens": 256, "gen_ai.usage.output_tokens": 552,
        "gen_ai.usage.reasoning.output_tokens": 448, "openai.api.type": "responses",
        "openai.request.service_tier": "flex", "openai.response.service_tier": "flex",
    }
    assert picked(attrs, expected) == expected
    assert content(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "Use tools when needed."}]
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [
            {"type": "text", "content": "What's in this file, and the weather?"},
            {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="},
            {"type": "file", "modality": "document", "file_id": "file-abc"}]},
        {"role": "assistant", "parts": [
            {"type": "reasoning", "content": "Need the weather."},
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "{\"temp\": 14}"}]},
    ]
    [output] = content(attrs, "gen_ai.output.messages")  # one response, one message
    assert output["finish_reason"] == "stop"
    assert output["parts"][0] == {"type": "reasoning", "content": "Answer now."}
    assert output["parts"][1]["type"] == "server_tool_call" and output["parts"][1]["name"] == "web_search"
    assert output["parts"][2] == {"type": "text", "content": "{\"answer\": \"14C\"}"}
    assert [t["type"] for t in content(attrs, "gen_ai.tool.definitions")] == ["function", "web_search"]
    check_schema(attrs)


@pytest.mark.parametrize("status,details,finish,message_finish", [
    ("incomplete", {"reason": "max_output_tokens"}, "max_output_tokens", "length"),
    ("incomplete", {"reason": "content_filter"}, "content_filter", "content_filter"),
    ("failed", None, "failed", "error"),
])
def test_responses_that_did_not_complete(status, details, finish, message_finish):
    response = {**RESPONSES_RESPONSE, "status": status, "incomplete_details": details}
    _, attrs = one(raw_span("https://api.openai.com/v1/responses", {"model": "gpt-4.1", "input": "hi"}, response))
    assert attrs["gen_ai.response.finish_reasons"] == [finish]
    assert content(attrs, "gen_ai.output.messages")[0]["finish_reason"] == message_finish
    assert content(attrs, "gen_ai.input.messages") == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]


def test_responses_function_call_output_is_a_tool_call_message():
    response = {**RESPONSES_RESPONSE, "output": [
        {"type": "function_call", "id": "fc_9", "call_id": "call_9", "name": "lookup", "arguments": "{}",
         "status": "completed"}]}
    _, attrs = one(raw_span("https://api.openai.com/v1/responses", {"model": "gpt-4.1", "input": "hi"}, response))
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_9", "name": "lookup", "arguments": {}}],
         "finish_reason": "tool_call"}]


# ---- embeddings ------------------------------------------------------------------------------------

def test_openai_embeddings():
    request = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float", "dimensions": 3}
    response = {"object": "list", "model": "text-embedding-3-small",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]},
                         {"object": "embedding", "index": 1, "embedding": [0.3, 0.2, 0.1]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    span, attrs = one(raw_span("https://api.openai.com/v1/embeddings", request, response))
    assert span.name == "embeddings text-embedding-3-small"
    expected = {"gen_ai.operation.name": "embeddings", "gen_ai.request.encoding_formats": ["float"],
                "gen_ai.embeddings.dimension.count": 3, "gen_ai.usage.input_tokens": 2,
                "gen_ai.response.model": "text-embedding-3-small"}
    assert picked(attrs, expected) == expected
    assert "gen_ai.input.messages" not in attrs


# ---- Anthropic -----------------------------------------------------------------------------------------

def test_anthropic_tools_thinking_images_and_documents():
    request = {
        "model": "claude-opus-4-1", "max_tokens": 4096, "stream": False,
        "system": "You are a careful analyst.",
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [{"name": "get_stock_price", "description": "Price of a ticker",
                   "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/chart.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                "data": "JVBERi0xLjQ="}},
                {"type": "text", "text": "What is ACME trading at?"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should look it up.", "signature": "EqQBCgIYAhIM"},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_stock_price",
                 "input": {"ticker": "ACME"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                 "content": [{"type": "text", "text": "42.10 USD"}]}]},
        ],
    }
    response = {
        "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-opus-4-1-20250805",
        "content": [
            {"type": "thinking", "thinking": "The tool said 42.10.", "signature": "EqQBCgIYAhIM"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "ACME news"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "ACME trades at 42.10 USD."}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": None,
                  "cache_read_input_tokens": None, "output_tokens_details": {"thinking_tokens": 300}},
    }
    _, attrs = one(raw_span("https://api.anthropic.com/v1/messages", request, response,
                            request_headers={"anthropic-version": "2023-06-01"}))
    assert picked(attrs, {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0,
                          "gen_ai.usage.reasoning.output_tokens": 0, "gen_ai.usage.cache_read.input_tokens": 0}) == {
        "gen_ai.usage.input_tokens": 2095, "gen_ai.usage.output_tokens": 503,
        "gen_ai.usage.reasoning.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": None}
    assert content(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "You are a careful analyst."}]
    first, second, third = content(attrs, "gen_ai.input.messages")
    assert first == {"role": "user", "parts": [
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="},
        {"type": "uri", "modality": "image", "uri": "https://example.com/chart.jpg"},
        {"type": "blob", "modality": "document", "mime_type": "application/pdf", "content": "JVBERi0xLjQ="},
        {"type": "text", "content": "What is ACME trading at?"}]}
    assert second == {"role": "assistant", "parts": [
        {"type": "reasoning", "content": "I should look it up."},
        {"type": "tool_call", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_stock_price",
         "arguments": {"ticker": "ACME"}}]}
    assert third == {"role": "user", "parts": [
        {"type": "tool_call_response", "id": "toolu_01A09q90qw90lq917835lq9", "response": "42.10 USD"}]}
    [output] = content(attrs, "gen_ai.output.messages")
    assert [p["type"] for p in output["parts"]] == [
        "reasoning", "redacted_thinking", "server_tool_call", "server_tool_call_response", "text"]
    assert output["finish_reason"] == "stop"
    assert content(attrs, "gen_ai.tool.definitions") == [
        {"type": "function", "name": "get_stock_price", "description": "Price of a ticker",
         "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    check_schema(attrs)


@pytest.mark.parametrize("stop_reason,message_finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_call"),
    ("refusal", "content_filter"), ("pause_turn", "pause_turn"),
])
def test_anthropic_stop_reasons(stop_reason, message_finish):
    response = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                "content": [{"type": "text", "text": "…"}], "stop_reason": stop_reason,
                "usage": {"input_tokens": 1, "output_tokens": 1}}
    _, attrs = one(raw_span("https://api.anthropic.com/v1/messages",
                            {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}, response))
    assert attrs["gen_ai.response.finish_reasons"] == [stop_reason]  # the provider's words
    assert content(attrs, "gen_ai.output.messages")[0]["finish_reason"] == message_finish  # the schema's


def test_claude_on_bedrock_and_vertex_name_the_model_in_the_path():
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}
    span, attrs = one(raw_span(
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
        body, {**{"id": "msg_1", "type": "message", "role": "assistant", "content": [], "stop_reason": "end_turn",
                  "usage": {"input_tokens": 3, "output_tokens": 1}}}))
    assert attrs["gen_ai.provider.name"] == "aws.bedrock"
    assert span.name == "chat anthropic.claude-3-5-sonnet-20240620-v1:0"
    span, attrs = one(raw_span(
        "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
        "claude-sonnet-4-5@20250929:streamRawPredict", {**body, "anthropic_version": "vertex-2023-10-16"}, None))
    assert attrs["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4-5@20250929"
    assert attrs["gen_ai.request.stream"] is True


# ---- Gemini ------------------------------------------------------------------------------------------

GEMINI_REQUEST = {
    "systemInstruction": {"parts": [{"text": "You are a cat."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "Describe this and call the tool."},
                                   {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                                   {"fileData": {"mimeType": "video/mp4", "fileUri": "gs://bucket/cat.mp4"}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "meow", "args": {"times": 2}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "meow", "response": {"ok": True}}}]},
    ],
    "tools": [{"functionDeclarations": [{"name": "meow", "description": "Meows",
                                         "parameters": {"type": "OBJECT",
                                                        "properties": {"times": {"type": "INTEGER"}}}}]},
              {"googleSearch": {}}],
    "generationConfig": {"temperature": 0.9, "topP": 0.95, "topK": 64, "maxOutputTokens": 8192, "candidateCount": 1,
                         "stopSequences": ["STOP!"], "seed": 42, "responseMimeType": "application/json",
                         "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
}
GEMINI_RESPONSE = {
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "I looked at the cat.", "thought": True},
        {"text": "{\"cat\": \"orange\"}"},
        {"functionCall": {"name": "meow", "args": {"times": 1}}}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1200, "cachedContentTokenCount": 1000, "candidatesTokenCount": 40,
                      "thoughtsTokenCount": 160, "totalTokenCount": 1400,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}]},
    "modelVersion": "gemini-2.5-flash", "responseId": "mQ5SaKOIN4GInvgPx7GE4Ao",
}


def test_gemini_generate_content():
    span, attrs = one(raw_span(
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        GEMINI_REQUEST, GEMINI_RESPONSE))
    assert span.name == "generate_content gemini-2.5-flash"
    expected = {
        "gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "gemini-2.5-flash", "gen_ai.request.temperature": 0.9, "gen_ai.request.top_p": 0.95,
        "gen_ai.request.top_k": 64.0, "gen_ai.request.max_tokens": 8192, "gen_ai.request.stop_sequences": ["STOP!"],
        "gen_ai.request.seed": 42, "gen_ai.request.stream": False, "gen_ai.output.type": "json",
        "gen_ai.response.id": "mQ5SaKOIN4GInvgPx7GE4Ao", "gen_ai.response.model": "gemini-2.5-flash",
        "gen_ai.response.finish_reasons": ["STOP"],
        # promptTokenCount already holds the cached tokens; candidatesTokenCount leaves the thoughts out.
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200, "gen_ai.usage.reasoning.output_tokens": 160,
    }
    assert picked(attrs, expected) == expected
    assert "gen_ai.request.choice.count" not in attrs
    assert content(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "You are a cat."}]
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [
            {"type": "text", "content": "Describe this and call the tool."},
            {"type": "blob", "modality": "image", "mime_type": "image/jpeg", "content": "/9j/4AAQ"},
            {"type": "uri", "modality": "video", "mime_type": "video/mp4", "uri": "gs://bucket/cat.mp4"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "meow", "arguments": {"times": 2}}]},
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "meow", "response": {"ok": True}}]},
    ]
    assert content(attrs, "gen_ai.output.messages") == [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "reasoning", "content": "I looked at the cat."}, {"type": "text", "content": "{\"cat\": \"orange\"}"},
        {"type": "tool_call", "name": "meow", "arguments": {"times": 1}}]}]
    assert content(attrs, "gen_ai.tool.definitions") == [
        {"type": "function", "name": "meow", "description": "Meows",
         "parameters": {"type": "OBJECT", "properties": {"times": {"type": "INTEGER"}}}},
        {"type": "google_search"}]
    check_schema(attrs)


def test_gemini_on_vertex_streamed_and_snake_case():
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
               "generation_config": {"max_output_tokens": 5, "response_modalities": ["IMAGE", "TEXT"]}}
    span, attrs = one(raw_span(
        "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/publishers/google/"
        "models/gemini-2.5-flash-image:streamGenerateContent?alt=sse", request, "data: {}\n\n",
        reassembled={**GEMINI_RESPONSE, "candidates": [
            {"content": {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
             "finishReason": "STOP"}]}))
    assert span.name == "generate_content gemini-2.5-flash-image"
    assert picked(attrs, {"gen_ai.provider.name": 0, "gen_ai.request.stream": 0, "gen_ai.request.max_tokens": 0,
                          "gen_ai.output.type": 0}) == {
        "gen_ai.provider.name": "gcp.vertex_ai", "gen_ai.request.stream": True, "gen_ai.request.max_tokens": 5,
        "gen_ai.output.type": "image"}
    assert content(attrs, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="}]


@pytest.mark.parametrize("reason,message_finish", [
    ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"),
])
def test_gemini_finish_reasons(reason, message_finish):
    response = {**GEMINI_RESPONSE, "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason}]}
    _, attrs = one(raw_span("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
                            {"contents": "hi"}, response))
    assert attrs["gen_ai.response.finish_reasons"] == [reason]
    assert content(attrs, "gen_ai.output.messages")[0]["finish_reason"] == message_finish


def test_gemini_embed_content():
    _, attrs = one(raw_span(
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:embedContent",
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}},
        {"embedding": {"values": [0.1, 0.2, 0.3, 0.4]}}))
    assert picked(attrs, {"gen_ai.operation.name": 0, "gen_ai.request.model": 0,
                          "gen_ai.embeddings.dimension.count": 0}) == {
        "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "gemini-embedding-001",
        "gen_ai.embeddings.dimension.count": 4}


# ---- Ollama ------------------------------------------------------------------------------------------

def test_ollama_chat():
    request = {"model": "llama3.2", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is in this image?", "images": ["iVBORw0KGgo="]},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "tool_name": "get_time", "content": "12:00"}],
        "options": {"temperature": 0.7, "num_predict": 128, "top_k": 40, "seed": 3, "stop": ["\n\n"]},
        "format": "json", "stream": False, "think": True}
    response = {"model": "llama3.2", "created_at": "2025-10-01T10:00:00.000Z",
                "message": {"role": "assistant", "content": "{\"thing\": \"cat\"}", "thinking": "Looks like a cat."},
                "done": True, "done_reason": "stop", "total_duration": 5191566416, "prompt_eval_count": 26,
                "eval_count": 298}
    span, attrs = one(raw_span("http://localhost:11434/api/chat", request, response))
    assert span.name == "chat llama3.2"
    expected = {"gen_ai.provider.name": "ollama", "gen_ai.request.temperature": 0.7, "gen_ai.request.max_tokens": 128,
                "gen_ai.request.top_k": 40.0, "gen_ai.request.seed": 3, "gen_ai.request.stop_sequences": ["\n\n"],
                "gen_ai.request.stream": False, "gen_ai.output.type": "json", "gen_ai.response.model": "llama3.2",
                "gen_ai.response.finish_reasons": ["stop"], "gen_ai.usage.input_tokens": 26,
                "gen_ai.usage.output_tokens": 298}
    assert picked(attrs, expected) == expected
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is in this image?"},
                                   {"type": "blob", "modality": "image", "content": "iVBORw0KGgo="}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "get_time", "arguments": {}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "get_time", "response": "12:00"}]}]
    assert content(attrs, "gen_ai.output.messages") == [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "reasoning", "content": "Looks like a cat."}, {"type": "text", "content": "{\"thing\": \"cat\"}"}]}]
    check_schema(attrs)


def test_ollama_generate_streams_by_default():
    request = {"model": "qwen3:0.6b", "prompt": "Why is the sky blue?", "system": "Answer like a pirate."}
    final = {"model": "qwen3:0.6b", "created_at": "2025-10-01T10:00:00Z", "response": "Arr, scattering.",
             "done": True, "done_reason": "length", "prompt_eval_count": 12, "eval_count": 5}
    span, attrs = one(raw_span("http://127.0.0.1:11434/api/generate", request, "{}\n", reassembled=final,
                               response_headers={"content-type": "application/x-ndjson"}))
    assert span.name == "text_completion qwen3:0.6b"
    assert attrs["gen_ai.request.stream"] is True
    assert content(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "Answer like a pirate."}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Arr, scattering."}], "finish_reason": "length"}]


def test_ollama_embed():
    _, attrs = one(raw_span("http://localhost:11434/api/embed", {"model": "all-minilm", "input": ["a"]},
                            {"model": "all-minilm", "embeddings": [[0.1, 0.2]], "prompt_eval_count": 1}))
    assert picked(attrs, {"gen_ai.operation.name": 0, "gen_ai.embeddings.dimension.count": 0,
                          "gen_ai.usage.input_tokens": 0}) == {
        "gen_ai.operation.name": "embeddings", "gen_ai.embeddings.dimension.count": 2, "gen_ai.usage.input_tokens": 1}


# ---- providers -----------------------------------------------------------------------------------------

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
CHAT_OK = {"id": "x", "object": "chat.completion", "model": "m", "choices": []}


@pytest.mark.parametrize("url,headers,provider", [
    ("https://api.openai.com/v1/chat/completions", {}, "openai"),
    ("https://api.groq.com/openai/v1/chat/completions", {}, "groq"),
    ("https://api.mistral.ai/v1/chat/completions", {}, "mistral_ai"),
    ("https://api.x.ai/v1/chat/completions", {}, "x_ai"),
    ("https://api.deepseek.com/v1/chat/completions", {}, "deepseek"),
    ("https://api.perplexity.ai/chat/completions", {}, "perplexity"),
    ("https://openrouter.ai/api/v1/chat/completions", {}, "openrouter"),
    ("https://generativelanguage.googleapis.com/v1beta/openai/chat/completions", {}, "gcp.gemini"),
    ("https://my-res.openai.azure.com/openai/deployments/d1/chat/completions?api-version=2024-10-21", {},
     "azure.ai.openai"),
    ("https://my-res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview", {},
     "azure.ai.inference"),
    ("https://gateway.corp.example/openai/deployments/d1/chat/completions", {}, "azure.ai.openai"),
    ("http://localhost:11434/v1/chat/completions", {}, "ollama"),
    ("http://localhost:8000/v1/chat/completions", {}, "openai"),  # vLLM
    ("http://127.0.0.1:8080/v1/chat/completions", {}, "openai"),  # llama.cpp server
    ("https://llm-proxy.corp.example/v1/chat/completions", {"openai-organization": "org-1"}, "openai"),
    ("https://llm-proxy.corp.example/v1/chat/completions", {"x-groq-region": "us-east-1"}, "groq"),
])
def test_provider_from_host_path_and_headers(url, headers, provider):
    _, attrs = one(raw_span(url, CHAT, CHAT_OK, response_headers=headers))
    assert attrs["gen_ai.provider.name"] == provider


def test_anthropic_format_behind_a_proxy_is_anthropic():
    _, attrs = one(raw_span("https://llm-proxy.corp.example/anthropic/v1/messages",
                            {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}, None,
                            request_headers={"anthropic-version": "2023-06-01"}))
    assert attrs["gen_ai.provider.name"] == "anthropic"


def test_unknown_path_is_recognised_by_the_body_shapes():
    span, attrs = one(raw_span("https://gateway.corp.example/llm/invoke", CHAT,
                               {**CHAT_OK, "choices": [{"index": 0, "finish_reason": "stop",
                                                        "message": {"role": "assistant", "content": "yo"}}]}))
    assert attrs["llmtap.genai.api"] == "openai.chat_completions"
    assert span.name == "chat m"


# ---- output type -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,output_type", [
    ({"response_format": {"type": "json_object"}}, "json"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "json"),
    ({"response_format": {"type": "text"}}, "text"),
    ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "speech"),
    ({}, None),  # no output format requested: not recorded (the spec's condition)
])
def test_openai_output_type(extra, output_type):
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", {**CHAT, **extra}, CHAT_OK))
    assert attrs.get("gen_ai.output.type") == output_type


def test_anthropic_structured_output_is_json():
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [],
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}
    _, attrs = one(raw_span("https://api.anthropic.com/v1/messages", body, None))
    assert attrs["gen_ai.output.type"] == "json"


def test_openai_audio_output_transcript():
    response = {**CHAT_OK, "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "audio": {"id": "audio_1", "data": "UklGRg==", "expires_at": 1,
                                                         "transcript": "Hello there."}}}]}
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions",
                            {**CHAT, "modalities": ["text", "audio"]}, response))
    assert content(attrs, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello there."}]


def test_server_port_when_the_receiver_gave_none():
    span = raw_span("https://api.openai.com/v1/chat/completions", CHAT, CHAT_OK)
    _, attrs = one(span)
    assert attrs["server.port"] == 443 and json.loads(attrs["gen_ai.input.messages"])


@pytest.mark.parametrize("method,url", [
    ("POST", "https://api.openai.com/v1/threads/thread_abc123/messages"),  # Assistants: not a model call
    ("POST", "https://api.anthropic.com/v1/messages/count_tokens"),
    ("GET", "https://api.openai.com/v1/models"),
    ("GET", "https://api.openai.com/v1/chat/completions/chatcmpl-abc123"),  # a stored completion
])
def test_provider_calls_that_are_not_inference(method, url):
    request = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    _, attrs = one(raw_span(url, request if method == "POST" else None, {"input_tokens": 9}, method=method))
    assert attrs["llmtap.genai.error"].startswith("not a GenAI API call")
    assert "gen_ai.operation.name" not in attrs
