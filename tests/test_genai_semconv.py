"""genai_semconv, the processor: raw exchanges in, v1.41.0 GenAI spans out.

The exchanges here are the bytes the official SDKs send (captured through an
httpx.MockTransport) or, where no SDK is at hand, the bodies the providers'
API references show. Each test states the span the receiver would hand over and
the span a user should get. Per-API value tables are in
test_genai_semconv_exchange.py; the message converters in
test_genai_semconv_messages.py. This module also holds their shared helpers.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap import attributes
from llmtap.component import Signal
from llmtap.configtypes import decode_config
from llmtap.processors import genai_semconv
from llmtap.processors.genai_semconv import versions
from processor_support import build_chain

# ---- shared helpers ----------------------------------------------------------------------------


def run_chain(signal: Signal, data, *components: tuple[str, dict]):
    """processor_support.run_chain, with genai_semconv (and sse_reassembly, once it exists) registered
    even before the registry lists them."""
    import asyncio
    import importlib

    from llmtap.component import Host, Kind
    from llmtap.registry import default_registry

    class NoExtensions(Host):
        def extension(self, id):
            raise KeyError(id)

    registry = default_registry()
    for type_, _ in components:
        if registry.get(Kind.PROCESSOR, type_) is None:
            registry.add(importlib.import_module(f"llmtap.processors.{type_}").factory)
    chain, sink = build_chain(signal, *components, registry=registry)

    async def go():
        for p in chain:
            await p.start(NoExtensions())
        await chain[0].consume(signal, data)
        for p in chain:
            await p.shutdown()

    asyncio.run(go())
    [out] = sink.received
    return out


def raw_span(url: str, request: Any = None, response: Any = None, *, status: int = 200, method: str = "POST",
             request_headers: dict | None = None, response_headers: dict | None = None,
             reassembled: Any = None, extra: dict | None = None) -> Span:
    """A span as receiver/ebpf/span.py writes it for one exchange. Bodies given as dicts or lists are
    JSON-encoded; strings and bytes are taken as the captured text."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    span = Span(name=f"{method} {parts.path}", kind=Span.SPAN_KIND_CLIENT,
                trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=1, end_time_unix_nano=2)
    attrs: dict[str, Any] = {
        "http.request.method": method, "url.full": url, "server.address": parts.hostname,
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        "network.protocol.name": "http", "http.response.status_code": status,
    }
    for name, values in {"content-type": ["application/json"], **(request_headers or {})}.items():
        attrs[f"llmtap.http.request.header.{name}"] = values if isinstance(values, list) else [values]
    for name, values in {"content-type": ["application/json"], **(response_headers or {})}.items():
        attrs[f"llmtap.http.response.header.{name}"] = values if isinstance(values, list) else [values]
    for side, body in (("request", request), ("response", response)):
        if body is not None:
            text = json.dumps(body) if isinstance(body, (dict, list)) else body
            attrs[f"llmtap.http.{side}.body"] = text
            attrs[f"llmtap.http.{side}.body.size"] = len(text.encode() if isinstance(text, str) else text)
    if reassembled is not None:
        attrs["llmtap.http.response.reassembled"] = json.dumps(reassembled)
    if status >= 400:
        span.status.code = Status.STATUS_CODE_ERROR
        attrs["error.type"] = str(status)
    attrs.update(extra or {})
    attributes.add(span.attributes, attrs)
    return span


