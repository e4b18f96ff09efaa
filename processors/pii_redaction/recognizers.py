"""Which recognizers a config asks for, taken from presidio: its predefined recognizers (the
ones presidio's default registry lists, `conf/default_recognizers.yaml`), our secret
detectors (secrets.py) and the user's own (`recognizers` in the config, built as presidio
PatternRecognizers). Nothing here re-types an entity definition: each `PatternSpec` holds a
presidio pattern's regex, score and flags and its recognizer's `validate_result`,
`invalidate_result` and context words.

Every spec is put in a *family* that says where its matches can be (detect.py scans only
there): `digit` for entities whose every match contains a digit (numbers, ids, addresses
with digits), `at` for email addresses, `dot` for URLs, `text` (the whole text) for the rest.

The predefined recognizers are built once per process (~0.3 s).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Callable

import regex
import tldextract
import yaml

# presidio logs one info line per recognizer built ("Loaded recognizer: ..."), ~100 per Detector
# and per config validation: its warnings still reach llmtap's log, its chatter does not.
PRESIDIO_LOGGERS = ("presidio-analyzer", "presidio-anonymizer")
for _name in PRESIDIO_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)

import presidio_analyzer  # noqa: E402
from presidio_analyzer import (  # noqa: E402
    EntityRecognizer, LocalRecognizer, Pattern, PatternRecognizer, predefined_recognizers)
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    CreditCardRecognizer, EmailRecognizer, IbanRecognizer, PhoneRecognizer)

from llmtap.processors.pii_redaction.config import DEFAULT_OFF, Config  # noqa: E402
from llmtap.processors.pii_redaction.regexopt import factor_alternations, required_literals  # noqa: E402
from llmtap.processors.pii_redaction.secrets import SECRET_ENTITIES, secret_recognizers  # noqa: E402

# Entities whose every match has a digit: presidio's default English ones and the national ids
# whose formats have digits in fixed places. (IPv6 "::" has none: presidio scores it 0.1, under
# any useful threshold. A MAC address or UUID written with the letters a-f only is missed: 1 in
# 10^6 random ones.) Entities not listed are looked for in the whole text.
_DIGIT_ENTITIES = frozenset({
    "CREDIT_CARD", "US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_ITIN", "US_PASSPORT", "US_SSN", "UK_NHS",
    "CRYPTO", "IBAN_CODE", "IP_ADDRESS", "MEDICAL_LICENSE", "MAC_ADDRESS", "UUID", "DATE_TIME", "PHONE_NUMBER",
    "UK_NINO", "UK_POSTCODE", "IN_PAN", "IN_AADHAAR", "IN_PASSPORT", "IN_VOTER", "AU_ABN", "AU_ACN", "AU_TFN",
    "AU_MEDICARE", "SG_NRIC_FIN", "US_NPI", "ABA_ROUTING_NUMBER", "ES_NIF", "ES_NIE", "PL_PESEL", "CA_SIN",
    "ZA_ID_NUMBER", "DE_TAX_ID",
})
_FAMILY = {"EMAIL_ADDRESS": "at", "URL": "dot"}

# presidio's card pattern starts with 1 or 3-6: Mastercard's 2-series (BINs 2221-2720, issued
# since 2017) is missing. Same score as presidio's "weak" pattern; Luhn decides.
MASTERCARD_2_SERIES = Pattern("Mastercard 2-series",
                              r"\b(2(?:2[2-9]\d|[3-6]\d{2}|7[01]\d|720))[- ]?(\d{4})[- ]?(\d{4})[- ]?(\d{4})\b", 0.3)

NER_ENTITIES = ("PERSON", "LOCATION", "NRP")
# presidio's spaCy mapping (conf/spacy.yaml): spaCy label → presidio entity.
NER_LABELS = {"PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
              "GPE": "LOCATION", "LOCATION": "LOCATION"}

# The public-suffix list is the snapshot bundled with tldextract: no fetch, no cache directory.
# (presidio's EmailRecognizer calls tldextract.extract, whose default extractor downloads it.)
_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@functools.lru_cache(maxsize=4096)
def _has_public_suffix(host: str) -> bool:
    return _OFFLINE_TLD(host).fqdn != ""


class OfflineEmailRecognizer(EmailRecognizer):
    """presidio's EmailRecognizer, its domain check run on the bundled public-suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        # tldextract reads the host after the last '@': the same host, the same answer (a match
        # that fails is searched again from each next character of its local part).
        return _has_public_suffix(pattern_text.rpartition("@")[2])

    @staticmethod
    def local_part_start(value: str) -> int:
        """Where the address starts in a match: presidio's local part admits '/', '?', '=', '&',
        '|', '{' and '}', so in `https://host/path?email=bob@corp.io` it matches from `host`, and
        in a table row `Ann|4111 1111 1111 1111|ann@corp.io` from `Ann`. Real addresses do not use
        them: the address begins after the last one."""
        local = value[:value.find("@")]
        return max(local.rfind(c) for c in "/?=&|{}") + 1


@dataclass(frozen=True)
class PatternSpec:
    entity: str
    name: str
    regex: regex.Pattern
    score: float
    validate: Callable[[str], bool | None] | None
    invalidate: Callable[[str], bool | None] | None
    context: tuple[str, ...]
    family: str
    # IBAN (presidio's IbanRecognizer.analyze): try the match cut at each group's end, longest
    # first, and report the first that validates.
    trim_to_groups: bool = False
    # Offset in a match where the value starts (emails in URLs).
    value_start: Callable[[str], int] | None = None
    priority: int = 1  # breaks ties between overlapping findings: secrets 2, presidio 1, NER 0
    # A match holds one of these (lower case; regexopt.required_literals); None: no such strings.
    literals: frozenset[str] | None = None


