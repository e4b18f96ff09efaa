"""Streamed LLM responses as the providers send them, byte for byte: the fixtures of the
stream reassembly tests, usable by any test that needs a realistic stream.

Each `StreamSample` holds the request (path, body), the response's content-type and
its body as the list of events (or lines, or array elements) the server wrote. The
shapes follow the providers' API references and SDK types: field order, ids of the
right form, the extra fields real servers add (`system_fingerprint`, `service_tier`,
`obfuscation`, `x_groq`, OpenRouter's comments and `provider`, llama.cpp's `timings`,
Azure's content-filter results), compact JSON with raw UTF-8. The texts have multi-byte
UTF-8 (up to 4-byte characters) so that splits can land inside a character.

`expected` is the object the same request returns without streaming, written out by
hand, for the formats no installed SDK can assemble (DeepSeek's reasoning_content,
Groq, llama.cpp, Gemini, Ollama); for the others the SDKs are the oracle.

    SAMPLES["openai_chat_text"].body   → bytes
    by_format("anthropic.messages")   → [StreamSample, ...]
    cut(sample, n_events)             → the body of its first n events only
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SSE_TYPE_OPENAI = "text/event-stream; charset=utf-8"
SSE_TYPE_ANTHROPIC = "text/event-stream; charset=utf-8"
SSE_TYPE_GEMINI = "text/event-stream"
JSON_TYPE_GEMINI = "application/json; charset=UTF-8"
NDJSON_TYPE = "application/x-ndjson"

REPLY = "Bonjour! Naïve café, 日本語 ✓ and a rocket 🚀 — ready to help."


@dataclass(frozen=True)
class StreamSample:
    name: str
    format: str  # what llmtap.stream.format must say
    path: str  # request URL path (with query)
    host: str
    request: dict
    content_type: str
    events: tuple[bytes, ...]  # what the server wrote, event by event
    expected: dict | None = None  # the non-streaming object, where no SDK can be the oracle
    complete: bool = True
    notes: str = ""

    @property
    def body(self) -> bytes:
        return b"".join(self.events)

    @property
    def url(self) -> str:
        return f"https://{self.host}{self.path}"


def dumps(value: Any) -> str:
    # Providers send compact JSON with raw UTF-8, not \\u escapes.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sse(data: Any, event: str | None = None, eol: str = "\n") -> bytes:
    text = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {text}{eol}{eol}".encode()


def words(text: str) -> list[str]:
    """The text as the one-token-ish deltas a model streams: word by word, spaces leading."""
    out, current = [], ""
    for ch in text:
        if ch == " " and current.strip():
            out.append(current)
            current = ""
        current += ch
    return out + [current] if current else out


def cut(sample: StreamSample, n_events: int) -> bytes:
    return b"".join(sample.events[:n_events])


SAMPLES: dict[str, StreamSample] = {}


def _register(sample: StreamSample) -> StreamSample:
    SAMPLES[sample.name] = sample
    return sample


def by_format(fmt: str) -> list[StreamSample]:
    return [s for s in SAMPLES.values() if s.format == fmt]


# --- OpenAI Chat Completions -------------------------------------------------------------

def _chat(name: str, choices_per_chunk: list[list[dict]], *, request: dict, usage: dict | None,
          chunk_id: str = "chatcmpl-BzQ8Vf1kGm3sTqLx9aR2uW7nEoYcH", model: str = "gpt-4o-mini-2024-07-18",
          created: int = 1754326183, extra: dict | None = None, obfuscation: bool = True,
          host: str = "api.openai.com", path: str = "/v1/chat/completions", expected: dict | None = None,
          comments: tuple[bytes, ...] = (), fmt: str = "openai.chat_completions", done: bool = True) -> StreamSample:
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    head = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
    if extra is None:
        extra = {"service_tier": "default", "system_fingerprint": "fp_efad92c60b"}
    events: list[bytes] = list(comments)
    for i, choices in enumerate(choices_per_chunk):
        body = {**head, **extra, "choices": choices}
        if include_usage:
            body["usage"] = None
        if obfuscation:
            body["obfuscation"] = "xK9qT2mBw"[: 3 + i % 6]
        events.append(sse(body))
    if include_usage and usage is not None:
        body = {**head, **extra, "choices": [], "usage": usage}
        if obfuscation:
            body["obfuscation"] = "Zr4"
        events.append(sse(body))
    if done:
        events.append(b"data: [DONE]\n\n")
    return _register(StreamSample(name, fmt, path, host, request, SSE_TYPE_OPENAI, tuple(events), expected))


def _delta_chunks(tokens: list[str], *, index: int = 0, key: str = "content", finish: str | None = "stop",
                  logprobs: bool = False) -> list[list[dict]]:
    first = {"index": index, "delta": {"role": "assistant", "content": "", "refusal": None},
             "logprobs": None, "finish_reason": None}
    if logprobs:
        first["logprobs"] = {"content": [], "refusal": None}
    chunks = [[first]]
    for tok in tokens:
        lp = None
        if logprobs:
            lp = {"content": [{"token": tok, "logprob": -0.0123, "bytes": list(tok.encode()), "top_logprobs": []}],
                  "refusal": None}
        chunks.append([{"index": index, "delta": {key: tok}, "logprobs": lp, "finish_reason": None}])
    if finish:
        chunks.append([{"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}])
    return chunks


def _usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You are terse."},
                                                     {"role": "user", "content": "Say hello in French."}],
                "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.2}

_chat("openai_chat_text", _delta_chunks(words(REPLY)), request=CHAT_REQUEST, usage=_usage(24, 17))

_chat("openai_chat_no_usage", _delta_chunks(words("Hi there — ça va? 👋")),
      request={**CHAT_REQUEST, "stream_options": None}, usage=None,
      chunk_id="chatcmpl-C0aP7dQhYtR2mXk5Lw9vNbE3sUoZf")

_chat("openai_chat_logprobs", _delta_chunks(words("Oui, très bien ✓"), logprobs=True),
      request={**CHAT_REQUEST, "logprobs": True}, usage=_usage(20, 5),
      chunk_id="chatcmpl-C0aQ2kLmNpR8sTuVwXyZ1a2b3c4d5")

_WEATHER_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string",
                   "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]


def _tool_call_chunks() -> list[list[dict]]:
    def call_delta(i: int, **delta: Any) -> list[dict]:
        return [{"index": 0, "delta": {"tool_calls": [{"index": i, **delta}]}, "logprobs": None,
                 "finish_reason": None}]

    chunks = [[{"index": 0, "delta": {"role": "assistant", "content": None, "refusal": None}, "logprobs": None,
                "finish_reason": None}]]
    for i, (call_id, city) in enumerate((("call_Xy7Qz0LmN3pR5sT8uV1wA2bC", "Paris"),
                                         ("call_Db4Ef6Gh8Ij0Kl2Mn4Op6Qr8", "São Paulo"))):
        chunks.append(call_delta(i, id=call_id, type="function",
                                 function={"name": "get_weather", "arguments": ""}))
        for fragment in ('{"ci', 'ty": "', city[:3], city[3:], '", "unit"', ': "celsius"}'):
            chunks.append(call_delta(i, function={"arguments": fragment}))
    chunks.append([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}])
    return chunks


_chat("openai_chat_parallel_tool_calls", _tool_call_chunks(),
      request={**CHAT_REQUEST, "messages": [{"role": "user", "content": "Weather in Paris and São Paulo?"}],
               "tools": _WEATHER_TOOLS, "parallel_tool_calls": True},
      usage=_usage(81, 52), chunk_id="chatcmpl-C0aR9vWxYz2A4bC6dE8fG0hI2jK4l")


def _two_choices() -> list[list[dict]]:
    a, b = words("Salut ! Ça roule ?"), words("Bonjour, enchanté — 日本語 aussi")
    chunks = [[{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                "finish_reason": None}],
              [{"index": 1, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                "finish_reason": None}]]
    for i in range(max(len(a), len(b))):
        for index, toks in ((0, a), (1, b)):
            if i < len(toks):
                chunks.append([{"index": index, "delta": {"content": toks[i]}, "logprobs": None,
                                "finish_reason": None}])
    chunks.append([{"index": 1, "delta": {}, "logprobs": None, "finish_reason": "length"}])
    chunks.append([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
    return chunks


_chat("openai_chat_two_choices", _two_choices(), request={**CHAT_REQUEST, "n": 2, "max_tokens": 6},
      usage=_usage(24, 12), chunk_id="chatcmpl-C0aS1mN3oP5qR7sT9uV1wX3yZ5aB7")

_chat("openai_chat_refusal", _delta_chunks(words("I’m sorry, I can’t help with that — désolé."), key="refusal"),
      request={**CHAT_REQUEST, "messages": [{"role": "user", "content": "How do I pick a lock?"}]},
      usage=_usage(15, 12), chunk_id="chatcmpl-C0aT4cD6eF8gH0iJ2kL4mN6oP8qR")

_chat("openai_chat_length", _delta_chunks(words("Il était une fois, dans un pays lointain"), finish="length"),
      request={**CHAT_REQUEST, "max_completion_tokens": 8}, usage=_usage(24, 8),
      chunk_id="chatcmpl-C0aU7fG9hI1jK3lM5nO7pQ9rS1tU")

# OpenRouter: comments while it waits for the upstream, `provider`, `native_finish_reason`,
# `reasoning` deltas, a usage chunk with `cost`.
_openrouter_chunks = [[{"index": 0, "delta": {"role": "assistant", "content": "", "reasoning": None},
                        "finish_reason": None, "native_finish_reason": None, "logprobs": None}]]
_openrouter_chunks += [[{"index": 0, "delta": {"role": "assistant", "content": "", "reasoning": tok},
                         "finish_reason": None, "native_finish_reason": None, "logprobs": None}]
                       for tok in words("The user wants a greeting — keep it short.")]
_openrouter_chunks += [[{"index": 0, "delta": {"role": "assistant", "content": tok},
                         "finish_reason": None, "native_finish_reason": None, "logprobs": None}]
                       for tok in words("Hola, ¿qué tal? 🚀")]
_openrouter_chunks += [[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop",
                         "native_finish_reason": "stop", "logprobs": None}]]
_chat("openrouter_chat", _openrouter_chunks,
      request={"model": "deepseek/deepseek-r1", "messages": [{"role": "user", "content": "Greet me in Spanish"}],
               "stream": True, "stream_options": {"include_usage": True}},
      usage={"prompt_tokens": 12, "completion_tokens": 31, "total_tokens": 43, "cost": 0.0000712,
             "is_byok": False, "prompt_tokens_details": {"cached_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 22}},
      chunk_id="gen-1754326183-q8W2eR4tY6uI8oP0aS2d", model="deepseek/deepseek-r1", host="openrouter.ai",
      path="/api/v1/chat/completions", extra={"provider": "DeepInfra"}, obfuscation=False,
      comments=(b": OPENROUTER PROCESSING\n\n", b": OPENROUTER PROCESSING\n\n"))

# DeepSeek deepseek-reasoner: reasoning_content before content; its own usage fields.
_DEEPSEEK_USAGE = {"prompt_tokens": 13, "completion_tokens": 42, "total_tokens": 55,
                   "prompt_tokens_details": {"cached_tokens": 0},
                   "completion_tokens_details": {"reasoning_tokens": 30},
                   "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 13}
_ds_thinking, _ds_answer = "Greeting requested — 日本語 not needed.", "Hello! 👋"
_ds_chunks = [[{"index": 0, "delta": {"role": "assistant", "content": None, "reasoning_content": ""},
                "logprobs": None, "finish_reason": None}]]
_ds_chunks += [[{"index": 0, "delta": {"content": None, "reasoning_content": tok}, "logprobs": None,
                 "finish_reason": None}] for tok in words(_ds_thinking)]
_ds_chunks += [[{"index": 0, "delta": {"content": tok, "reasoning_content": None}, "logprobs": None,
                 "finish_reason": None}] for tok in words(_ds_answer)]
_ds_chunks += [[{"index": 0, "delta": {"content": "", "reasoning_content": None}, "logprobs": None,
                 "finish_reason": "stop"}]]
_chat("deepseek_reasoning", _ds_chunks,
      request={"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "Say hello"}],
               "stream": True, "stream_options": {"include_usage": True}},
      usage=_DEEPSEEK_USAGE, chunk_id="7f3c1b52-9c1e-4b7e-8f5a-2d6e0a9b4c31", model="deepseek-reasoner",
      host="api.deepseek.com", path="/chat/completions", extra={"system_fingerprint": "fp_8802369eaa_prod0623"},
      obfuscation=False,
      expected={"id": "7f3c1b52-9c1e-4b7e-8f5a-2d6e0a9b4c31", "object": "chat.completion", "created": 1754326183,
                "model": "deepseek-reasoner",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": _ds_answer,
                                                     "reasoning_content": _ds_thinking},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": _DEEPSEEK_USAGE, "system_fingerprint": "fp_8802369eaa_prod0623"})

# Groq: usage under x_groq on the last content chunk; no include_usage needed.
_groq_usage = {"queue_time": 0.051, "prompt_tokens": 18, "prompt_time": 0.0021, "completion_tokens": 9,
               "completion_time": 0.012, "total_tokens": 27, "total_time": 0.0141}
_groq_chunks = _delta_chunks(words("¡Hola! Soy rápido ⚡"))
_groq_events = []
for _i, _choices in enumerate(_groq_chunks):
    _body = {"id": "chatcmpl-3f9a2c7e-51d0-4b8e-a6f2-9c0d1e2f3a4b", "object": "chat.completion.chunk",
             "created": 1754326184, "model": "llama-3.3-70b-versatile", "system_fingerprint": "fp_3f3b593e33",
             "choices": _choices}
    if _i == 0:
        _body["x_groq"] = {"id": "req_01k1x8w2m3n4p5q6r7s8t9v0wx"}
    if _i == len(_groq_chunks) - 1:
        _body["x_groq"] = {"id": "req_01k1x8w2m3n4p5q6r7s8t9v0wx", "usage": _groq_usage}
    _groq_events.append(sse(_body))
_groq_events.append(b"data: [DONE]\n\n")
_register(StreamSample(
    "groq_chat", "openai.chat_completions", "/openai/v1/chat/completions", "api.groq.com",
    {"model": "llama-3.3-70b-versatile", "messages": [{"role": "user", "content": "Hola"}], "stream": True},
    SSE_TYPE_OPENAI, tuple(_groq_events),
    expected={"id": "chatcmpl-3f9a2c7e-51d0-4b8e-a6f2-9c0d1e2f3a4b", "object": "chat.completion",
              "created": 1754326184, "model": "llama-3.3-70b-versatile",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "¡Hola! Soy rápido ⚡",
                                                   "refusal": None},
                           "logprobs": None, "finish_reason": "stop"}],
              "usage": _groq_usage, "system_fingerprint": "fp_3f3b593e33",
              "x_groq": {"id": "req_01k1x8w2m3n4p5q6r7s8t9v0wx"}}))

# vLLM: `stop_reason` beside finish_reason, no system_fingerprint, usage chunk on include_usage.
_vllm_chunks = [[{**c, "stop_reason": None} for c in choices]
                for choices in _delta_chunks(words("Hallo Welt — grüß dich 🌍"))]
_chat("vllm_chat", _vllm_chunks,
      request={"model": "Qwen/Qwen2.5-7B-Instruct", "messages": [{"role": "user", "content": "Hallo"}],
               "stream": True, "stream_options": {"include_usage": True}},
      usage={"prompt_tokens": 10, "total_tokens": 19, "completion_tokens": 9, "prompt_tokens_details": None},
      chunk_id="chatcmpl-9b1f7c3a2d8e4f6a8b0c1d2e3f4a5b6c", model="Qwen/Qwen2.5-7B-Instruct", created=1754326185,
      extra={}, obfuscation=False, host="vllm.internal:8000", path="/v1/chat/completions")

# llama.cpp server: `timings` and usage on the last chunk, a build tag for system_fingerprint.
_llama_answer = "Ciao! Come stai? ☕"
_llama_events = []
_llama_head = {"created": 1754326186, "id": "chatcmpl-Qm3R7tY1uI5oP9aS3dF7gH1jK5lZ", "model": "gemma-3-4b-it",
               "system_fingerprint": "b6084-a0d2e5f1", "object": "chat.completion.chunk"}
_llama_events.append(sse({"choices": [{"finish_reason": None, "index": 0, "delta": {"role": "assistant",
                                                                                    "content": None}}],
                          **_llama_head}))
for _tok in words(_llama_answer):
    _llama_events.append(sse({"choices": [{"finish_reason": None, "index": 0, "delta": {"content": _tok}}],
                              **_llama_head}))
_llama_timings = {"prompt_n": 11, "prompt_ms": 41.2, "prompt_per_token_ms": 3.74, "prompt_per_second": 267.0,
                  "predicted_n": 7, "predicted_ms": 88.4, "predicted_per_token_ms": 12.6, "predicted_per_second": 79.2}
_llama_usage = {"completion_tokens": 7, "prompt_tokens": 11, "total_tokens": 18}
_llama_events.append(sse({"choices": [{"finish_reason": "stop", "index": 0, "delta": {}}], **_llama_head,
                          "usage": _llama_usage, "timings": _llama_timings}))
_llama_events.append(b"data: [DONE]\n\n")
_register(StreamSample(
    "llamacpp_chat", "openai.chat_completions", "/v1/chat/completions", "localhost:8080",
    {"model": "gemma-3-4b-it", "messages": [{"role": "user", "content": "Ciao"}], "stream": True},
    SSE_TYPE_OPENAI, tuple(_llama_events),
    expected={"id": "chatcmpl-Qm3R7tY1uI5oP9aS3dF7gH1jK5lZ", "object": "chat.completion", "created": 1754326186,
              "model": "gemma-3-4b-it",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": _llama_answer},
                           "logprobs": None, "finish_reason": "stop"}],
              "usage": _llama_usage, "system_fingerprint": "b6084-a0d2e5f1", "timings": _llama_timings}))

# Azure OpenAI: a first chunk with only the prompt filter results (empty id/model/object),
# content-filter results on each choice.
_filters = {"hate": {"filtered": False, "severity": "safe"}, "self_harm": {"filtered": False, "severity": "safe"},
            "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}
_azure_events = [sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                      "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _filters}]})]
_azure_head = {"created": 1754326187, "id": "chatcmpl-C0aV0wX2yZ4aB6cD8eF0gH2iJ4kL", "model": "gpt-4o-2024-11-20",
               "object": "chat.completion.chunk", "system_fingerprint": "fp_ee1d74bde0"}
for _choices in _delta_chunks(words("Hello from Azure — ñandú 🦤")):
    _choices = [{**c, "content_filter_results": {} if c["delta"].get("role") else _filters} for c in _choices]
    _azure_events.append(sse({"choices": _choices, **_azure_head}))
_azure_events.append(b"data: [DONE]\n\n")
_register(StreamSample(
    "azure_chat", "openai.chat_completions", "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
    "contoso.openai.azure.com",
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "stream": True}, SSE_TYPE_OPENAI,
    tuple(_azure_events)))

# --- OpenAI legacy Completions -----------------------------------------------------------

_completion_head = {"id": "cmpl-C0aW3zA5bC7dE9fG1hI3jK5lM7nO", "object": "text_completion", "created": 1754326188,
                    "model": "gpt-3.5-turbo-instruct:20230824-v2"}
_completion_text = " Once upon a time — érase una vez 🐉"
_completion_events = [sse({**_completion_head, "choices": [{"text": tok, "index": 0, "logprobs": None,
                                                            "finish_reason": None}]})
                      for tok in words(_completion_text)]
_completion_events.append(sse({**_completion_head, "choices": [{"text": "", "index": 0, "logprobs": None,
                                                                "finish_reason": "length"}]}))
_completion_usage = {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17}
_completion_events.append(sse({**_completion_head, "choices": [], "usage": _completion_usage}))
_completion_events.append(b"data: [DONE]\n\n")
_register(StreamSample(
    "openai_completions", "openai.completions", "/v1/completions", "api.openai.com",
    {"model": "gpt-3.5-turbo-instruct", "prompt": "Tell a story", "max_tokens": 12, "stream": True,
     "stream_options": {"include_usage": True}}, SSE_TYPE_OPENAI, tuple(_completion_events),
    expected={**_completion_head, "choices": [{"text": _completion_text, "index": 0, "logprobs": None,
                                               "finish_reason": "length"}], "usage": _completion_usage}))

# --- OpenAI Responses --------------------------------------------------------------------

_RESP_ID = "resp_68a1f0c2b3d4819a8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b"


def _response(status: str, output: list, usage: dict | None, **extra: Any) -> dict:
    return {"id": _RESP_ID, "object": "response", "created_at": 1754326190, "status": status, "background": False,
            "error": None, "incomplete_details": None, "instructions": None, "max_output_tokens": None,
            "max_tool_calls": None, "model": "gpt-4.1-mini-2025-04-14", "output": output,
            "parallel_tool_calls": True, "previous_response_id": None, "prompt_cache_key": None,
            "reasoning": {"effort": None, "summary": None}, "safety_identifier": None, "service_tier": "auto",
            "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled",
            "usage": usage, "user": None, "metadata": {}, **extra}


def _responses_usage(inp: int, out: int, reasoning: int = 0, cached: int = 0) -> dict:
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": inp + out}


class _Seq:
    def __init__(self) -> None:
        self.n = 0

    def ev(self, kind: str, **body: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.n, **body}
        self.n += 1
        return sse(data, event=kind)


def _message_events(seq: _Seq, output_index: int, item_id: str, text: str) -> tuple[list[bytes], dict]:
    where = {"item_id": item_id, "output_index": output_index, "content_index": 0}

    def part(t: str) -> dict:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": t}

    def item(status: str, content: list) -> dict:
        return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}

    events = [seq.ev("response.output_item.added", output_index=output_index, item=item("in_progress", [])),
              seq.ev("response.content_part.added", **where, part=part(""))]
    events += [seq.ev("response.output_text.delta", **where, delta=tok, logprobs=[], obfuscation="q7Lm"[: 1 + i % 4])
               for i, tok in enumerate(words(text))]
    done = item("completed", [part(text)])
    events += [seq.ev("response.output_text.done", **where, text=text, logprobs=[]),
               seq.ev("response.content_part.done", **where, part=part(text)),
               seq.ev("response.output_item.done", output_index=output_index, item=done)]
    return events, done


def _responses_text() -> StreamSample:
    seq = _Seq()
    events = [seq.ev("response.created", response=_response("in_progress", [], None)),
              seq.ev("response.in_progress", response=_response("in_progress", [], None))]
    body, done = _message_events(seq, 0, "msg_68a1f0c3e4f5819aa1b2c3d4e5f60718293a4b5c6d7e8f90", REPLY)
    events += body
    events.append(seq.ev("response.completed", response=_response("completed", [done], _responses_usage(19, 18))))
    return _register(StreamSample("openai_responses_text", "openai.responses", "/v1/responses", "api.openai.com",
                                  {"model": "gpt-4.1-mini", "input": "Say hello in French", "stream": True},
                                  SSE_TYPE_OPENAI, tuple(events)))


_responses_text()


def _responses_function_call() -> StreamSample:
    seq = _Seq()
    tools = [{"type": "function", "name": "get_weather", "description": "Current weather for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                             "additionalProperties": False}, "strict": True}]
    events = [seq.ev("response.created", response=_response("in_progress", [], None, tools=tools)),
              seq.ev("response.in_progress", response=_response("in_progress", [], None, tools=tools))]
    output = []
    for index, (fc_id, call_id, city) in enumerate((
            ("fc_68a1f0c5a1b2819ab3c4d5e6f708192a3b4c5d6e7f8091a2", "call_Qx8W2e4R6t8Y0u2I4o6P8a0S", "Zürich"),
            ("fc_68a1f0c5a1b2819ac4d5e6f708192a3b4c5d6e7f8091a2b3", "call_Lk9J7h5G3f1D9s7A5p3O1i9U", "東京"))):
        args = dumps({"city": city})
        item = {"id": fc_id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": call_id,
                "name": "get_weather"}
        events.append(seq.ev("response.output_item.added", output_index=index, item=item))
        for i in range(0, len(args), 4):
            events.append(seq.ev("response.function_call_arguments.delta", item_id=fc_id, output_index=index,
                                 delta=args[i:i + 4], obfuscation="Ab3"))
        events.append(seq.ev("response.function_call_arguments.done", item_id=fc_id, output_index=index,
                             arguments=args))
        done = {**item, "status": "completed", "arguments": args}
        events.append(seq.ev("response.output_item.done", output_index=index, item=done))
        output.append(done)
    events.append(seq.ev("response.completed", response=_response("completed", output, _responses_usage(64, 38),
                                                                  tools=tools)))
    return _register(StreamSample("openai_responses_function_calls", "openai.responses", "/v1/responses",
                                  "api.openai.com",
                                  {"model": "gpt-4.1-mini", "input": "Weather in Zürich and Tokyo?", "tools": tools,
                                   "stream": True}, SSE_TYPE_OPENAI, tuple(events)))


_responses_function_call()


def _responses_reasoning() -> StreamSample:
    seq = _Seq()
    extra = {"model": "o4-mini-2025-04-16", "reasoning": {"effort": "medium", "summary": "detailed"}}
    events = [seq.ev("response.created", response=_response("in_progress", [], None, **extra)),
              seq.ev("response.in_progress", response=_response("in_progress", [], None, **extra))]
    rs_id = "rs_68a1f0c7d8e9819abf0a1b2c3d4e5f60718293a4b5c6d7e8"
    summary = "**Choosing a greeting** — a short French hello fits; ça suffit."
    item = {"id": rs_id, "type": "reasoning", "summary": []}
    events.append(seq.ev("response.output_item.added", output_index=0, item=item))
    where = {"item_id": rs_id, "output_index": 0, "summary_index": 0}
    events.append(seq.ev("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}))
    events += [seq.ev("response.reasoning_summary_text.delta", **where, delta=tok, obfuscation="k2")
               for tok in words(summary)]
    events.append(seq.ev("response.reasoning_summary_text.done", **where, text=summary))
    events.append(seq.ev("response.reasoning_summary_part.done", **where,
                         part={"type": "summary_text", "text": summary}))
    reasoning_done = {"id": rs_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}
    events.append(seq.ev("response.output_item.done", output_index=0, item=reasoning_done))
    body, message = _message_events(seq, 1, "msg_68a1f0c8e9f0819ac0b1c2d3e4f5061728394a5b6c7d8e9f",
                                    "Bonjour ! 🇫🇷")
    events += body
    events.append(seq.ev("response.completed", response=_response(
        "completed", [reasoning_done, message], _responses_usage(18, 210, reasoning=192), **extra)))
    return _register(StreamSample("openai_responses_reasoning", "openai.responses", "/v1/responses",
                                  "api.openai.com",
                                  {"model": "o4-mini", "input": "Say hello in French",
                                   "reasoning": {"effort": "medium", "summary": "detailed"}, "stream": True},
                                  SSE_TYPE_OPENAI, tuple(events)))


_responses_reasoning()


def _responses_incomplete() -> StreamSample:
    seq = _Seq()
    events = [seq.ev("response.created", response=_response("in_progress", [], None, max_output_tokens=16))]
    text = "Il était une fois un renard très"
    where = {"item_id": "msg_68a1f0c9f0a1819ad1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6", "output_index": 0, "content_index": 0}
    item = {"id": where["item_id"], "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
    events.append(seq.ev("response.output_item.added", output_index=0, item=item))
    events.append(seq.ev("response.content_part.added", **where,
                         part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""}))
    events += [seq.ev("response.output_text.delta", **where, delta=tok, logprobs=[]) for tok in words(text)]
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    done = {**item, "status": "incomplete", "content": [part]}
    events.append(seq.ev("response.output_item.done", output_index=0, item=done))
    events.append(seq.ev("response.incomplete", response=_response(
        "incomplete", [done], _responses_usage(12, 16), max_output_tokens=16,
        incomplete_details={"reason": "max_output_tokens"})))
    return _register(StreamSample("openai_responses_incomplete", "openai.responses", "/v1/responses",
                                  "api.openai.com",
                                  {"model": "gpt-4.1-mini", "input": "Tell a story", "max_output_tokens": 16,
                                   "stream": True}, SSE_TYPE_OPENAI, tuple(events)))


_responses_incomplete()


def _responses_failed() -> StreamSample:
    seq = _Seq()
    events = [seq.ev("response.created", response=_response("in_progress", [], None)),
              seq.ev("response.in_progress", response=_response("in_progress", [], None))]
    error = {"code": "server_error",
             "message": "The server had an error while processing your request. Sorry about that!"}
    events.append(seq.ev("response.failed", response=_response("failed", [], None, error=error)))
    return _register(StreamSample("openai_responses_failed", "openai.responses", "/v1/responses", "api.openai.com",
                                  {"model": "gpt-4.1-mini", "input": "Hi", "stream": True}, SSE_TYPE_OPENAI,
                                  tuple(events)))


_responses_failed()

# --- Anthropic Messages ------------------------------------------------------------------


def _anthropic(name: str, blocks: list[tuple[dict, list[dict]]], *, stop_reason: str = "end_turn",
               start_usage: dict | None = None, delta_usage: dict | None = None,
               msg_id: str = "msg_01XFDUDYJgAACzvnptvVoYEL", model: str = "claude-sonnet-4-5-20250929",
               request: dict | None = None, tail: list[bytes] | None = None,
               stop_sequence: str | None = None) -> StreamSample:
    """blocks: (content_block at start, [delta, ...]) in index order."""
    def ev(kind: str, **body: Any) -> bytes:
        return sse({"type": kind, **body}, event=kind)

    start_usage = start_usage or {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                                  "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                                  "output_tokens": 1, "service_tier": "standard"}
    events = [ev("message_start", message={"id": msg_id, "type": "message", "role": "assistant", "model": model,
                                           "content": [], "stop_reason": None, "stop_sequence": None,
                                           "usage": start_usage})]
    for index, (block, deltas) in enumerate(blocks):
        events.append(ev("content_block_start", index=index, content_block=block))
        if index == 0:
            events.append(ev("ping"))
        events += [ev("content_block_delta", index=index, delta=d) for d in deltas]
        events.append(ev("content_block_stop", index=index))
    if tail is not None:
        events += tail
    else:
        events.append(ev("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                         usage=delta_usage or {"output_tokens": 15}))
        events.append(ev("message_stop"))
    request = request or {"model": model, "max_tokens": 1024, "stream": True,
                          "messages": [{"role": "user", "content": "Say hello in French."}]}
    return _register(StreamSample(name, "anthropic.messages", "/v1/messages", "api.anthropic.com", request,
                                  SSE_TYPE_ANTHROPIC, tuple(events)))


def _text_block(text: str) -> tuple[dict, list[dict]]:
    return {"type": "text", "text": ""}, [{"type": "text_delta", "text": tok} for tok in words(text)]


_anthropic("anthropic_text", [_text_block(REPLY)])

_anthropic("anthropic_stop_sequence", [_text_block("Un, deux, trois — ça")], stop_reason="stop_sequence",
           stop_sequence="quatre", msg_id="msg_01Hq7Zr3vLbP2mW9sXkT4nYd",
           delta_usage={"output_tokens": 7})


def _tool_block(tool_id: str, name: str, fragments: list[str]) -> tuple[dict, list[dict]]:
    return ({"type": "tool_use", "id": tool_id, "name": name, "input": {}},
            [{"type": "input_json_delta", "partial_json": f} for f in fragments])


_anthropic("anthropic_tool_use", [
    _text_block("I'll check the weather in both cities — un instant."),
    _tool_block("toolu_01A09q90qw90lq917835lq9", "get_weather",
                ["", '{"city": "Par', 'is", "unit": "cel', 'sius"}']),
    _tool_block("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather",
                ["", '{"city"', ': "São ', 'Paulo", "uni', 't": "celsius"}']),
], stop_reason="tool_use", msg_id="msg_014p7gG3wDgGV9EUtLvnow3U", delta_usage={"output_tokens": 112},
    request={"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024, "stream": True,
             "tools": [{"name": "get_weather", "description": "Current weather",
                        "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                                          "unit": {"type": "string"}}}}],
             "messages": [{"role": "user", "content": "Weather in Paris and São Paulo?"}]})

_anthropic("anthropic_tool_use_no_arguments", [
    _tool_block("toolu_01Vp4FhKm8Q2eWz7rXsN3bTy", "get_time", [""]),
], stop_reason="tool_use", msg_id="msg_01Dq8Rm2sKx5Yt9Pv3Lw7Nbc", delta_usage={"output_tokens": 31})

_THINKING = "The user wants a French greeting. Bonjour is standard — ça marche. 🤔"
_anthropic("anthropic_thinking", [
    ({"type": "thinking", "thinking": "", "signature": ""},
     [{"type": "thinking_delta", "thinking": tok} for tok in words(_THINKING)]
     + [{"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds8VCq2zbxXr"
                                                 "6sTTt3jYPq1xjCfeXnN4/sJ8pWLdcW3IH5WcyzFgWIwxWhoe7pHvUq9ZaUZ2HByS"}]),
    _text_block("Bonjour ! 👋"),
], msg_id="msg_01Aq9Hc4kWv8Lm2Rt6Yx3Pnz", delta_usage={"output_tokens": 64},
    request={"model": "claude-sonnet-4-5-20250929", "max_tokens": 2048, "stream": True,
             "thinking": {"type": "enabled", "budget_tokens": 1024},
             "messages": [{"role": "user", "content": "Say hello in French."}]})

_anthropic("anthropic_redacted_thinking", [
    ({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}, []),
    _text_block("Voilà — done ✓"),
], msg_id="msg_01Rz5Kd8nBq2Xw7Tm4Lp9Vhc", delta_usage={"output_tokens": 40})

# Prompt caching: cache reads and writes in message_start; message_delta repeats the cumulative
# input-side counts next to output_tokens.
_CACHE_START = {"input_tokens": 5, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 12000,
                "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 2, "service_tier": "standard"}
_anthropic("anthropic_cache_usage", [_text_block("Cached context read — 続けます.")],
           start_usage=_CACHE_START, msg_id="msg_01Ce7Wq3rTy6Ux9Io2Pa5Sdf",
           delta_usage={"input_tokens": 5, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 12000,
                        "output_tokens": 19})

_anthropic("anthropic_overloaded", [_text_block("Bonjour, j’ai")], msg_id="msg_01Ov3Lk7Jh2Gf5Ds8Ap1Qwz",
           tail=[sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                      "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}, event="error")])

# --- Google Gemini -----------------------------------------------------------------------

_GEMINI_MODEL = "gemini-2.5-flash"
_GEMINI_RESPONSE_ID = "mF2vaN-9Lb6Gz7IPsvzgiAw"
_gemini_text_pieces = ["Bonjour ! Naïve café, ", "日本語 ✓ and a rocket 🚀", " — ready to help."]


def _gemini_chunks(pieces: list[list[dict]], finish: str = "STOP", usage: dict | None = None,
                   with_usage_each: bool = True) -> list[dict]:
    usage = usage or {"promptTokenCount": 8, "candidatesTokenCount": 19, "totalTokenCount": 27,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]}
    chunks = []
    for i, parts in enumerate(pieces):
        last = i == len(pieces) - 1
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if last:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if last or with_usage_each:
            chunk["usageMetadata"] = usage if last else {"promptTokenCount": 8, "totalTokenCount": 8,
                                                         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]}
        chunk["modelVersion"] = _GEMINI_MODEL
        chunk["responseId"] = _GEMINI_RESPONSE_ID
        chunks.append(chunk)
    return chunks


def _gemini_sse(name: str, chunks: list[dict], expected: dict, request: dict) -> StreamSample:
    # Gemini ends its SSE lines with CRLF.
    events = tuple(sse(c, eol="\r\n") for c in chunks)
    return _register(StreamSample(name, "gemini.generate_content",
                                  f"/v1beta/models/{_GEMINI_MODEL}:streamGenerateContent?alt=sse",
                                  "generativelanguage.googleapis.com", request, SSE_TYPE_GEMINI, events, expected))


def _gemini_array(name: str, chunks: list[dict], expected: dict, request: dict) -> StreamSample:
    # Without alt=sse: one JSON array, pretty-printed, its elements written as they come.
    texts = [json.dumps(c, indent=2, ensure_ascii=False) for c in chunks]
    events = ["[" + texts[0]] + [",\r\n" + t for t in texts[1:]]
    events[-1] += "]"
    return _register(StreamSample(name, "gemini.generate_content",
                                  f"/v1beta/models/{_GEMINI_MODEL}:streamGenerateContent",
                                  "generativelanguage.googleapis.com", request, JSON_TYPE_GEMINI,
                                  tuple(e.encode() for e in events), expected))


_GEMINI_REQUEST = {"contents": [{"role": "user", "parts": [{"text": "Say hello in French."}]}],
                   "generationConfig": {"temperature": 0.4, "maxOutputTokens": 256}}
_gemini_text_chunks = _gemini_chunks([[{"text": t}] for t in _gemini_text_pieces])
_gemini_text_expected = {
    "candidates": [{"content": {"parts": [{"text": "".join(_gemini_text_pieces)}], "role": "model"},
                    "finishReason": "STOP", "index": 0}],
    "usageMetadata": _gemini_text_chunks[-1]["usageMetadata"], "modelVersion": _GEMINI_MODEL,
    "responseId": _GEMINI_RESPONSE_ID}
_gemini_sse("gemini_sse_text", _gemini_text_chunks, _gemini_text_expected, _GEMINI_REQUEST)
_gemini_array("gemini_array_text", _gemini_text_chunks, _gemini_text_expected, _GEMINI_REQUEST)

# Thoughts (includeThoughts) before the answer; the thought signature arrives on the last part.
_gemini_thought_pieces = [[{"text": "**Planning a greeting** — French, short. ", "thought": True}],
                          [{"text": "Keep it friendly 😊", "thought": True}],
                          [{"text": "Bonjour ! "}], [{"text": "Ça va ?", "thoughtSignature": "CiQB0e2Kb9xQ2mFz"}]]
_gemini_thought_usage = {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 52,
                         "thoughtsTokenCount": 38, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]}
_gemini_sse("gemini_sse_thoughts", _gemini_chunks(_gemini_thought_pieces, usage=_gemini_thought_usage), {
    "candidates": [{"content": {"parts": [
        {"text": "**Planning a greeting** — French, short. Keep it friendly 😊", "thought": True},
        {"text": "Bonjour ! Ça va ?", "thoughtSignature": "CiQB0e2Kb9xQ2mFz"}], "role": "model"},
        "finishReason": "STOP", "index": 0}],
    "usageMetadata": _gemini_thought_usage, "modelVersion": _GEMINI_MODEL, "responseId": _GEMINI_RESPONSE_ID},
    {**_GEMINI_REQUEST, "generationConfig": {"thinkingConfig": {"includeThoughts": True}}})

# A function call: Gemini sends it whole, in one part, with its thought signature.
_gemini_call = {"functionCall": {"name": "get_weather", "args": {"city": "Zürich", "unit": "celsius"}},
                "thoughtSignature": "CtwBAdHtim9Lq3Pr"}
_gemini_call_usage = {"promptTokenCount": 41, "candidatesTokenCount": 18, "totalTokenCount": 59,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 41}]}
_gemini_array("gemini_array_function_call",
              _gemini_chunks([[{"text": "Checking the weather in Zürich."}], [_gemini_call]],
                             usage=_gemini_call_usage), {
                  "candidates": [{"content": {"parts": [{"text": "Checking the weather in Zürich."}, _gemini_call],
                                              "role": "model"}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": _gemini_call_usage, "modelVersion": _GEMINI_MODEL,
                  "responseId": _GEMINI_RESPONSE_ID},
              {**_GEMINI_REQUEST, "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {
                  "type": "object", "properties": {"city": {"type": "string"}}}}]}]})

# --- Ollama ------------------------------------------------------------------------------


def _ndjson(name: str, fmt: str, path: str, lines: list[dict], request: dict, expected: dict) -> StreamSample:
    return _register(StreamSample(name, fmt, path, "localhost:11434", request, NDJSON_TYPE,
                                  tuple((dumps(line) + "\n").encode() for line in lines), expected))


_OLLAMA_DONE = {"total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": 26,
                "prompt_eval_duration": 342546000, "eval_count": 14, "eval_duration": 4535599000}
_ollama_answer = "Bonjour ! Comment ça va ? 🥐"
_ollama_lines = [{"model": "llama3.2", "created_at": f"2025-08-04T16:49:4{i}.{i}85406455Z",
                  "message": {"role": "assistant", "content": tok}, "done": False}
                 for i, tok in enumerate(words(_ollama_answer))]
_ollama_lines.append({"model": "llama3.2", "created_at": "2025-08-04T16:49:49.985406455Z",
                      "message": {"role": "assistant", "content": ""}, "done_reason": "stop", "done": True,
                      **_OLLAMA_DONE})
_ndjson("ollama_chat", "ollama.chat", "/api/chat", _ollama_lines,
        {"model": "llama3.2", "messages": [{"role": "user", "content": "Salut"}]},
        {"model": "llama3.2", "created_at": "2025-08-04T16:49:49.985406455Z",
         "message": {"role": "assistant", "content": _ollama_answer}, "done": True, "done_reason": "stop",
         **_OLLAMA_DONE})

_ollama_think = "Météo demandée pour Lyon — appeler l’outil."
_ollama_tool_call = {"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}
_ollama_tool_lines = [{"model": "qwen3", "created_at": "2025-08-04T16:50:01.1Z",
                       "message": {"role": "assistant", "content": "", "thinking": tok}, "done": False}
                      for tok in words(_ollama_think)]
_ollama_tool_lines.append({"model": "qwen3", "created_at": "2025-08-04T16:50:01.9Z",
                           "message": {"role": "assistant", "content": "", "tool_calls": [_ollama_tool_call]},
                           "done": False})
_ollama_tool_lines.append({"model": "qwen3", "created_at": "2025-08-04T16:50:02.0Z",
                           "message": {"role": "assistant", "content": ""}, "done_reason": "stop", "done": True,
                           **_OLLAMA_DONE})
_ndjson("ollama_chat_tools", "ollama.chat", "/api/chat", _ollama_tool_lines,
        {"model": "qwen3", "think": True, "messages": [{"role": "user", "content": "Météo à Lyon ?"}],
         "tools": [{"type": "function", "function": {"name": "get_weather"}}]},
        {"model": "qwen3", "created_at": "2025-08-04T16:50:02.0Z",
         "message": {"role": "assistant", "content": "", "thinking": _ollama_think,
                     "tool_calls": [_ollama_tool_call]},
         "done": True, "done_reason": "stop", **_OLLAMA_DONE})

_ollama_gen_answer = "The sky is blue because of Rayleigh scattering — ☀️ light scatters."
_ollama_gen_lines = [{"model": "llama3.2", "created_at": "2025-08-04T16:51:00.1Z", "response": tok, "done": False}
                     for tok in words(_ollama_gen_answer)]
_ollama_gen_lines.append({"model": "llama3.2", "created_at": "2025-08-04T16:51:01.2Z", "response": "", "done": True,
                          "done_reason": "stop", "context": [128006, 882, 128007, 271, 10445, 374, 279, 13180],
                          **_OLLAMA_DONE})
_ndjson("ollama_generate", "ollama.generate", "/api/generate", _ollama_gen_lines,
        {"model": "llama3.2", "prompt": "Why is the sky blue?"},
        {"model": "llama3.2", "created_at": "2025-08-04T16:51:01.2Z", "response": _ollama_gen_answer, "done": True,
         "done_reason": "stop", "context": [128006, 882, 128007, 271, 10445, 374, 279, 13180], **_OLLAMA_DONE})


# --- What slips through: bodies that are not LLM streams -----------------------------------

NOT_STREAMS: dict[str, tuple[str, bytes]] = {
    # name: (content-type, body)
    "html_error_page": ("text/event-stream",
                        b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
                        b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"),
    "binary": ("text/event-stream", bytes(range(256)) * 4),
    "invalid_utf8": ("text/event-stream", b"data: {\"text\": \"caf\xe9 \xff\xfe\"}\n\ndata: \xc3\x28\n\n"),
    "other_sse_app": ("text/event-stream",
                      b"event: price\ndata: {\"symbol\":\"ACME\",\"price\":12.5}\n\n"
                      b"event: price\ndata: {\"symbol\":\"ACME\",\"price\":12.6}\n\n"),
}
