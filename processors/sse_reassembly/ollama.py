"""Ollama's native NDJSON streams (`/api/chat`, `/api/generate`) → the object the same
endpoint returns with `"stream": false`.

Each line is a JSON object with `model`, `created_at` and `done`. Chat lines carry a
`message` whose `content` and `thinking` append and whose `tool_calls` (sent whole) add
up; generate lines carry `response` and `thinking` text. The last line (`done: true`)
brings `done_reason`, the token counts (`prompt_eval_count`, `eval_count`), the
durations and, for generate, `context`: those keys take their last value. An
`{"error": "..."}` line is the error (Ollama gives no error type).
Cost: O(size of the lines).
"""

from __future__ import annotations

from typing import Any

from .accumulator import Accumulator, accumulate, append_text, finalize


class _OllamaAccumulator(Accumulator):
    text_keys: tuple[str, ...]

    def __init__(self) -> None:
        super().__init__()
        self.top: dict[str, Any] = {}

    def add(self, event: str, line: Any) -> bool:
        if not isinstance(line, dict):
            self.unknown_events += 1
            return False
        if "error" in line:
            self.report_error(None, line["error"])
            return False
        if "done" not in line:
            self.unknown_events += 1
            return False
        output = False
        for key, value in line.items():
            if key in self.text_keys:
                output = bool(value) or output
                append_text(self.top, key, value)
            elif key == "message" and isinstance(value, dict):
                output = self._add_message(value) or output
            else:
                self.top[key] = value
        if line.get("done") is True:
            self.complete = True
        return output

    def _add_message(self, delta: dict) -> bool:
        message = self.top.get("message")
        if not isinstance(message, dict):
            message = self.top["message"] = {}
        output = False
        for key, value in delta.items():
            if key in ("content", "thinking"):
                output = bool(value) or output
                append_text(message, key, value)
            elif key == "tool_calls" and isinstance(value, list):
                output = bool(value) or output
                calls = message.get("tool_calls")
                message["tool_calls"] = calls + value if isinstance(calls, list) else list(value)
            elif key == "role":
                message[key] = value
            else:
                message[key] = accumulate(message.get(key), value)
        return output

    def result(self) -> dict | None:
        return finalize(dict(self.top)) if self.top else None


class OllamaChatAccumulator(_OllamaAccumulator):
    format = "ollama.chat"
    text_keys = ()


class OllamaGenerateAccumulator(_OllamaAccumulator):
    format = "ollama.generate"
    text_keys = ("response", "thinking")
