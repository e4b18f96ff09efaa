"""Provider message formats → the message JSON of the GenAI semantic conventions v1.41.0.

Every function takes the provider's decoded JSON (dicts, lists, strings, as the API
sends or receives them) and returns plain Python data that follows the spec's
schemas: gen-ai-input-messages.json (ChatMessage: role, parts[, name]),
gen-ai-output-messages.json (OutputMessage: role, parts, finish_reason[, name]),
gen-ai-system-instructions.json (a list of parts) and gen-ai-tool-definitions.json.
Parts are dicts with a `type`: text, reasoning, tool_call, tool_call_response,
server_tool_call, server_tool_call_response, blob, uri, file, or a generic part
that keeps the provider's own type. They never raise on odd input: whatever does
not fit is skipped or kept as a generic part. Cost: linear in the size of the input.

The public names below are stable (normalize.py imports them):

  Parts
    text_part(text)                        {"type": "text", "content": text}
    reasoning_part(text)                   {"type": "reasoning", "content": text}
    tool_call_part(id, name, arguments)    arguments: a JSON string is parsed when it is valid JSON
    tool_call_response_part(id, response)
    media_part(source, mime_type=None, modality=None)
                                           a data: URL → blob (base64 content); another URL → uri
    parse_json_or_keep(value)              JSON text → value; anything else unchanged
    to_json(value)                         compact JSON text, non-ASCII kept (what goes on the span)

  OpenAI Chat Completions (also the body shape of the deprecated gen_ai.*.message / gen_ai.choice
  events, and what OpenLLMetry / OpenInference flatten)
    openai_content_parts(content)          str | content-part list | None → parts
    openai_chat_message(message)           one request message → ChatMessage
    openai_chat_messages(messages)         the request's `messages` → input messages (system/developer stay
                                           in the chat history, as the spec asks of in-history instructions)
    openai_choice_message(message, finish_reason)   one choice's message → OutputMessage
    openai_chat_output(choices)            response `choices` → output messages
    openai_tool_definitions(tools)         `tools` (or legacy `functions`) → tool definitions
  OpenAI Completions (legacy): completions_prompt_messages(prompt), completions_output(choices)
  OpenAI Responses API
    responses_input_messages(input)        `input` (string or item list) → input messages
    responses_output(output, finish_reason) `output` items → one assistant OutputMessage (list of 0..1)
    responses_tool_definitions(tools)
  Anthropic Messages
    anthropic_system(system)               `system` (string or text blocks) → system instruction parts
    anthropic_content_parts(content)       str | content-block list → parts
    anthropic_messages(messages)           → input messages
    anthropic_output(content, finish_reason) response `content` → [OutputMessage]
    anthropic_tool_definitions(tools)
  Google Gemini (generateContent; camelCase and snake_case JSON both accepted)
    gemini_parts(parts)                    → parts
    gemini_system(system_instruction)      → system instruction parts
    gemini_contents(contents)              → input messages (role "model" → "assistant")
    gemini_output(candidates)              → output messages, one per candidate
    gemini_tool_definitions(tools)
  Ollama
    ollama_chat_messages(messages), ollama_message_output(message, finish_reason),
    ollama_generate_input(body) → (system parts, input messages), ollama_generate_output(body)
  Finish reasons
    output_finish_reason(raw)              provider stop reason → the schema's FinishReason
                                           (stop, length, content_filter, tool_call, error); unknown kept
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable
from urllib.parse import unquote_to_bytes

# Provider stop reasons → the output-message schema's FinishReason enum. The span's
# gen_ai.response.finish_reasons keeps the provider's own words; the messages use the
# schema's. One table for all providers: their vocabularies do not collide.
_FINISH_REASONS = {
    # OpenAI Chat / Completions and compatible servers; Ollama's done_reason
    "stop": "stop", "length": "length", "tool_calls": "tool_call", "function_call": "tool_call",
    "content_filter": "content_filter", "eos": "stop", "load": "stop", "unload": "stop",
    # Anthropic
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_call",
    "refusal": "content_filter", "model_context_window_exceeded": "length", "pause_turn": "pause_turn",
    # Gemini (FinishReason enum names)
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter", "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter", "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error", "UNEXPECTED_TOOL_CALL": "error", "TOO_MANY_TOOL_CALLS": "error",
    "OTHER": "error", "FINISH_REASON_UNSPECIFIED": "error", "IMAGE_OTHER": "error", "NO_IMAGE": "error",
    # Responses API terminal statuses and incomplete_details.reason
    "completed": "stop", "max_output_tokens": "length", "failed": "error", "cancelled": "error",
}


def output_finish_reason(raw: Any) -> str:
    """The schema's FinishReason for a provider stop reason; unknown values are kept as they are."""
    if not isinstance(raw, str) or not raw:
        return "error" if raw is None else str(raw)
    return _FINISH_REASONS.get(raw, raw)


