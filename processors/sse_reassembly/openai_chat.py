"""OpenAI Chat Completions and legacy Completions streams → the `chat.completion` /
`text_completion` object the API returns without `stream: true`.

Chat: each `chat.completion.chunk` carries, per choice index, a `delta` of the message;
content, refusal and reasoning text (DeepSeek's `reasoning_content`, OpenRouter's
`reasoning`) append, `tool_calls` merge by their `index` with `function.arguments`
appended, `finish_reason` and `logprobs` arrive on the choice. The usage chunk
(`stream_options.include_usage`: `choices: []`, `usage` set) gives the usage; Groq puts
it under `x_groq.usage`. The stream ends with `data: [DONE]`. The same shape serves the
OpenAI-compatible servers (vLLM, llama.cpp, Ollama's /v1, OpenRouter, Groq, DeepSeek,
Azure): their extra top-level keys are kept, the last non-empty value winning.
Cost: O(size of the chunks).
"""

from __future__ import annotations

from typing import Any

from .accumulator import Accumulator, accumulate, append_text, finalize

# Keys of a chunk that are not fields of the final object.
_CHUNK_ONLY = frozenset({"choices", "object", "usage", "obfuscation"})


class _ChoicesAccumulator(Accumulator):
    object_name: str

    def __init__(self) -> None:
        super().__init__()
        self.top: dict[str, Any] = {}
        self.choices: dict[int, dict] = {}
        self.usage: dict | None = None

    def add(self, event: str, chunk: Any) -> bool:
        if not isinstance(chunk, dict):
            self.unknown_events += 1
            return False
        error = chunk.get("error")
        if chunk.get("object") == "error":  # vLLM: {"object": "error", "message", "type", "code"}
            error = chunk
        if error:
            if isinstance(error, dict):
                # As genai_semconv reads an OpenAI error body: the code when it is a word
                # (rate_limit_exceeded), else the type (server_error).
                code = error.get("code")
                word = isinstance(code, str) and code.replace("_", "").isalpha()
                self.report_error(code if word else error.get("type") or code, error.get("message"))
            else:
                self.report_error(None, error)
        choices = chunk.get("choices")
        if not error and not isinstance(choices, list) and "usage" not in chunk:
            self.unknown_events += 1
            return False
        if error is chunk:
            return False
        for key, value in chunk.items():
            if key in _CHUNK_ONLY or key == "error":
                continue
            if value is None or value == "" or (key == "created" and value == 0):
                self.top.setdefault(key, value)  # Azure's first chunk: id "", created 0, model ""
            else:
                self.top[key] = value
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        output = False
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict):
                output = self._add_choice(choice) or output
        return output

    def _add_choice(self, choice: dict) -> bool:
        index = choice.get("index", 0)
        index = index if isinstance(index, int) else 0
        snapshot = self.choices.get(index)
        if snapshot is None:
            snapshot = self.choices[index] = self._new_choice(index)
        for key, value in choice.items():
            if key in ("index", "delta", "text"):
                continue
            if key == "logprobs":
                _merge_logprobs(snapshot, value)
            elif value is not None:
                snapshot[key] = value
            else:
                snapshot.setdefault(key, None)
        return self._add_content(snapshot, choice)

    def _new_choice(self, index: int) -> dict:
        raise NotImplementedError

    def _add_content(self, snapshot: dict, choice: dict) -> bool:
        raise NotImplementedError

    def done_marker(self) -> None:
        self.complete = True

    def end(self, ended_cleanly: bool) -> None:
        # A server that never sends [DONE] still ends a whole answer with a finish_reason on every choice.
        if not self.complete and ended_cleanly and self.choices:
            self.complete = all(c.get("finish_reason") for c in self.choices.values())

    def result(self) -> dict | None:
        if not self.top and not self.choices and self.usage is None:
            return None
        out: dict[str, Any] = {}
        for key in ("id", "object", "created", "model"):
            out[key] = self.top.get(key)
        out["object"] = self.object_name
        out["choices"] = [self._finish_choice(self.choices[i]) for i in sorted(self.choices)]
        usage = self.usage
        for key, value in self.top.items():
            if key == "x_groq" and isinstance(value, dict) and "usage" in value:
                usage = usage or value["usage"]
                value = {k: v for k, v in value.items() if k != "usage"}
            out.setdefault(key, value)
        out["usage"] = usage
        return finalize(out)

    def _finish_choice(self, snapshot: dict) -> dict:
        return snapshot


