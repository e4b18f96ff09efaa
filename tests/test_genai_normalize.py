"""genai_semconv's normalizer: GenAI telemetry from other instrumentations → the v1.41.0 shape.

Every input below has the shape its instrumentation really sends (attribute names, value
types, JSON-in-strings, event bodies), taken from runs of opentelemetry-instrumentation-openai-v2
2.4b0, OpenLLMetry's opentelemetry-instrumentation-openai (0.62 today, the flat gen_ai.prompt.{i}.*
layout of its earlier releases) and openinference-instrumentation-openai 0.1.66 against the test
server, and from those libraries' sources. The expected outputs are the attributes that
llmtap's own mapping of the same call writes (docs/genai.md).
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otlpdata import any_value, attributes
from processor_support import build_chain
from llmtap.attributes import as_dict
from llmtap.component import Signal
from llmtap.processors import genai_semconv
from llmtap.processors.genai_semconv import Config
from llmtap.registry import Registry, default_registry
from llmtap.processors.genai_semconv.normalize import normalize_logs, normalize_span, provider_name

TRACE_ID, SPAN_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), bytes.fromhex("b7ad6b7169203331")
T0 = 1_717_000_000_000_000_000


def make_span(name: str, attrs: dict, events: list[tuple[str, dict]] = ()) -> Span:
    span = Span(name=name, kind=Span.SPAN_KIND_CLIENT, trace_id=TRACE_ID, span_id=SPAN_ID,
                start_time_unix_nano=T0, end_time_unix_nano=T0 + 900_000_000)
    span.attributes.extend(attributes(attrs))
    for event_name, event_attrs in events:
        event = span.events.add(name=event_name, time_unix_nano=T0 + 1000)
        event.attributes.extend(attributes(event_attrs))
    return span


def normalized(span: Span, **config) -> tuple[Span, dict]:
    normalize_span(span, Config(**config))
    return span, as_dict(span.attributes)


def content(attrs: dict, key: str):
    assert isinstance(attrs[key], str), f"{key} must leave as JSON text"
    return json.loads(attrs[key])


def text(t: str) -> dict:
    return {"type": "text", "content": t}


WEATHER_TOOL = {"type": "function", "name": "get_current_weather", "description": "Get the current weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}


# ---- spans that are not GenAI --------------------------------------------------------------------

def test_a_span_without_genai_attributes_is_left_byte_for_byte():
    span = make_span("GET /checkout", {"http.request.method": "GET", "url.path": "/checkout",
                                       "http.response.status_code": 200, "session.id": "s-42",
                                       "input.value": "{\"cart\": 3}"},
                     [("exception", {"exception.type": "ValueError", "exception.message": "bad cart"})])
    before = span.SerializeToString()
    normalize_span(span, Config())
    assert span.SerializeToString() == before


# ---- deprecated semantic conventions (opentelemetry-instrumentation-openai-v2, legacy mode) -------

V2_LEGACY_SPAN = {
    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai",
    "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 50, "gen_ai.request.seed": 7,
    "gen_ai.openai.request.response_format": "json_object",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.response.id": "chatcmpl-0adc2896ac2cdafbbf37f789", "gen_ai.openai.response.service_tier": "default",
    "gen_ai.usage.input_tokens": 173, "gen_ai.usage.output_tokens": 15,
}


def test_deprecated_names_are_renamed_and_their_originals_removed():
    span, attrs = normalized(make_span("chat gpt-4o-mini", V2_LEGACY_SPAN))
    assert attrs == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
        "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 50, "gen_ai.request.seed": 7,
        "gen_ai.output.type": "json",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.id": "chatcmpl-0adc2896ac2cdafbbf37f789", "openai.response.service_tier": "default",
        "gen_ai.usage.input_tokens": 173, "gen_ai.usage.output_tokens": 15,
    }
    assert span.name == "chat gpt-4o-mini"


def test_remove_originals_off_keeps_the_deprecated_names_beside_the_new_ones():
    _, attrs = normalized(make_span("chat gpt-4o-mini", V2_LEGACY_SPAN), remove_originals=False)
    assert attrs["gen_ai.system"] == "openai" and attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.openai.response.service_tier"] == attrs["openai.response.service_tier"] == "default"


def test_older_token_and_openai_names():
    _, attrs = normalized(make_span("chat gpt-4", {
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4", "gen_ai.usage.prompt_tokens": 42,
        "gen_ai.usage.completion_tokens": 7, "gen_ai.openai.request.seed": 100,
        "gen_ai.openai.request.service_tier": "auto", "gen_ai.openai.response.system_fingerprint": "fp_44709d6fcb"}))
    assert attrs == {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4",
                     "gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 7, "gen_ai.request.seed": 100,
                     "openai.request.service_tier": "auto", "openai.response.system_fingerprint": "fp_44709d6fcb"}


@pytest.mark.parametrize("legacy, provider", [
    ("openai", "openai"), ("anthropic", "anthropic"), ("vertex_ai", "gcp.vertex_ai"), ("gemini", "gcp.gemini"),
    ("gcp.gen_ai", "gcp.gen_ai"), ("az.ai.inference", "azure.ai.inference"), ("az.ai.openai", "azure.ai.openai"),
    ("aws.bedrock", "aws.bedrock"), ("cohere", "cohere"), ("ibm.watsonx.ai", "ibm.watsonx.ai"), ("xai", "x_ai"),
    ("mistral_ai", "mistral_ai"), ("deepseek", "deepseek"), ("groq", "groq"), ("perplexity", "perplexity"),
    # OpenLLMetry's LLMVendor names of its earlier releases
    ("OpenAI", "openai"), ("Anthropic", "anthropic"), ("MistralAI", "mistral_ai"), ("VertexAI", "gcp.vertex_ai"),
    ("Watsonx", "ibm.watsonx.ai"), ("AWS", "aws.bedrock"),
    # not a provider we know: kept as it came
    ("ollama", "ollama"), ("Langchain", "Langchain"),
])
def test_provider_names(legacy, provider):
    assert provider_name(legacy) == provider


def test_an_existing_v141_value_wins_unless_overwrite():
    attrs = {"gen_ai.system": "openai", "gen_ai.provider.name": "azure.ai.openai",
             "gen_ai.usage.input_tokens": 10, "gen_ai.usage.prompt_tokens": 12, "gen_ai.request.model": "gpt-4o"}
    _, kept = normalized(make_span("chat gpt-4o", attrs))
    assert (kept["gen_ai.provider.name"], kept["gen_ai.usage.input_tokens"]) == ("azure.ai.openai", 10)
    assert "gen_ai.system" not in kept and "gen_ai.usage.prompt_tokens" not in kept  # the fact is there once
    _, replaced = normalized(make_span("chat gpt-4o", attrs), overwrite=True)
    assert (replaced["gen_ai.provider.name"], replaced["gen_ai.usage.input_tokens"]) == ("openai", 12)


# ---- content on deprecated attributes and events --------------------------------------------------

PROMPT_JSON = json.dumps([{"role": "system", "content": "You are terse."},
                          {"role": "user", "content": "What is the capital of France?"}])
COMPLETION_JSON = json.dumps([{"role": "assistant", "content": "Paris."}])
EXPECTED_INPUT = [{"role": "system", "parts": [text("You are terse.")]},
                  {"role": "user", "parts": [text("What is the capital of France?")]}]
EXPECTED_OUTPUT = [{"role": "assistant", "parts": [text("Paris.")], "finish_reason": "stop"}]


def test_gen_ai_prompt_and_completion_span_attributes():
    _, attrs = normalized(make_span("chat gpt-4", {
        "gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4",
        "gen_ai.prompt": PROMPT_JSON, "gen_ai.completion": COMPLETION_JSON,
        "gen_ai.response.finish_reasons": ["stop"]}))
    assert content(attrs, "gen_ai.input.messages") == EXPECTED_INPUT
    assert content(attrs, "gen_ai.output.messages") == EXPECTED_OUTPUT
    assert "gen_ai.prompt" not in attrs and "gen_ai.completion" not in attrs


def test_content_prompt_and_completion_span_events():
    span, attrs = normalized(make_span("chat gpt-4", {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
                                                      "gen_ai.request.model": "gpt-4"},
                                       [("gen_ai.content.prompt", {"gen_ai.prompt": PROMPT_JSON}),
                                        ("gen_ai.content.completion", {"gen_ai.completion": COMPLETION_JSON})]))
    assert content(attrs, "gen_ai.input.messages") == EXPECTED_INPUT
    assert content(attrs, "gen_ai.output.messages") == EXPECTED_OUTPUT  # "stop": the schema requires a reason
    assert "gen_ai.response.finish_reasons" not in attrs  # but the provider's was never given
    assert list(span.events) == []


def test_structured_content_is_accepted_and_leaves_as_json_text():
    structured = make_span("chat gpt-4", {"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
                                          "gen_ai.request.model": "gpt-4"})
    structured.attributes.add(key="gen_ai.prompt").value.CopyFrom(any_value(json.loads(PROMPT_JSON)))
    structured.attributes.add(key="gen_ai.completion").value.CopyFrom(any_value(json.loads(COMPLETION_JSON)))
    _, attrs = normalized(structured)
    assert content(attrs, "gen_ai.input.messages") == EXPECTED_INPUT
    assert content(attrs, "gen_ai.output.messages") == EXPECTED_OUTPUT


def test_v141_content_given_structured_becomes_json_text():
    span = make_span("chat gpt-4o", {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                                     "gen_ai.request.model": "gpt-4o"})
    span.attributes.add(key="gen_ai.input.messages").value.CopyFrom(any_value(EXPECTED_INPUT))
    span.attributes.add(key="gen_ai.output.messages").value.CopyFrom(any_value(EXPECTED_OUTPUT))
    _, attrs = normalized(span)
    assert content(attrs, "gen_ai.input.messages") == EXPECTED_INPUT
    assert content(attrs, "gen_ai.output.messages") == EXPECTED_OUTPUT
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]  # from the output messages, as nothing else says


def test_per_message_span_events_fold_into_the_span():
    """The deprecated per-message events recorded as span events, their body as JSON in
    gen_ai.event.content (Azure AI Inference / Semantic Kernel do this where logs are not used)."""
    tool_calls = [{"id": "call_1", "type": "function",
                   "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Paris\"}"}}]
    events = [
        ("gen_ai.system.message", {"gen_ai.system": "az.ai.inference",
                                   "gen_ai.event.content": json.dumps({"content": "You are terse."})}),
        ("gen_ai.user.message", {"gen_ai.system": "az.ai.inference",
                                 "gen_ai.event.content": json.dumps({"content": "Weather in Paris?"})}),
        ("gen_ai.assistant.message", {"gen_ai.system": "az.ai.inference",
                                      "gen_ai.event.content": json.dumps({"tool_calls": tool_calls})}),
        ("gen_ai.tool.message", {"gen_ai.system": "az.ai.inference",
                                 "gen_ai.event.content": json.dumps({"content": "sunny", "id": "call_1"})}),
        ("gen_ai.choice", {"gen_ai.system": "az.ai.inference", "gen_ai.event.content": json.dumps(
            {"index": 0, "finish_reason": "stop", "message": {"content": "It is sunny in Paris."}})}),
    ]
    span, attrs = normalized(make_span("chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.system": "az.ai.inference",
                                                       "gen_ai.request.model": "gpt-4o"}, events))
    assert attrs["gen_ai.provider.name"] == "azure.ai.inference"
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "system", "parts": [text("You are terse.")]},
        {"role": "user", "parts": [text("Weather in Paris?")]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_current_weather",
                                         "arguments": {"location": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]},
    ]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [text("It is sunny in Paris.")], "finish_reason": "stop"}]
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert list(span.events) == []


def test_per_message_span_events_with_the_body_in_their_attributes():
    events = [("gen_ai.user.message", {"gen_ai.system": "openai", "content": "Hi"}),
              ("gen_ai.choice", {"gen_ai.system": "openai", "index": 0, "finish_reason": "length",
                                 "message": json.dumps({"role": "assistant", "content": "Hel"})})]
    _, attrs = normalized(make_span("chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
                                    events), remove_originals=False)
    assert content(attrs, "gen_ai.input.messages") == [{"role": "user", "parts": [text("Hi")]}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [text("Hel")], "finish_reason": "length"}]


def test_operation_details_as_a_span_event_lifts_its_attributes_onto_the_span():
    """The v1.41 event is meant for logs; as a span event its content belongs on the span."""
    span = make_span("chat", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"})
    event = span.events.add(name="gen_ai.client.inference.operation.details", time_unix_nano=T0)
    event.attributes.extend(attributes({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5,
                                        "gen_ai.input.messages": EXPECTED_INPUT,  # structured, as on events
                                        "gen_ai.output.messages": json.dumps(EXPECTED_OUTPUT)}))
    span, attrs = normalized(span)
    assert content(attrs, "gen_ai.input.messages") == EXPECTED_INPUT
    assert content(attrs, "gen_ai.output.messages") == EXPECTED_OUTPUT
    assert (attrs["gen_ai.request.model"], attrs["gen_ai.usage.input_tokens"]) == ("gpt-4o", 5)
    assert span.name == "chat gpt-4o" and list(span.events) == []


# ---- OpenLLMetry ---------------------------------------------------------------------------------

# opentelemetry-instrumentation-openai before 0.50: the flat layout, semconv_ai's LLM_* names.
OPENLLMETRY_FLAT_OPENAI = {
    "llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.max_tokens": 100, "gen_ai.request.temperature": 0.7, "llm.headers": "None",
    "llm.is_streaming": False, "gen_ai.openai.api_base": "https://api.openai.com/v1/",
    "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are a helpful assistant.",
    "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "What's the weather in Boston?",
    "gen_ai.prompt.2.role": "assistant",
    "gen_ai.prompt.2.tool_calls.0.id": "call_0", "gen_ai.prompt.2.tool_calls.0.name": "get_current_weather",
    "gen_ai.prompt.2.tool_calls.0.arguments": "{\"location\": \"Boston, MA\"}",
    "gen_ai.prompt.3.role": "tool", "gen_ai.prompt.3.content": "72F and sunny",
    "gen_ai.prompt.3.tool_call_id": "call_0",
    "gen_ai.prompt.4.role": "user", "gen_ai.prompt.4.content": json.dumps(
        [{"type": "text", "text": "And tomorrow, given this map?"},
         {"type": "image_url", "image_url": {"url": "https://example.com/map.png"}}]),
    "llm.request.functions.0.name": "get_current_weather",
    "llm.request.functions.0.description": "Get the current weather",
    "llm.request.functions.0.parameters": json.dumps(WEATHER_TOOL["parameters"]),
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-9xKq2",
    "llm.usage.total_tokens": 99, "gen_ai.usage.completion_tokens": 18, "gen_ai.usage.prompt_tokens": 81,
    "gen_ai.openai.system_fingerprint": "fp_0ba0d124f1",
    "gen_ai.completion.0.finish_reason": "tool_calls", "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.tool_calls.0.id": "call_1", "gen_ai.completion.0.tool_calls.0.name": "get_current_weather",
    "gen_ai.completion.0.tool_calls.0.arguments": "{\"location\": \"Boston, MA\", \"day\": \"tomorrow\"}",
}


def test_openllmetry_flat_openai_chat():
    span, attrs = normalized(make_span("openai.chat", OPENLLMETRY_FLAT_OPENAI))
    assert span.name == "chat gpt-4o-mini"
    messages = {k: content(attrs, k) for k in ("gen_ai.input.messages", "gen_ai.output.messages",
                                              "gen_ai.tool.definitions")}
    assert messages == {
        "gen_ai.input.messages": [
            {"role": "system", "parts": [text("You are a helpful assistant.")]},  # in the history, as OpenAI has it
            {"role": "user", "parts": [text("What's the weather in Boston?")]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_0", "name": "get_current_weather",
                                             "arguments": {"location": "Boston, MA"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_0", "response": "72F and sunny"}]},
            {"role": "user", "parts": [text("And tomorrow, given this map?"),
                                       {"type": "uri", "modality": "image", "uri": "https://example.com/map.png"}]},
        ],
        "gen_ai.output.messages": [
            {"role": "assistant", "finish_reason": "tool_call",
             "parts": [{"type": "tool_call", "id": "call_1", "name": "get_current_weather",
                        "arguments": {"location": "Boston, MA", "day": "tomorrow"}}]}],
        "gen_ai.tool.definitions": [WEATHER_TOOL],
    }
    rest = {k: v for k, v in attrs.items() if k not in messages}
    assert rest == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 100, "gen_ai.request.temperature": 0.7, "gen_ai.request.stream": False,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-9xKq2",
        "gen_ai.usage.input_tokens": 81, "gen_ai.usage.output_tokens": 18,
        "gen_ai.response.finish_reasons": ["tool_calls"],  # the provider's word on the span
        "openai.response.system_fingerprint": "fp_0ba0d124f1",
        "server.address": "api.openai.com", "server.port": 443,
        # no v1.41 counterpart: left as the instrumentation wrote them
        "llm.headers": "None", "llm.usage.total_tokens": 99,
    }


def test_openllmetry_flat_anthropic_system_goes_to_system_instructions():
    """opentelemetry-instrumentation-anthropic: the system prompt as prompt 0, block lists as JSON text."""
    _, attrs = normalized(make_span("anthropic.chat", {
        "gen_ai.system": "Anthropic", "llm.request.type": "chat",
        "gen_ai.request.model": "claude-3-5-sonnet-20241022", "gen_ai.request.max_tokens": 1024,
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are terse.",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": json.dumps([
            {"type": "text", "text": "Describe this image"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]),
        "gen_ai.response.id": "msg_01XFDUDYJgAACzvnptvVoYEL", "gen_ai.response.model": "claude-3-5-sonnet-20241022",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "A small red square.",
        "gen_ai.completion.0.finish_reason": "end_turn",
        "gen_ai.usage.prompt_tokens": 1520, "gen_ai.usage.completion_tokens": 12, "llm.usage.total_tokens": 1532,
        "gen_ai.usage.cache_read_input_tokens": 1024, "gen_ai.usage.cache_creation_input_tokens": 0,
    }))
    assert content(attrs, "gen_ai.system_instructions") == [text("You are terse.")]
    assert content(attrs, "gen_ai.input.messages") == [{"role": "user", "parts": [
        text("Describe this image"),
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="}]}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [text("A small red square.")], "finish_reason": "stop"}]
    assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert (attrs["gen_ai.usage.cache_read.input_tokens"], attrs["gen_ai.usage.cache_creation.input_tokens"]) == (1024, 0)


def test_openllmetry_text_completion():
    span, attrs = normalized(make_span("openai.completion", {
        "llm.request.type": "completion", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-3.5-turbo-instruct",
        "gen_ai.prompt.0.user": "Say this is a test",
        "gen_ai.completion.0.content": "This is a test.", "gen_ai.completion.0.finish_reason": "length",
        "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 7}))
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert content(attrs, "gen_ai.input.messages") == [{"role": "user", "parts": [text("Say this is a test")]}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [text("This is a test.")], "finish_reason": "length"}]


# opentelemetry-instrumentation-openai 0.62: v1.41 content already, plus its own extensions.
OPENLLMETRY_062 = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.max_tokens": 50, "gen_ai.request.temperature": 0.2, "gen_ai.is_streaming": True,
    "gen_ai.openai.api_base": "https://localhost:43483/v1/",
    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"content": "Hi", "type": "text"}]}]),
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-55dc20a4455fc886c33d797e",
    "gen_ai.response.finish_reasons": ["stop"], "gen_ai.openai.response.system_fingerprint": "fp_6b86b273ff",
    "openai.response.service_tier": "default", "gen_ai.usage.total_tokens": 21, "gen_ai.usage.output_tokens": 15,
    "gen_ai.usage.input_tokens": 6, "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.reasoning_tokens": 0,
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"content": "Hello", "type": "text"}],
                                           "finish_reason": "stop"}]),
}


def test_openllmetry_current_release_keeps_its_content_and_gets_the_spec_name():
    span, attrs = normalized(make_span("openai.chat", OPENLLMETRY_062))
    assert span.name == "chat gpt-4o-mini"
    assert attrs["gen_ai.input.messages"] == OPENLLMETRY_062["gen_ai.input.messages"]  # already v1.41: untouched
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["openai.response.system_fingerprint"] == "fp_6b86b273ff"
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 0
    assert (attrs["server.address"], attrs["server.port"]) == ("localhost", 43483)
    for gone in ("gen_ai.is_streaming", "gen_ai.openai.api_base", "gen_ai.openai.response.system_fingerprint",
                 "gen_ai.usage.reasoning_tokens"):
        assert gone not in attrs


# ---- OpenInference ------------------------------------------------------------------------------

# openinference-instrumentation-openai 0.1.66, a chat completion with a tool round trip and an image.
OPENINFERENCE_CHAT = {
    "llm.system": "openai",
    "input.value": json.dumps({"model": "gpt-4o-mini", "messages": ["…"], "temperature": 0.2}),
    "input.mime_type": "application/json",
    "output.value": json.dumps({"id": "chatcmpl-b6d8f62cfacdc5b50560b667", "object": "chat.completion",
                                "model": "gpt-4o-mini-2024-07-18", "choices": ["…"]}),
    "output.mime_type": "application/json",
    "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {
        "name": WEATHER_TOOL["name"], "description": WEATHER_TOOL["description"],
        "parameters": WEATHER_TOOL["parameters"]}}),
    "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini", "max_tokens": 50, "seed": 7,
                                             "temperature": 0.2, "stop": ["\n\n"]}),
    "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "You are terse.",
    "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "Weather in Paris?",
    "llm.input_messages.2.message.role": "assistant",
    "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "get_current_weather",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": "{\"location\": \"Paris\"}",
    "llm.input_messages.3.message.role": "tool", "llm.input_messages.3.message.tool_call_id": "call_1",
    "llm.input_messages.3.message.content": "sunny, 21C",
    "llm.input_messages.4.message.role": "user",
    "llm.input_messages.4.message.contents.0.message_content.type": "text",
    "llm.input_messages.4.message.contents.0.message_content.text": "Summarize it",
    "llm.input_messages.4.message.contents.1.message_content.type": "image",
    "llm.input_messages.4.message.contents.1.message_content.image.image.url": "https://example.com/a.png",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.token_count.total": 188, "llm.token_count.prompt": 173, "llm.token_count.completion": 15,
    "llm.token_count.prompt_details.cache_read": 0, "llm.token_count.completion_details.reasoning": 0,
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "It is sunny.",
    "llm.finish_reason": "stop",
    "openinference.span.kind": "LLM",
    "session.id": "conv-7",
}


def test_openinference_chat():
    span, attrs = normalized(make_span("ChatCompletion", OPENINFERENCE_CHAT))
    assert span.name == "chat gpt-4o-mini"
    messages = {k: content(attrs, k) for k in ("gen_ai.input.messages", "gen_ai.output.messages",
                                              "gen_ai.tool.definitions")}
    assert messages == {
        "gen_ai.input.messages": [
            {"role": "system", "parts": [text("You are terse.")]},
            {"role": "user", "parts": [text("Weather in Paris?")]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_current_weather",
                                             "arguments": {"location": "Paris"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 21C"}]},
            {"role": "user", "parts": [text("Summarize it"),
                                       {"type": "uri", "modality": "image", "uri": "https://example.com/a.png"}]},
        ],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [text("It is sunny.")], "finish_reason": "stop"}],
        "gen_ai.tool.definitions": [WEATHER_TOOL],
    }
    rest = {k: v for k, v in attrs.items() if k not in messages}
    assert rest == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",  # the request's, from the invocation parameters
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-b6d8f62cfacdc5b50560b667",
        "gen_ai.request.max_tokens": 50, "gen_ai.request.seed": 7, "gen_ai.request.temperature": 0.2,
        "gen_ai.request.stop_sequences": ["\n\n"],
        "gen_ai.usage.input_tokens": 173, "gen_ai.usage.output_tokens": 15,
        "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.conversation.id": "conv-7",
        "llm.token_count.total": 188,  # no v1.41 counterpart
    }


@pytest.mark.parametrize("provider, system, expected", [
    ("openai", "openai", "openai"), ("azure", "openai", "azure.ai.openai"), ("google", "vertexai", "gcp.vertex_ai"),
    ("aws", "anthropic", "aws.bedrock"), ("anthropic", "anthropic", "anthropic"), ("xai", "openai", "x_ai"),
    (None, "mistralai", "mistral_ai"),
])
def test_openinference_provider_and_system(provider, system, expected):
    attrs = {"openinference.span.kind": "LLM", "llm.system": system, "llm.model_name": "m"}
    if provider:
        attrs["llm.provider"] = provider
    assert normalized(make_span("ChatCompletion", attrs))[1]["gen_ai.provider.name"] == expected


def test_openinference_anthropic_tool_result_and_system():
    """openinference-instrumentation-anthropic: system as message 0, a tool result as a user turn."""
    _, attrs = normalized(make_span("Messages", {
        "openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.system": "anthropic",
        "llm.model_name": "claude-sonnet-4-20250514",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.tool_call_id": "toolu_01",
        "llm.input_messages.1.message.content": "15 degrees",
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "It is 15 degrees.",
        "llm.token_count.prompt": 410, "llm.token_count.completion": 9,
        "llm.token_count.prompt_details.cache_write": 300}))
    assert content(attrs, "gen_ai.system_instructions") == [text("Be brief.")]
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "toolu_01", "response": "15 degrees"}]}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [text("It is 15 degrees.")], "finish_reason": "stop"}]
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 300
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "claude-sonnet-4-20250514"


def test_openinference_content_lists_with_an_inline_image_and_reasoning():
    _, attrs = normalized(make_span("ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "o4-mini",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "image",
        "llm.input_messages.0.message.contents.0.message_content.image.image.url": "data:image/png;base64,iVBORw0KGgo=",
        "llm.input_messages.0.message.contents.1.message_content.type": "text",
        "llm.input_messages.0.message.contents.1.message_content.text": "What is this?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.contents.0.message_content.type": "reasoning",
        "llm.output_messages.0.message.contents.0.message_content.text": "A 1x1 PNG header.",
        "llm.output_messages.0.message.contents.1.message_content.type": "text",
        "llm.output_messages.0.message.contents.1.message_content.text": "A tiny image.",
        "llm.finish_reason": "stop"}))
    assert content(attrs, "gen_ai.input.messages") == [{"role": "user", "parts": [
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="}, text("What is this?")]}]
    assert content(attrs, "gen_ai.output.messages") == [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "reasoning", "content": "A 1x1 PNG header."}, text("A tiny image.")]}]


def test_openinference_embedding_and_chain_spans():
    span, attrs = normalized(make_span("CreateEmbeddingResponse", {
        "openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
        "llm.system": "openai", "llm.token_count.prompt": 8, "llm.token_count.total": 8}))
    assert span.name == "embeddings text-embedding-3-small"
    assert attrs["gen_ai.operation.name"] == "embeddings" and attrs["gen_ai.usage.input_tokens"] == 8
    chain, chain_attrs = normalized(make_span("RunnableSequence", {"openinference.span.kind": "CHAIN",
                                                                   "input.value": "hello", "output.value": "hi"}))
    assert chain.name == "RunnableSequence"  # no GenAI operation: nothing to translate, nothing removed
    assert chain_attrs == {"openinference.span.kind": "CHAIN", "input.value": "hello", "output.value": "hi"}


def test_openinference_tool_and_agent_spans():
    tool, attrs = normalized(make_span("get_weather", {
        "openinference.span.kind": "TOOL", "tool.name": "get_weather", "tool.description": "Current weather",
        "tool.parameters": json.dumps(WEATHER_TOOL["parameters"]), "input.value": "{\"location\": \"Paris\"}",
        "output.value": "sunny, 21C"}))
    assert tool.name == "execute_tool get_weather"
    assert attrs == {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                     "gen_ai.tool.description": "Current weather", "gen_ai.tool.call.arguments": "{\"location\":\"Paris\"}",
                     "gen_ai.tool.call.result": "sunny, 21C",
                     "tool.parameters": json.dumps(WEATHER_TOOL["parameters"])}  # no v1.41 counterpart
    agent, attrs = normalized(make_span("Agent.run", {"openinference.span.kind": "AGENT", "agent.name": "planner",
                                                      "session.id": "conv-9"}))
    assert agent.name == "invoke_agent planner"
    assert attrs == {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                     "gen_ai.conversation.id": "conv-9"}


@pytest.mark.parametrize("source", [V2_LEGACY_SPAN, OPENLLMETRY_FLAT_OPENAI, OPENLLMETRY_062, OPENINFERENCE_CHAT])
@pytest.mark.parametrize("remove_originals", [True, False])
def test_normalizing_twice_changes_nothing_more(source, remove_originals):
    """A span normalized once is in the current conventions: a second llmtap (split placement,
    a chain of collectors) leaves it as it is."""
    once, _ = normalized(make_span("llm", source), remove_originals=remove_originals)
    twice, _ = normalized(Span.FromString(once.SerializeToString()), remove_originals=remove_originals)
    assert twice == once


# ---- remove_originals, overwrite, capture_content --------------------------------------------------

def test_remove_originals_off_keeps_every_vendor_attribute():
    _, attrs = normalized(make_span("ChatCompletion", OPENINFERENCE_CHAT), remove_originals=False)
    assert {k: attrs[k] for k in OPENINFERENCE_CHAT} == OPENINFERENCE_CHAT
    assert content(attrs, "gen_ai.output.messages")[0]["parts"] == [text("It is sunny.")]


def test_overwrite_lets_translated_content_replace_what_the_span_has():
    attrs = dict(OPENLLMETRY_FLAT_OPENAI)
    attrs["gen_ai.input.messages"] = json.dumps([{"role": "user", "parts": [text("stale")]}])
    _, kept = normalized(make_span("openai.chat", attrs))
    assert content(kept, "gen_ai.input.messages") == [{"role": "user", "parts": [text("stale")]}]
    _, replaced = normalized(make_span("openai.chat", attrs), overwrite=True)
    assert len(content(replaced, "gen_ai.input.messages")) == 5


def test_capture_content_none_drops_every_piece_of_content():
    events = [("gen_ai.content.prompt", {"gen_ai.prompt": PROMPT_JSON}),
              ("gen_ai.choice", {"gen_ai.event.content": json.dumps({"index": 0, "message": {"content": "x"}})})]
    for source in (OPENLLMETRY_FLAT_OPENAI, OPENINFERENCE_CHAT, OPENLLMETRY_062):
        span, attrs = normalized(make_span("llm", source, events), capture_content="none", remove_originals=False)
        leaked = [k for k in attrs if k.startswith(("gen_ai.prompt", "gen_ai.completion", "llm.input_messages",
                                                    "llm.output_messages", "llm.tools", "llm.request.functions"))
                  or k in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                           "gen_ai.tool.definitions", "input.value", "output.value")]
        assert leaked == [] and list(span.events) == []
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini" and attrs["gen_ai.usage.output_tokens"] in (15, 18)
        assert "Paris" not in span.SerializeToString().decode("utf-8", "replace")


# ---- bad input --------------------------------------------------------------------------------------

def test_content_that_should_be_json_and_is_not_is_kept_and_marked():
    span, attrs = normalized(make_span("chat gpt-4o", {
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [", "gen_ai.usage.prompt_tokens": 3}))
    assert attrs["gen_ai.input.messages"] == "[{\"role\": \"user\", \"parts\": ["
    assert attrs["llmtap.genai.error"] == "gen_ai.input.messages is not JSON"
    assert attrs["gen_ai.usage.input_tokens"] == 3  # the rest of the span is normalized all the same


def test_python_repr_in_gen_ai_prompt_is_kept_as_text_and_marked():
    _, attrs = normalized(make_span("chat gpt-4", {
        "gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4",
        "gen_ai.prompt": "[{'role': 'user', 'content': 'What is the capital of France?'}]"}))
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [text("[{'role': 'user', 'content': 'What is the capital of France?'}]")]}]
    assert attrs["llmtap.genai.error"] == "gen_ai.prompt is not JSON"


def test_bad_openinference_json_is_marked_and_the_rest_normalized():
    attrs = dict(OPENINFERENCE_CHAT)
    attrs["llm.invocation_parameters"] = "{\"model\": \"gpt-4o-mini\", "
    attrs["llm.tools.0.tool.json_schema"] = "{\"type\": \"function\""
    attrs["output.value"] = "not json at all"
    _, out = normalized(make_span("ChatCompletion", attrs))
    assert out["llmtap.genai.error"] == "llm.invocation_parameters is not JSON; llm.tools.0 is not JSON"
    assert out["gen_ai.request.model"] == "gpt-4o-mini-2024-07-18"  # llm.model_name is all that is left
    assert "gen_ai.tool.definitions" not in out and "gen_ai.response.id" not in out
    assert content(out, "gen_ai.output.messages")[0]["parts"] == [text("It is sunny.")]


@pytest.mark.parametrize("attrs", [
    {"gen_ai.prompt.0.role": 3, "gen_ai.prompt.0.content": ["a", 1], "gen_ai.prompt.x.role": "user"},
    {"llm.input_messages.0.message": "flat value where a tree is expected",
     "llm.input_messages.0.message.role": "user", "openinference.span.kind": "LLM"},
    {"gen_ai.completion.0.tool_calls.0": "x", "gen_ai.completion.0.tool_calls.0.name": 5},
    {"gen_ai.usage.prompt_tokens": "many", "gen_ai.system": 7, "llm.chat.stop_sequences": "[\"a\", 2]"},
])
def test_odd_values_never_raise(attrs):
    span, out = normalized(make_span("odd", attrs))
    assert "llmtap.genai.error" not in out or not out["llmtap.genai.error"].startswith("normalize:")


def test_values_that_do_not_convert_stay_where_they_were():
    attrs = {"gen_ai.usage.prompt_tokens": "many", "gen_ai.system": 7, "llm.chat.stop_sequences": "[\"a\", 2]"}
    assert normalized(make_span("odd", attrs))[1] == attrs


# ---- logs: the deprecated per-message events ----------------------------------------------------------

def legacy_logs(records: list[tuple[str, dict | None, bytes]], *, by_attribute: bool = False,
                attrs: dict | None = None) -> ExportLogsServiceRequest:
    """Log records as opentelemetry-instrumentation-openai-v2 (legacy mode) emits them:
    event name, attribute gen_ai.system, body a map; `span_id` b"" for no span context."""
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    scope.scope.name = "opentelemetry.instrumentation.openai_v2"
    for i, (name, body, span_id) in enumerate(records):
        record = scope.log_records.add(observed_time_unix_nano=T0 + i, trace_id=TRACE_ID if span_id else b"",
                                       span_id=span_id)
        if by_attribute:
            record.attributes.extend(attributes({"event.name": name}))
        else:
            record.event_name = name
        record.attributes.extend(attributes(attrs or {"gen_ai.system": "openai"}))
        if body is not None:
            record.body.CopyFrom(any_value(body))
    return request


def records_of(request: ExportLogsServiceRequest) -> list:
    return [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]


V2_LEGACY_EVENTS = [
    ("gen_ai.system.message", {"content": "You are terse."}),
    ("gen_ai.user.message", {"content": "What is the weather in Paris?"}),
    ("gen_ai.assistant.message", {"tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}),
    ("gen_ai.tool.message", {"content": "sunny, 21C", "id": "call_1"}),
    ("gen_ai.user.message", {"content": [{"type": "text", "text": "Summarize it"},
                                         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}),
    ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Sunny."}}),
]
V2_LEGACY_MESSAGES = [
    {"role": "system", "parts": [text("You are terse.")]},
    {"role": "user", "parts": [text("What is the weather in Paris?")]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                     "arguments": {"city": "Paris"}}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 21C"}]},
    {"role": "user", "parts": [text("Summarize it"), {"type": "uri", "modality": "image",
                                                      "uri": "https://example.com/a.png"}]},
]


def test_the_events_of_one_call_become_one_operation_details_record():
    request = legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS])
    normalize_logs(request, Config())
    [details] = records_of(request)
    assert details.event_name == "gen_ai.client.inference.operation.details"
    assert (details.trace_id, details.span_id) == (TRACE_ID, SPAN_ID)
    assert details.observed_time_unix_nano == T0 + 5
    assert as_dict(details.attributes) == {  # structured values, as the spec records content on events
        "gen_ai.provider.name": "openai",
        "gen_ai.input.messages": V2_LEGACY_MESSAGES,
        "gen_ai.output.messages": [{"role": "assistant", "parts": [text("Sunny.")], "finish_reason": "stop"}],
        "gen_ai.response.finish_reasons": ["stop"],
    }


def test_remove_originals_off_keeps_the_per_message_records():
    request = legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS])
    normalize_logs(request, Config(remove_originals=False))
    names = [r.event_name for r in records_of(request)]
    assert names == [n for n, _ in V2_LEGACY_EVENTS] + ["gen_ai.client.inference.operation.details"]


def test_calls_are_told_apart_by_span_and_without_span_context_by_order():
    other = bytes.fromhex("00f067aa0ba902b7")
    calls = [("gen_ai.user.message", {"content": "one"}, SPAN_ID), ("gen_ai.user.message", {"content": "two"}, other),
             ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "1"}}, SPAN_ID),
             ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "2"}}, other),
             # no span context at all: a run of messages, then its choices, then the next call
             ("gen_ai.user.message", {"content": "three"}, b""),
             ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "3"}}, b""),
             ("gen_ai.user.message", {"content": "four"}, b""),
             ("gen_ai.choice", {"index": 0, "finish_reason": "length", "message": {"content": "4"}}, b"")]
    request = legacy_logs(calls)
    normalize_logs(request, Config())
    pairs = [(a["gen_ai.input.messages"][0]["parts"][0]["content"], a["gen_ai.output.messages"][0]["parts"][0]["content"])
             for a in map(lambda r: as_dict(r.attributes), records_of(request))]
    assert pairs == [("one", "1"), ("two", "2"), ("three", "3"), ("four", "4")]


def test_a_choice_without_span_context_joins_the_call_before_it():
    """OpenLLMetry (use_attributes=False) emits a stream's gen_ai.choice after the span ended,
    without trace context, and its choice body has no role."""
    request = legacy_logs([("gen_ai.user.message", {"content": "Hi"}, SPAN_ID),
                           ("gen_ai.choice", {"index": 0, "message": {"content": "Hello"}, "finish_reason": "stop"}, b"")],
                          attrs={"gen_ai.provider.name": "openai"})
    normalize_logs(request, Config())
    [details] = records_of(request)
    assert details.span_id == SPAN_ID
    assert as_dict(details.attributes)["gen_ai.output.messages"] == [
        {"role": "assistant", "parts": [text("Hello")], "finish_reason": "stop"}]


def test_a_call_split_across_export_requests_gives_one_partial_record_per_request():
    """Grouping is per request (the processor keeps no state between requests): a batch that
    ended between a call's messages and its choice yields two records with the call's context."""
    first = legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS[:-1]])
    second = legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS[-1:]])
    for request in (first, second):
        normalize_logs(request, Config())
    [inputs], [outputs] = records_of(first), records_of(second)
    assert inputs.span_id == outputs.span_id == SPAN_ID
    assert "gen_ai.output.messages" not in as_dict(inputs.attributes)
    assert "gen_ai.input.messages" not in as_dict(outputs.attributes)


def test_event_name_as_an_attribute_is_understood_and_kept_in_that_form():
    request = legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS[:2]], by_attribute=True)
    normalize_logs(request, Config())
    [details] = records_of(request)
    assert as_dict(details.attributes)["event.name"] == "gen_ai.client.inference.operation.details"


def test_logs_with_capture_content_none_keep_no_content():
    request = legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS])
    normalize_logs(request, Config(capture_content="none", remove_originals=False))
    [details] = records_of(request)  # the per-message records are content: gone whatever remove_originals says
    assert as_dict(details.attributes) == {"gen_ai.provider.name": "openai", "gen_ai.response.finish_reasons": ["stop"]}


def test_v141_details_records_get_renames_and_structured_content():
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add(
        event_name="gen_ai.client.inference.operation.details", span_id=SPAN_ID, trace_id=TRACE_ID)
    record.attributes.extend(attributes({"gen_ai.system": "openai", "gen_ai.operation.name": "chat",
                                         "gen_ai.input.messages": json.dumps(EXPECTED_INPUT),
                                         "gen_ai.output.messages": "{broken"}))
    normalize_logs(request, Config())
    attrs = as_dict(record.attributes)
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.input.messages"] == EXPECTED_INPUT
    assert attrs["gen_ai.output.messages"] == "{broken" and attrs["llmtap.genai.error"] == "gen_ai.output.messages is not JSON"


def test_odd_log_bodies_never_raise():
    request = legacy_logs([("gen_ai.user.message", None, SPAN_ID), ("gen_ai.user.message", "plain text", SPAN_ID),
                           ("gen_ai.assistant.message", [1, 2], SPAN_ID),
                           ("gen_ai.choice", {"index": "x", "message": "y", "tool_calls": 3}, SPAN_ID)])
    normalize_logs(request, Config())
    [details] = records_of(request)
    attrs = as_dict(details.attributes)
    assert attrs["gen_ai.input.messages"][1] == {"role": "user", "parts": [text("plain text")]}
    assert attrs["gen_ai.output.messages"] == [{"role": "assistant", "parts": [text("y")], "finish_reason": "stop"}]


# ---- through the processor ----------------------------------------------------------------------------

async def through_genai_semconv(signal: Signal, request, config: dict):
    registry = Registry([*default_registry().all(), genai_semconv.factory])
    [processor], sink = build_chain(signal, ("genai_semconv", config), registry=registry)
    await processor.consume(signal, request)
    [out] = sink.received
    return out


async def test_the_genai_semconv_processor_normalizes_and_passes_the_rest_on():
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.add().CopyFrom(make_span("ChatCompletion", OPENINFERENCE_CHAT))
    spans.add().CopyFrom(make_span("GET /healthz", {"http.request.method": "GET", "url.path": "/healthz"}))
    out = await through_genai_semconv(Signal.TRACES, request, {})
    [llm, other] = out.resource_spans[0].scope_spans[0].spans
    assert llm.name == "chat gpt-4o-mini" and as_dict(llm.attributes)["gen_ai.provider.name"] == "openai"
    assert other == spans[1]


async def test_the_genai_semconv_processor_turns_legacy_log_events_into_details():
    out = await through_genai_semconv(Signal.LOGS, legacy_logs([(n, b, SPAN_ID) for n, b in V2_LEGACY_EVENTS]), {})
    assert [r.event_name for r in records_of(out)] == ["gen_ai.client.inference.operation.details"]