# ---- parts --------------------------------------------------------------------------------------

def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def parse_json_or_keep(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def text_part(text: Any) -> dict:
    return {"type": "text", "content": text if isinstance(text, str) else to_json(text)}


def reasoning_part(text: Any) -> dict:
    return {"type": "reasoning", "content": text if isinstance(text, str) else to_json(text)}


def tool_call_part(id: Any, name: Any, arguments: Any) -> dict:
    part: dict[str, Any] = {"type": "tool_call"}
    if id is not None:
        part["id"] = id
    part["name"] = name if isinstance(name, str) else str(name or "")
    if arguments is not None:
        part["arguments"] = parse_json_or_keep(arguments)
    return part


def tool_call_response_part(id: Any, response: Any) -> dict:
    part: dict[str, Any] = {"type": "tool_call_response"}
    if id is not None:
        part["id"] = id
    part["response"] = response
    return part


def _modality(mime_type: str | None, default: str | None) -> str:
    if default:
        return default
    top = (mime_type or "").partition("/")[0]
    if top in ("image", "audio", "video"):
        return top
    return "document" if mime_type else "image"


def media_part(source: Any, mime_type: str | None = None, modality: str | None = None) -> dict:
    """A data: URL becomes a blob (its base64 payload as content, its media type as mime_type);
    any other URL a uri part. Raw base64 without a URL is a blob too (`source` not a URL)."""
    if not isinstance(source, str):
        source = ""
    if source.startswith("data:"):
        header, _, payload = source[5:].partition(",")
        media, *params = header.split(";")
        mime_type = media or mime_type
        if "base64" not in params:  # percent-encoded text: the schema wants base64
            payload = base64.b64encode(unquote_to_bytes(payload)).decode("ascii")
        part = {"type": "blob", "modality": _modality(mime_type, modality), "content": payload}
    elif "://" in source[:16]:
        part = {"type": "uri", "modality": _modality(mime_type, modality), "uri": source}
    else:
        part = {"type": "blob", "modality": _modality(mime_type, modality), "content": source}
    if mime_type:
        part["mime_type"] = mime_type
    return part


def _file_part(file_id: str, mime_type: str | None = None, modality: str | None = None) -> dict:
    part = {"type": "file", "modality": _modality(mime_type, modality or ("document" if not mime_type else None)),
            "file_id": file_id}
    if mime_type:
        part["mime_type"] = mime_type
    return part


_SPEC_PART_TYPES = frozenset({"text", "reasoning", "tool_call", "tool_call_response", "server_tool_call",
                              "server_tool_call_response", "blob", "uri", "file"})


def _generic(block: dict, type_: str | None = None) -> dict:
    """A block we have no spec part for: kept whole under its own type (never under a spec part's
    type, whose required fields it would lack)."""
    part = dict(block)
    kind = type_ or str(block.get("type") or "unknown")
    part["type"] = "unknown" if kind in _SPEC_PART_TYPES else kind
    return part


def _dicts(value: Any) -> Iterable[dict]:
    return (x for x in value if isinstance(x, dict)) if isinstance(value, list) else ()


_AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "opus": "audio/opus",
               "aac": "audio/aac", "pcm16": "audio/pcm", "ogg": "audio/ogg", "m4a": "audio/mp4", "webm": "audio/webm"}


def _audio_part(audio: Any) -> dict:
    audio = audio if isinstance(audio, dict) else {}
    fmt = audio.get("format")
    return media_part(audio.get("data") or "", _AUDIO_MIME.get(fmt, f"audio/{fmt}" if fmt else None), "audio")


# ---- OpenAI Chat Completions ----------------------------------------------------------------

def openai_content_parts(content: Any) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if not isinstance(content, list):
        return [text_part(content)]
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(text_part(block))
            continue
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(block.get("text", "")))
        elif kind == "image_url":
            image = block.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(media_part(url, modality="image"))
        elif kind == "input_audio":
            parts.append(_audio_part(block.get("input_audio")))
        elif kind == "file":
            file = block.get("file") if isinstance(block.get("file"), dict) else {}
            if file.get("file_id"):
                parts.append(_file_part(file["file_id"]))
            elif file.get("file_data"):
                data = file["file_data"]
                parts.append(media_part(data, None if data.startswith("data:") else "application/pdf", "document"))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": block.get("refusal", "")})
        else:
            parts.append(_generic(block))
    return parts


