"""Google Gemini `streamGenerateContent` (SSE with `alt=sse`, or a JSON array without it)
→ the `GenerateContentResponse` that `generateContent` returns.

Every chunk is a GenerateContentResponse holding the new part of each candidate. Per
candidate `index`, consecutive text parts of the same kind (answer or `thought`) are
joined into one part, with the last `thoughtSignature` that came with them; other parts
(`functionCall`, `inlineData`, `executableCode`, …) are kept as they come, in order.
`finishReason`, safety ratings and the like: the last value wins; citation sources add
up. Top-level `usageMetadata`, `modelVersion`, `responseId`, `promptFeedback`: the last
value wins (usage is cumulative). There is no terminator: the stream is whole when it
ended cleanly (the array closed, no event half-sent) with a `finishReason` on every
candidate, or with the prompt blocked. An `{"error": {...}}` record gives the error
(its `status`, e.g. RESOURCE_EXHAUSTED). Works on camelCase (REST) keys.
Cost: O(size of the chunks).
"""

from __future__ import annotations

from typing import Any

from .accumulator import Accumulator, append_text, finalize

_TEXT_PART_KEYS = frozenset({"text", "thought", "thoughtSignature"})


class GenerateContentAccumulator(Accumulator):
    format = "gemini.generate_content"

    def __init__(self) -> None:
        super().__init__()
        self.top: dict[str, Any] = {}
        self.candidates: dict[int, dict] = {}
        self.records = 0

    def add(self, event: str, chunk: Any) -> bool:
        if not isinstance(chunk, dict):
            self.unknown_events += 1
            return False
        self.records += 1
        error = chunk.get("error")
        if error is not None:
            if isinstance(error, dict):
                self.report_error(error.get("status") or error.get("code"), error.get("message"))
            else:
                self.report_error(None, error)
            return False
        output = False
        for key, value in chunk.items():
            if key == "candidates":
                for candidate in value if isinstance(value, list) else ():
                    if isinstance(candidate, dict):
                        output = self._add_candidate(candidate) or output
            elif value is not None:
                self.top[key] = value
        return output

    def _add_candidate(self, candidate: dict) -> bool:
        index = candidate.get("index", 0)
        index = index if isinstance(index, int) else 0
        snapshot = self.candidates.setdefault(index, {})
        output = False
        for key, value in candidate.items():
            if key == "content" and isinstance(value, dict):
                output = _add_content(snapshot, value)
            elif key == "citationMetadata" and isinstance(value, dict):
                citations = snapshot.setdefault("citationMetadata", {})
                for ckey, cvalue in value.items():
                    if isinstance(cvalue, list) and isinstance(citations.get(ckey), list):
                        citations[ckey].extend(cvalue)
                    else:
                        citations[ckey] = cvalue
            elif value is not None:
                snapshot[key] = value
        return output

    def end(self, ended_cleanly: bool) -> None:
        if ended_cleanly and self.records and self.error is None:
            blocked = isinstance(self.top.get("promptFeedback"), dict) and self.top["promptFeedback"].get("blockReason")
            self.complete = bool(blocked) or (bool(self.candidates) and all(
                c.get("finishReason") for c in self.candidates.values()))

    def result(self) -> dict | None:
        if not self.candidates and not self.top:
            return None
        out: dict[str, Any] = {}
        if self.candidates:
            out["candidates"] = [self.candidates[i] for i in sorted(self.candidates)]
        out.update(self.top)
        return finalize(out)


def _add_content(snapshot: dict, content: dict) -> bool:
    merged = snapshot.get("content")
    if not isinstance(merged, dict):
        merged = snapshot["content"] = {"parts": []}
    parts = merged.get("parts")
    if not isinstance(parts, list):
        parts = merged["parts"] = []
    output = False
    for key, value in content.items():
        if key != "parts":
            merged[key] = value
            continue
        for part in value if isinstance(value, list) else ():
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str) and part.keys() <= _TEXT_PART_KEYS:
                output = output or bool(text)
                last = parts[-1] if parts else None
                if (isinstance(last, dict) and "text" in last and last.keys() <= _TEXT_PART_KEYS
                        and bool(last.get("thought")) == bool(part.get("thought"))):
                    append_text(last, "text", text)
                    if part.get("thoughtSignature"):
                        last["thoughtSignature"] = part["thoughtSignature"]
                    continue
                parts.append(dict(part))
            else:
                output = True
                parts.append(part)
    return output