def process(*spans: Span, **config) -> list[Span]:
    """The spans through a genai_semconv processor built from `config` as the service builds it."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span in spans:
        scope.spans.add().CopyFrom(span)
    out = run_chain(Signal.TRACES, request, ("genai_semconv", config))
    return [s for rs in out.resource_spans for ss in rs.scope_spans for s in ss.spans]


def one(span: Span, **config) -> tuple[Span, dict[str, Any]]:
    [out] = process(span, **config)
    return out, attributes.as_dict(out.attributes)


def content(attrs: dict, key: str) -> Any:
    return json.loads(attrs[key])


_PART_REQUIRED = {
    "text": ("content",), "reasoning": ("content",), "tool_call": ("name",), "tool_call_response": ("response",),
    "blob": ("modality", "content"), "uri": ("modality", "uri"), "file": ("modality", "file_id"),
    "server_tool_call": ("name", "server_tool_call"), "server_tool_call_response": ("server_tool_call_response",),
}


def check_parts(parts: list, base64_content: bool = True) -> None:
    """What the spec's JSON schemas require of a list of parts (blob content is base64 when the
    provider's data was: `base64_content` checks that too)."""
    assert isinstance(parts, list)
    for part in parts:
        assert isinstance(part, dict) and isinstance(part.get("type"), str), part
        for key in _PART_REQUIRED.get(part["type"], ()):
            assert key in part, (key, part)
        if part["type"] in ("text", "reasoning"):
            assert isinstance(part["content"], str)
        if part["type"] == "blob" and base64_content:
            import base64
            base64.b64decode(part["content"], validate=True)


def check_schema(attrs: dict) -> None:
    """gen_ai.input.messages / output.messages / system_instructions / tool.definitions, where present,
    have the shape the spec's JSON schemas give them."""
    if "gen_ai.system_instructions" in attrs:
        check_parts(content(attrs, "gen_ai.system_instructions"))
    for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
        if key in attrs:
            for message in content(attrs, key):
                assert isinstance(message.get("role"), str) and message["role"], message
                check_parts(message["parts"])
                if key == "gen_ai.output.messages":
                    assert isinstance(message.get("finish_reason"), str), message
    if "gen_ai.tool.definitions" in attrs:
        for tool in content(attrs, "gen_ai.tool.definitions"):
            assert isinstance(tool.get("type"), str), tool


class SdkExchange:
    """Make a real SDK call against an httpx.MockTransport that answers `response` (JSON) with
    `status`; keep the request exactly as the SDK sent it and the SDK's own result."""

    def __init__(self, response: Any, status: int = 200, headers: dict | None = None):
        self.response, self.status, self.headers = response, status, headers or {}
        self.request: httpx.Request | None = None

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.request = request
        return httpx.Response(self.status, json=self.response, headers=self.headers)

    def openai(self, base_url: str = "https://api.openai.com/v1") -> openai.OpenAI:
        return openai.OpenAI(api_key="sk-test-not-a-key", base_url=base_url, max_retries=0,
                             http_client=httpx.Client(transport=httpx.MockTransport(self._handle)))

    def anthropic(self) -> anthropic.Anthropic:
        import httpx2  # this anthropic SDK is built on httpx2, whose MockTransport has the same shape

        def handle(request):
            self.request = request
            return httpx2.Response(self.status, json=self.response, headers=self.headers)

        return anthropic.Anthropic(api_key="sk-ant-test-not-a-key", max_retries=0,
                                   http_client=httpx2.Client(transport=httpx2.MockTransport(handle)))

    def span(self) -> Span:
        """The span the eBPF receiver would have made of this exchange (secret headers are never captured)."""
        assert self.request is not None
        allowed = ("content-type", "anthropic-version", "user-agent", "openai-organization")
        headers = {k: v for k, v in self.request.headers.items() if k in allowed}
        return raw_span(str(self.request.url), self.request.content.decode(), self.response, status=self.status,
                        method=self.request.method, request_headers=headers,
                        response_headers={k.lower(): v for k, v in self.headers.items()})


# ---- realistic bodies --------------------------------------------------------------------------

CHAT_RESPONSE = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
    "model": "gpt-4o-2024-08-06", "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Paris.", "refusal": None, "annotations": []}}],
    "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
              "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
}

MESSAGE_RESPONSE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "Paris."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 21, "cache_creation_input_tokens": 188, "cache_read_input_tokens": 1800,
              "output_tokens": 5, "service_tier": "standard"},
}


# ---- SDK-made exchanges ------------------------------------------------------------------------