def _openai_tool_calls(tool_calls: Any) -> list[dict]:
    parts = []
    for call in _dicts(tool_calls):
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if call.get("type", "function") == "function" or function:
            parts.append(tool_call_part(call.get("id"), function.get("name"), function.get("arguments")))
        else:  # custom tools: {"type": "custom", "custom": {"name", "input"}}
            custom = call.get(call.get("type")) if isinstance(call.get(call.get("type")), dict) else {}
            parts.append(tool_call_part(call.get("id"), custom.get("name"), custom.get("input")))
    return parts


def _tool_result_text(content: Any) -> Any:
    """A tool message's content: a string as is; a list of text parts joined."""
    if isinstance(content, list) and all(isinstance(b, dict) and "text" in b for b in content):
        return "".join(b["text"] for b in content if isinstance(b.get("text"), str))
    return content


def openai_chat_message(message: Any) -> dict:
    if not isinstance(message, dict):
        return {"role": "user", "parts": openai_content_parts(message)}
    role = str(message.get("role") or "user")
    if role in ("tool", "function"):
        parts = [tool_call_response_part(message.get("tool_call_id") or message.get("name"),
                                         _tool_result_text(message.get("content")))]
        role = "tool"
    else:
        parts = []
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            parts.append(reasoning_part(reasoning))
        parts += openai_content_parts(message.get("content"))
        if isinstance(message.get("refusal"), str) and message["refusal"]:
            parts.append({"type": "refusal", "content": message["refusal"]})
        if isinstance(message.get("audio"), dict) and message["audio"].get("transcript"):
            parts.append(text_part(message["audio"]["transcript"]))
        parts += _openai_tool_calls(message.get("tool_calls"))
        if isinstance(message.get("function_call"), dict):
            fc = message["function_call"]
            parts.append(tool_call_part(None, fc.get("name"), fc.get("arguments")))
    result = {"role": role, "parts": parts}
    if isinstance(message.get("name"), str) and role != "tool":
        result["name"] = message["name"]
    return result


def openai_chat_messages(messages: Any) -> list[dict]:
    return [openai_chat_message(m) for m in messages] if isinstance(messages, list) else []


def openai_choice_message(message: Any, finish_reason: Any) -> dict:
    out = openai_chat_message(message if isinstance(message, dict) else {"content": message})
    out["role"] = str((message.get("role") if isinstance(message, dict) else None) or "assistant")
    out["finish_reason"] = output_finish_reason(finish_reason)
    return out


def openai_chat_output(choices: Any) -> list[dict]:
    ordered = sorted(_dicts(choices), key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0)
    return [openai_choice_message(c.get("message") or {}, c.get("finish_reason")) for c in ordered]


def _function_definition(name: Any, description: Any, parameters: Any, type_: str = "function") -> dict:
    definition: dict[str, Any] = {"type": type_, "name": name}
    if description is not None:
        definition["description"] = description
    if parameters is not None:
        definition["parameters"] = parameters
    return definition


def openai_tool_definitions(tools: Any) -> list[dict]:
    """Chat Completions `tools` ({"type": "function", "function": {...}}) and the legacy `functions`
    list, flattened to {type, name, description, parameters}; other tool types kept as they are."""
    definitions = []
    for tool in _dicts(tools):
        function = tool.get("function")
        if isinstance(function, dict):
            definitions.append(_function_definition(function.get("name"), function.get("description"),
                                                    function.get("parameters")))
        elif "name" in tool and "type" not in tool:  # legacy `functions`
            definitions.append(_function_definition(tool.get("name"), tool.get("description"),
                                                    tool.get("parameters")))
        else:
            definitions.append(dict(tool))
    return definitions


# ---- OpenAI Completions (legacy) ----------------------------------------------------------------

def completions_prompt_messages(prompt: Any) -> list[dict]:
    """`prompt` is a string or a list of strings (token arrays are not text: kept as JSON)."""
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return [{"role": "user", "parts": [text_part(p)]} for p in prompt]
    if prompt is None:
        return []
    return [{"role": "user", "parts": [text_part(prompt)]}]


