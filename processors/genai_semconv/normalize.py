"""GenAI telemetry from other instrumentations → the semantic conventions v1.41.0 shape.

`normalize_span` rewrites, in place, a span that an instrumentation library sent
over OTLP so that it reads like the spans llmtap makes from captured traffic:

- deprecated semconv names (v1.26 … v1.40): `gen_ai.system` → `gen_ai.provider.name`
  (values too: `vertex_ai` → `gcp.vertex_ai`, `az.ai.inference` → `azure.ai.inference`,
  OpenLLMetry's `OpenAI` → `openai`, …), `gen_ai.usage.prompt_tokens` → `input_tokens`,
  `gen_ai.openai.request.seed` → `gen_ai.request.seed`, … (table `_RENAMES`);
- content as the deprecated attributes `gen_ai.prompt` / `gen_ai.completion`, the span
  events `gen_ai.content.prompt` / `gen_ai.content.completion`, the per-message events
  (`gen_ai.user.message`, `gen_ai.choice`, …) and the `gen_ai.client.inference.operation.details`
  event, all folded into `gen_ai.input.messages` / `gen_ai.output.messages` /
  `gen_ai.system_instructions` on the span;
- OpenLLMetry (traceloop): flat `gen_ai.prompt.{i}.*` / `gen_ai.completion.{i}.*`,
  `llm.request.functions.{i}.*`, `llm.*` parameters and usage;
- OpenInference (Arize): `openinference.span.kind`, `llm.input_messages.{i}.message.*`,
  `llm.output_messages.*`, `llm.tools.*`, `llm.invocation_parameters`, `llm.token_count.*`,
  `llm.model_name`, `llm.provider`/`llm.system`, the response id from `output.value`,
  `session.id` → `gen_ai.conversation.id`.

Content may arrive as JSON text or as a structured AnyValue; on spans it leaves as JSON
text following the spec's schemas (messages.py builds the parts). A v1.41 attribute already
on the span wins over one computed from older attributes unless `overwrite`;
`remove_originals` drops the recognized older attributes and events afterwards;
`capture_content: none` drops every content attribute and every content-carrying original.
Spans from these sources get the spec's names: `{gen_ai.operation.name} {gen_ai.request.model}`
for inference, `execute_tool {tool}`, `invoke_agent {agent}`. docs/genai.md lists every mapping
and the decisions behind them.

`normalize_logs` does the same for the deprecated per-message log events: the events of one
model call (same trace and span id) become one `gen_ai.client.inference.operation.details`
record (content as structured values, as the spec wants on events).

Cost: a span without any `gen_ai.*`, `llm.*` or `openinference.*` attribute and without a
`gen_ai.*` event costs one pass over its attribute keys and event names. Any other span is
read once into a dict; the work after that is linear in the size of its attributes and events.
Bad input never raises: a content attribute that should be JSON and is not stays as it came
and the span gets `llmtap.genai.error`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Callable
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap.attributes import as_dict, remove, set_value, to_python, update

from .messages import (
    anthropic_content_parts,
    anthropic_tool_definitions,
    gemini_parts,
    media_part,
    openai_content_parts,
    openai_tool_definitions,
    output_finish_reason,
    reasoning_part,
    text_part,
    to_json,
    tool_call_part,
    tool_call_response_part,
)

ERROR = "llmtap.genai.error"

PROVIDER = "gen_ai.provider.name"
OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
CONTENT = (SYSTEM_INSTRUCTIONS, INPUT_MESSAGES, OUTPUT_MESSAGES, TOOL_DEFINITIONS)
TOOL_ARGUMENTS, TOOL_RESULT = "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"  # content too

DETAILS_EVENT = "gen_ai.client.inference.operation.details"
# The deprecated per-message events (semconv v1.27 … v1.36): event name → role.
MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                  "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
CHOICE_EVENT = "gen_ai.choice"
PROMPT_EVENT, COMPLETION_EVENT = "gen_ai.content.prompt", "gen_ai.content.completion"
_CONTENT_EVENTS = {*MESSAGE_EVENTS, CHOICE_EVENT, PROMPT_EVENT, COMPLETION_EVENT}

INFERENCE_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")
_NAMED_BY = (OPERATION, REQUEST_MODEL, "gen_ai.tool.name", "gen_ai.agent.name")

# APIs that take system instructions apart from the chat history: there the spec puts them
# in gen_ai.system_instructions, where llmtap's own mapping of these APIs puts them too.
_SEPARATE_SYSTEM = {"anthropic", "aws.bedrock", "gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"}

_GENAI_PREFIXES = ("gen_ai.", "llm.", "openinference.")


# ---- value conversions --------------------------------------------------------------------------

def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v) if isinstance(v, str) else None
    except ValueError:
        return None


def _as_str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _as_strings(v: Any) -> list[str] | None:
    """A string[] from a list, a JSON list, or one string (finish_reason, stop)."""
    if isinstance(v, str):
        parsed = _json(v) if v.startswith("[") else None
        v = parsed if isinstance(parsed, list) else [v]
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) for x in v):
        return list(v)
    return None


_NOT_JSON = object()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def _structured(v: Any) -> Any:
    """Content given either as JSON text or as a structured AnyValue; _NOT_JSON if neither."""
    if isinstance(v, str):
        return _json(v)
    return v if isinstance(v, (list, dict)) else _NOT_JSON


# Provider names as older semconv versions and vendor libraries spell them, keyed by the
# lower-cased name without punctuation. Values not listed are kept as they came.
_PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "cohere": "cohere", "groq": "groq",
    "deepseek": "deepseek", "perplexity": "perplexity", "mistralai": "mistral_ai", "xai": "x_ai",
    "vertexai": "gcp.vertex_ai", "gcpvertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini", "gcpgemini": "gcp.gemini", "googlegenai": "gcp.gen_ai", "gcpgenai": "gcp.gen_ai",
    "google": "gcp.gen_ai",
    "azaiinference": "azure.ai.inference", "azureaiinference": "azure.ai.inference",
    "azaiopenai": "azure.ai.openai", "azureaiopenai": "azure.ai.openai", "azureopenai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "awsbedrock": "aws.bedrock", "bedrock": "aws.bedrock", "aws": "aws.bedrock",
    "ibmwatsonxai": "ibm.watsonx.ai", "watsonx": "ibm.watsonx.ai", "watsonxai": "ibm.watsonx.ai",
}


def provider_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _PROVIDERS.get(re.sub(r"[^a-z0-9]", "", value.lower()), value)


def _openinference_provider(provider: Any, system: Any) -> str | None:
    """OpenInference's llm.provider (who hosts) + llm.system (whose API) → one provider name."""
    host, api = str(provider or "").lower(), str(system or "").lower()
    if host == "azure":
        return "azure.ai.openai" if api in ("", "openai") else "azure.ai.inference"
    if host == "google":
        return {"vertexai": "gcp.vertex_ai", "gemini": "gcp.gemini"}.get(api, "gcp.gen_ai")
    return provider_name(host or api)


_OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings",
               "embeddings": "embeddings"}
_OPENINFERENCE_OPERATIONS = {"LLM": "chat", "EMBEDDING": "embeddings", "RETRIEVER": "retrieval",
                             "RERANKER": "retrieval", "TOOL": "execute_tool", "AGENT": "invoke_agent"}


def _output_type(v: Any) -> str | None:
    kind = v.get("type") if isinstance(v, dict) else v
    return {"text": "text", "json_object": "json", "json_schema": "json"}.get(kind) if isinstance(kind, str) else None


# Attribute renames: older key → (v1.41 key, conversion). Sources: semconv's
# model/gen-ai/deprecated/registry-deprecated.yaml; traceloop's semconv_ai SpanAttributes
# (the LLM_* names before 0.5 and its gen_ai.* extensions); OpenInference's SpanAttributes.
_RENAMES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    # semantic conventions, deprecated
    "gen_ai.system": (PROVIDER, provider_name),
    "gen_ai.usage.prompt_tokens": ("gen_ai.usage.input_tokens", _as_int),
    "gen_ai.usage.completion_tokens": ("gen_ai.usage.output_tokens", _as_int),
    "gen_ai.openai.request.seed": ("gen_ai.request.seed", _as_int),
    "gen_ai.openai.request.response_format": ("gen_ai.output.type", _output_type),
    "gen_ai.openai.request.service_tier": ("openai.request.service_tier", _as_str),
    "gen_ai.openai.response.service_tier": ("openai.response.service_tier", _as_str),
    "gen_ai.openai.response.system_fingerprint": ("openai.response.system_fingerprint", _as_str),
    # OpenLLMetry
    "gen_ai.openai.system_fingerprint": ("openai.response.system_fingerprint", _as_str),
    "llm.request.type": (OPERATION, lambda v: _OPERATIONS.get(v) if isinstance(v, str) else None),
    "llm.vendor": (PROVIDER, provider_name),
    "llm.request.model": (REQUEST_MODEL, _as_str),
    "llm.response.model": (RESPONSE_MODEL, _as_str),
    "llm.request.max_tokens": ("gen_ai.request.max_tokens", _as_int),
    "gen_ai.request.max_completion_tokens": ("gen_ai.request.max_tokens", _as_int),
    "llm.request.temperature": ("gen_ai.request.temperature", _as_float),
    "llm.request.top_p": ("gen_ai.request.top_p", _as_float),
    "llm.top_k": ("gen_ai.request.top_k", _as_float),
    "llm.frequency_penalty": ("gen_ai.request.frequency_penalty", _as_float),
    "llm.presence_penalty": ("gen_ai.request.presence_penalty", _as_float),
    "llm.chat.stop_sequences": ("gen_ai.request.stop_sequences", _as_strings),
    "gen_ai.request.n": ("gen_ai.request.choice.count", _as_int),
    "llm.is_streaming": ("gen_ai.request.stream", _as_bool),
    "gen_ai.is_streaming": ("gen_ai.request.stream", _as_bool),
    "llm.usage.prompt_tokens": ("gen_ai.usage.input_tokens", _as_int),
    "llm.usage.completion_tokens": ("gen_ai.usage.output_tokens", _as_int),
    "gen_ai.usage.cache_read_input_tokens": ("gen_ai.usage.cache_read.input_tokens", _as_int),
    "gen_ai.usage.cache_creation_input_tokens": ("gen_ai.usage.cache_creation.input_tokens", _as_int),
    "llm.usage.reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", _as_int),
    "gen_ai.usage.reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", _as_int),
    "llm.response.finish_reason": (FINISH_REASONS, _as_strings),
    "llm.response.stop_reason": (FINISH_REASONS, _as_strings),
    "gen_ai.response.finish_reason": (FINISH_REASONS, _as_strings),
    "gen_ai.response.stop_reason": (FINISH_REASONS, _as_strings),
    # OpenInference
    "llm.request.model_name": (REQUEST_MODEL, _as_str),
    "llm.response.model_name": (RESPONSE_MODEL, _as_str),
    "embedding.model_name": (REQUEST_MODEL, _as_str),
    "llm.token_count.prompt": ("gen_ai.usage.input_tokens", _as_int),
    "llm.token_count.completion": ("gen_ai.usage.output_tokens", _as_int),
    "llm.token_count.prompt_details.cache_read": ("gen_ai.usage.cache_read.input_tokens", _as_int),
    "llm.token_count.prompt_details.cache_write": ("gen_ai.usage.cache_creation.input_tokens", _as_int),
    "llm.token_count.completion_details.reasoning": ("gen_ai.usage.reasoning.output_tokens", _as_int),
    "llm.finish_reason": (FINISH_REASONS, _as_strings),
}
# OpenInference keys with names too generic to claim without `openinference.span.kind`.
_OPENINFERENCE_RENAMES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "session.id": ("gen_ai.conversation.id", _as_str),
    "agent.name": ("gen_ai.agent.name", _as_str),
    "tool.name": ("gen_ai.tool.name", _as_str),
    "tool.description": ("gen_ai.tool.description", _as_str),
    "tool_call.id": ("gen_ai.tool.call.id", _as_str),
}
# Recognized originals with no single v1.41 counterpart: read, then dropped by remove_originals.
_CONSUMED = {"gen_ai.prompt", "gen_ai.completion", "gen_ai.openai.api_base", "llm.model_name", "llm.provider",
             "llm.system", "llm.invocation_parameters", "llm.prompts"}
