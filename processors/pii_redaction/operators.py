"""What is put in place of a finding: replace, mask, hash or drop (per entity type).

replace and mask are presidio-anonymizer's `Replace` and `Mask` operators (their parameters
validated by presidio at start). hash is ours: presidio's `hash` is an unkeyed SHA-256, which
anyone can brute-force for a phone number or a card; HMAC-SHA256 with a secret key gives the
same token for the same value on every span (so values join across traces) without revealing
it. Its output `<EMAIL_ADDRESS:0123456789abcdef>` (64 bits of the HMAC, hex) has the shape of a
placeholder, so redacting it again leaves it alone. drop removes the whole attribute that holds
the finding (the caller does that: `apply` reports it).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Callable

from presidio_anonymizer.operators import Mask, Replace

from llmtap.processors.pii_redaction.config import Config, OperatorConfig
from llmtap.processors.pii_redaction.detect import Finding

HASH_HEX_DIGITS = 16


class Drop(Exception):
    """The text holds a finding whose operator is drop: remove the attribute."""


class Operators:
    def __init__(self, config: Config):
        self._key = config.hash_key.encode("utf-8")
        self._default = config.operators.get("DEFAULT", OperatorConfig())
        self._by_entity = {name: op for name, op in config.operators.items() if name != "DEFAULT"}
        self._cache: dict[str, Callable[[str, str], str] | None] = {}
        for op in [self._default, *self._by_entity.values()]:
            self._make(op)  # presidio validates the parameters now, not on the first finding

    def _make(self, op: OperatorConfig) -> Callable[[str, str], str] | None:
        if op.type == "replace":
            replace = Replace()
            return lambda value, entity: replace.operate(value, {"new_value": op.new_value or f"<{entity}>"})
        if op.type == "mask":
            mask = Mask()
            params = {"masking_char": op.masking_char, "from_end": op.from_end}
            mask.validate({**params, "chars_to_mask": op.chars_to_mask})
            return lambda value, _: mask.operate(value, {**params, "chars_to_mask": op.chars_to_mask or len(value)})
        if op.type == "hash":
            key = self._key
            return lambda value, entity: (
                f"<{entity}:{hmac.new(key, value.encode('utf-8'), hashlib.sha256).hexdigest()[:HASH_HEX_DIGITS]}>")
        return None  # drop

    def _for(self, entity: str) -> Callable[[str, str], str] | None:
        try:
            return self._cache[entity]
        except KeyError:
            fn = self._cache[entity] = self._make(self._by_entity.get(entity, self._default))
            return fn

    def apply(self, text: str, findings: list[Finding]) -> str:
        """`text` with each finding replaced; raises Drop if one of them is to be dropped."""
        pieces = []
        pos = 0
        for f in findings:
            fn = self._for(f.entity_type)
            if fn is None:
                raise Drop(f.entity_type)
            pieces.append(text[pos:f.start])
            pieces.append(fn(text[f.start:f.end], f.entity_type))
            pos = f.end
        pieces.append(text[pos:])
        return "".join(pieces)