def completions_output(choices: Any) -> list[dict]:
    ordered = sorted(_dicts(choices), key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0)
    return [{"role": "assistant", "parts": [text_part(c.get("text") or "")],
             "finish_reason": output_finish_reason(c.get("finish_reason"))} for c in ordered]


# ---- OpenAI Responses API ------------------------------------------------------------------------

def _responses_content_parts(content: Any) -> list[dict]:
    if not isinstance(content, list):
        return openai_content_parts(content)
    parts = []
    for block in content:
        if not isinstance(block, dict):
            parts += openai_content_parts([block])
            continue
        kind = block.get("type")
        if kind == "input_image":
            if block.get("image_url"):
                parts.append(media_part(block["image_url"], modality="image"))
            elif block.get("file_id"):
                parts.append(_file_part(block["file_id"], modality="image"))
        elif kind == "input_file":
            if block.get("file_id"):
                parts.append(_file_part(block["file_id"]))
            elif block.get("file_url"):
                parts.append(media_part(block["file_url"], modality="document"))
            elif isinstance(block.get("file_data"), str):
                data = block["file_data"]
                parts.append(media_part(data, None if data.startswith("data:") else "application/pdf", "document"))
        elif kind == "input_audio":
            parts.append(_audio_part(block.get("input_audio")))
        else:
            parts += openai_content_parts([block])
    return parts


def _reasoning_text(item: dict) -> str:
    """A Responses reasoning item: its reasoning text when given, else its summaries."""
    texts = [b.get("text") for b in _dicts(item.get("content")) if isinstance(b.get("text"), str)]
    if not texts:
        texts = [b.get("text") for b in _dicts(item.get("summary")) if isinstance(b.get("text"), str)]
    return "\n".join(texts)


def _responses_item(item: dict) -> tuple[str, list[dict]]:
    """(role, parts) of one Responses input or output item."""
    kind = item.get("type")
    if kind in (None, "message") and "role" in item:
        return str(item.get("role") or "user"), _responses_content_parts(item.get("content"))
    if kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments") if kind == "function_call" else item.get("input")
        return "assistant", [tool_call_part(item.get("call_id") or item.get("id"), item.get("name"), args)]
    if kind in ("function_call_output", "custom_tool_call_output", "computer_call_output",
                "local_shell_call_output", "shell_call_output", "apply_patch_call_output"):
        output = item.get("output")
        if isinstance(output, list):
            output = _tool_result_text(output)
        return "tool", [tool_call_response_part(item.get("call_id") or item.get("id"), output)]
    if kind == "reasoning":
        return "assistant", [reasoning_part(_reasoning_text(item))]
    if kind == "mcp_call":
        return "assistant", [{"type": "server_tool_call", "id": item.get("id"), "name": item.get("name") or "mcp",
                              "server_tool_call": {k: v for k, v in item.items() if k != "id"}}]
    if isinstance(kind, str) and kind.endswith("_call"):  # web_search_call, file_search_call, image_generation_call…
        return "assistant", [{"type": "server_tool_call", "id": item.get("id"), "name": kind[:-5],
                              "server_tool_call": {k: v for k, v in item.items() if k != "id"}}]
    return "user", [_generic(item)]


def responses_input_messages(input: Any) -> list[dict]:
    """A string is one user message. In an item list each message item is a message; other items
    (function calls, their outputs, reasoning) join the message before them when it has the same
    role, as the parts of one assistant turn do in Chat Completions."""
    if isinstance(input, str):
        return [{"role": "user", "parts": [text_part(input)]}]
    messages: list[dict] = []
    joinable = False
    for item in input if isinstance(input, list) else ():
        if isinstance(item, str):
            messages.append({"role": "user", "parts": [text_part(item)]})
            joinable = False
            continue
        if not isinstance(item, dict):
            continue
        role, parts = _responses_item(item)
        is_message = item.get("type") in (None, "message") and "role" in item
        if not is_message and joinable and messages[-1]["role"] == role:
            messages[-1]["parts"] += parts
        else:
            messages.append({"role": role, "parts": parts})
        joinable = role != "user"
    return messages


def responses_output(output: Any, finish_reason: Any) -> list[dict]:
    parts: list[dict] = []
    for item in _dicts(output):
        parts += _responses_item(item)[1]
    if not parts and finish_reason is None:
        return []
    return [{"role": "assistant", "parts": parts, "finish_reason": output_finish_reason(finish_reason)}]


