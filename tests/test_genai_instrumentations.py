"""Cross-check against real instrumentations: the same chat call, made by an app instrumented
with a GenAI instrumentation library and exported over OTLP to llmtap, normalizes to the same
key attributes as llmtap's own mapping of that call's HTTP exchange.

Each app runs in its own process (instrumentations patch the openai module globally): this
file run as a script, with the real OpenTelemetry SDK and its OTLP/HTTP exporters pointed at a
real llmtap `otlp` receiver. It makes two calls to the local TLS test server (tests/llm_server.py)
with the openai SDK: one plain, one streamed. The request carries a system prompt, a tool call
and its result in the history, and a tool definition (the server answers text only).

What the receiver got goes through the `genai_semconv` processor. For every exchange in the
server's log, three things must agree on `key_attributes`:
- EXPECTED: what was sent (the request, written out below) and what the server replied (its log);
- the instrumented span (plus its `gen_ai.client.inference.operation.details` record, for
  instrumentations that put content in log events);
- the raw-exchange span llmtap builds from the same bytes (what the eBPF receiver would report),
  through sse_reassembly and genai_semconv. The eBPF end-to-end test compares that span with
  one captured for real (tests/test_genai_ebpf.py); `key_attributes` is shared for that.

Instrumentations (pins in pyproject's test extra): opentelemetry-instrumentation-openai-v2 2.4b0
with opentelemetry-util-genai 0.4b0 (its 1.x drops the legacy mode), in legacy mode (content in
the deprecated per-message log events) and in `gen_ai_latest_experimental` mode; OpenLLMetry's
opentelemetry-instrumentation-openai 0.62.4 with content on span attributes (its default) and in
log events (use_attributes=False); openinference-instrumentation-openai 0.1.66.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llm_server import Exchange, LlmServer
from otlpdata import attributes
from processor_support import build_chain
from receiver_otlp_support import start_otlp  # noqa: F401  (fixture)
from llmtap.attributes import as_dict
from llmtap.component import Kind, Signal
from llmtap.processors import genai_semconv, sse_reassembly
from llmtap.registry import Registry, default_registry

MODEL = "gpt-4o-mini"
SYSTEM = "You are a terse weather assistant."
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21C"},
    {"role": "user", "content": "Summarize it in one line."},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]
# The request's messages in the v1.41 schema (OpenAI keeps the system prompt in the history).
EXPECTED_INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
    {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_w1", "name": "get_weather",
                                     "arguments": {"city": "Paris"}}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_w1", "response": "sunny, 21C"}]},
    {"role": "user", "parts": [{"type": "text", "content": "Summarize it in one line."}]},
]

# OpenAI's finish reasons in the output-message schema's words (the span keeps OpenAI's).
SCHEMA_FINISH_REASON = {"stop": "stop", "length": "length", "tool_calls": "tool_call",
                        "content_filter": "content_filter"}

APPS = {
    # name: (instrumentation, environment of the app)
    "openai-v2": ("openai-v2", {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}),
    "openai-v2-latest": ("openai-v2", {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                                       "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event"}),
    "openllmetry": ("openllmetry", {"TRACELOOP_TRACE_CONTENT": "true"}),
    "openllmetry-events": ("openllmetry-events", {"TRACELOOP_TRACE_CONTENT": "true"}),
    "openinference": ("openinference", {}),
}


def _without_tool_result_ids(attrs: dict) -> dict:
    attrs = json.loads(json.dumps(attrs))
    for message in attrs["gen_ai.input.messages"]:
        for part in message["parts"]:
            if part["type"] == "tool_call_response":
                del part["id"]
    return attrs


# What an instrumentation itself leaves out, so that no normalizer can bring it back: the
# expectation without it.
LOSSES = {
    # its gen_ai.tool.message event body is {"content": …}: the tool call id is not recorded
    "openllmetry-events": _without_tool_result_ids,
}

COMPARED = ("gen_ai.provider.name", "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.response.model",
            "gen_ai.response.id", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
            "gen_ai.response.finish_reasons", "gen_ai.system_instructions", "gen_ai.input.messages",
            "gen_ai.output.messages")
_CONTENT = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")


def key_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes on which llmtap's mapping of a call and any normalized instrumentation of
    the same call must agree: provider, operation, models, response id, usage, finish reasons,
    and the content, parsed (JSON text or structured values alike)."""
    out = {}
    for key in COMPARED:
        value = attrs.get(key)
        if value is None:
            continue
        if key in _CONTENT:
            value = json.loads(value) if isinstance(value, str) else value
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


# ---- the app (this file run as a script) --------------------------------------------------------

def run_app(instrumentation: str, otlp_url: str, base_url: str, ca_file: str) -> None:
    from opentelemetry import _logs, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"weather-agent-{instrumentation}"})
    tracer_provider = TracerProvider(resource=resource)
    # One export request per signal, at shutdown: the per-message log events of a call are grouped
    # within a request (docs/genai.md), and a timer-driven batch could fall between them.
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_url}/v1/traces"),
                                                          schedule_delay_millis=60_000))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp_url}/v1/logs"),
                                                                     schedule_delay_millis=60_000))
    trace.set_tracer_provider(tracer_provider)
    _logs.set_logger_provider(logger_provider)
    providers = {"tracer_provider": tracer_provider, "logger_provider": logger_provider}
    if instrumentation == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(**providers)
    elif instrumentation in ("openllmetry", "openllmetry-events"):
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor(use_attributes=instrumentation == "openllmetry").instrument(**providers)
    elif instrumentation == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(**providers)
    else:
        raise SystemExit(f"unknown instrumentation {instrumentation!r}")

    import httpx
    import openai
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test-not-a-secret",
                           http_client=httpx.Client(verify=ca_file))
    params = dict(model=MODEL, messages=MESSAGES, tools=TOOLS, temperature=0.2, max_tokens=64, seed=7)
    client.chat.completions.create(**params)
    for _ in client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True}):
        pass
    tracer_provider.shutdown()  # flushes: everything is exported before the process ends
    logger_provider.shutdown()


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "app":
    run_app(*sys.argv[2:])
    raise SystemExit(0)


