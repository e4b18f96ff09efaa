"""Anthropic Messages streams → the `message` object the API returns without streaming.

`message_start` carries the message with empty content and the input-side usage;
`content_block_start` opens a block at `index` (text, tool_use, thinking,
redacted_thinking, server tool blocks); `content_block_delta` appends to it (`text_delta`,
`input_json_delta` fragments of a tool's input, `thinking_delta`, `signature_delta`,
`citations_delta`); `content_block_stop` closes it (a tool's input JSON is parsed then);
`message_delta` sets `stop_reason`, `stop_sequence` and the usage — cumulative counts that
replace the earlier ones, fields it leaves out keeping their `message_start` values —
and `message_stop` ends the stream. `ping` is a keep-alive; `error` carries the error
(`overloaded_error`, `rate_limit_error`, …). Cost: O(size of the events).
"""

from __future__ import annotations

import json
from typing import Any

from .accumulator import Accumulator, append_text, finalize, loads_partial

_TEXT_DELTAS = {"text_delta": "text", "thinking_delta": "thinking"}
_KNOWN = frozenset({"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                    "message_delta", "message_stop", "ping", "error"})


class MessagesAccumulator(Accumulator):
    format = "anthropic.messages"

    def __init__(self) -> None:
        super().__init__()
        self.message: dict | None = None
        self.blocks: dict[int, dict] = {}
        self.input_json: dict[int, list[str]] = {}  # index → input_json_delta fragments not yet parsed

    def add(self, event: str, record: Any) -> bool:
        if not isinstance(record, dict):
            self.unknown_events += 1
            return False
        kind = record.get("type") if isinstance(record.get("type"), str) else event
        if kind == "content_block_delta":  # nearly every event: first
            return self._block_delta(record)
        if kind not in _KNOWN:
            self.unknown_events += 1  # Anthropic may add event types; clients are to ignore them
            return False
        if kind == "error":
            error = record.get("error") if isinstance(record.get("error"), dict) else record
            self.report_error(error.get("type"), error.get("message"))
            return False
        if kind == "message_start":
            message = record.get("message")
            if isinstance(message, dict):
                self.message = message
                for i, block in enumerate(message.get("content") or ()):
                    if isinstance(block, dict):
                        self.blocks.setdefault(i, block)
            return False
        if kind == "message_stop":
            self.complete = True
            return False
        if kind == "message_delta":
            self._message_delta(record)
            return False
        if kind == "ping":
            return False
        index = record.get("index")
        if not isinstance(index, int):
            return False
        if kind == "content_block_start":
            block = record.get("content_block")
            if isinstance(block, dict):
                self.blocks[index] = block
                return bool(block.get("text") or block.get("thinking") or block.get("data"))
            return False
        self._parse_input(index, closed=True)  # content_block_stop
        return False

    def _block_delta(self, record: dict) -> bool:
        index = record.get("index")
        delta = record.get("delta")
        if not isinstance(index, int) or not isinstance(delta, dict):
            return False
        block = self.blocks.get(index)
        if block is None:  # a delta for a block that never started: keep what it says
            block = self.blocks[index] = {"type": {"input_json_delta": "tool_use", "thinking_delta": "thinking",
                                                   "signature_delta": "thinking"}.get(delta.get("type"), "text")}
        kind = delta.get("type")
        if kind in _TEXT_DELTAS:
            text = delta.get(_TEXT_DELTAS[kind])
            append_text(block, _TEXT_DELTAS[kind], text)
            return bool(text)
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if isinstance(fragment, str) and fragment:
                self.input_json.setdefault(index, []).append(fragment)
                return True
            return False
        if kind == "signature_delta":
            block["signature"] = delta.get("signature")
            return False
        if kind == "citations_delta":
            citations = block.get("citations")
            if not isinstance(citations, list):
                citations = block["citations"] = []
            citations.append(delta.get("citation"))
            return False
        self.unknown_events += 1
        return False

    def _message_delta(self, record: dict) -> None:
        if self.message is None:
            self.message = {}
        delta = record.get("delta")
        if isinstance(delta, dict):
            for key, value in delta.items():
                if value is not None or key in ("stop_reason", "stop_sequence", "stop_details"):
                    self.message[key] = value
        usage = record.get("usage")
        if isinstance(usage, dict):
            current = self.message.get("usage")
            if not isinstance(current, dict):
                current = self.message["usage"] = {}
            for key, value in usage.items():
                if value is not None:
                    current[key] = value

    def _parse_input(self, index: int, closed: bool) -> None:
        """A tool's input from its fragments. A block the stream never closed is parsed as far
        as it got; a closed one that is not JSON is reported, and kept as far as it parses."""
        fragments = self.input_json.pop(index, None)
        if not fragments:
            return
        text = "".join(fragments)
        try:
            self.blocks[index]["input"] = json.loads(text)
            return
        except ValueError:
            if closed:
                self.problem = self.problem or f"the input of content block {index} is not valid JSON"
        try:
            self.blocks[index]["input"] = loads_partial(text)
        except ValueError:
            pass

    def result(self) -> dict | None:
        if self.message is None and not self.blocks:
            return None
        for index in list(self.input_json):
            self._parse_input(index, closed=False)  # blocks the stream never closed
        out = dict(self.message or {})
        out["content"] = [self.blocks[i] for i in sorted(self.blocks)]
        return finalize(out)