def responses_tool_definitions(tools: Any) -> list[dict]:
    definitions = []
    for tool in _dicts(tools):
        if tool.get("type") == "function":
            definitions.append(_function_definition(tool.get("name"), tool.get("description"),
                                                    tool.get("parameters")))
        else:
            definitions.append(dict(tool))
    return definitions


# ---- Anthropic Messages ------------------------------------------------------------------------

def _anthropic_source(block: dict, modality: str) -> dict:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    kind = source.get("type")
    mime = source.get("media_type")
    if kind == "base64":
        return media_part(source.get("data") or "", mime, modality)
    if kind == "url":
        return media_part(source.get("url") or "", mime, modality)
    if kind == "file":
        return _file_part(source.get("file_id") or "", mime, modality)
    if kind == "text":  # a plain-text document
        return text_part(source.get("data") or "")
    if kind == "content":
        return {"type": "document", "content": anthropic_content_parts(source.get("content"))}
    return _generic(block)


def _anthropic_tool_result(content: Any) -> Any:
    if isinstance(content, list):
        if all(isinstance(b, dict) and b.get("type") == "text" for b in content):
            return "".join(str(b.get("text", "")) for b in content)
        return anthropic_content_parts(content)
    return content


def anthropic_content_parts(content: Any) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(text_part(block.get("text", "")))
        elif kind == "thinking":
            parts.append(reasoning_part(block.get("thinking", "")))
        elif kind == "redacted_thinking":
            parts.append({"type": "redacted_thinking", "data": block.get("data")})
        elif kind == "image":
            parts.append(_anthropic_source(block, "image"))
        elif kind == "document":
            parts.append(_anthropic_source(block, "document"))
        elif kind == "tool_use":
            parts.append(tool_call_part(block.get("id"), block.get("name"), block.get("input")))
        elif kind == "tool_result":
            part = tool_call_response_part(block.get("tool_use_id"), _anthropic_tool_result(block.get("content")))
            if block.get("is_error"):
                part["is_error"] = True
            parts.append(part)
        elif kind in ("server_tool_use", "mcp_tool_use"):
            parts.append({"type": "server_tool_call", "id": block.get("id"), "name": block.get("name") or kind,
                          "server_tool_call": {"type": block.get("name") or kind, "input": block.get("input")}})
        elif isinstance(kind, str) and kind.endswith("_tool_result"):  # web_search_tool_result, …
            parts.append({"type": "server_tool_call_response", "id": block.get("tool_use_id"),
                          "server_tool_call_response": {"type": kind, "content": block.get("content")}})
        else:
            parts.append(_generic(block))
    return parts


def anthropic_system(system: Any) -> list[dict]:
    return anthropic_content_parts(system)


def anthropic_messages(messages: Any) -> list[dict]:
    return [{"role": str(m.get("role") or "user"), "parts": anthropic_content_parts(m.get("content"))}
            for m in _dicts(messages)]


def anthropic_output(content: Any, finish_reason: Any) -> list[dict]:
    return [{"role": "assistant", "parts": anthropic_content_parts(content),
             "finish_reason": output_finish_reason(finish_reason)}]


def anthropic_tool_definitions(tools: Any) -> list[dict]:
    definitions = []
    for tool in _dicts(tools):
        if "input_schema" in tool or tool.get("type") in (None, "custom"):
            definitions.append(_function_definition(tool.get("name"), tool.get("description"),
                                                    tool.get("input_schema")))
        else:  # server tools: {"type": "web_search_20250305", "name": "web_search", …}
            definitions.append(dict(tool))
    return definitions


# ---- Google Gemini --------------------------------------------------------------------------------

