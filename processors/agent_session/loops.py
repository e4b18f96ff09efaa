"""Loop signals: fingerprints of tool calls and prompts, counted over a sliding window.

- A tool call's fingerprint is its name and its arguments as canonical JSON (keys sorted,
  compact): "identical" means the same tool with the same arguments, nothing fuzzier.
- A prompt's fingerprint is what is new in it: the input messages after the last assistant
  message (the user's text, or the tool results the agent sends back; the whole input when
  there is no assistant message), their text, tool results and tool calls lowercased, every
  run of digits replaced by `0` and whitespace collapsed. Message ids and tool call ids are
  left out. So a prompt that differs only in a counter, a timestamp or a line number, or in
  spacing, counts as the same prompt; the growing history before it does not matter.
- `RepetitionWindow` counts how often a fingerprint occurs among the last `size` added.

Cost: a fingerprint is one BLAKE2b over the normalized text (the messages are parsed once by
the caller); a window is a deque and a counter, O(1) per add, `size` entries per session.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, deque
from typing import Any

_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest()


def canonical_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def tool_call_fingerprint(name: str, arguments: Any) -> bytes:
    return _hash(name + "\x00" + canonical_json(arguments))


def normalize_text(text: str) -> str:
    return _SPACE.sub(" ", _DIGITS.sub("0", text.lower())).strip()


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind in ("text", "reasoning"):
        content = part.get("content")
        return content if isinstance(content, str) else canonical_json(content)
    if kind == "tool_call_response":
        response = part.get("response")
        return response if isinstance(response, str) else canonical_json(response)
    if kind == "tool_call":
        return f"{part.get('name')}({canonical_json(part.get('arguments'))})"
    # Media and other parts: their kind only (their bytes would cost more than they tell).
    return f"<{kind}>"


def prompt_fingerprint(input_messages: Any) -> bytes | None:
    """None when the input has nothing to compare (no messages, or only empty ones)."""
    if not isinstance(input_messages, list):
        return None
    start = 0
    for i, message in enumerate(input_messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            start = i + 1
    lines = []
    for message in input_messages[start:]:
        if not isinstance(message, dict):
            continue
        parts = message.get("parts")
        text = " ".join(_part_text(p) for p in parts) if isinstance(parts, list) else ""
        if text.strip():
            lines.append(f"{message.get('role')}: {normalize_text(text)}")
    return _hash("\n".join(lines)) if lines else None


class RepetitionWindow:
    """How often each fingerprint occurs among the last `size` added."""

    def __init__(self, size: int):
        self._recent: deque[bytes] = deque()
        self._counts: Counter[bytes] = Counter()
        self._size = size

    def add(self, fingerprint: bytes) -> int:
        """Add one; return its count in the window, this one included."""
        self._recent.append(fingerprint)
        self._counts[fingerprint] += 1
        if len(self._recent) > self._size:
            old = self._recent.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        return self._counts[fingerprint]
