"""OpenAI Responses API streams → the `response` object the API returns without streaming.

The stream is typed events: `response.created` (and `queued` / `in_progress`) carry the
response so far, `response.output_item.added` / `.done` an output item by
`output_index`, `response.content_part.added` / `.done` a part by `content_index`,
`*.delta` / `*.done` the text of a part (output text, refusal, reasoning text and
summaries) or the arguments of a call, and a terminal event — `response.completed`,
`response.incomplete` or `response.failed` — the finished response with usage.

The final object is the terminal event's `response` (its `output` filled in from the
items received when a server leaves it out). When no terminal event came, it is the last
response snapshot with the output assembled from the items and deltas that did arrive.
`error` events and `response.failed` give the provider error. Cost: O(size of the events).
"""

from __future__ import annotations

from typing import Any

from .accumulator import Accumulator, append_text, finalize, set_at

_SNAPSHOTS = frozenset({"response.created", "response.queued", "response.in_progress"})
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

# delta / done event → (list holding the part, index field, part created when none was added, text key);
# a list of None means the text sits on the item itself.
_PART_TEXT = {
    "response.output_text": ("content", "content_index", {"type": "output_text", "annotations": [], "text": ""},
                             "text"),
    "response.refusal": ("content", "content_index", {"type": "refusal", "refusal": ""}, "refusal"),
    "response.reasoning_text": ("content", "content_index", {"type": "reasoning_text", "text": ""}, "text"),
    "response.reasoning_summary_text": ("summary", "summary_index", {"type": "summary_text", "text": ""}, "text"),
    "response.function_call_arguments": (None, None, None, "arguments"),
    "response.custom_tool_call_input": (None, None, None, "input"),
    "response.mcp_call_arguments": (None, None, None, "arguments"),
    "response.code_interpreter_call_code": (None, None, None, "code"),
}
_PART_ADDED = {
    "response.content_part.added": ("content", "content_index"),
    "response.content_part.done": ("content", "content_index"),
    "response.reasoning_summary_part.added": ("summary", "summary_index"),
    "response.reasoning_summary_part.done": ("summary", "summary_index"),
}


class ResponsesAccumulator(Accumulator):
    format = "openai.responses"

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: dict | None = None  # the latest response.created / in_progress response
        self.final: dict | None = None  # the terminal event's response
        self.items: dict[int, dict] = {}  # output items by output_index

    def add(self, event: str, record: Any) -> bool:
        if not isinstance(record, dict):
            self.unknown_events += 1
            return False
        kind = record.get("type") if isinstance(record.get("type"), str) else event
        if kind == "error":
            self.report_error(record.get("code") or record.get("type"), record.get("message"))
            return False
        if not kind.startswith("response."):
            self.unknown_events += 1
            return False
        response = record.get("response")
        if kind in _SNAPSHOTS:
            if isinstance(response, dict):
                self.snapshot = response
            return False
        if kind in _TERMINAL:
            if isinstance(response, dict):
                self.final = response
                if kind == "response.failed":
                    error = response.get("error") if isinstance(response.get("error"), dict) else {}
                    self.report_error(error.get("code") or error.get("type"), error.get("message")
                                      or "the response failed")
            self.complete = True
            return False
        index = record.get("output_index")
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = record.get("item")
            if isinstance(item, dict) and isinstance(index, int):
                self.items[index] = item
            return False
        if not isinstance(index, int):
            return False  # a response.* event this accumulator has no use for
        item = self.items.get(index)
        if item is None:
            item = self.items[index] = {"id": record.get("item_id")}
        family, _, step = kind.rpartition(".")
        if kind in _PART_ADDED:
            where, index_key = _PART_ADDED[kind]
            part = record.get("part")
            if isinstance(part, dict):
                set_at(_list(item, where), record.get(index_key), part)
            return False
        if kind == "response.output_text.annotation.added":
            part = _part(item, "content", record.get("content_index"), _PART_TEXT["response.output_text"][2])
            set_at(_list(part, "annotations"), record.get("annotation_index"), record.get("annotation"))
            return False
        if family in _PART_TEXT and step in ("delta", "done"):
            where, index_key, blank, text_key = _PART_TEXT[family]
            target = item if where is None else _part(item, where, record.get(index_key), blank)
            if step == "delta":
                delta = record.get("delta")
                append_text(target, text_key, delta)
                return bool(delta)
            if isinstance(record.get(text_key), str):
                target[text_key] = record[text_key]
            return False
        # Other delta events (audio, image generation…) carry output this object does not keep.
        return step == "delta" and bool(record.get("delta"))

    def result(self) -> dict | None:
        items = [self.items[i] for i in sorted(self.items)]
        if self.final is not None:
            out = dict(self.final)
            if not out.get("output") and items:
                out["output"] = items
        elif self.snapshot is not None or items:
            out = dict(self.snapshot or {})
            out["output"] = items
        else:
            return None
        return finalize(out)


def _list(holder: dict, key: str) -> list:
    value = holder.get(key)
    if not isinstance(value, list):
        value = holder[key] = []
    return value


def _part(item: dict, where: str, index: Any, blank: dict) -> dict:
    parts = _list(item, where)
    position = index if isinstance(index, int) and index >= 0 else len(parts) - 1
    if 0 <= position < len(parts) and isinstance(parts[position], dict):
        return parts[position]
    part = {key: [] if value == [] else value for key, value in blank.items()}  # no list shared with `blank`
    set_at(parts, position if position >= 0 else 0, part)
    return part