def _pick(d: dict, camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def gemini_parts(parts: Any) -> list[dict]:
    result = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            result.append(reasoning_part(part["text"]) if part.get("thought") else text_part(part["text"]))
        elif isinstance(inline := _pick(part, "inlineData", "inline_data"), dict):
            result.append(media_part(inline.get("data") or "", _pick(inline, "mimeType", "mime_type")))
        elif isinstance(file := _pick(part, "fileData", "file_data"), dict):
            uri = _pick(file, "fileUri", "file_uri") or ""
            result.append({"type": "uri", "modality": _modality(_pick(file, "mimeType", "mime_type"), None),
                           "uri": uri, **({"mime_type": m} if (m := _pick(file, "mimeType", "mime_type")) else {})})
        elif isinstance(call := _pick(part, "functionCall", "function_call"), dict):
            result.append(tool_call_part(call.get("id"), call.get("name"), call.get("args")))
        elif isinstance(response := _pick(part, "functionResponse", "function_response"), dict):
            result.append(tool_call_response_part(response.get("id") or response.get("name"),
                                                  response.get("response")))
        elif isinstance(code := _pick(part, "executableCode", "executable_code"), dict):
            result.append({"type": "server_tool_call", "name": "code_execution",
                           "server_tool_call": {"type": "code_execution", **code}})
        elif isinstance(outcome := _pick(part, "codeExecutionResult", "code_execution_result"), dict):
            result.append({"type": "server_tool_call_response",
                           "server_tool_call_response": {"type": "code_execution", **outcome}})
        elif part.get("thoughtSignature") or part.get("thought_signature"):
            continue  # an opaque signature alone carries no content
        else:
            result.append(_generic(part, next(iter(part), "unknown")))
    return result


def _gemini_role(role: Any) -> str:
    return "assistant" if role == "model" else str(role or "user")


def gemini_system(system_instruction: Any) -> list[dict]:
    if isinstance(system_instruction, str):
        return [text_part(system_instruction)]
    if isinstance(system_instruction, dict):
        return gemini_parts(system_instruction.get("parts"))
    return []


def gemini_contents(contents: Any) -> list[dict]:
    if isinstance(contents, dict):  # a single Content is accepted by the REST API
        contents = [contents]
    if isinstance(contents, str):
        return [{"role": "user", "parts": [text_part(contents)]}]
    return [{"role": _gemini_role(c.get("role")), "parts": gemini_parts(c.get("parts"))} for c in _dicts(contents)]


def gemini_output(candidates: Any) -> list[dict]:
    ordered = sorted(_dicts(candidates), key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0)
    messages = []
    for candidate in ordered:
        content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
        messages.append({"role": _gemini_role(content.get("role") or "model"),
                         "parts": gemini_parts(content.get("parts")),
                         "finish_reason": output_finish_reason(_pick(candidate, "finishReason", "finish_reason"))})
    return messages


def gemini_tool_definitions(tools: Any) -> list[dict]:
    definitions = []
    for tool in _dicts(tools):
        declarations = _pick(tool, "functionDeclarations", "function_declarations")
        if isinstance(declarations, list):
            for d in _dicts(declarations):
                parameters = d.get("parameters")
                if parameters is None:
                    parameters = _pick(d, "parametersJsonSchema", "parameters_json_schema")
                definitions.append(_function_definition(d.get("name"), d.get("description"), parameters))
        for key, value in tool.items():
            if key not in ("functionDeclarations", "function_declarations"):
                definitions.append({"type": _snake(key), **(value if isinstance(value, dict) else {})})
    return definitions


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


# ---- Ollama ----------------------------------------------------------------------------------------

def _ollama_parts(message: dict) -> list[dict]:
    parts = []
    if isinstance(message.get("thinking"), str) and message["thinking"]:
        parts.append(reasoning_part(message["thinking"]))
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"]))
    images = message.get("images")
    for image in images if isinstance(images, list) else ():
        if isinstance(image, str):
            parts.append(media_part(image, modality="image"))
    for call in _dicts(message.get("tool_calls")):
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        parts.append(tool_call_part(call.get("id"), function.get("name"), function.get("arguments")))
    return parts


def ollama_chat_messages(messages: Any) -> list[dict]:
    result = []
    for m in _dicts(messages):
        role = str(m.get("role") or "user")
        if role == "tool":
            result.append({"role": "tool", "parts": [tool_call_response_part(
                m.get("tool_call_id") or m.get("tool_name"), m.get("content"))]})
        else:
            result.append({"role": role, "parts": _ollama_parts(m)})
    return result


def ollama_message_output(message: Any, finish_reason: Any) -> list[dict]:
    message = message if isinstance(message, dict) else {}
    return [{"role": str(message.get("role") or "assistant"), "parts": _ollama_parts(message),
             "finish_reason": output_finish_reason(finish_reason)}]


def ollama_generate_input(body: dict) -> tuple[list[dict], list[dict]]:
    system = [text_part(body["system"])] if isinstance(body.get("system"), str) and body["system"] else []
    user = _ollama_parts({"content": body.get("prompt"), "images": body.get("images")})
    return system, ([{"role": "user", "parts": user}] if user else [])


def ollama_generate_output(body: dict) -> list[dict]:
    parts = _ollama_parts({"thinking": body.get("thinking"), "content": body.get("response")})
    return [{"role": "assistant", "parts": parts, "finish_reason": output_finish_reason(body.get("done_reason"))}]
