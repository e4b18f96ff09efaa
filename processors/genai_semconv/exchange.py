"""One captured HTTP exchange (request and response JSON) → GenAI span attributes, v1.41.0.

`map_exchange` takes an `Exchange` (what the span carried, bodies already decoded) and
returns a `Mapping`: the gen_ai.* / openai.* attributes to set, the span name, the error
found (HTTP status, provider error body) and the problems met, or None when the exchange
is not a model call at all. It never raises on odd bodies: a field of the wrong type is
skipped, a missing body leaves its attributes out and is named in `problems`.

Choices made where the spec leaves room (docs/genai.md lists them for users):
- gen_ai.response.finish_reasons keeps the provider's own words (`end_turn`, `tool_calls`,
  `STOP`), as opentelemetry-instrumentation-openai-v2 does for OpenAI; the output messages'
  finish_reason uses the schema's enum (see messages.output_finish_reason).
- usage follows the spec's arithmetic: input tokens include cached ones (Anthropic's three
  counters are added); output tokens include reasoning ones (Gemini's thoughtsTokenCount is
  added to candidatesTokenCount, which leaves thoughts out).
- error.type is the provider's error code or type (`rate_limit_exceeded`,
  `overloaded_error`, `RESOURCE_EXHAUSTED`), else the HTTP status code.
Cost: linear in the size of the bodies (one walk over the messages when content is captured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from llmtap.processors.genai_semconv import messages as m
from llmtap.processors.genai_semconv import providers as p


@dataclass
class Exchange:
    method: str
    path: str  # without the query
    host: str
    port: int | None
    status: int | None
    request: Any  # the decoded JSON, or None
    response: Any
    request_headers: dict[str, list[str]] = field(default_factory=dict)
    response_headers: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # met while decoding the bodies


@dataclass
class Mapping:
    api: p.Api
    provider: str
    attributes: dict[str, Any]
    span_name: str
    error_type: str | None = None
    error_message: str | None = None
    problems: list[str] = field(default_factory=list)


def map_exchange(x: Exchange, capture_content: bool = True) -> Mapping | None:
    api = p.detect_api(x.method, x.path, x.request, x.response)
    if api is None:
        return None
    provider = p.detect_provider(api, x.host, x.port, x.path, x.request_headers, x.response_headers)
    request = x.request if isinstance(x.request, dict) else {}
    error = provider_error(x.response)
    response = x.response if isinstance(x.response, dict) and error is None else {}
    out: dict[str, Any] = {"gen_ai.operation.name": api.operation, "gen_ai.provider.name": provider}
    _MAPPERS[api.name](request, response, out, capture_content, api)
    if provider == "openai" and api.family == "openai":
        _openai_extras(api, request, response, out)
    model = out.get("gen_ai.request.model")
    result = Mapping(api, provider, {k: v for k, v in out.items() if v is not None},
                     f"{api.operation} {model}" if model else api.operation, problems=list(x.problems))
    failed_status = x.status is not None and x.status >= 400
    if error is not None:
        result.error_type, result.error_message = error
        # An error body without a type: the status code, or the spec's fallback when the status
        # said success (gateways that answer 200 with an error object).
        result.error_type = result.error_type or (str(x.status) if failed_status else "_OTHER")
    elif failed_status:
        result.error_type = str(x.status)
    return result


# ---- values of the right type, or None --------------------------------------------------------

def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _strs(v: Any) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and v and all(isinstance(s, str) for s in v):
        return v
    return None


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _pick(d: dict, *names: str) -> Any:
    """The first of several spellings present (Gemini JSON accepts camelCase and snake_case)."""
    for name in names:
        if d.get(name) is not None:
            return d[name]
    return None


def _content(out: dict, system: list | None, inputs: list | None, outputs: list | None, tools: list | None) -> None:
    if system:
        out["gen_ai.system_instructions"] = m.to_json(system)
    if inputs:
        out["gen_ai.input.messages"] = m.to_json(inputs)
    if outputs:
        out["gen_ai.output.messages"] = m.to_json(outputs)
    if tools:
        out["gen_ai.tool.definitions"] = m.to_json(tools)


# ---- provider error bodies ----------------------------------------------------------------------

def provider_error(body: Any) -> tuple[str | None, str | None] | None:
    """(error type, message) of a provider's error body, or None when the body is no error.

    OpenAI and compatibles: {"error": {"type", "code", "message"}} (code is the finer one:
    rate_limit_exceeded vs the type `requests`); Anthropic: {"type": "error", "error": {"type",
    "message"}}; Gemini: {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message"}};
    vLLM: {"object": "error", "type", "message"}; Ollama: {"error": "message"} (no type)."""
    if isinstance(body, list) and body and isinstance(body[0], dict) and "error" in body[0]:
        body = body[0]  # Gemini's JSON-array stream form
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        kind = code if isinstance(code, str) and code and not code.isdigit() else None
        kind = kind or _str(error.get("status")) or _str(error.get("type"))
        return kind, _str(error.get("message"))
    if isinstance(error, str):
        return None, error
    if body.get("object") == "error":
        return _str(body.get("type")) or _str(body.get("code")), _str(body.get("message"))
    return None


# ---- output type --------------------------------------------------------------------------------

def _format_output_type(kind: Any) -> str | None:
    if kind in ("json_object", "json_schema", "json"):
        return "json"
    return _str(kind)


def _mime_output_type(mime: Any) -> str | None:
    if not isinstance(mime, str):
        return None
    if mime in ("application/json", "text/x.enum") or mime.endswith("+json"):
        return "json"
    if mime.startswith("text/"):
        return "text"
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/"):
        return "speech"
    return mime


# ---- OpenAI Chat Completions and compatibles --------------------------------------------------

def _openai_request_common(req: dict, out: dict) -> None:
    out["gen_ai.request.model"] = _str(req.get("model"))
    out["gen_ai.request.temperature"] = _float(req.get("temperature"))
    out["gen_ai.request.top_p"] = _float(req.get("top_p"))
    out["gen_ai.request.top_k"] = _float(req.get("top_k"))  # vLLM, llama.cpp, OpenRouter accept it
    out["gen_ai.request.frequency_penalty"] = _float(req.get("frequency_penalty"))
    out["gen_ai.request.presence_penalty"] = _float(req.get("presence_penalty"))
    out["gen_ai.request.seed"] = _int(req.get("seed"))
    out["gen_ai.request.stop_sequences"] = _strs(req.get("stop"))
    n = _int(req.get("n"))
    out["gen_ai.request.choice.count"] = n if n is not None and n != 1 else None
    out["gen_ai.request.stream"] = bool(req.get("stream")) if req else None


def _openai_usage(usage: Any, out: dict) -> None:
    usage = _dict(usage)
    out["gen_ai.usage.input_tokens"] = _int(usage.get("prompt_tokens"))
    out["gen_ai.usage.output_tokens"] = _int(usage.get("completion_tokens"))
    prompt_details = _dict(usage.get("prompt_tokens_details"))
    cached = _int(prompt_details.get("cached_tokens"))
    if cached is None:
        cached = _int(usage.get("prompt_cache_hit_tokens"))  # DeepSeek
    out["gen_ai.usage.cache_read.input_tokens"] = cached
    out["gen_ai.usage.cache_creation.input_tokens"] = _int(
        _pick(prompt_details, "cache_write_tokens", "cache_creation_input_tokens"))
    out["gen_ai.usage.reasoning.output_tokens"] = _int(
        _dict(usage.get("completion_tokens_details")).get("reasoning_tokens"))


def _response_common(resp: dict, out: dict) -> None:
    out["gen_ai.response.id"] = _str(resp.get("id"))
    out["gen_ai.response.model"] = _str(resp.get("model"))


def _choices(resp: dict) -> list[dict]:
    choices = [c for c in resp.get("choices") or [] if isinstance(c, dict)]
    return sorted(choices, key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0)


def _openai_chat(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    _openai_request_common(req, out)
    out["gen_ai.request.max_tokens"] = _int(_pick(req, "max_completion_tokens", "max_tokens"))
    fmt = req.get("response_format")
    output_type = _format_output_type(fmt.get("type") if isinstance(fmt, dict) else fmt)
    if output_type is None and isinstance(req.get("modalities"), list) and "audio" in req["modalities"]:
        output_type = "speech"
    out["gen_ai.output.type"] = output_type
    _response_common(resp, out)
    choices = _choices(resp)
    if choices:
        out["gen_ai.response.finish_reasons"] = [c.get("finish_reason") or "error" for c in choices]
    _openai_usage(resp.get("usage"), out)
    if content:
        tools = req.get("tools") if req.get("tools") is not None else req.get("functions")
        _content(out, None, m.openai_chat_messages(req.get("messages")),
                 m.openai_chat_output(choices) if choices else None, m.openai_tool_definitions(tools))


def _openai_completions(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    _openai_request_common(req, out)
    out["gen_ai.request.max_tokens"] = _int(req.get("max_tokens"))
    _response_common(resp, out)
    choices = _choices(resp)
    if choices:
        out["gen_ai.response.finish_reasons"] = [c.get("finish_reason") or "error" for c in choices]
    _openai_usage(resp.get("usage"), out)
    if content:
        _content(out, None, m.completions_prompt_messages(req.get("prompt")),
                 m.completions_output(choices) if choices else None, None)


def _openai_embeddings(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    out["gen_ai.request.model"] = _str(req.get("model"))
    fmt = _str(req.get("encoding_format"))
    out["gen_ai.request.encoding_formats"] = [fmt] if fmt else None
    dimensions = _int(req.get("dimensions"))
    data = resp.get("data")
    if dimensions is None and isinstance(data, list) and data and isinstance(data[0], dict) \
            and isinstance(data[0].get("embedding"), list):
        dimensions = len(data[0]["embedding"])
    out["gen_ai.embeddings.dimension.count"] = dimensions
    out["gen_ai.response.model"] = _str(resp.get("model"))
    out["gen_ai.usage.input_tokens"] = _int(_dict(resp.get("usage")).get("prompt_tokens"))


# ---- OpenAI Responses API ---------------------------------------------------------------------

def _responses_finish(resp: dict) -> tuple[str | None, str | None]:
    """(gen_ai.response.finish_reasons value, output message finish reason). The API has no
    finish reason, only a status: `completed` is `stop` (as openai-v2 reports it); an incomplete
    response gives its reason (`max_output_tokens`, `content_filter`); failed/cancelled as is."""
    status = resp.get("status")
    if status == "completed":
        calls = any(isinstance(i, dict) and i.get("type") in ("function_call", "custom_tool_call")
                    for i in resp.get("output") or [])
        return "stop", "tool_call" if calls else "stop"
    if status == "incomplete":
        reason = _str(_dict(resp.get("incomplete_details")).get("reason")) or "incomplete"
        return reason, m.output_finish_reason(reason)
    if isinstance(status, str) and status in ("failed", "cancelled"):
        return status, "error"
    return None, None


def _openai_responses(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    out["gen_ai.request.model"] = _str(req.get("model"))
    out["gen_ai.request.max_tokens"] = _int(req.get("max_output_tokens"))
    out["gen_ai.request.temperature"] = _float(req.get("temperature"))
    out["gen_ai.request.top_p"] = _float(req.get("top_p"))
    out["gen_ai.request.stream"] = bool(req.get("stream")) if req else None
    out["gen_ai.output.type"] = _format_output_type(_dict(_dict(req.get("text")).get("format")).get("type"))
    conversation = resp.get("conversation") or req.get("conversation")
    out["gen_ai.conversation.id"] = _str(conversation) or _str(_dict(conversation).get("id"))
    _response_common(resp, out)
    finish, message_finish = _responses_finish(resp)
    out["gen_ai.response.finish_reasons"] = [finish] if finish else None
    usage = _dict(resp.get("usage"))
    out["gen_ai.usage.input_tokens"] = _int(usage.get("input_tokens"))
    out["gen_ai.usage.output_tokens"] = _int(usage.get("output_tokens"))
    out["gen_ai.usage.cache_read.input_tokens"] = _int(_dict(usage.get("input_tokens_details")).get("cached_tokens"))
    out["gen_ai.usage.reasoning.output_tokens"] = _int(
        _dict(usage.get("output_tokens_details")).get("reasoning_tokens"))
    if content:
        instructions = req.get("instructions")
        if isinstance(instructions, list):  # a list of input items (a reused prompt) is allowed too
            system = [part for message in m.responses_input_messages(instructions) for part in message["parts"]]
        else:
            system = [m.text_part(instructions)] if isinstance(instructions, str) and instructions else None
        outputs = m.responses_output(resp.get("output"), message_finish) if resp else None
        _content(out, system, m.responses_input_messages(req.get("input")), outputs,
                 m.responses_tool_definitions(req.get("tools")))


def _openai_extras(api: p.Api, req: dict, resp: dict, out: dict) -> None:
    """openai.* attributes, only on spans whose provider is openai (the spec keeps provider-specific
    attributes to their provider)."""
    if api.name in (p.OPENAI_CHAT, p.OPENAI_RESPONSES):
        out["openai.api.type"] = "chat_completions" if api.name == p.OPENAI_CHAT else "responses"
    tier = _str(req.get("service_tier"))
    out["openai.request.service_tier"] = tier if tier != "auto" else None
    out["openai.response.service_tier"] = _str(resp.get("service_tier"))
    out["openai.response.system_fingerprint"] = _str(resp.get("system_fingerprint"))


# ---- Anthropic Messages -------------------------------------------------------------------------

def _anthropic_messages(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    out["gen_ai.request.model"] = _str(req.get("model")) or api.path_model
    out["gen_ai.request.max_tokens"] = _int(req.get("max_tokens"))
    out["gen_ai.request.temperature"] = _float(req.get("temperature"))
    out["gen_ai.request.top_p"] = _float(req.get("top_p"))
    out["gen_ai.request.top_k"] = _float(req.get("top_k"))
    out["gen_ai.request.stop_sequences"] = _strs(req.get("stop_sequences"))
    out["gen_ai.request.stream"] = bool(req.get("stream")) or api.streaming_path if req else None
    fmt = _dict(req.get("output_format")) or _dict(_dict(req.get("output_config")).get("format"))
    out["gen_ai.output.type"] = _format_output_type(fmt.get("type"))
    _response_common(resp, out)
    if resp.get("stop_reason"):
        out["gen_ai.response.finish_reasons"] = [str(resp["stop_reason"])]
    usage = _dict(resp.get("usage"))
    fresh = _int(usage.get("input_tokens"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_creation = _int(usage.get("cache_creation_input_tokens"))
    if fresh is not None:
        # The spec: Anthropic's input_tokens leaves the cached tokens out; add them.
        out["gen_ai.usage.input_tokens"] = fresh + (cache_read or 0) + (cache_creation or 0)
    out["gen_ai.usage.cache_read.input_tokens"] = cache_read
    out["gen_ai.usage.cache_creation.input_tokens"] = cache_creation
    out["gen_ai.usage.output_tokens"] = _int(usage.get("output_tokens"))
    out["gen_ai.usage.reasoning.output_tokens"] = _int(_dict(usage.get("output_tokens_details")).get("thinking_tokens"))
    if content:
        outputs = m.anthropic_output(resp.get("content"), resp.get("stop_reason")) if resp.get("content") is not None \
            else None
        _content(out, m.anthropic_system(req.get("system")), m.anthropic_messages(req.get("messages")), outputs,
                 m.anthropic_tool_definitions(req.get("tools")))


# ---- Google Gemini --------------------------------------------------------------------------------

def _gemini_generate(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    model = api.path_model or _str(req.get("model"))
    out["gen_ai.request.model"] = model.removeprefix("models/") if model else None
    config = _dict(_pick(req, "generationConfig", "generation_config"))
    out["gen_ai.request.max_tokens"] = _int(_pick(config, "maxOutputTokens", "max_output_tokens"))
    out["gen_ai.request.temperature"] = _float(config.get("temperature"))
    out["gen_ai.request.top_p"] = _float(_pick(config, "topP", "top_p"))
    out["gen_ai.request.top_k"] = _float(_pick(config, "topK", "top_k"))
    out["gen_ai.request.stop_sequences"] = _strs(_pick(config, "stopSequences", "stop_sequences"))
    out["gen_ai.request.seed"] = _int(config.get("seed"))
    out["gen_ai.request.frequency_penalty"] = _float(_pick(config, "frequencyPenalty", "frequency_penalty"))
    out["gen_ai.request.presence_penalty"] = _float(_pick(config, "presencePenalty", "presence_penalty"))
    count = _int(_pick(config, "candidateCount", "candidate_count"))
    out["gen_ai.request.choice.count"] = count if count is not None and count != 1 else None
    out["gen_ai.request.stream"] = api.streaming_path
    output_type = _mime_output_type(_pick(config, "responseMimeType", "response_mime_type"))
    modalities = _pick(config, "responseModalities", "response_modalities")
    if output_type is None and isinstance(modalities, list):
        upper = {str(x).upper() for x in modalities}
        output_type = "image" if "IMAGE" in upper else "speech" if "AUDIO" in upper else \
            "text" if "TEXT" in upper else None
    if output_type is None and _pick(config, "responseSchema", "response_schema", "responseJsonSchema") is not None:
        output_type = "json"
    out["gen_ai.output.type"] = output_type
    out["gen_ai.response.id"] = _str(_pick(resp, "responseId", "response_id"))
    out["gen_ai.response.model"] = _str(_pick(resp, "modelVersion", "model_version"))
    candidates = [c for c in resp.get("candidates") or [] if isinstance(c, dict)]
    reasons = [_str(_pick(c, "finishReason", "finish_reason")) for c in candidates]
    if reasons and all(reasons):
        out["gen_ai.response.finish_reasons"] = reasons
    usage = _dict(_pick(resp, "usageMetadata", "usage_metadata"))
    prompt = _int(_pick(usage, "promptTokenCount", "prompt_token_count"))
    tool_prompt = _int(_pick(usage, "toolUsePromptTokenCount", "tool_use_prompt_token_count"))
    if prompt is not None:
        # promptTokenCount already counts cached content; tool-use prompts are counted apart.
        out["gen_ai.usage.input_tokens"] = prompt + (tool_prompt or 0)
    out["gen_ai.usage.cache_read.input_tokens"] = _int(
        _pick(usage, "cachedContentTokenCount", "cached_content_token_count"))
    candidates_tokens = _int(_pick(usage, "candidatesTokenCount", "candidates_token_count"))
    thoughts = _int(_pick(usage, "thoughtsTokenCount", "thoughts_token_count"))
    if candidates_tokens is not None or thoughts is not None:
        # candidatesTokenCount leaves thoughts out; the spec's output tokens include reasoning.
        out["gen_ai.usage.output_tokens"] = (candidates_tokens or 0) + (thoughts or 0)
    out["gen_ai.usage.reasoning.output_tokens"] = thoughts
    if content:
        system = m.gemini_system(_pick(req, "systemInstruction", "system_instruction"))
        _content(out, system, m.gemini_contents(req.get("contents")),
                 m.gemini_output(candidates) if candidates else None, m.gemini_tool_definitions(req.get("tools")))


def _gemini_embed(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    model = api.path_model or _str(req.get("model"))
    out["gen_ai.request.model"] = model.removeprefix("models/") if model else None
    dims = _int(_pick(req, "outputDimensionality", "output_dimensionality"))
    if dims is None and isinstance(req.get("requests"), list) and req["requests"]:
        dims = _int(_pick(_dict(req["requests"][0]), "outputDimensionality", "output_dimensionality"))
    embedding = _dict(resp.get("embedding")) or _dict((resp.get("embeddings") or [{}])[0])
    if dims is None and isinstance(embedding.get("values"), list):
        dims = len(embedding["values"])
    out["gen_ai.embeddings.dimension.count"] = dims
    usage = _dict(_pick(resp, "usageMetadata", "usage_metadata"))
    out["gen_ai.usage.input_tokens"] = _int(_pick(usage, "promptTokenCount", "prompt_token_count"))


# ---- Ollama -----------------------------------------------------------------------------------------

def _ollama_request(req: dict, out: dict) -> None:
    out["gen_ai.request.model"] = _str(req.get("model"))
    options = _dict(req.get("options"))
    out["gen_ai.request.max_tokens"] = _int(options.get("num_predict"))
    out["gen_ai.request.temperature"] = _float(options.get("temperature"))
    out["gen_ai.request.top_p"] = _float(options.get("top_p"))
    out["gen_ai.request.top_k"] = _float(options.get("top_k"))
    out["gen_ai.request.seed"] = _int(options.get("seed"))
    out["gen_ai.request.stop_sequences"] = _strs(options.get("stop"))
    out["gen_ai.request.frequency_penalty"] = _float(options.get("frequency_penalty"))
    out["gen_ai.request.presence_penalty"] = _float(options.get("presence_penalty"))
    # Ollama streams unless told not to.
    out["gen_ai.request.stream"] = req.get("stream") is not False if req else None
    fmt = req.get("format")
    out["gen_ai.output.type"] = "json" if fmt == "json" or isinstance(fmt, dict) else None


def _ollama_response(resp: dict, out: dict) -> None:
    out["gen_ai.response.model"] = _str(resp.get("model"))
    if _str(resp.get("done_reason")):
        out["gen_ai.response.finish_reasons"] = [resp["done_reason"]]
    out["gen_ai.usage.input_tokens"] = _int(resp.get("prompt_eval_count"))
    out["gen_ai.usage.output_tokens"] = _int(resp.get("eval_count"))


def _ollama_chat(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    _ollama_request(req, out)
    _ollama_response(resp, out)
    if content:
        outputs = m.ollama_message_output(resp.get("message"), resp.get("done_reason")) \
            if isinstance(resp.get("message"), dict) else None
        _content(out, None, m.ollama_chat_messages(req.get("messages")), outputs,
                 m.openai_tool_definitions(req.get("tools")))


def _ollama_generate(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    _ollama_request(req, out)
    _ollama_response(resp, out)
    if content:
        system, inputs = m.ollama_generate_input(req)
        outputs = m.ollama_generate_output(resp) if "response" in resp else None
        _content(out, system, inputs, outputs, None)


def _ollama_embed(req: dict, resp: dict, out: dict, content: bool, api: p.Api) -> None:
    out["gen_ai.request.model"] = _str(req.get("model"))
    out["gen_ai.response.model"] = _str(resp.get("model"))
    embeddings = resp.get("embeddings")
    vector = embeddings[0] if isinstance(embeddings, list) and embeddings else resp.get("embedding")
    dims = _int(_dict(req.get("options")).get("dimensions")) or _int(req.get("dimensions"))
    out["gen_ai.embeddings.dimension.count"] = dims or (len(vector) if isinstance(vector, list) else None)
    out["gen_ai.usage.input_tokens"] = _int(resp.get("prompt_eval_count"))


_MAPPERS: dict[str, Callable[[dict, dict, dict, bool, p.Api], None]] = {
    p.OPENAI_CHAT: _openai_chat,
    p.OPENAI_COMPLETIONS: _openai_completions,
    p.OPENAI_RESPONSES: _openai_responses,
    p.OPENAI_EMBEDDINGS: _openai_embeddings,
    p.ANTHROPIC_MESSAGES: _anthropic_messages,
    p.GEMINI_GENERATE: _gemini_generate,
    p.GEMINI_EMBED: _gemini_embed,
    p.OLLAMA_CHAT: _ollama_chat,
    p.OLLAMA_GENERATE: _ollama_generate,
    p.OLLAMA_EMBED: _ollama_embed,
}