def test_openai_sdk_chat_exchange_maps_to_a_chat_span():
    x = SdkExchange(CHAT_RESPONSE)
    result = x.openai().chat.completions.create(
        model="gpt-4o", messages=[{"role": "developer", "content": "Answer in one word."},
                                  {"role": "user", "content": "Capital of France?"}],
        temperature=0.2, top_p=0.9, max_completion_tokens=50, seed=7, stop=["\n"], n=1,
        frequency_penalty=0.5, presence_penalty=-0.5, response_format={"type": "text"}, service_tier="auto")
    span, attrs = one(x.span())
    assert span.name == "chat gpt-4o"
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.status.code == Status.STATUS_CODE_UNSET
    expected = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.2, "gen_ai.request.top_p": 0.9, "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 7, "gen_ai.request.stop_sequences": ["\n"], "gen_ai.request.frequency_penalty": 0.5,
        "gen_ai.request.presence_penalty": -0.5, "gen_ai.request.stream": False, "gen_ai.output.type": "text",
        "gen_ai.response.id": result.id, "gen_ai.response.model": result.model,
        "gen_ai.response.finish_reasons": [result.choices[0].finish_reason],
        "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": result.usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": result.usage.prompt_tokens_details.cached_tokens,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "openai.api.type": "chat_completions", "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_fc9f1d7035",
        "server.address": "api.openai.com", "server.port": 443, "llmtap.genai.api": "openai.chat_completions",
    }
    assert {k: attrs.get(k) for k in expected} == expected
    assert "gen_ai.request.choice.count" not in attrs  # n=1 is the default: not recorded
    assert "openai.request.service_tier" not in attrs  # "auto" is not recorded (spec)
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "developer", "parts": [{"type": "text", "content": "Answer in one word."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]
    assert "gen_ai.system_instructions" not in attrs  # in-history instructions stay in the history (spec)
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": result.choices[0].message.content}],
         "finish_reason": "stop"}]
    assert not [k for k in attrs if k.startswith("llmtap.http.")]
    check_schema(attrs)


def test_anthropic_sdk_messages_exchange_adds_cached_tokens_to_input_tokens():
    x = SdkExchange(MESSAGE_RESPONSE, headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
    result = x.anthropic().messages.create(
        model="claude-sonnet-4-5", max_tokens=1024, system=[{"type": "text", "text": "You are terse.",
                                                             "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Capital of France?"}], stop_sequences=["END"],
        # this SDK no longer has the sampling parameters; older models still take them
        extra_body={"temperature": 0.0, "top_k": 40, "top_p": 0.95})
    span, attrs = one(x.span())
    assert span.name == "chat claude-sonnet-4-5"
    u = result.usage
    expected = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.request.max_tokens": 1024,
        "gen_ai.request.temperature": 0.0, "gen_ai.request.top_k": 40.0, "gen_ai.request.top_p": 0.95,
        "gen_ai.request.stop_sequences": ["END"], "gen_ai.request.stream": False,
        "gen_ai.response.id": result.id, "gen_ai.response.model": result.model,
        "gen_ai.response.finish_reasons": ["end_turn"],
        "gen_ai.usage.input_tokens": u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
        "gen_ai.usage.cache_read.input_tokens": 1800, "gen_ai.usage.cache_creation.input_tokens": 188,
        "gen_ai.usage.output_tokens": 5,
    }
    assert {k: attrs.get(k) for k in expected} == expected
    assert attrs["gen_ai.usage.input_tokens"] == 2009
    assert content(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "You are terse."}]
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}]
    assert not [k for k in attrs if k.startswith("openai.")]
    check_schema(attrs)


