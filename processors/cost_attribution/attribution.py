"""Who a model call is for: attribution dimensions read from the span and its resource.

Each dimension lists sources, tried in order; the first that has a value wins:

    header:NAME     the captured request header NAME (llmtap.http.request.header.<name>, or the
                    semconv http.request.header.<name> of other instrumentations; first value)
    span:KEY        the span attribute KEY
    resource:KEY    the resource attribute KEY
    process:KEY     process.KEY on the span (the eBPF receiver puts it there), else on the resource

A value is a non-empty string (the first element of an array; numbers and booleans as text),
cut to MAX_VALUE_CHARS: header values come from whoever sends the request. A span that already
carries llmtap.attribution.<dimension> keeps it (it was attributed upstream).
Cost: a handful of dict lookups per dimension; the attributes are read once per span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

PREFIX = "llmtap.attribution."
KINDS = ("header", "span", "resource", "process")
MAX_VALUE_CHARS = 256
DIMENSION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # also a valid Prometheus label name


@dataclass(frozen=True)
class Source:
    kind: str
    name: str

    def span_keys(self) -> tuple[str, ...]:
        if self.kind == "header":
            return (f"llmtap.http.request.header.{self.name}", f"http.request.header.{self.name}")
        if self.kind == "span":
            return (self.name,)
        if self.kind == "process":
            return (f"process.{self.name}",)
        return ()

    def resource_keys(self) -> tuple[str, ...]:
        if self.kind == "resource":
            return (self.name,)
        if self.kind == "process":
            return (f"process.{self.name}",)
        return ()


def parse_source(text: Any) -> Source:
    """`kind:name`; ValueError says what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"expected 'kind:name' (kind one of {', '.join(KINDS)}), e.g. header:x-tenant-id; "
                         f"got {text!r}")
    kind, _, name = text.partition(":")
    kind, name = kind.strip(), name.strip()
    if kind not in KINDS:
        raise ValueError(f"unknown source {kind!r} (known: {', '.join(KINDS)})")
    if not name:
        raise ValueError(f"{kind}: needs a name after the colon, e.g. {kind}:{_EXAMPLES[kind]}")
    if kind == "process" and name.startswith("process."):
        name = name[len("process."):]
    # Header names are case-insensitive; the receiver records them in lowercase.
    return Source(kind, name.lower() if kind == "header" else name)


_EXAMPLES = {"header": "x-tenant-id", "span": "user.id", "resource": "service.name", "process": "executable.name"}


def value_of(raw: Any) -> str | None:
    if isinstance(raw, list):
        raw = next((v for v in raw if v not in (None, "")), None)
    if raw is None or isinstance(raw, (bytes, dict, list)):
        return None
    text = (str(raw).lower() if isinstance(raw, bool) else str(raw)).strip()
    return text[:MAX_VALUE_CHARS] or None


class Attribution:
    def __init__(self, dimensions: Mapping[str, list[str]]):
        self.dimensions = [(name, [parse_source(s) for s in sources]) for name, sources in dimensions.items()]
        self.span_keys = frozenset(k for _, sources in self.dimensions for s in sources for k in s.span_keys())
        self.resource_keys = frozenset(k for _, sources in self.dimensions for s in sources for k in s.resource_keys())

    def resolve(self, span: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, str]:
        """dimension → value, for the dimensions that have one."""
        out = {}
        for name, sources in self.dimensions:
            for source in sources:
                value = next((v for k in source.span_keys() if (v := value_of(span.get(k))) is not None), None)
                if value is None:
                    value = next((v for k in source.resource_keys() if (v := value_of(resource.get(k))) is not None),
                                 None)
                if value is not None:
                    out[name] = value
                    break
        return out
