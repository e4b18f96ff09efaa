"""What every per-API accumulator shares: its interface, provider errors, and the delta
arithmetic of streamed JSON (text appended, objects merged, indexed lists merged by index).

An accumulator is fed one decoded record at a time (`add`) and builds the object the API
returns without streaming (`result`). Text that arrives in deltas is kept as a list of
pieces (`Pieces`) and joined once in `result`: appending to a growing string would copy
it on every delta (quadratic in the text length). Cost: O(size of the records) overall.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

OTHER_ERROR = "_OTHER"  # error.type when a provider's error names no type (semconv's fallback value)


@dataclass(frozen=True)
class ProviderError:
    """An error the provider reported inside the stream."""

    type: str
    message: str


class Pieces(list):
    """Text under construction: the deltas, joined by `finalize`."""


def append_text(target: dict, key: str, text: Any) -> None:
    """target[key] += text, without the quadratic copy."""
    if not isinstance(text, str):
        return
    current = target.get(key)
    if type(current) is Pieces:
        current.append(text)
    elif isinstance(current, str) and current:
        if text:
            target[key] = Pieces((current, text))
    else:
        target[key] = text


def accumulate(current: Any, delta: Any) -> Any:
    """The value after `delta` arrives for a field holding `current` (the openai SDK's
    delta rules: strings append, objects merge, lists of indexed objects merge by index,
    other lists extend; anything else replaces, numbers included — adding them, as the
    SDK does, would also add up booleans)."""
    if current is None:
        return delta
    if isinstance(delta, str):
        if type(current) is Pieces:
            current.append(delta)
            return current
        if isinstance(current, str):
            return Pieces((current, delta)) if current and delta else (current or delta)
        return delta
    if isinstance(delta, dict) and isinstance(current, dict):
        merge_delta(current, delta)
        return current
    if isinstance(delta, list) and type(current) is list:
        merge_list(current, delta)
        return current
    return delta


# Keys that identify or classify an object: a delta sets them, it never appends to them
# (some servers repeat `role` or a tool call's `id` in every chunk).
IDENTITY_KEYS = frozenset({"index", "type", "role", "id"})


def merge_delta(current: dict, delta: dict) -> None:
    for key, value in delta.items():
        if value is None:
            current.setdefault(key, None)
        elif key in IDENTITY_KEYS:
            current[key] = value
        else:
            current[key] = accumulate(current.get(key), value)


def merge_list(current: list, delta: list) -> None:
    for entry in delta:
        index = entry.get("index") if isinstance(entry, dict) else None
        if not isinstance(index, int):
            current.append(entry)
            continue
        for existing in current:
            if isinstance(existing, dict) and existing.get("index") == index:
                merge_delta(existing, entry)
                break
        else:
            current.append(entry)


def set_at(items: list, index: Any, value: Any) -> None:
    """items[index] = value, growing the list (with None) when the index is past its end."""
    if not isinstance(index, int) or index < 0:
        items.append(value)
        return
    while len(items) <= index:
        items.append(None)
    items[index] = value


def finalize(value: Any) -> Any:
    """Join every `Pieces` in a finished object, in place where possible."""
    if type(value) is Pieces:
        return "".join(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                value[key] = finalize(item)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)):
                value[i] = finalize(item)
        return value
    return value


def loads_partial(text: str) -> Any:
    """The JSON value of `text`, or of its longest prefix that can be closed into valid
    JSON when the text was cut short (an unfinished string is closed, a dangling key or
    value dropped, open objects and arrays closed). Raises ValueError if nothing fits.
    One scan plus a few decoding attempts: O(len(text))."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []  # (position, closers): prefixes that end between elements
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            cuts.append((i + 1, "".join(reversed(stack))))
        elif ch in "}]":
            if stack:
                stack.pop()
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
    closers = "".join(reversed(stack))
    attempts = [text + ('"' if in_string else "") + closers]
    attempts += [text[:pos] + close for pos, close in reversed(cuts[-4:])]
    for attempt in attempts:
        try:
            return json.loads(attempt)
        except ValueError:
            continue
    raise ValueError("not a prefix of a JSON value")


class Accumulator:
    """Base of the per-API accumulators."""

    format: ClassVar[str]

    def __init__(self) -> None:
        self.complete = False  # the stream's own terminator (or final state) was seen
        self.error: ProviderError | None = None  # the first error the provider reported
        self.unknown_events = 0  # records of a type this accumulator does not know (ignored)
        self.problem: str | None = None  # a record that parsed but could not be used as the API defines it

    def add(self, event: str, record: Any) -> bool:
        """Take one decoded record (`event` is the SSE event type, "message" when none was
        given or the stream is not SSE). True if it carried output: text, refusal, a tool
        call, reasoning."""
        raise NotImplementedError

    def done_marker(self) -> None:
        """`data: [DONE]` arrived (OpenAI-style streams end with it)."""

    def end(self, ended_cleanly: bool) -> None:
        """The stream ended; `ended_cleanly`: not in the middle of a record. Formats
        without a terminator decide here whether they are complete."""

    def result(self) -> dict | None:
        """The non-streaming object, or None if nothing usable arrived."""
        raise NotImplementedError

    def report_error(self, type_: Any, message: Any) -> None:
        if self.error is None:
            kind = type_ if isinstance(type_, str) and type_ else (str(type_) if type_ is not None else "")
            self.error = ProviderError(kind or OTHER_ERROR, message if isinstance(message, str) else str(message or ""))