def test_openai_sdk_responses_exchange():
    body = {"id": "resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b", "object": "response",
            "created_at": 1756315696, "status": "completed", "model": "gpt-4.1-2025-04-14", "error": None,
            "incomplete_details": None, "instructions": "Be terse.", "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}}, "temperature": 0.5,
            "top_p": 1.0, "truncation": "disabled", "metadata": {}, "store": True,
            "output": [{"type": "message", "id": "msg_68af403", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Blue.", "annotations": [], "logprobs": []}]}],
            "usage": {"input_tokens": 19, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 2,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 21}}
    x = SdkExchange(body)
    result = x.openai().responses.create(model="gpt-4.1", instructions="Be terse.", temperature=0.5,
                                         max_output_tokens=16, text={"format": {"type": "text"}},
                                         input=[{"role": "user", "content": "Sky colour?"}])
    span, attrs = one(x.span())
    assert span.name == "chat gpt-4.1"
    expected = {"gen_ai.request.model": "gpt-4.1", "gen_ai.request.temperature": 0.5,
                "gen_ai.request.max_tokens": 16, "gen_ai.output.type": "text", "gen_ai.response.id": result.id,
                "gen_ai.response.model": result.model, "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": result.usage.input_tokens,
                "gen_ai.usage.output_tokens": result.usage.output_tokens, "openai.api.type": "responses"}
    assert {k: attrs.get(k) for k in expected} == expected
    assert content(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": result.output_text}], "finish_reason": "stop"}]
    assert content(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Sky colour?"}]}]


def test_openai_sdk_embeddings_exchange():
    body = {"object": "list", "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093, 0.0151]}],
            "usage": {"prompt_tokens": 5, "total_tokens": 5}}
    x = SdkExchange(body)
    x.openai().embeddings.create(model="text-embedding-3-small", input="The food was delicious",
                                 encoding_format="float")
    span, attrs = one(x.span())
    assert span.name == "embeddings text-embedding-3-small"
    assert attrs["gen_ai.request.encoding_formats"] == ["float"]
    assert attrs["gen_ai.embeddings.dimension.count"] == 3
    assert attrs["gen_ai.usage.input_tokens"] == 5


def test_anthropic_sdk_tool_use_round_trip():
    body = {"id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant",
            "model": "claude-haiku-4-5-20251001", "stop_reason": "tool_use", "stop_sequence": None,
            "content": [{"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
                         "input": {"location": "San Francisco, CA"}}],
            "usage": {"input_tokens": 472, "output_tokens": 91}}
    x = SdkExchange(body)
    tools = [{"name": "get_weather", "description": "Get the current weather",
              "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}]
    result = x.anthropic().messages.create(model="claude-haiku-4-5", max_tokens=512, tools=tools,
                                           messages=[{"role": "user", "content": "Weather in SF?"}])
    _, attrs = one(x.span())
    assert attrs["gen_ai.response.finish_reasons"] == [result.stop_reason] == ["tool_use"]
    [output] = content(attrs, "gen_ai.output.messages")
    call = result.content[1]
    assert output == {"role": "assistant", "finish_reason": "tool_call", "parts": [
        {"type": "text", "content": "Let me check."},
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.input}]}
    assert content(attrs, "gen_ai.tool.definitions") == [
        {"type": "function", "name": "get_weather", "description": "Get the current weather",
         "parameters": tools[0]["input_schema"]}]
    assert attrs["gen_ai.usage.input_tokens"] == 472  # no cache counters reported: nothing to add


def test_openai_sdk_against_an_unknown_host_is_reported_as_openai():
    """vLLM, llama.cpp, LiteLLM…: OpenAI's format on a host we do not know → the format's provider."""
    x = SdkExchange({**CHAT_RESPONSE, "model": "meta-llama/Llama-3.1-8B-Instruct"})
    x.openai("http://gpu-box.internal:8000/v1").chat.completions.create(
        model="meta-llama/Llama-3.1-8B-Instruct", messages=[{"role": "user", "content": "hi"}],
        extra_body={"top_k": 20})
    _, attrs = one(x.span())
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.top_k"] == 20.0
    assert attrs["server.address"] == "gpu-box.internal" and attrs["server.port"] == 8000


def test_azure_openai_deployment_path():
    x = SdkExchange(CHAT_RESPONSE)
    client = openai.AzureOpenAI(api_key="k", api_version="2024-10-21",
                                azure_endpoint="https://contoso.openai.azure.com",
                                max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(x._handle)))
    client.chat.completions.create(model="gpt-4o-prod", messages=[{"role": "user", "content": "hi"}])
    assert "/openai/deployments/gpt-4o-prod/chat/completions" in str(x.request.url)
    span, attrs = one(x.span())
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert span.name == "chat gpt-4o-prod"
    assert "openai.api.type" not in attrs  # openai.* attributes belong to provider openai


# ---- errors --------------------------------------------------------------------------------------

RATE_LIMIT = {"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min "
                                   "(TPM): Limit 200000, Used 199655, Requested 1024. Please try again in 203ms.",
                        "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
CONTEXT_LENGTH = {"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages "
                                       "resulted in 130020 tokens. Please reduce the length of the messages.",
                            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
              "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
GEMINI_EXHAUSTED = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                              "status": "RESOURCE_EXHAUSTED"}}
NGINX_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
CHAT_REQUEST = {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o-mini"}
MESSAGES_REQUEST = {"max_tokens": 256, "messages": [{"role": "user", "content": "hi"}],
                    "model": "claude-sonnet-4-5-20250929"}
GEMINI_REQUEST = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("url,request_body,status,body,error_type,message", [
    ("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, 429, RATE_LIMIT, "rate_limit_exceeded",
     RATE_LIMIT["error"]["message"]),
    ("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, 400, CONTEXT_LENGTH, "context_length_exceeded",
     CONTEXT_LENGTH["error"]["message"]),
    ("https://api.anthropic.com/v1/messages", MESSAGES_REQUEST, 529, OVERLOADED, "overloaded_error", "Overloaded"),
    ("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_REQUEST,
     429, GEMINI_EXHAUSTED, "RESOURCE_EXHAUSTED", GEMINI_EXHAUSTED["error"]["message"]),
    ("http://localhost:11434/api/chat", {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]},
     404, {"error": "model \"llama3.2\" not found, try pulling it first"}, "404",
     "model \"llama3.2\" not found, try pulling it first"),
])
def test_provider_error_bodies_give_error_type_and_status(url, request_body, status, body, error_type, message):
    span, attrs = one(raw_span(url, request_body, body, status=status))
    assert attrs["error.type"] == error_type
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert span.status.message == message
    assert attrs["http.response.status_code"] == status
    assert span.name.startswith(attrs["gen_ai.operation.name"])  # the request is still mapped
    assert "gen_ai.request.model" in attrs
    assert "gen_ai.output.messages" not in attrs and "gen_ai.response.id" not in attrs


def test_error_body_with_status_200_is_an_error_too():
    """Some OpenAI-compatible gateways answer 200 with an error object."""
    span, attrs = one(raw_span("https://openrouter.ai/api/v1/chat/completions", CHAT_REQUEST,
                               {"error": {"message": "No endpoints found", "code": 404}}))
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert attrs["error.type"] == "_OTHER"  # the spec's fallback: the body has no error type
    assert span.status.message == "No endpoints found"
    assert attrs["gen_ai.provider.name"] == "openrouter"


def test_proxy_html_502_keeps_the_request_and_says_why_there_is_no_response():
    span, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, NGINX_502, status=502,
                               response_headers={"content-type": "text/html"}))
    assert attrs["error.type"] == "502"
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert span.name == "chat gpt-4o-mini"
    assert "HTML" in attrs["llmtap.genai.error"]
    assert content(attrs, "gen_ai.input.messages")[0]["parts"][0]["content"] == "hi"
    assert "llmtap.http.response.body" not in attrs


def test_incomplete_exchange_keeps_the_receivers_error_type():
    """error.type `incomplete` (cut short) says more about the exchange than any body could."""
    span = raw_span("https://api.anthropic.com/v1/messages", MESSAGES_REQUEST, OVERLOADED, status=529,
                    extra={"error.type": "incomplete"})
    _, attrs = one(span)
    assert attrs["error.type"] == "incomplete"


# ---- bad input -----------------------------------------------------------------------------------

def test_truncated_request_body_still_maps_the_response():
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 500}], "model": "gpt-4o"})[:300]
    span, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", body, CHAT_RESPONSE,
                               extra={"llmtap.http.request.body.truncated": True}))
    assert "truncated" in attrs["llmtap.genai.error"]
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.usage.input_tokens"] == 1117
    assert "gen_ai.request.model" not in attrs and span.name == "chat"
    assert "gen_ai.input.messages" not in attrs
    assert "llmtap.http.request.body.truncated" not in attrs