# OpenInference's raw input and output: what LLM and TOOL spans carry there is now in gen_ai.*;
# on other span kinds (CHAIN, RETRIEVER, …) nothing replaces them, so they stay.
_OPENINFERENCE_IO = ("input.value", "input.mime_type", "output.value", "output.mime_type")
# Originals that carry content: gone under capture_content: none whatever remove_originals says.
_CONTENT_ORIGINALS = {"gen_ai.prompt", "gen_ai.completion", "llm.prompts", "input.value", "output.value",
                      "tool_call.function.arguments"}
_FLAT_CONTENT = {"gen_ai.prompt", "gen_ai.completion", "llm.input_messages", "llm.output_messages",
                 "llm.prompts", "llm.choices", "llm.tools", "llm.request.functions"}

# Flattened lists: `<prefix>.<index>[.<path>]`.
_FLAT = re.compile(r"(gen_ai\.prompt|gen_ai\.completion|llm\.input_messages|llm\.output_messages"
                   r"|llm\.request\.functions|llm\.tools|llm\.prompts|llm\.choices)\.(\d+)(?:\.(.+))?\Z")

# invocation parameters (OpenInference llm.invocation_parameters) → request attributes
_PARAMETERS = {
    "temperature": ("gen_ai.request.temperature", _as_float),
    "top_p": ("gen_ai.request.top_p", _as_float),
    "top_k": ("gen_ai.request.top_k", _as_float),
    "max_tokens": ("gen_ai.request.max_tokens", _as_int),
    "max_completion_tokens": ("gen_ai.request.max_tokens", _as_int),
    "max_output_tokens": ("gen_ai.request.max_tokens", _as_int),
    "seed": ("gen_ai.request.seed", _as_int),
    "frequency_penalty": ("gen_ai.request.frequency_penalty", _as_float),
    "presence_penalty": ("gen_ai.request.presence_penalty", _as_float),
    "stop": ("gen_ai.request.stop_sequences", _as_strings),
    "stop_sequences": ("gen_ai.request.stop_sequences", _as_strings),
    "n": ("gen_ai.request.choice.count", _as_int),
    "stream": ("gen_ai.request.stream", _as_bool),
    "response_format": ("gen_ai.output.type", _output_type),
    "model": (REQUEST_MODEL, _as_str),
}


# ---- messages from the older shapes ------------------------------------------------------------

def _content_parts(content: Any, provider: str | None) -> list[dict]:
    """Message content in whatever shape the source's provider uses: a string (maybe JSON text
    of a block list, as OpenLLMetry writes lists), OpenAI content parts, Anthropic blocks,
    Gemini parts."""
    if content is None:
        return []
    if isinstance(content, str):
        if content.startswith("["):
            parsed = _json(content)
            if isinstance(parsed, list) and parsed and all(isinstance(b, dict) for b in parsed):
                return _content_parts(parsed, provider)
        return [text_part(content)]
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return [text_part(content)]
    blocks = [b for b in content if isinstance(b, dict)]
    if blocks and not any("type" in b for b in blocks):
        return gemini_parts(blocks)  # Gemini parts have no type: {"text": …}, {"inline_data": …}
    if provider in ("anthropic", "aws.bedrock") or any(
            b.get("type") in ("tool_use", "tool_result", "thinking") or "source" in b for b in blocks):
        return anthropic_content_parts(content)
    return openai_content_parts(content)


def _tool_calls(calls: Any) -> list[dict]:
    """Tool calls as OpenAI writes them ({id, function: {name, arguments}}) or flattened by
    OpenLLMetry ({id, name, arguments})."""
    parts = []
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        parts.append(tool_call_part(call.get("id"), function.get("name"), function.get("arguments")))
    return parts


def _tool_result(content: Any) -> Any:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in content):
        return "".join(b["text"] for b in content)
    return content


def _message(role: Any, content: Any = None, tool_calls: Any = None, tool_call_id: Any = None,
             name: Any = None, provider: str | None = None, parts: list[dict] | None = None) -> dict:
    """A ChatMessage from a message's fields; `parts` when the content is in spec parts already."""
    role = role if isinstance(role, str) and role else "user"
    if role in ("tool", "function") or (tool_call_id is not None and role == "user"):
        return {"role": "tool", "parts": [tool_call_response_part(tool_call_id, _tool_result(content))]}
    parts = _content_parts(content, provider) if parts is None else parts
    message: dict[str, Any] = {"role": role, "parts": parts + _tool_calls(tool_calls)}
    if isinstance(name, str) and name:
        message["name"] = name
    return message