def _merge_logprobs(snapshot: dict, logprobs: Any) -> None:
    """Token logprobs arrive per chunk; the final object lists them all."""
    if not isinstance(logprobs, dict):
        snapshot.setdefault("logprobs", logprobs)
        return
    current = snapshot.get("logprobs")
    if not isinstance(current, dict):
        snapshot["logprobs"] = {k: list(v) if isinstance(v, list) else v for k, v in logprobs.items()}
        return
    for key, value in logprobs.items():
        if isinstance(value, list) and isinstance(current.get(key), list):
            current[key].extend(value)
        elif value is not None or key not in current:
            current[key] = value


class ChatCompletionsAccumulator(_ChoicesAccumulator):
    format = "openai.chat_completions"
    object_name = "chat.completion"

    def _new_choice(self, index: int) -> dict:
        return {"index": index, "message": {}, "logprobs": None, "finish_reason": None}

    def _add_content(self, snapshot: dict, choice: dict) -> bool:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return False
        message = snapshot["message"]
        output = False
        for key, value in delta.items():
            if value is None:
                message.setdefault(key, None)
                continue
            if key == "role":
                message[key] = value
                continue
            output = output or bool(value)
            if key == "tool_calls" and isinstance(value, list):
                calls = message.get("tool_calls")
                if not isinstance(calls, list):
                    calls = message["tool_calls"] = []
                _merge_tool_calls(calls, value)
            elif key == "function_call" and isinstance(value, dict):  # the deprecated single function call
                call = message.get("function_call")
                if not isinstance(call, dict):
                    call = message["function_call"] = {}
                _merge_call(call, value)
            elif isinstance(value, str):
                append_text(message, key, value)
            else:
                message[key] = accumulate(message.get(key), value)
        return output

    def _finish_choice(self, snapshot: dict) -> dict:
        message = snapshot["message"]
        # A non-streamed message always has role and content; other keys only as the stream sent them.
        shaped = {"role": message.get("role") or "assistant", "content": message.get("content")}
        for key, value in message.items():
            shaped.setdefault(key, value)
        calls = shaped.get("tool_calls")
        if isinstance(calls, list):
            # A non-streamed message lists its tool calls in order, without the stream's `index`.
            calls.sort(key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
            for call in calls:
                call.pop("index", None)
        snapshot["message"] = shaped
        return snapshot


def _merge_tool_calls(calls: list[dict], deltas: list) -> None:
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        index = delta.get("index")
        target = None
        if isinstance(index, int):
            target = next((c for c in calls if c.get("index") == index), None)
        elif delta.get("id"):
            # Some servers omit `index` and send each call whole: tell them apart by id.
            target = next((c for c in calls if c.get("id") == delta["id"]), None)
            index = len(calls) if target is None else target["index"]
        elif calls:
            target = calls[-1]
            index = target["index"]
        else:
            index = 0
        if target is None:
            target = {"index": index}
            calls.append(target)
        _merge_call(target, delta)


def _merge_call(call: dict, delta: dict) -> None:
    for key, value in delta.items():
        if key == "index":
            continue
        if value is None:
            call.setdefault(key, None)
            continue
        if key == "function" and isinstance(value, dict):
            function = call.get("function")
            if not isinstance(function, dict):
                function = call["function"] = {}
            for fkey, fvalue in value.items():
                if fkey == "name" and isinstance(fvalue, str):
                    # Sent once by OpenAI; some servers repeat the whole name in every chunk.
                    if function.get("name") != fvalue:
                        append_text(function, "name", fvalue)
                elif fkey == "arguments" and isinstance(fvalue, str):
                    append_text(function, "arguments", fvalue)
                elif fvalue is not None:
                    function[fkey] = accumulate(function.get(fkey), fvalue)
                else:
                    function.setdefault(fkey, None)
        elif key in ("id", "type"):
            if value:
                call[key] = value
        elif key == "name" or key == "arguments":  # the deprecated `function_call` delta
            if key == "name" and call.get("name") == value:
                continue
            append_text(call, key, value)
        else:
            call[key] = accumulate(call.get(key), value)


class CompletionsAccumulator(_ChoicesAccumulator):
    format = "openai.completions"
    object_name = "text_completion"

    def _new_choice(self, index: int) -> dict:
        return {"text": "", "index": index, "logprobs": None, "finish_reason": None}

    def _add_content(self, snapshot: dict, choice: dict) -> bool:
        text = choice.get("text")
        if isinstance(text, str) and text:
            append_text(snapshot, "text", text)
            return True
        return False