def test_non_llm_exchange_is_left_alone_but_loses_its_raw_attributes():
    span = raw_span("https://example.com/healthz", None, "ok\n", method="GET",
                    response_headers={"content-type": "text/plain"},
                    request_headers={"cookie": "should never be here, but if it were"})
    out, attrs = one(span)
    assert out.name == "GET /healthz"
    assert attrs["llmtap.genai.error"] == "not a GenAI API call: GET /healthz"
    assert not [k for k in attrs if k.startswith("llmtap.http.") or k.startswith("gen_ai.")]
    assert attrs["url.full"] == "https://example.com/healthz"
    assert attrs["http.response.header.content-type"] == ["text/plain"]
    assert "http.request.header.cookie" not in attrs  # a credential is never passed on, whoever captured it


def test_captured_headers_stay_under_the_http_conventions_names():
    span = raw_span("https://api.openai.com/v1/chat/completions",
                    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                    {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini", "choices": []},
                    request_headers={"x-tenant-id": "acme", "authorization": "Bearer sk-test"},
                    response_headers={"x-request-id": "req_1"})
    _, attrs = one(span)
    assert attrs["http.request.header.x-tenant-id"] == ["acme"]
    assert attrs["http.response.header.x-request-id"] == ["req_1"]
    assert "http.request.header.authorization" not in attrs
    _, raw = one(span, keep_raw=True)  # the raw ones are kept instead
    assert raw["llmtap.http.request.header.x-tenant-id"] == ["acme"] and "http.request.header.x-tenant-id" not in raw


def test_unknown_api_post_with_a_json_body():
    _, attrs = one(raw_span("https://api.example.com/v2/things", {"name": "thing"}, {"id": 1}))
    assert attrs["llmtap.genai.error"].startswith("not a GenAI API call")
    assert "gen_ai.operation.name" not in attrs


def test_non_json_request_body():
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", "model=gpt-4o&x=1", CHAT_RESPONSE))
    assert "request body is not valid JSON" in attrs["llmtap.genai.error"]
    assert attrs["gen_ai.response.id"] == CHAT_RESPONSE["id"]


def test_unreassembled_stream_says_what_to_do():
    sse = 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[]}\n\ndata: [DONE]\n\n'
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", {**CHAT_REQUEST, "stream": True}, sse,
                            response_headers={"content-type": "text/event-stream"}))
    assert "sse_reassembly" in attrs["llmtap.genai.error"]
    assert attrs["gen_ai.request.stream"] is True