def _output(message: dict, finish_reason: Any) -> dict:
    """An input-shaped message as an OutputMessage. The schema requires a finish reason; when
    the source gave none, the message itself tells: a tool call, or a natural stop."""
    if finish_reason is None:
        finish_reason = "tool_calls" if any(p.get("type") == "tool_call" for p in message["parts"]) else "stop"
    message["finish_reason"] = output_finish_reason(finish_reason)
    if message["role"] == "user":
        message["role"] = "assistant"
    return message


def _indexed(node: Any) -> list:
    """The values of a {"0": …, "1": …} node in index order (a list stays a list)."""
    if isinstance(node, list):
        return node
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted((k for k in node if k.isdigit()), key=int)]


def _set_path(tree: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        node = tree.get(key)
        if not isinstance(node, dict):
            node = tree[key] = {}
        tree = node
    if not isinstance(tree.get(leaf), dict):
        tree[leaf] = value


def _openllmetry_message(node: dict, provider: str | None) -> dict:
    """gen_ai.prompt.{i}.* / gen_ai.completion.{i}.*: role, content (text, or JSON text of a
    block list), tool_calls.{j}.id/name/arguments, tool_call_id, function_call.*, and `user`
    for the prompt of a text completion."""
    calls = _indexed(node.get("tool_calls"))
    if isinstance(node.get("function_call"), dict):
        calls.append(node["function_call"])
    content = node.get("content", node.get("user"))
    role = node.get("role") or ("user" if "user" in node else None)
    return _message(role, content, calls, node.get("tool_call_id"), node.get("name"), provider)


def _openinference_message(node: dict, provider: str | None) -> dict:
    """llm.{input,output}_messages.{i}.message.*: role, content or contents.{j}.message_content.*,
    tool_calls.{j}.tool_call.{id,function.name,function.arguments}, tool_call_id, name,
    function_call_name / function_call_arguments_json."""
    m = node.get("message") if isinstance(node.get("message"), dict) else {}
    parts = None
    if m.get("content") is None and "contents" in m:
        parts = [_openinference_content(c.get("message_content") if isinstance(c, dict) else None)
                 for c in _indexed(m.get("contents"))]
    calls = [c.get("tool_call") for c in _indexed(m.get("tool_calls")) if isinstance(c, dict)]
    calls = [c for c in calls if isinstance(c, dict)]
    if m.get("function_call_name"):
        calls.append({"name": m["function_call_name"], "arguments": m.get("function_call_arguments_json")})
    return _message(m.get("role"), m.get("content"), calls, m.get("tool_call_id"), m.get("name"), provider, parts)


def _openinference_content(c: Any) -> dict:
    """One message_content.{type, text, image.image.url, audio.audio.{url,mime_type}, …} as a part."""
    c = c if isinstance(c, dict) else {}
    kind = c.get("type")
    if kind in ("image", "audio", "video"):
        media = c.get(kind) if isinstance(c.get(kind), dict) else {}
        media = media.get(kind, media) if isinstance(media.get(kind), dict) else media  # image.image.url
        return media_part(media.get("url") or "", _as_str(media.get("mime_type")), kind)
    if kind == "reasoning":
        return reasoning_part(c.get("text", ""))
    if kind in ("text", None):
        return text_part(c.get("text", ""))
    return dict(c)  # document, tool_use …: kept under their own type (the schema's GenericPart)


def _tool_definition(value: Any) -> list[dict] | None:
    """One tool definition as OpenInference (JSON schema text of the provider's tool) or
    OpenLLMetry (name, description, parameters) records it; None when its JSON is bad."""
    tool = _structured(value) if isinstance(value, str) else value
    if tool is _NOT_JSON:
        return None
    if not isinstance(tool, dict):
        return []
    if "json_schema" in tool or "tool" in tool:  # llm.tools.{i}.tool.json_schema
        inner = tool.get("tool", tool)
        return _tool_definition(inner.get("json_schema") if isinstance(inner, dict) else None)
    if "input_schema" in tool:
        return anthropic_tool_definitions([tool])
    if "function" in tool:
        return openai_tool_definitions([tool])
    definition = {"type": tool.get("type", "function"), "name": tool.get("name")}
    if tool.get("description") is not None:
        definition["description"] = tool["description"]
    if tool.get("parameters") is not None:
        params = _structured(tool["parameters"]) if isinstance(tool["parameters"], str) else tool["parameters"]
        definition["parameters"] = tool["parameters"] if params is _NOT_JSON else params
    return [definition]


def _looks_json(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip()[:1] in ("[", "{")


def _messages_value(value: Any, provider: str | None) -> list[dict] | None:
    """The deprecated gen_ai.prompt / gen_ai.completion attribute: JSON text of OpenAI-style
    messages, or plain prompt text (JSON that does not parse is kept as text, see the callers)."""
    parsed = _structured(value)
    if isinstance(parsed, dict):
        parsed = [parsed]
    if isinstance(parsed, list):
        return [_message(m.get("role"), m.get("content"), m.get("tool_calls"), m.get("tool_call_id"),
                         m.get("name"), provider) if isinstance(m, dict) else _message("user", m, provider=provider)
                for m in parsed]
    return [_message("user", value, provider=provider)] if isinstance(value, str) and value else None


def _event_body(attrs: dict) -> Any:
    """A per-message span event's body: JSON in `gen_ai.event.content` (Azure SDKs, Semantic
    Kernel), or the event's own attributes."""
    if "gen_ai.event.content" in attrs:
        body = _structured(attrs["gen_ai.event.content"])
        return body if body is not _NOT_JSON else {"content": attrs["gen_ai.event.content"]}
    body = {k: v for k, v in attrs.items() if not k.startswith("gen_ai.") and k != "event.name"}
    for key in ("message", "tool_calls"):  # structured fields that span-event attributes carry as JSON text
        if isinstance(body.get(key), str):
            parsed = _structured(body[key])
            if parsed is not _NOT_JSON:
                body[key] = parsed
    return body


def _message_event(role: str, body: Any, provider: str | None) -> dict:
    body = body if isinstance(body, dict) else {"content": body}
    return _message(body.get("role") or role, body.get("content"), body.get("tool_calls"),
                    body.get("id", body.get("tool_call_id")) if role == "tool" else None, None, provider)


def _choice_event(body: Any, provider: str | None) -> tuple[int, dict, Any]:
    """(index, OutputMessage, provider finish reason) of a gen_ai.choice body
    {index, finish_reason, message: {role, content, tool_calls}} (OpenLLMetry puts tool_calls
    next to message)."""
    body = body if isinstance(body, dict) else {"message": {"content": body}}
    message = body.get("message") if isinstance(body.get("message"), dict) else {"content": body.get("message")}
    calls = message.get("tool_calls") or body.get("tool_calls")
    finish = body.get("finish_reason")
    out = _output(_message(message.get("role") or "assistant", message.get("content"), calls, provider=provider),
                  finish)
    index = _as_int(body.get("index"))
    return (index if index is not None else 0), out, finish


def _split_system(messages: list[dict], provider: str | None) -> tuple[list[dict], list[dict]]:
    """(system instruction parts, the rest) for APIs that take system instructions apart."""
    if provider not in _SEPARATE_SYSTEM:
        return [], messages
    system = [p for m in messages if m["role"] == "system" for p in m["parts"]]
    return system, [m for m in messages if m["role"] != "system"]


# ---- spans ------------------------------------------------------------------------------------------

def _looks_genai(span: Span) -> bool:
    for kv in span.attributes:
        if kv.key.startswith(_GENAI_PREFIXES):
            return True
    return any(e.name.startswith("gen_ai.") for e in span.events)


def normalize_span(span: Span, config: Any) -> None:
    """Rewrite `span` in place to the v1.41 shape (see the module docstring). `config` has
    capture_content ("full" | "none"), remove_originals and overwrite. Never raises."""
    if not _looks_genai(span):
        return
    try:
        _SpanNormalizer(span, config).run()
    except Exception as exc:  # one odd span must not cost the batch
        update(span.attributes, {ERROR: f"normalize: {type(exc).__name__}: {exc}"})


class _SpanNormalizer:
    def __init__(self, span: Span, config: Any):
        self.span = span
        self.config = config
        self.attrs = as_dict(span.attributes)
        self.derived: dict[str, Any] = {}   # v1.41 key → value computed from older attributes; first wins
        self.consumed: set[str] = set()     # original keys recognized (dropped by remove_originals)
        self.consumed_events: list[int] = []
        self.errors: list[str] = []
        self.lifted_outputs: Any = None  # gen_ai.output.messages of a details span event
        self.openinference = "openinference.span.kind" in self.attrs

    def derive(self, key: str, value: Any) -> None:
        if value is not None and value != []:
            self.derived.setdefault(key, value)

    def provider(self) -> str | None:
        value = self.attrs.get(PROVIDER) if isinstance(self.attrs.get(PROVIDER), str) else None
        return value or self.derived.get(PROVIDER)

    def run(self) -> None:
        flat = self.read_attributes()
        self.read_openinference()
        self.read_flat(flat)
        self.read_old_content()
        self.read_events()
        self.finish()

    def read_attributes(self) -> dict[str, dict[int, dict]]:
        """Renames, and the flattened lists gathered into {prefix: {index: tree}}."""
        flat: dict[str, dict[int, dict]] = defaultdict(dict)
        renames = _RENAMES if not self.openinference else {**_RENAMES, **_OPENINFERENCE_RENAMES}
        for key, value in self.attrs.items():
            if key in renames:
                target, convert = renames[key]
                converted = convert(value)
                if converted is not None:  # a value that does not convert stays where it was
                    self.derive(target, converted)
                    self.consumed.add(key)
            elif key in _CONSUMED:
                self.consumed.add(key)
            elif (match := _FLAT.match(key)) is not None:
                prefix, index, path = match.groups()
                node = flat[prefix].setdefault(int(index), {})
                if path is None:
                    node["value"] = value
                else:
                    _set_path(node, path, value)
                self.consumed.add(key)
        base = self.attrs.get("gen_ai.openai.api_base")
        if isinstance(base, str) and "://" in base:  # OpenLLMetry: the client's base URL
            url = urlsplit(base)
            self.derive("server.address", url.hostname)
            try:
                self.derive("server.port", url.port or (443 if url.scheme == "https" else 80))
            except ValueError:
                pass
        return flat

    def read_openinference(self) -> None:
        a = self.attrs
        if not self.openinference and "llm.model_name" not in a and "llm.system" not in a:
            return
        kind = a.get("openinference.span.kind")
        operation = _OPENINFERENCE_OPERATIONS.get(kind.upper()) if isinstance(kind, str) else None
        if operation == "chat" and not any(k.startswith("llm.input_messages.") for k in a) and (
                "llm.prompts" in a or any(k.startswith("llm.prompts.") for k in a)):
            operation = "text_completion"
        self.derive(OPERATION, operation)
        if operation is not None:
            self.consumed.add("openinference.span.kind")
        if operation in ("chat", "text_completion", "execute_tool"):
            self.consumed.update(k for k in _OPENINFERENCE_IO if k in a)
        self.derive(PROVIDER, _openinference_provider(a.get("llm.provider"), a.get("llm.system")))
        params = _structured(a["llm.invocation_parameters"]) if "llm.invocation_parameters" in a else {}
        if params is _NOT_JSON:
            self.errors.append("llm.invocation_parameters is not JSON")
        elif isinstance(params, dict):
            for name, (target, convert) in _PARAMETERS.items():
                if name in params:
                    self.derive(target, convert(params[name]))
        model = _as_str(a.get("llm.model_name"))
        self.derive(REQUEST_MODEL, model)  # after the invocation parameters' `model`: that is the request's
        response = _structured(a["output.value"]) if isinstance(a.get("output.value"), str) else None
        if isinstance(response, dict):  # the raw response (or the last chunk) when the output is JSON
            self.derive("gen_ai.response.id", _as_str(response.get("id")))
            self.derive(RESPONSE_MODEL, _as_str(response.get("model")))
        if any(k.startswith("llm.output_messages.") for k in a) or "llm.token_count.completion" in a:
            self.derive(RESPONSE_MODEL, model)  # OpenInference sets llm.model_name from the response once it has one
        if operation == "execute_tool":  # a TOOL span: the call's arguments in, its result out
            arguments = a.get("tool_call.function.arguments", a.get("input.value"))
            self.derive(TOOL_ARGUMENTS, _structured_or_keep(arguments) if arguments is not None else None)
            self.derive(TOOL_RESULT, _structured_or_keep(a["output.value"]) if "output.value" in a else None)
            self.consumed.add("tool_call.function.arguments")

    def read_flat(self, flat: dict[str, dict[int, dict]]) -> None:
        provider = self.provider()
        prompts = [_openllmetry_message(n, provider) for _, n in sorted(flat.get("gen_ai.prompt", {}).items())]
        prompts += [_openinference_message(n, provider) for _, n in sorted(flat.get("llm.input_messages", {}).items())]
        prompts += [_message("user", _prompt_text(n), provider=provider)
                    for _, n in sorted(flat.get("llm.prompts", {}).items())]
        if not prompts and isinstance(self.attrs.get("llm.prompts"), list):
            prompts = [_message("user", p, provider=provider) for p in self.attrs["llm.prompts"]]
        self.derive_input(prompts, provider)

        reasons = _as_strings(self.attrs.get(FINISH_REASONS)) or self.derived.get(FINISH_REASONS) or []
        outputs = []
        for i, node in sorted(flat.get("gen_ai.completion", {}).items()):
            outputs.append(_output(_openllmetry_message(node, provider), node.get("finish_reason")))
        for i, node in enumerate(n for _, n in sorted(flat.get("llm.output_messages", {}).items())):
            finish = reasons[i] if i < len(reasons) else (reasons[0] if len(reasons) == 1 else None)
            outputs.append(_output(_openinference_message(node, provider), finish))
        for i, node in enumerate(n for _, n in sorted(flat.get("llm.choices", {}).items())):
            text = node.get("completion", {}).get("text") if isinstance(node.get("completion"), dict) else None
            outputs.append(_output(_message("assistant", text), reasons[i] if i < len(reasons) else None))
        self.derive(OUTPUT_MESSAGES, outputs)
        if outputs and flat.get("gen_ai.completion"):
            self.derive(FINISH_REASONS, [n.get("finish_reason") for _, n in sorted(flat["gen_ai.completion"].items())
                                         if isinstance(n.get("finish_reason"), str)])

        tools = []
        for prefix in ("llm.request.functions", "llm.tools"):
            for i, node in sorted(flat.get(prefix, {}).items()):
                definitions = _tool_definition(node)
                if definitions is None:
                    self.errors.append(f"{prefix}.{i} is not JSON")
                tools += definitions or []
        self.derive(TOOL_DEFINITIONS, tools)

    def derive_input(self, messages: list[dict], provider: str | None) -> None:
        system, history = _split_system(messages, provider)
        self.derive(SYSTEM_INSTRUCTIONS, system)
        self.derive(INPUT_MESSAGES, history)

    def read_old_content(self) -> None:
        provider = self.provider()
        for key in ("gen_ai.prompt", "gen_ai.completion"):
            if _looks_json(self.attrs.get(key)) and _structured(self.attrs[key]) is _NOT_JSON:
                self.errors.append(f"{key} is not JSON")
        if "gen_ai.prompt" in self.attrs:
            self.derive_input(_messages_value(self.attrs["gen_ai.prompt"], provider) or [], provider)
        if "gen_ai.completion" in self.attrs:
            reasons = _as_strings(self.attrs.get(FINISH_REASONS)) or []
            outputs = _messages_value(self.attrs["gen_ai.completion"], provider) or []
            self.derive(OUTPUT_MESSAGES, [_output(m, reasons[i] if i < len(reasons) else None)
                                          for i, m in enumerate(outputs)])

    def read_events(self) -> None:
        provider = self.provider()
        inputs: list[dict] = []
        choices: list[tuple[int, dict, Any]] = []
        for i, event in enumerate(self.span.events):
            name = event.name
            if name not in _CONTENT_EVENTS and name != DETAILS_EVENT:
                continue
            attrs = as_dict(event.attributes)
            self.consumed_events.append(i)
            if name == DETAILS_EVENT:  # v1.41 details as a span event: its attributes belong on the span
                for key, value in attrs.items():
                    if key in _RENAMES:
                        target, convert = _RENAMES[key]
                        self.derive(target, convert(value))
                    elif key.startswith(("gen_ai.", "openai.", "error.")):
                        self.derive(key, _structured_or_keep(value) if key in CONTENT else value)
                if OUTPUT_MESSAGES in attrs:
                    self.lifted_outputs = attrs[OUTPUT_MESSAGES]
            elif name == PROMPT_EVENT:
                self.derive_input(_messages_value(attrs.get("gen_ai.prompt"), provider) or [], provider)
            elif name == COMPLETION_EVENT:
                outputs = _messages_value(attrs.get("gen_ai.completion"), provider) or []
                self.derive(OUTPUT_MESSAGES, [_output(m, None) for m in outputs])
            elif name == CHOICE_EVENT:
                choices.append(_choice_event(_event_body(attrs), provider))
            else:
                inputs.append(_message_event(MESSAGE_EVENTS[name], _event_body(attrs), provider))
            if PROVIDER not in self.derived:
                self.derive(PROVIDER, provider_name(attrs.get("gen_ai.system")) or attrs.get(PROVIDER))
        self.derive_input(inputs, provider)
        if choices:
            choices.sort(key=lambda c: c[0])
            self.derive(OUTPUT_MESSAGES, [c[1] for c in choices])
            self.derive(FINISH_REASONS, [c[2] for c in choices if isinstance(c[2], str)])

    def native_content(self) -> dict[str, Any]:
        """v1.41 content attributes already on the span: structured values become JSON text;
        JSON text that does not parse stays and is reported."""
        fixed = {}
        for key in CONTENT:
            value = self.attrs.get(key)
            if value is None:
                continue
            parsed = _structured(value)
            if parsed is _NOT_JSON:
                self.errors.append(f"{key} is not JSON")
            elif not isinstance(value, str):
                fixed[key] = to_json(parsed)
        return fixed

    def finish(self) -> None:
        capture = self.config.capture_content != "none"
        overwrite = bool(self.config.overwrite)
        writes = self.native_content() if capture else {}
        if FINISH_REASONS not in self.attrs and FINISH_REASONS not in self.derived:
            # Only the source's own output messages: the finish reasons this module infers for
            # messages that came without one must not pass for the provider's.
            self.derive(FINISH_REASONS, _finish_reasons_of(self.attrs.get(OUTPUT_MESSAGES, self.lifted_outputs)))
        for key, value in self.derived.items():
            if key in self.attrs and not overwrite:
                continue
            if key in CONTENT or key in (TOOL_ARGUMENTS, TOOL_RESULT):
                if not capture:
                    continue
                if key in CONTENT or not isinstance(value, (str, int, float, bool)):
                    value = value if isinstance(value, str) else to_json(value)
            writes[key] = value
        if self.errors:
            earlier = self.attrs.get(ERROR)
            writes[ERROR] = "; ".join(([earlier] if isinstance(earlier, str) and earlier else []) + self.errors)
        foreign = bool(self.consumed or self.consumed_events)
        if writes:
            update(self.span.attributes, writes)

        drop_originals = bool(self.config.remove_originals)
        doomed_events = set(self.consumed_events) if drop_originals else set()
        if not capture:
            remove(self.span.attributes, _carries_content)
            doomed_events |= {i for i, e in enumerate(self.span.events) if e.name in _CONTENT_EVENTS}
            for event in self.span.events:
                if event.name == DETAILS_EVENT:
                    remove(event.attributes, CONTENT.__contains__)
        if drop_originals:
            remove(self.span.attributes, self.consumed.__contains__)
        for i in sorted(doomed_events, reverse=True):
            del self.span.events[i]
        if foreign:
            self.rename()

    def rename(self) -> None:
        """A vendor-named span ("openai.chat", "ChatCompletion") gets the spec's name:
        `{operation} {model}` for inference, `execute_tool {tool}`, `invoke_agent {agent}`."""
        current = as_dict(a for a in self.span.attributes if a.key in _NAMED_BY)
        operation = current.get(OPERATION)
        if operation in INFERENCE_OPERATIONS:
            target = current.get(REQUEST_MODEL)
        elif operation == "execute_tool":
            target = current.get("gen_ai.tool.name")
        elif operation == "invoke_agent":
            target = current.get("gen_ai.agent.name")
        else:
            return
        self.span.name = f"{operation} {target}" if isinstance(target, str) and target else operation


def _structured_or_keep(value: Any) -> Any:
    parsed = _structured(value)
    return value if parsed is _NOT_JSON else parsed


def _prompt_text(node: dict) -> Any:
    """llm.prompts.{i} (a string) or llm.prompts.{i}.prompt.text."""
    if "value" in node:
        return node["value"]
    prompt = node.get("prompt")
    return prompt.get("text") if isinstance(prompt, dict) else None


def _finish_reasons_of(outputs: Any) -> list[str] | None:
    """gen_ai.response.finish_reasons from the output messages, for sources that only give them
    there (openai-v2 when streaming). The messages carry the schema's words, the best left."""
    parsed = _structured(outputs) if outputs is not None else None
    if not isinstance(parsed, list):
        return None
    reasons = [m.get("finish_reason") for m in parsed if isinstance(m, dict)]
    return reasons if reasons and all(isinstance(r, str) for r in reasons) else None


def _carries_content(key: str) -> bool:
    if key in _CONTENT_ORIGINALS or key in CONTENT or key in (TOOL_ARGUMENTS, TOOL_RESULT):
        return True
    match = _FLAT.match(key)
    return match is not None and match.group(1) in _FLAT_CONTENT


# ---- logs ---------------------------------------------------------------------------------------

def _event_name(record: LogRecord) -> str:
    return record.event_name or next((kv.value.string_value for kv in record.attributes if kv.key == "event.name"), "")


def normalize_logs(request: ExportLogsServiceRequest, config: Any) -> None:
    """The deprecated per-message events of one model call (same trace and span id; without
    ids, a run of messages and the choices after them in one scope) become one
    `gen_ai.client.inference.operation.details` record, appended to the scope of the call's
    first event. v1.41 details records get the attribute renames and structured content.
    Never raises: a group that cannot be read is marked and left as it was."""
    capture = config.capture_content != "none"
    drop_originals = bool(config.remove_originals) or not capture
    groups: dict[tuple, list[tuple[Any, int, LogRecord]]] = {}
    for rl in request.resource_logs:
        for scope in rl.scope_logs:
            runs = 0  # calls without span context, told apart by position
            last: tuple | None = None  # the group of the previous message event in this scope
            last_was_choice = False
            for i, record in enumerate(scope.log_records):
                name = _event_name(record)
                if name == DETAILS_EVENT:
                    _normalize_details(record, capture, bool(config.remove_originals))
                    continue
                if name not in MESSAGE_EVENTS and name != CHOICE_EVENT:
                    continue
                is_choice = name == CHOICE_EVENT
                if record.span_id:
                    key: tuple = (record.trace_id, record.span_id)
                elif last is not None and (is_choice or (not last_was_choice and last[0] == "run")):
                    # choices follow their call's messages (OpenLLMetry emits a stream's choice
                    # after the span has ended, without its context); messages follow each other
                    key = last
                else:
                    runs += 1
                    key = ("run", id(scope), runs)
                groups.setdefault(key, []).append((scope, i, record))
                last, last_was_choice = key, is_choice
    doomed: dict[int, tuple[Any, set[int]]] = {}
    for members in groups.values():
        scope = members[0][0]
        try:
            details = _details_record(members, capture)
        except Exception as exc:  # never raise for one odd call
            for _, _, record in members:
                update(record.attributes, {ERROR: f"normalize: {type(exc).__name__}: {exc}"})
            continue
        scope.log_records.add().CopyFrom(details)
        if drop_originals:
            for member_scope, i, _ in members:
                doomed.setdefault(id(member_scope), (member_scope, set()))[1].add(i)
    for scope, indexes in doomed.values():
        for i in sorted(indexes, reverse=True):
            del scope.log_records[i]


def _normalize_details(record: LogRecord, capture: bool, drop_originals: bool) -> None:
    """A v1.41 details record: renames, and content as structured values (or none)."""
    attrs = as_dict(record.attributes)
    writes: dict[str, Any] = {}
    errors = []
    for key, value in attrs.items():
        if key in _RENAMES and (converted := _RENAMES[key][1](value)) is not None:
            target = _RENAMES[key][0]
            if target not in attrs:
                writes[target] = converted
            if drop_originals:
                writes[key] = None
        elif key in CONTENT or key in (TOOL_ARGUMENTS, TOOL_RESULT):
            if not capture:
                writes[key] = None
            elif key in CONTENT and isinstance(value, str):
                parsed = _structured(value)
                if parsed is _NOT_JSON:
                    errors.append(f"{key} is not JSON")
                else:
                    writes[key] = parsed
    if errors:
        writes[ERROR] = "; ".join(errors)
    if writes:
        update(record.attributes, writes)


def _details_record(members: list[tuple[Any, int, LogRecord]], capture: bool) -> LogRecord:
    first = members[0][2]
    provider = None
    for _, _, record in members:
        a = as_dict(record.attributes)
        provider = provider or provider_name(a.get("gen_ai.system")) or _as_str(a.get(PROVIDER))
    inputs: list[dict] = []
    choices: list[tuple[int, dict, Any]] = []
    for _, _, record in members:
        name = _event_name(record)
        body = to_python(record.body)
        if isinstance(body, str):  # some SDKs put the body's JSON text in a string body
            parsed = _structured(body)
            body = parsed if isinstance(parsed, dict) else {"content": body}
        if name == CHOICE_EVENT:
            choices.append(_choice_event(body, provider))
        else:
            inputs.append(_message_event(MESSAGE_EVENTS[name], body, provider))
    system, history = _split_system(inputs, provider)
    choices.sort(key=lambda c: c[0])
    attributes: dict[str, Any] = {PROVIDER: provider}
    if capture:
        attributes.update({SYSTEM_INSTRUCTIONS: system or None, INPUT_MESSAGES: history or None,
                           OUTPUT_MESSAGES: [c[1] for c in choices] or None})
    attributes[FINISH_REASONS] = [c[2] for c in choices if isinstance(c[2], str)] or None

    details = LogRecord(time_unix_nano=max(r.time_unix_nano for _, _, r in members),
                        observed_time_unix_nano=max(r.observed_time_unix_nano for _, _, r in members),
                        severity_number=first.severity_number, severity_text=first.severity_text,
                        trace_id=first.trace_id, span_id=first.span_id, flags=first.flags,
                        event_name=DETAILS_EVENT)
    if not first.event_name:  # the source names events by attribute: so does the new record
        attributes["event.name"] = DETAILS_EVENT
    for key, value in attributes.items():
        if value is not None:
            set_value(details.attributes.add(key=key).value, value)
    return details

