"""`semconv_version: development`: what the GenAI development channel changed after v1.41.0, as data.

v1.41.0 is the last release of the GenAI conventions inside open-telemetry/semantic-conventions;
they continue in open-telemetry/semantic-conventions-genai, whose changelog lists the changes
below as breaking. Only changes to span attributes this processor writes are listed: new
attributes (per-modality usage, memory spans) and metric renames need no rewrite, and the
deprecation of `gen_ai.output.messages[].finish_reason` (#363) keeps the field valid.

`apply` rewrites an attribute list in place: renames keep the value and its position, and a
retype converts the value when it can be converted losslessly (top_k 40.0 → 40; a value that
cannot be converted is left as it is). Cost: one pass over the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opentelemetry.proto.common.v1.common_pb2 import KeyValue


@dataclass(frozen=True)
class Change:
    kind: Literal["rename", "retype"]
    attribute: str
    to: str  # the new name, or the new type ("int")
    source: str  # where the change is recorded


DEVELOPMENT: tuple[Change, ...] = (
    Change("rename", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
           "semantic-conventions-genai#440 (breaking)"),
    Change("retype", "gen_ai.request.top_k", "int", "semantic-conventions-genai#217 (breaking: double → int)"),
)

CHANGES: dict[str, tuple[Change, ...]] = {"1.41.0": (), "development": DEVELOPMENT}
VERSIONS = tuple(CHANGES)


def _to_int(kv: KeyValue) -> None:
    if kv.value.WhichOneof("value") == "double_value" and float(kv.value.double_value).is_integer():
        kv.value.int_value = int(kv.value.double_value)


_RETYPES = {"int": _to_int}


def apply(attributes, version: str) -> None:
    changes = CHANGES[version]
    if not changes:
        return
    renames = {c.attribute: c.to for c in changes if c.kind == "rename"}
    retypes = {c.attribute: _RETYPES[c.to] for c in changes if c.kind == "retype"}
    present = {kv.key for kv in attributes}
    doomed = []
    for i, kv in enumerate(attributes):
        if kv.key in renames:
            if renames[kv.key] in present:  # the new name was set already: it wins
                doomed.append(i)
                continue
            kv.key = renames[kv.key]
        if kv.key in retypes:
            retypes[kv.key](kv)
    for i in reversed(doomed):
        del attributes[i]