@dataclass(frozen=True)
class Recognizers:
    patterns: tuple[PatternSpec, ...]
    phone: PhoneRecognizer | None
    # Recognizers that are not pattern lists (presidio's own analyze is run on the whole text).
    opaque: tuple[EntityRecognizer, ...]
    entities: frozenset[str]


@functools.lru_cache(maxsize=1)
def _predefined() -> tuple[tuple[EntityRecognizer, bool], ...]:
    """presidio's predefined recognizers from its default registry file, each with whether presidio
    enables it for English."""
    path = os.path.join(os.path.dirname(presidio_analyzer.__file__), "conf", "default_recognizers.yaml")
    with open(path, encoding="utf-8") as f:
        entries = yaml.safe_load(f)["recognizers"]
    out = []
    for entry in entries:
        if entry.get("type", "predefined") != "predefined":
            continue
        name = entry.get("class_name", entry["name"])
        cls = getattr(predefined_recognizers, name, None)
        if name == "EmailRecognizer":
            cls = OfflineEmailRecognizer
        if cls is None:
            continue
        try:
            recognizer = cls()
        except Exception:  # needs an optional package (transformers, langextract): not ours to use
            continue
        if not isinstance(recognizer, LocalRecognizer):
            continue
        languages = [lang if isinstance(lang, str) else lang["language"]
                     for lang in entry.get("supported_languages", [])] or ["en"]
        out.append((recognizer, entry.get("enabled", True) and "en" in languages))
    return tuple(out)


def known_entities(config: Config) -> frozenset[str]:
    names = {e for r, _ in _predefined() for e in r.supported_entities}
    names |= SECRET_ENTITIES | set(NER_ENTITIES) | {"ORGANIZATION"}
    names |= {r.entity for r in config.recognizers}
    return frozenset(names)


def default_entities() -> frozenset[str]:
    on = {e for r, enabled in _predefined() if enabled for e in r.supported_entities}
    return frozenset((on - set(DEFAULT_OFF)) | SECRET_ENTITIES)


def unknown_entities(config: Config) -> list[str]:
    known = known_entities(config)
    errors = []
    for key, names in (("enable", config.enable), ("disable", config.disable),
                       ("operators", [n for n in config.operators if n != "DEFAULT"])):
        for name in names:
            if name not in known:
                errors.append(f"{key}: unknown entity type {name!r} (known: {', '.join(sorted(known))})")
    return errors


def selected_entities(config: Config) -> frozenset[str]:
    wanted = set(default_entities()) | set(config.enable) | {r.entity for r in config.recognizers}
    if config.ner:
        wanted |= set(NER_ENTITIES)
    return frozenset(wanted - set(config.disable))


def _specs(recognizer: PatternRecognizer, priority: int, family: str | None = None) -> list[PatternSpec]:
    entity = recognizer.supported_entities[0]
    validate = recognizer.validate_result
    if type(recognizer).validate_result is PatternRecognizer.validate_result:
        validate = None
    invalidate = recognizer.invalidate_result
    if type(recognizer).invalidate_result is PatternRecognizer.invalidate_result:
        invalidate = None
    flags = recognizer.global_regex_flags or 0
    return [PatternSpec(
        entity=entity, name=p.name, regex=regex.compile(factor_alternations(p.regex), flags), score=p.score,
        validate=validate, literals=required_literals(p.regex, flags),
        invalidate=invalidate, context=tuple(w.lower() for w in recognizer.context or ()),
        family=family or ("digit" if entity in _DIGIT_ENTITIES else _FAMILY.get(entity, "text")),
        trim_to_groups=isinstance(recognizer, IbanRecognizer), priority=priority,
        value_start=recognizer.local_part_start if isinstance(recognizer, OfflineEmailRecognizer) else None,
    ) for p in recognizer.patterns]


def _user_recognizer(rc) -> PatternRecognizer:
    flags = regex.DOTALL | regex.MULTILINE | (0 if rc.case_sensitive else regex.IGNORECASE)
    patterns = [Pattern(p.name or f"{rc.entity} pattern {i}", p.regex, p.score) for i, p in enumerate(rc.patterns)]
    return PatternRecognizer(supported_entity=rc.entity, name=rc.name or None, patterns=patterns or None,
                             deny_list=rc.deny_list or None, deny_list_score=rc.deny_list_score,
                             context=rc.context or None, global_regex_flags=flags)


def build(config: Config) -> Recognizers:
    wanted = selected_entities(config)
    patterns: list[PatternSpec] = []
    phone = None
    opaque: list[EntityRecognizer] = []
    for recognizer, _ in _predefined():
        if not set(recognizer.supported_entities) & wanted:
            continue
        if isinstance(recognizer, PhoneRecognizer):
            phone = recognizer
        elif isinstance(recognizer, PatternRecognizer) and (
                type(recognizer).analyze is PatternRecognizer.analyze or isinstance(recognizer, IbanRecognizer)):
            if isinstance(recognizer, CreditCardRecognizer):
                recognizer = CreditCardRecognizer(patterns=[*recognizer.patterns, MASTERCARD_2_SERIES],
                                                  context=recognizer.context)
            patterns.extend(_specs(recognizer, priority=1))
        else:
            opaque.append(recognizer)
    for recognizer in secret_recognizers():
        if recognizer.supported_entities[0] in wanted:
            patterns.extend(_specs(recognizer, priority=2, family="text"))
    for rc in config.recognizers:
        if rc.entity in wanted:
            patterns.extend(_specs(_user_recognizer(rc), priority=2, family="text"))
    return Recognizers(tuple(patterns), phone, tuple(opaque), wanted)


def clear_caches() -> None:
    _has_public_suffix.cache_clear()