def test_a_bad_span_does_not_spoil_the_batch(monkeypatch):
    from llmtap.processors.genai_semconv import exchange

    def explode(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(exchange._MAPPERS, "openai.embeddings", explode)
    good = raw_span("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, CHAT_RESPONSE)
    bad = raw_span("https://api.openai.com/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"},
                   {"object": "list", "data": []})
    garbage = raw_span("https://api.anthropic.com/v1/messages", b"\xff\xfe\x00binary", "{]")
    first, second, third = process(good, bad, garbage)
    assert first.name == "chat gpt-4o-mini"
    b = attributes.as_dict(second.attributes)
    assert b["llmtap.genai.error"] == "internal error: RuntimeError: boom"
    assert not [k for k in b if k.startswith("llmtap.http.")]  # raw bodies go even then
    g = attributes.as_dict(third.attributes)
    assert "binary" in g["llmtap.genai.error"] and "not valid JSON" in g["llmtap.genai.error"]


# ---- streams -------------------------------------------------------------------------------------

def test_streamed_exchange_maps_the_reassembled_response_and_keeps_stream_attributes():
    """sse_reassembly leaves the final object in llmtap.http.response.reassembled and timings in
    llmtap.stream.* / gen_ai.response.time_to_first_chunk; the raw SSE body is not read."""
    final = {**CHAT_RESPONSE, "object": "chat.completion"}
    sse = "data: " + json.dumps({"id": final["id"], "object": "chat.completion.chunk", "choices": []}) + "\n\n"
    span = raw_span("https://api.openai.com/v1/chat/completions",
                    {**CHAT_REQUEST, "stream": True, "stream_options": {"include_usage": True}}, sse,
                    response_headers={"content-type": "text/event-stream; charset=utf-8"}, reassembled=final,
                    extra={"llmtap.stream.format": "openai.chat_completions", "llmtap.stream.events": 9,
                           "llmtap.stream.complete": True, "gen_ai.response.time_to_first_chunk": 0.25,
                           "llmtap.stream.time_per_output_chunk": [0.01, 0.02],
                           "llmtap.http.response.read.time_unix_nano": [5, 6],
                           "llmtap.http.response.read.end_offset": [10, 20]})
    _, attrs = one(span)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == final["id"]
    assert attrs["gen_ai.usage.output_tokens"] == 46
    assert attrs["gen_ai.response.time_to_first_chunk"] == 0.25
    assert attrs["llmtap.stream.time_per_output_chunk"] == [0.01, 0.02]
    assert attrs["llmtap.stream.events"] == 9
    assert "llmtap.genai.error" not in attrs
    assert not [k for k in attrs if k.startswith("llmtap.http.")]


def test_stream_error_event_type_from_sse_reassembly_is_kept():
    span = raw_span("https://api.anthropic.com/v1/messages", {**MESSAGES_REQUEST, "stream": True},
                    "event: error\ndata: {}\n\n", reassembled={**MESSAGE_RESPONSE, "stop_reason": None},
                    response_headers={"content-type": "text/event-stream"},
                    extra={"error.type": "overloaded_error", "llmtap.stream.error": "provider error event"})
    span.status.code = Status.STATUS_CODE_ERROR
    out, attrs = one(span)
    assert attrs["error.type"] == "overloaded_error"
    assert out.status.code == Status.STATUS_CODE_ERROR
    assert attrs["gen_ai.request.stream"] is True


def test_two_processors_sse_reassembly_then_genai_semconv():
    import llmtap.processors.sse_reassembly as sse
    if not hasattr(sse, "factory"):
        pytest.skip("sse_reassembly is not built yet")
    chunks = [
        {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
         "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
        {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
         "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
         "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}},
    ]
    sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    span = raw_span("https://api.openai.com/v1/chat/completions",
                    {**CHAT_REQUEST, "stream": True, "stream_options": {"include_usage": True}}, sse,
                    response_headers={"content-type": "text/event-stream"})
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add().CopyFrom(span)
    out = run_chain(Signal.TRACES, request, ("sse_reassembly", {}), ("genai_semconv", {}))
    [result] = [s for rs in out.resource_spans for ss in rs.scope_spans for s in ss.spans]
    attrs = attributes.as_dict(result.attributes)
    assert result.name == "chat gpt-4o-mini"
    assert content(attrs, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello"}]
    assert attrs["gen_ai.usage.input_tokens"] == 8 and attrs["gen_ai.usage.output_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]


# ---- config ----------------------------------------------------------------------------------------

def test_capture_content_none_records_no_content():
    req = {**CHAT_REQUEST, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", req, CHAT_RESPONSE),
                   capture_content="none")
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                "gen_ai.tool.definitions"):
        assert key not in attrs
    assert attrs["gen_ai.usage.input_tokens"] == 1117
    assert not [k for k in attrs if k.startswith("llmtap.http.")]


def test_keep_raw_keeps_the_captured_exchange():
    _, attrs = one(raw_span("https://api.openai.com/v1/chat/completions", CHAT_REQUEST, CHAT_RESPONSE),
                   keep_raw=True)
    assert json.loads(attrs["llmtap.http.request.body"]) == CHAT_REQUEST
    assert json.loads(attrs["llmtap.http.response.body"]) == CHAT_RESPONSE
    assert attrs["llmtap.http.response.header.content-type"] == ["application/json"]
    assert attrs["gen_ai.response.id"] == CHAT_RESPONSE["id"]


def test_keep_raw_also_on_non_llm_exchanges():
    _, attrs = one(raw_span("https://example.com/echo", {"a": 1}, {"a": 1}), keep_raw=True)
    assert "llmtap.http.request.body" in attrs and "llmtap.genai.error" in attrs


def test_semconv_version_development_applies_the_renames_table():
    _, attrs = one(raw_span("https://api.anthropic.com/v1/messages", {**MESSAGES_REQUEST, "top_k": 40},
                            MESSAGE_RESPONSE), semconv_version="development")
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 188
    assert "gen_ai.usage.cache_creation.input_tokens" not in attrs
    assert attrs["gen_ai.request.top_k"] == 40 and isinstance(attrs["gen_ai.request.top_k"], int)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1800  # not renamed


def test_development_renames_reach_spans_from_other_instrumentations_too():
    span = Span(name="chat claude", kind=Span.SPAN_KIND_CLIENT)
    attributes.add(span.attributes, {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                                     "gen_ai.usage.cache_creation.input_tokens": 5, "gen_ai.request.top_k": 2.5})
    _, attrs = one(span, semconv_version="development")
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 5
    assert attrs["gen_ai.request.top_k"] == 2.5  # not an integer: left as it is


def test_versions_table_is_data():
    assert versions.VERSIONS == ("1.41.0", "development")
    assert {(c.kind, c.attribute, c.to) for c in versions.DEVELOPMENT} == {
        ("rename", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"),
        ("retype", "gen_ai.request.top_k", "int")}


def test_config_defaults_and_validation():
    config, errors = decode_config(genai_semconv.Config, {})
    assert not errors
    assert (config.capture_content, config.keep_raw, config.semconv_version, config.remove_originals,
            config.overwrite) == ("full", False, "1.41.0", True, False)
    _, errors = decode_config(genai_semconv.Config, {"capture_content": "some", "semconv_version": "1.37.0"})
    assert [e.split(":")[0] for e in errors] == ["capture_content", "semconv_version"]


def test_factory():
    f = genai_semconv.factory
    assert f.type == "genai_semconv" and f.signals == frozenset({Signal.TRACES, Signal.LOGS})
    assert f.stability.value == "alpha"


def test_logs_pass_through():
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    attributes.add(record.attributes, {"gen_ai.usage.cache_creation.input_tokens": 3})
    out = run_chain(Signal.LOGS, request, ("genai_semconv", {"semconv_version": "development"}))
    [record] = [r for rl in out.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert attributes.as_dict(record.attributes) == {"gen_ai.usage.cache_write.input_tokens": 3}


# ---- any body, any API: mapped or marked, never an internal error ----------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_KEYS = ["model", "messages", "choices", "content", "usage", "prompt_tokens", "input_tokens", "output", "input",
         "candidates", "usageMetadata", "generationConfig", "contents", "stop", "n", "tools", "system", "message",
         "error", "type", "code", "status", "stop_reason", "finish_reason", "stream", "options", "done_reason",
         "response_format", "text", "format", "conversation", "data", "embedding", "id", "role", "parts"]
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner,
                                                                                  max_size=6), max_leaves=25)
_URLS = ["https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/completions",
         "https://api.openai.com/v1/responses", "https://api.openai.com/v1/embeddings",
         "https://api.anthropic.com/v1/messages", "http://localhost:11434/api/chat",
         "http://localhost:11434/api/generate", "http://localhost:11434/api/embed",
         "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent",
         "https://generativelanguage.googleapis.com/v1beta/models/g:embedContent", "https://example.com/x"]


@settings(max_examples=60, deadline=None)
@given(url=st.sampled_from(_URLS), request_body=_JSON, response_body=_JSON,
       status=st.sampled_from([200, 400, 429, 500]))
def test_any_body_is_mapped_or_marked_never_an_internal_error(url, request_body, response_body, status):
    from llmtap.processors.genai_semconv import Config, GenAISemconvProcessor
    from llmtap.component import Kind, Settings, ComponentID
    from llmtap.telemetry import SelfTelemetry
    import logging
    processor = GenAISemconvProcessor(Settings(ComponentID("genai_semconv"), Kind.PROCESSOR, SelfTelemetry(),
                                               logging.getLogger("test")), Config(), Signal.TRACES, None)
    span = raw_span(url, json.dumps(request_body), json.dumps(response_body), status=status)
    processor.process_span(span)
    attrs = attributes.as_dict(span.attributes)
    assert not attrs.get("llmtap.genai.error", "").startswith("internal error"), attrs["llmtap.genai.error"]
    assert not [k for k in attrs if k.startswith("llmtap.http.")]
    check_schema(attrs) if "gen_ai.operation.name" in attrs else None
