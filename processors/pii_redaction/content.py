"""Redaction of one value (an attribute's, a log body's), aware of its structure.

- A string that is JSON (an object or an array: `gen_ai.input.messages`, a tool call's
  arguments, a tool result, a raw body) is parsed and every string inside it is redacted —
  text parts, reasoning, tool-call arguments given as a string of JSON (parsed in turn) or as
  an object, tool results — and written back as JSON, so the value stays valid JSON. Only
  when something was redacted is it re-serialized (compact, UTF-8). The structural fields
  `type`, `role`, `finish_reason`, `mime_type` and `modality` are left as they are. The key
  holding a string is a context word for it (`"card_number": "…"`).
- Any other string is redacted as text; string arrays and maps (OTLP array / kvlist values)
  element by element; other scalars are left alone. Bytes that are UTF-8 are text; other
  bytes cannot be looked into and the value is dropped.

Cost: one JSON parse of the value, the detector over each string in it, and a dump when it
changed. The detector is given a deadline for the whole value (the caller's time budget).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from llmtap.processors.pii_redaction.detect import Detector
from llmtap.processors.pii_redaction.operators import Operators

_STRUCTURAL = frozenset({"type", "role", "finish_reason", "mime_type", "modality"})


class Undecodable(Exception):
    """Binary content that cannot be looked into: the value must go."""


class ValueRedactor:
    def __init__(self, detector: Detector, operators: Operators):
        self._detector = detector
        self._operators = operators

    def redact(self, value: Any, key: str, found: Counter, deadline: float | None) -> Any:
        """`value` (a Python value of an AnyValue) with every finding replaced; `found` counts
        them by entity type. Raises operators.Drop, Undecodable, TimeBudgetExceeded."""
        if isinstance(value, str):
            return self._string(value, key, found, deadline)
        if isinstance(value, list):
            return [self.redact(v, key, found, deadline) for v in value]
        if isinstance(value, dict):
            return {k: self.redact(v, k, found, deadline) for k, v in value.items()}
        if isinstance(value, (bytes, bytearray)):
            try:
                text = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise Undecodable(key) from None
            return self._string(text, key, found, deadline)
        return value

    def _string(self, text: str, key: str, found: Counter, deadline: float | None) -> str:
        head = text[:64].lstrip()
        if head[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, (dict, list)):
                before = sum(found.values())
                redacted = self._json(parsed, key, found, deadline)
                if sum(found.values()) == before:
                    return text
                return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
        findings = self._detector.analyze(text, context=(key.lower(),), deadline=deadline)
        if not findings:
            return text
        found.update(f.entity_type for f in findings)
        return self._operators.apply(text, findings)

    def _json(self, obj: Any, key: str, found: Counter, deadline: float | None) -> Any:
        if isinstance(obj, str):
            return self._string(obj, key, found, deadline)
        if isinstance(obj, list):
            return [self._json(v, key, found, deadline) for v in obj]
        if isinstance(obj, dict):
            return {k: v if k in _STRUCTURAL and isinstance(v, str) else self._json(v, k, found, deadline)
                    for k, v in obj.items()}
        return obj


def text_size(value: Any) -> int:
    """Characters of text in a value: what its time budget is scaled by."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    if isinstance(value, dict):
        return sum(text_size(v) for v in value.values())
    return 0
