"""Detectors for the credentials presidio does not know: provider API keys, tokens, private keys
and passwords in connection strings and command lines.

The formats are llmtap's shared table (llmtap/secretpatterns.py, which the eBPF receiver's
argument redaction reads too); here each entity becomes a presidio `PatternRecognizer` (so it
is configured, enabled and scored like presidio's own) with the table's patterns, scores and
context words, its regexes compiled with the table's flags (case-sensitive: keys are), and
the table's value check as its `invalidate_result`. A regex with a group named `value`
reports only that group.

`AWS_SECRET_ACCESS_KEY` is 40 characters of base64 with no prefix: alone it is too weak to
report (score 0.3, under the default threshold). Context lifts it — an AWS access key id near
it (`AWS_KEY_PROXIMITY` characters), or a context word (`aws`, `secret`) before it or in the
JSON key that holds it. 40 lowercase hex characters (a git SHA-1) and values without upper
case, lower case and digits are rejected.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from llmtap.secretpatterns import FLAGS, SECRET_ENTITIES, SECRET_PATTERNS, VALUE_CHECKS

AWS_KEY_PROXIMITY = 256

__all__ = ["AWS_KEY_PROXIMITY", "SECRET_ENTITIES", "SecretRecognizer", "secret_recognizers"]


class SecretRecognizer(PatternRecognizer):
    """One secret entity, with the format check a regex cannot express."""

    def __init__(self, entity: str, patterns: list[Pattern], context: list[str]):
        super().__init__(supported_entity=entity, name=f"{entity.title().replace('_', '')}Recognizer",
                         patterns=patterns, context=context or None, global_regex_flags=FLAGS)

    def invalidate_result(self, pattern_text: str) -> bool | None:
        check = VALUE_CHECKS.get(self.supported_entities[0])
        return None if check is None else not check(pattern_text)


def secret_recognizers() -> list[SecretRecognizer]:
    by_entity: dict[str, tuple[list[Pattern], list[str]]] = {}
    for p in SECRET_PATTERNS:
        patterns, words = by_entity.setdefault(p.entity, ([], []))
        patterns.append(Pattern(p.name, p.regex, p.score))
        words.extend(w for w in p.context if w not in words)
    return [SecretRecognizer(entity, patterns, words) for entity, (patterns, words) in by_entity.items()]
