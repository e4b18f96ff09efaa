"""End to end: real SDK clients → TLS → eBPF capture → sse_reassembly → genai_semconv.

Each call is made by a real client in its own process (the openai and anthropic
Python SDKs, the openai npm package, curl) against the local TLS test server.
The spans the eBPF receiver captured go through the two GenAI processors, and
the GenAI span that comes out is checked value by value against what the
client's SDK itself assembled from the same response (id, model, text, finish
reason, usage) and what it sent (model, prompt, system prompt, parameters).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ebpf_support import Capture, attributes, require_ebpf
from llm_server import LlmServer
from llm_traffic import SECRET_MARKER, run_client
from processor_support import run_chain
from receiver_otlp_support import start_otlp  # noqa: F401  (fixture)
from llmtap.component import Signal

TEST_SERVER = {"extra_endpoints": [{"host": "localhost", "path": "/v1/*"}]}
SYSTEM_PROMPT = "You are a terse test assistant."  # tests/llm_clients/client_cli.py
GENAI = (("sse_reassembly", {}), ("genai_semconv", {}))


@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s


@pytest.fixture(scope="module")
def ebpf():
    require_ebpf()
    with Capture(TEST_SERVER) as c:
        yield c


def genai_span(ebpf: Capture, pid: int, path: str):
    """The one captured exchange of `pid` to `path`, through the GenAI processors: (span, attrs)."""
    [captured] = ebpf.wait_for(1, lambda s: s.pid == pid and s.attrs.get("url.full", "").endswith(path))
    return through_genai(captured)


def through_genai(captured) -> tuple:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add().CopyFrom(captured.span)
    out = run_chain(Signal.TRACES, request, *GENAI)
    [span] = [s for r in out.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert SECRET_MARKER.encode() not in out.SerializeToString()
    return span, attributes(span.attributes)


def messages(attrs: dict, key: str) -> list:
    return json.loads(attrs[key])


def texts(message: dict) -> str:
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def common_checks(span, attrs: dict, *, provider: str, model: str, result: dict, streamed: bool,
                  separate_system: bool = True) -> None:
    assert span.name == f"chat {model}"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == provider
    assert attrs["gen_ai.request.model"] == model
    assert attrs["gen_ai.response.model"] == result["model"]
    assert attrs["gen_ai.response.id"] == result["id"]
    assert attrs["server.address"] == "localhost"
    assert not [k for k in attrs if k.startswith("llmtap.http.")]
    history = messages(attrs, "gen_ai.input.messages")
    if separate_system:  # an API with a system parameter apart from the messages
        assert messages(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": SYSTEM_PROMPT}]
    else:  # the spec: instructions that are part of the chat history stay in it
        assert "gen_ai.system_instructions" not in attrs
        assert history[0]["role"] == "system" and texts(history[0]) == SYSTEM_PROMPT
    user = history[-1]
    assert user["role"] == "user" and texts(user) == result["prompt"]
    [answer] = messages(attrs, "gen_ai.output.messages")
    assert answer["role"] == "assistant" and texts(answer) == result["content"]
    if streamed:
        ttfc = attrs["gen_ai.response.time_to_first_chunk"]
        assert 0 < ttfc <= (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
        assert attrs["gen_ai.request.stream"] is True
        assert len(attrs["llmtap.stream.time_per_output_chunk"]) >= 1
    else:
        assert "gen_ai.response.time_to_first_chunk" not in attrs


@pytest.mark.parametrize("kind,scenario,path", [
    ("openai", "chat", "/v1/chat/completions"),
    ("openai", "chat_stream", "/v1/chat/completions"),
    ("openai_node", "chat_stream", "/v1/chat/completions"),
])
def test_openai_chat_completions(ebpf, server, kind, scenario, path):
    r = run_client(kind, scenario, server)
    [result] = r.results
    span, attrs = genai_span(ebpf, r.pid, path)
    common_checks(span, attrs, provider="openai", model="gpt-4o-mini", result=result, streamed="stream" in scenario,
                  separate_system=False)
    assert attrs["gen_ai.response.finish_reasons"] == [result["finish_reason"]]
    assert attrs["gen_ai.usage.input_tokens"] == result["usage"]["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == result["usage"]["completion_tokens"]


@pytest.mark.parametrize("scenario", ["responses", "responses_stream"])
def test_openai_responses(ebpf, server, scenario):
    r = run_client("openai", scenario, server)
    [result] = r.results
    span, attrs = genai_span(ebpf, r.pid, "/v1/responses")
    common_checks(span, attrs, provider="openai", model="gpt-4o-mini", result=result, streamed="stream" in scenario)
    assert attrs["gen_ai.usage.input_tokens"] == result["usage"]["input_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == result["usage"]["output_tokens"]


@pytest.mark.parametrize("scenario", ["messages", "messages_stream"])
def test_anthropic_messages(ebpf, server, scenario):
    r = run_client("anthropic", scenario, server)
    [result] = r.results
    span, attrs = genai_span(ebpf, r.pid, "/v1/messages")
    common_checks(span, attrs, provider="anthropic", model="claude-sonnet-4-5-20250929", result=result,
                  streamed="stream" in scenario)
    usage = result["usage"]
    assert attrs["gen_ai.response.finish_reasons"] == [result["stop_reason"]]
    # The spec's arithmetic: input tokens include the cached ones, which Anthropic reports apart.
    cached = (usage.get("cache_read_input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
    assert attrs["gen_ai.usage.input_tokens"] == usage["input_tokens"] + cached
    assert attrs["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert attrs["gen_ai.request.max_tokens"] == 256


def test_stream_cut_short_keeps_what_arrived(ebpf, server):
    r = run_client("openai", "chat_stream", server, headers={"x-test-cut-after-events": "4"}, max_retries=0,
                   check=False)
    [result] = r.results
    assert "error" in result
    span, attrs = genai_span(ebpf, r.pid, "/v1/chat/completions")
    assert attrs["error.type"] == "incomplete"
    assert attrs["llmtap.stream.complete"] is False
    [answer] = messages(attrs, "gen_ai.output.messages")
    assert texts(answer) and "".join(result["deltas"]).startswith(texts(answer)[:10])


@pytest.mark.parametrize("status,error_type", [(429, "rate_limit_exceeded"), (529, "overloaded_error")])
def test_provider_errors(ebpf, server, status, error_type):
    kind, scenario, path = (("openai", "chat", "/v1/chat/completions") if status == 429
                            else ("anthropic", "messages", "/v1/messages"))
    r = run_client(kind, scenario, server, headers={"x-test-status": str(status)}, max_retries=0, check=False)
    span, attrs = genai_span(ebpf, r.pid, path)
    assert attrs["http.response.status_code"] == status
    assert attrs["error.type"] == error_type
    assert span.status.code == span.status.STATUS_CODE_ERROR
    assert attrs["gen_ai.operation.name"] == "chat"


async def test_same_key_attributes_as_a_real_instrumentation(ebpf, server, start_otlp):
    """The issue's cross-check: a chat app instrumented with opentelemetry-instrumentation-openai-v2
    (latest GenAI conventions) makes a plain and a streamed call with a tool round trip in its
    history. tests/test_genai_instrumentations.py shows that its OTLP spans normalize to `expected`;
    here the same two calls, captured by eBPF from the app's TLS socket, map to `expected` too."""
    from test_genai_instrumentations import expected, key_attributes, run_instrumented_app
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0"}})
    seen = len(server.exchanges())
    await run_instrumented_app("openai-v2-latest", server, receiver)
    exchanges = server.exchanges(wait_for=seen + 2)[seen:]
    wanted = {expected(e)["gen_ai.response.id"]: expected(e) for e in exchanges}
    captured = ebpf.wait_for(2, lambda s: "Summarize it in one line." in s.attrs.get("llmtap.http.request.body", ""))
    assert len(captured) == 2, [(s.pid, s.attrs.get("url.full"), s.attrs.get("process.executable.name"), s.attrs.get("http.response.status_code")) for s in captured]
    for one in captured:
        _, attrs = await asyncio.to_thread(through_genai, one)
        got = key_attributes(attrs)
        assert got == wanted[got["gen_ai.response.id"]]