# ---- the tests ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s


def _registry() -> Registry:
    """The built-ins plus the GenAI processors, whether or not the registry lists them yet."""
    factories = [genai_semconv.factory]
    if getattr(sse_reassembly, "factory", None) is not None:
        factories.append(sse_reassembly.factory)
    return Registry([*default_registry().all(), *factories])


async def through(signal: Signal, request, *components: tuple[str, dict]):
    processors, sink = build_chain(signal, *components, registry=_registry())
    await processors[0].consume(signal, request)
    [out] = sink.received
    return out


def _stream_response(exchange: Exchange) -> dict:
    """The completion a stream adds up to: the SDK-independent reading of the server's log."""
    chunks = [json.loads(d) for d in exchange.sse_data() if d != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    usage = next(c["usage"] for c in chunks if c.get("usage"))
    return {"id": chunks[0]["id"], "model": chunks[0]["model"], "usage": usage,
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}]}


def expected(exchange: Exchange) -> dict[str, Any]:
    request = exchange.request_json()
    response = _stream_response(exchange) if request.get("stream") else exchange.response_json()
    [choice] = response["choices"]
    return {
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request["model"], "gen_ai.response.model": response["model"],
        "gen_ai.response.id": response["id"],
        "gen_ai.usage.input_tokens": response["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": response["usage"]["completion_tokens"],
        "gen_ai.response.finish_reasons": [choice["finish_reason"]],
        "gen_ai.input.messages": EXPECTED_INPUT,
        "gen_ai.output.messages": [{"role": "assistant", "finish_reason": SCHEMA_FINISH_REASON[choice["finish_reason"]],
                                    "parts": [{"type": "text", "content": choice["message"]["content"]}]}],
    }


def raw_exchange_span(exchange: Exchange, server: LlmServer) -> ExportTraceServiceRequest:
    """The span the eBPF receiver makes of this exchange (tests/test_genai_ebpf.py captures it for real)."""
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(name="POST", kind=Span.SPAN_KIND_CLIENT)
    attrs = {"http.request.method": exchange.method, "url.full": f"{server.base_url}{exchange.path}",
             "server.address": "localhost", "server.port": server.port,
             "http.response.status_code": exchange.status,
             "llmtap.http.request.body": exchange.request_body, "llmtap.http.response.body": exchange.response_body}
    for side, headers in (("request", exchange.request_headers), ("response", exchange.response_headers)):
        for name, value in headers:
            if name.lower() == "content-type":
                attrs[f"llmtap.http.{side}.header.content-type"] = [value]
    span.attributes.extend(attributes(attrs))
    return request


async def raw_exchange_attributes(exchange: Exchange, server: LlmServer) -> dict | None:
    """llmtap's own reading of the exchange's bytes; None for a stream while sse_reassembly is
    not there yet."""
    components: tuple = (("genai_semconv", {}),)
    if exchange.request_json().get("stream"):
        if _registry().get(Kind.PROCESSOR, "sse_reassembly") is None:
            return None
        components = (("sse_reassembly", {}),) + components
    out = await through(Signal.TRACES, raw_exchange_span(exchange, server), *components)
    [span] = out.resource_spans[0].scope_spans[0].spans
    assert span.name == f"chat {MODEL}"
    return as_dict(span.attributes)


async def run_instrumented_app(name: str, server: LlmServer, receiver) -> None:
    instrumentation, env = APPS[name]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "app", instrumentation,
        f"http://{receiver.endpoints['http']}", server.base_url, server.ca_file,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]


@pytest.mark.parametrize("app", list(APPS))
async def test_instrumented_calls_normalize_to_the_same_key_attributes(app, server, start_otlp, capture):
    receiver = await start_otlp({"http": {"endpoint": "127.0.0.1:0"}})
    seen = len(server.exchanges())
    await run_instrumented_app(app, server, receiver)
    exchanges = server.exchanges(wait_for=seen + 2)[seen:]
    assert len(exchanges) == 2 and [e.status for e in exchanges] == [200, 200]

    spans, details = [], {}
    for request in capture.requests(Signal.TRACES):
        out = await through(Signal.TRACES, request, ("genai_semconv", {}))
        spans += [s for rs in out.resource_spans for ss in rs.scope_spans for s in ss.spans]
    for request in capture.requests(Signal.LOGS):
        out = await through(Signal.LOGS, request, ("genai_semconv", {}))
        for record in (r for rl in out.resource_logs for sl in rl.scope_logs for r in sl.log_records):
            assert record.event_name == "gen_ai.client.inference.operation.details"  # nothing else is left
            details[record.span_id] = as_dict(record.attributes)
    assert len(spans) == 2 and len(capture.requests(Signal.TRACES)) == 1

    by_id = {as_dict(s.attributes).get("gen_ai.response.id"): s for s in spans}
    for exchange in exchanges:
        call = f"{app}, {'streamed' if exchange.request_json().get('stream') else 'plain'} call"
        want = expected(exchange)
        span = by_id[want["gen_ai.response.id"]]
        assert span.name == f"chat {MODEL}", call
        attrs = {**details.get(span.span_id, {}), **as_dict(span.attributes)}
        assert key_attributes(attrs) == LOSSES.get(app, lambda a: a)(want), call
        raw = await raw_exchange_attributes(exchange, server)
        if raw is not None:
            assert key_attributes(raw) == want, f"{call}: llmtap's mapping of its exchange"
