"""Detection: where the PII and secrets are in a text (the API the evaluation and the benchmark use).

    from llmtap.processors.pii_redaction import Config
    from llmtap.processors.pii_redaction.detect import Detector, Finding

    detector = Detector()                       # Config() defaults: patterns and secrets, no NER
    detector = Detector(Config(ner=True))       # + spaCy NER: PERSON, LOCATION, NRP
    detector = Detector(Config(enable=["DATE_TIME", "URL", "UUID"]))   # presidio's full English set
    findings = detector.analyze(text)           # [Finding(start, end, entity_type, score)], sorted

Entity types are presidio's (EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN,
IP_ADDRESS, CRYPTO, MEDICAL_LICENSE, ...) and ours for secrets (their formats are the table in
llmtap/secretpatterns.py, shared with the eBPF receiver: OPENAI_API_KEY, ANTHROPIC_API_KEY,
OPENROUTER_API_KEY, GOOGLE_API_KEY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN,
GITLAB_TOKEN, SLACK_TOKEN, SLACK_WEBHOOK_URL, STRIPE_API_KEY, HUGGINGFACE_TOKEN, GROQ_API_KEY,
JWT, PRIVATE_KEY, BEARER_TOKEN, BASIC_AUTH, PASSWORD).

What it promises: the findings presidio's recognizers would report with the same scores
(pattern score; 1.0 when the recognizer's checksum validates, none when it fails; +0.35 and
at least 0.4 with one of its context words among the 5 words before the match, or in
`context`, e.g. the JSON key that holds the text), kept when the score reaches
`score_threshold`, not allow-listed, and not inside a placeholder an earlier redaction wrote
(`<EMAIL_ADDRESS>`, `<EMAIL_ADDRESS:…>`: redacting again changes nothing). Overlapping
findings become one, spanning them all, named after the longest: nothing detected is left
half-visible.

How it is fast (each step changes the cost, never the findings: tests/test_pii_fast_paths.py):
presidio runs every regex over the whole text and spaCy over everything. Here
- a pattern runs only on a text it can match: one Hyperscan scan of the text (prefilter.py;
  characters beyond ASCII read as stand-ins) says which patterns (URLs excepted) can match at all
  (1 in 13 on the corpus) and which of the strings a pattern requires (regexopt.required_literals:
  `sk-ant-`, `bearer`) and of the weak patterns' context words it holds; a weak pattern (score
  under the threshold, no checksum) runs only on a text holding one of its context words;
- and only where its matches can be: one anchored pass per family finds the tokens that hold a
  digit, an `@`, or a dotted name (recognizers.py puts each pattern in its family); the family's
  patterns scan a copy of the text blanked outside them (merged when close: a card number is
  four tokens), so `\\b` and look-arounds see at the edges what they would in the whole text
  (whitespace); secrets and user recognizers scan the whole text;
- presidio's URL patterns try their ~675 top-level domains grouped by first letter
  (regexopt.factor_alternations): the same matches, 3.5x cheaper;
- phone numbers (python-phonenumbers, presidio's PhoneRecognizer) are parsed only where a
  window holds at least 7 digits close together, not glued to a letter (presidio also reports
  5- and 6-digit numbers, nearly always order numbers or amounts; the shortest subscriber
  numbers have 7), once per country code, stretch by stretch (cut by characters no candidate of
  the matcher can hold: most letters, quotes, `%`, `$`), and for a region only where its metadata
  allows a number in a run of digit groups a candidate can hold (_NationalNumbers: length,
  number-type patterns, national prefix), cached by segment (_phone_finder).
A number an id recognizer reported that could be a phone number (`+44 121 234 6440` holds a
valid NHS number) is parsed as well, and one name is chosen (_resolve: the longest, then the one
a context word or the table column's header names, then the one whose checksum passed).

Cost bound: each seed pass is one linear scan; every regex is linear (no nested quantifiers)
and runs with the `regex` module's timeout set from what is left of the caller's deadline, so a
pathological input raises `TimeBudgetExceeded` instead of hanging. The deadline is in CPU time
of the calling thread less its garbage collections (budget_clock): a busy machine that does not schedule the thread
does not make redaction fail, a recognizer that computes too long does (one that blocks
without computing is not cut off). NER cannot be interrupted
inside spaCy: it runs in chunks of at most NER_CHUNK characters with the deadline checked
between them.
"""

from __future__ import annotations

import functools
import gc
import os
import re
import threading
import time
import unicodedata
from typing import Iterable, NamedTuple, Sequence

import phonenumbers
from phonenumbers import phonenumbermatcher, phonenumberutil
import regex

from llmtap.processors.pii_redaction import recognizers as recognizer_set
from llmtap.processors.pii_redaction.config import Config
from llmtap.processors.pii_redaction.prefilter import prefilter
from llmtap.processors.pii_redaction.recognizers import NER_ENTITIES, PatternSpec
from llmtap.processors.pii_redaction.regexopt import consumable_class
from llmtap.processors.pii_redaction.secrets import AWS_KEY_PROXIMITY

# python-phonenumbers compiles a metadata pattern each time it uses one, through `re`'s cache of
# 512; its own cache (a dict lookup, the patterns used kept: a few MB) saves ~3% of all our time.
phonenumbers.enable_pattern_cache()

NER_CHUNK = 4000
PHONE_MIN_DIGITS = 7
CONTEXT_WORDS = 5  # presidio's context_prefix_count
CONTEXT_FACTOR = 0.35  # presidio's context_similarity_factor
CONTEXT_MIN_SCORE = 0.4  # presidio's min_score_with_context_similarity

# Windows where each family's patterns can match: tokens (whitespace-separated) holding a digit,
# tokens holding a dotted name (`x.y`, found from the dot: _windows), and around an '@' the run of
# characters presidio's email pattern admits. Anchored so that each token is scanned once: linear.
# Digit tokens at most 8 characters apart share a window (a card or an IBAN in groups, "GB82 WEST
# 1234 ...": the gap may hold words), one match per window.
_DIGIT_TOKEN = r"(?<!\S)[^\s\d]*+\d\S*+"
_SEEDS = {
    # (Python's re runs this one 2.8x faster than the regex module, with the same matches.)
    "digit": re.compile(_DIGIT_TOKEN + r"(?:(?s:.){1,8}?" + _DIGIT_TOKEN + r")*+"),
    # presidio's email regex: local-part characters, '@', a domain of word characters, '-' and '.'.
    # Anything else ends a match (and is not a word character: '\\b' is the same at the edge).
    "at": regex.compile(r"(?<![!#$%&'*+\-/=?^_`{|}~.\w])[!#$%&'*+\-/=?^_`{|}~.\w]*+@[\w.\-]*+"),
}
_DIGIT = regex.compile(r"\d")
# What a phone number needs: PHONE_MIN_DIGITS digits, each at most 3 separators from the next
# (python-phonenumbers' candidates are digits and punctuation, no letters but an extension's),
# not starting right after a letter, a digit, a currency sign or '%': the matcher (leniency VALID
# and up) rejects a candidate after a Latin letter, a currency sign or '%', and what it splits off
# inside one ("inner matches") starts after a separator. So "T82839545", "sha512-16b6915e05e7…"
# and "c9509626f31" are not parsed at all.
_PHONE_LIKE = regex.compile(r"(?<![A-Za-z\d\p{Sc}%%])\d(?:[ \t().\-/\u2010-\u2015]{0,3}\d){%d,}"
                            % (PHONE_MIN_DIGITS - 1))
# Dates (ISO, with a time, d/m/y) are never phone numbers to presidio (none of 1600 random ones
# was): they are the commonest such digit runs in tool output and are not parsed.
_DATE = regex.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}(?::\d{2}){1,2})?|\d{1,2}/\d{1,2}/\d{2,4}")


# A finding that could be a phone number read as an id (an NHS number, an Aadhaar, a 13-digit
# card: 1 in 10 numbers passes such a checksum by chance): digits, spaces and hyphens only, 7-15
# digits. It is parsed as a phone number too, and naming the merged finding decides (_resolve).
_PHONE_SHAPED = regex.compile(r"(?=(?:[ \-]*\d){7,15}[ \-]*$)[\d \-]+")
_COUNTRY_CODE_BEFORE = regex.compile(r"(?<![\w+])\+\d{0,3}[ \-.]?$")


def _phone_like(text: str, start: int, end: int) -> bool:
    for m in _PHONE_LIKE.finditer(text, start, end):
        date = _DATE.match(text, m.start(), end)
        if date is None or date.end() < m.end():
            return True
    return False
PLACEHOLDER = regex.compile(r"<[A-Z][A-Z0-9_]*(?::[0-9a-f]{16})?>")
_WORD = regex.compile(r"[^\W_]+")


class Finding(NamedTuple):
    start: int
    end: int
    entity_type: str
    score: float


class TimeBudgetExceeded(Exception):
    """The analysis of one text ran past its deadline."""


class _Candidate(NamedTuple):
    start: int
    end: int
    entity_type: str
    score: float
    context: tuple[str, ...]
    priority: int
    checksum: bool = False  # the recognizer's checksum (validate_result) passed


@functools.lru_cache(maxsize=None)
def _stop_words() -> frozenset[str]:
    # presidio's context window skips stop words (spaCy's is_stop): the same list.
    from spacy.lang.en.stop_words import STOP_WORDS
    return frozenset(STOP_WORDS)


class _Ner:
    """spaCy NER through presidio's SpacyNlpEngine and SpacyRecognizer, loaded from disk only."""

    def __init__(self, model: str, entities: Iterable[str]):
        import yaml
        import presidio_analyzer
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        path = os.path.join(os.path.dirname(presidio_analyzer.__file__), "conf", "spacy.yaml")
        with open(path, encoding="utf-8") as f:
            conf = yaml.safe_load(f)  # presidio's label mapping and ignored labels
        conf["models"] = [{"lang_code": "en", "model_name": _model_path(model)}]
        self.engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
        # Only the entity recognizer: its own tok2vec, so tagger, parser and lemmatizer (5x the
        # time) are not needed; context words are matched on surface forms (below).
        nlp = self.engine.nlp["en"]
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name == "ner"])
        self.entities = sorted(entities)
        self.recognizer = SpacyRecognizer(supported_entities=self.entities)
        self.engine.process_text("Warm up: Ada Lovelace lived in London.", "en")  # first call pays allocations

    def analyze(self, text: str, deadline: float | None) -> list[_Candidate]:
        out = []
        for offset, chunk in _chunks(text, NER_CHUNK):
            _check(deadline)
            artifacts = self.engine.process_text(chunk, "en")
            for r in self.recognizer.analyze(chunk, self.entities, artifacts):
                out.append(_Candidate(offset + r.start, offset + r.end, r.entity_type, r.score, (), 0))
        return out


def _model_path(model: str) -> str:
    """An installed model package → its directory, so that presidio never tries to download it."""
    if os.path.isdir(model):
        return model
    import importlib.util
    spec = importlib.util.find_spec(model)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"ner_model: spaCy model {model!r} is not installed; it is never downloaded")
    package = spec.submodule_search_locations[0]
    for name in sorted(os.listdir(package)):
        if os.path.isfile(os.path.join(package, name, "config.cfg")):
            return os.path.join(package, name)
    raise ValueError(f"ner_model: no spaCy pipeline (config.cfg) in {package}")


def _chunks(text: str, size: int):
    """Pieces of at most `size` characters, cut after a newline or a space when there is one."""
    start = 0
    while len(text) - start > size:
        cut = max(text.rfind("\n", start, start + size), text.rfind(" ", start, start + size))
        end = cut + 1 if cut > start else start + size
        yield start, text[start:end]
        start = end
    yield start, text[start:]


_gc_time = threading.local()


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_time.start = time.thread_time()
    elif hasattr(_gc_time, "start"):
        _gc_time.total = getattr(_gc_time, "total", 0.0) + time.thread_time() - _gc_time.start


gc.callbacks.append(_on_gc)


def budget_clock() -> float:
    """CPU seconds of the calling thread, less its garbage collections: what a time budget counts.
    Neither a busy machine (the thread not scheduled) nor a collection of the whole heap that
    happens to start during a redaction is the redaction's cost."""
    return time.thread_time() - getattr(_gc_time, "total", 0.0)


def _check(deadline: float | None) -> float | None:
    """Seconds left before the deadline (None: no deadline); raise once it has passed."""
    if deadline is None:
        return None
    left = deadline - budget_clock()
    if left <= 0:
        raise TimeBudgetExceeded("time budget exceeded")
    return left


def _regex_timeout(left: float | None) -> float | None:
    """The regex module's timeout is wall-clock time, the budget CPU time: the slack keeps a thread
    that is not scheduled (a busy machine) from being cut off for it."""
    return None if left is None else 4 * left + 0.05


def _only(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with everything outside `spans` blanked: same length and offsets, so one regex scan
    covers all windows (a blank fails at once) and a match ends where whitespace would end it."""
    pieces, pos = [], 0
    for s, e in spans:
        pieces.append(" " * (s - pos))
        pieces.append(text[s:e])
        pos = e
    pieces.append(" " * (len(text) - pos))
    return "".join(pieces)


_SEED_NEEDS = {"at": "@", "dot": "."}  # a text without it has no window of the family
_DOTTED = regex.compile(r"[A-Za-z0-9]\.[A-Za-z]")
_TOKEN_START = regex.compile(r"(?r)\S*+")  # matched backwards: from a position to its token's start
_TOKEN_END = regex.compile(r"\S*+")


def _windows(family: str, text: str) -> list[tuple[int, int]]:
    if family == "dot":
        # The tokens holding a dotted name, found from each dot (5x cheaper than from each token).
        out, pos = [], 0
        while (m := _DOTTED.search(text, pos)) is not None:
            start = _TOKEN_START.match(text, 0, m.start()).start()
            pos = _TOKEN_END.match(text, m.start()).end()
            out.append((start, pos))
        return out
    return [m.span() for m in _SEEDS[family].finditer(text)]


class Detector:
    def __init__(self, config: Config | None = None):
        self.config = config if config is not None else Config()
        errors = self.config.validate()
        if errors:
            raise ValueError("invalid pii_redaction config: " + "; ".join(errors))
        found = recognizer_set.build(self.config)
        self.entities: frozenset[str] = found.entities
        by_family: dict[str, list[PatternSpec]] = {}
        for spec in found.patterns:
            by_family.setdefault(spec.family, []).append(spec)
        self._phone = found.phone
        if found.phone is not None:
            self._find_phones = _phone_finder(found.phone.supported_regions, found.phone.leniency)
        self._opaque = found.opaque
        self._threshold = self.config.score_threshold
        # Patterns whose score is under the threshold and that have no checksum to lift it
        # (presidio's "weak" ones: a bare 9-digit number as US_PASSPORT): only a context word
        # can make their matches count, so they are not run on a text without one. (An AWS
        # secret key is also lifted by an access key id found in the text: it is scanned after
        # the other secrets.)
        self._weak = {id(spec): frozenset(spec.context) for spec in found.patterns
                      if spec.score < self._threshold and spec.validate is None}
        by_family.get("text", []).sort(key=lambda spec: spec.entity == "AWS_SECRET_ACCESS_KEY")
        # The strings patterns require and the weak patterns' context words: a text is searched
        # once for all of them.
        self._literals = frozenset(w for spec in found.patterns for w in spec.literals or ())
        self._context_words = frozenset().union(*self._weak.values())
        self._words = self._literals | self._context_words
        # One prefilter for every pattern and word, compiled once per process for each set of
        # them (~0.5 s); not for the URL patterns (off by default): they alone take 4 s.
        prefiltered = [spec for specs in by_family.values() for spec in specs if spec.family != "dot"]
        index = {id(spec): i for i, spec in enumerate(prefiltered)}
        self._prefilter = prefilter(tuple(spec.regex for spec in prefiltered), tuple(sorted(self._words)))
        # family → its patterns in order, each with its index in the prefilter (None: not in it)
        self._by_family = {family: [(index.get(id(spec)), spec) for spec in specs]
                           for family, specs in by_family.items()}
        self._allow = frozenset(self.config.allow_list)
        self._allow_patterns = [regex.compile(p) for p in self.config.allow_patterns]
        ner_entities = [e for e in NER_ENTITIES + ("DATE_TIME", "ORGANIZATION") if e in self.entities]
        self._ner = _Ner(self.config.ner_model, ner_entities) if self.config.ner and ner_entities else None

    def analyze(self, text: str, *, context: Sequence[str] = (), deadline: float | None = None) -> list[Finding]:
        """Findings in `text`, sorted by start and not overlapping. `context`: extra context words
        (e.g. the JSON key holding the text). `deadline`: a budget_clock() value (CPU time of the
        calling thread, less garbage collection) past which TimeBudgetExceeded is raised."""
        if not text:
            return []
        candidates: list[_Candidate] = []
        windows: dict[str, list[tuple[int, int]]] = {}
        hits = self._prefilter.scan(text)
        if hits is None:  # unreadable to the prefilter: every pattern may match; words looked up one by one
            lower = text.lower()
            possible, present = None, {w for w in self._words if w in lower}
        else:
            possible, present = hits
        lifting = present  # context words may also be in the caller's (the JSON key)
        if context:
            context_lower = " ".join(w.lower() for w in context)
            lifting = present | {w for w in self._context_words if w in context_lower}
        for family, specs in self._by_family.items():
            if _SEED_NEEDS.get(family, "") not in text:
                continue  # no window of the family
            if possible is not None:
                specs = [(i, spec) for i, spec in specs if i is None or i in possible]
                if not specs:
                    continue
            if family == "text":
                scanned = text
            else:
                spans = windows.setdefault(family, _windows(family, text))
                if not spans:
                    continue
                scanned = _only(text, spans)
            for _, spec in specs:
                if spec.literals is not None and spec.literals.isdisjoint(present):
                    continue  # cannot match: no string it requires is in the text
                weak = self._weak.get(id(spec))
                if weak is not None and weak.isdisjoint(lifting) and not (
                        spec.entity == "AWS_SECRET_ACCESS_KEY"
                        and any(c.entity_type == "AWS_ACCESS_KEY_ID" for c in candidates)):
                    continue  # under the threshold, and nothing that could lift it is there
                left = _check(deadline)
                try:
                    self._scan(spec, scanned, text, _regex_timeout(left), candidates)
                except TimeoutError:
                    raise TimeBudgetExceeded(f"time budget exceeded in pattern {spec.name!r}") from None
        if self._phone is not None:
            if "digit" not in windows:
                windows["digit"] = _windows("digit", text)
            candidates.extend(self._phones(text, windows["digit"], candidates, deadline))
        for recognizer in self._opaque:
            _check(deadline)
            words = tuple(w.lower() for w in recognizer.context or ())
            for r in recognizer.analyze(text, recognizer.supported_entities, None):
                if r.entity_type in self.entities:
                    candidates.append(_Candidate(r.start, r.end, r.entity_type, r.score, words, 1))
        if self._ner is not None:
            candidates.extend(c for c in self._ner.analyze(text, deadline) if c.entity_type in self.entities)
        _check(deadline)
        return self._resolve(text, candidates, tuple(w.lower() for w in context))

    def _phones(self, text: str, windows: list[tuple[int, int]], found: list[_Candidate],
                deadline: float | None) -> list[_Candidate]:
        """presidio's PhoneRecognizer (python-phonenumbers' matcher for each of its regions, its
        leniency and score) on the digit windows, less what is already found: text that a region
        has read as a phone number, or that a pattern reported at the threshold (a card, an IBAN,
        an IP address), is not parsed again. (A number that passes an id's checksum by chance is
        then reported as that id: still redacted. Parsing it anyway costs more, and in a long run
        of numbers the matcher's candidate swallows the phone number next to it.) Parsing is the cost (~20 µs per
        candidate and region) and overlapping findings are merged anyway."""
        phone = self._phone
        reported = [c for c in found if c.score >= self._threshold]
        covered = sorted((c.start, c.end) for c in reported)
        segments = [seg for ws, we in windows for seg in _subtract(ws, we, covered)]
        # A number reported as an id that could be a phone number is parsed on its own, with the
        # "+44 " before it: "+44 121 234 6440" holds a valid NHS number. (Alone: in a run of
        # numbers the matcher's candidate would swallow the phone number next to it.)
        for c in reported:
            if _PHONE_SHAPED.fullmatch(text, c.start, c.end):
                prefix = _COUNTRY_CODE_BEFORE.search(text, max(0, c.start - 6), c.start)
                segments.append((prefix.start() if prefix else c.start, c.end))
        segments = sorted((s, e) for s, e in segments if _phone_like(text, s, e))
        context = tuple(w.lower() for w in phone.context or ())
        entity = phone.supported_entities[0]
        out: list[_Candidate] = []
        for s, e in segments:
            _check(deadline)
            out.extend(_Candidate(s + a, s + b, entity, phone.SCORE, context, 1)
                       for a, b in self._find_phones(text[s:e]))
        return out

    def clear_caches(self) -> None:
        """Forget the phone numbers and email hosts checked so far (the benchmark measures
        without them)."""
        if self._phone is not None:
            self._find_phones.cache_clear()
        recognizer_set.clear_caches()

    @classmethod
    def _scan(cls, spec: PatternSpec, scanned: str, text: str, timeout: float | None,
              out: list[_Candidate]) -> None:
        if spec.validate is None and spec.invalidate is None:
            for m in spec.regex.finditer(scanned, timeout=timeout):
                cls._add(spec, m, text, out)
            return
        # A match that fails its checksum may have hidden a valid one that starts inside it
        # ("SSN 536-90-4399 4111 1111 1111 1111": the card pattern first matches "4399 4111 1111
        # 1111"): look again from the next character, not from its end as finditer would.
        pos = 0
        while True:
            m = spec.regex.search(scanned, pos, timeout=timeout)
            if m is None:
                return
            pos = m.end() if cls._add(spec, m, text, out) else m.start() + 1

    @staticmethod
    def _add(spec: PatternSpec, m, text: str, out: list[_Candidate]) -> bool:
        """presidio's PatternRecognizer scoring of one match (IbanRecognizer's for trim_to_groups);
        whether it was kept."""
        if spec.trim_to_groups:
            start = m.start()
            for group in range(len(m.groups()), 0, -1):
                end = m.end(group) if m.end(group) > 0 else m.end()
                if end <= start:
                    continue
                score = _score(spec, text[start:end])
                if score > 0:
                    out.append(_Candidate(start, end, spec.entity, score, spec.context, spec.priority,
                                          spec.validate is not None and score == 1.0))
                    return True
            return False
        start, end = m.span("value") if "value" in spec.regex.groupindex else m.span()
        if spec.value_start is not None:
            start += spec.value_start(text[start:end])
        if end > start:
            score = _score(spec, text[start:end])
            if score > 0:
                out.append(_Candidate(start, end, spec.entity, score, spec.context, spec.priority,
                                      spec.validate is not None and score == 1.0))
                return True
        return False

    def _resolve(self, text: str, candidates: list[_Candidate], context: tuple[str, ...]) -> list[Finding]:
        if not candidates:
            return []
        placeholders = [m.span() for m in PLACEHOLDER.finditer(text)] if "<" in text else []
        # An AWS secret key is reported when its access key id is near (secrets.py).
        key_ids = [c.start for c in candidates if c.entity_type == "AWS_ACCESS_KEY_ID"]
        kept: list[_Candidate] = []
        headers = _ColumnHeaders(text)
        near: dict[int, int] = {}  # id of a kept candidate → how close its nearest context word is

        def nearness(c: _Candidate, distance: int | None = None) -> int:
            if id(c) not in near:  # needed to lift a weak score, or to name overlapping findings
                if distance is None and c.context:
                    distance = _context_distance(text, c, context + headers.of(c.start), placeholders)
                near[id(c)] = CONTEXT_WORDS + 2 if distance is None else distance
            return near[id(c)]

        for c in candidates:
            score = c.score
            if c.entity_type == "AWS_SECRET_ACCESS_KEY" and any(
                    abs(k - c.start) <= AWS_KEY_PROXIMITY for k in key_ids):
                score = 1.0
            distance = None
            if score < self._threshold:
                if c.context:
                    distance = _context_distance(text, c, context + headers.of(c.start), placeholders)
                if distance is None:
                    continue
                score = min(1.0, max(score + CONTEXT_FACTOR, CONTEXT_MIN_SCORE))
                if score < self._threshold:
                    continue
            value = text[c.start:c.end]
            if value in self._allow or any(p.fullmatch(value) for p in self._allow_patterns):
                continue
            if placeholders and any(s < c.end and c.start < e for s, e in placeholders):
                continue
            kept.append(c if score == c.score else c._replace(score=score))
            if distance is not None:
                nearness(kept[-1], distance)

        def outranks(a: _Candidate, b: _Candidate) -> bool:
            # A secret names the span it is in (the password of a connection string a URL holds);
            # then the longest (a phone number "+44 121 234 6440" holds a number that passes NHS's
            # checksum; "+5511961234292" one that passes Luhn); for the same span, one that a
            # context word names ("my phone is 312 345 8156", though it passes NHS's checksum);
            # then one whose checksum passed ("NHS number 943 476 5919", though "number" is a
            # phone context word too); then the one named by the nearest context word
            # ("license Z1437759, passport Y18774493"); then the score. (Context words are
            # looked for only when priority and length tie.)
            first, second = (a.priority, a.end - a.start), (b.priority, b.end - b.start)
            if first != second:
                return first > second
            near_a, near_b = nearness(a), nearness(b)
            return ((near_a <= CONTEXT_WORDS, a.checksum, -near_a, a.score)
                    > (near_b <= CONTEXT_WORDS, b.checksum, -near_b, b.score))

        kept.sort(key=lambda c: (c.start, -c.end))
        findings: list[Finding] = []
        best: _Candidate | None = None
        for c in kept:
            if findings and c.start < findings[-1].end:
                last = findings[-1]
                if outranks(c, best):
                    best = c
                findings[-1] = Finding(last.start, max(last.end, c.end), best.entity_type,
                                       max(last.score, c.score))
            else:
                best = c
                findings.append(Finding(c.start, c.end, c.entity_type, c.score))
        return findings


PHONE_CACHE = 8192  # segments; each ≤ a window of digit tokens


def _phone_finder(regions: Sequence[str], leniency):
    """`find(segment) → ((start, end), ...)`: presidio's PhoneRecognizer on one segment — python-
    phonenumbers' matcher for each region in turn, on what earlier regions left. Regions that
    share a country code with an earlier one (CA after US: the same plan, prefix and IDD; the
    matcher parses a number without `+` in its region's code) find nothing new and are skipped.
    Cached by segment: the history of a conversation is sent again with every call, its numbers
    are not parsed again (~0.2 ms per segment and region)."""
    seen: set[int] = set()
    distinct = []
    for region in regions:
        code = phonenumbers.country_code_for_region(region)
        if code not in seen:
            seen.add(code)
            distinct.append(region)

    # What each region's numbers need, for VALID leniency and stricter (POSSIBLE needs no type).
    national = {r: _NationalNumbers(r) for r in distinct} if leniency >= phonenumbers.Leniency.VALID else {}

    @functools.lru_cache(maxsize=PHONE_CACHE)
    def find(segment: str) -> tuple[tuple[int, int], ...]:
        found: list[tuple[int, int]] = []
        pieces = [(0, len(segment))]
        digits: dict[tuple[int, int], int] = {}
        stretches: dict[tuple[int, int], list[tuple[int, int, list[str]]]] = {}
        for index, region in enumerate(distinct):
            rest = []
            numbers = national.get(region)
            for s, e in pieces:
                piece = segment[s:e]
                if (s, e) not in stretches:
                    stretches[s, e] = _stretches(piece)
                parts = stretches[s, e]
                if numbers is not None:
                    if (s, e) not in digits:
                        digits[s, e] = max((sum(c.isdigit() for c in m[0])
                                            for m in _PHONE_LIKE.finditer(segment, s, e)), default=0)
                    # A number written with '+' is read the same in every region (its own country
                    # code, the same checks): the first region's matcher has found it if it is one.
                    parts = [] if digits[s, e] < numbers.shortest else [
                        p for p in parts if index == 0 and "+" in piece[p[0]:p[1]] or numbers.could_be_in(p[2])]
                spans = []
                for a, b, _ in parts:
                    # The matcher on the stretch sees what it would see in the piece: the (cutting)
                    # character before it, and what follows (it reads ":30" after a time).
                    lo, hi = max(0, a - 1), min(len(piece), b + MATCHER_LOOKAHEAD)
                    spans.extend((s + lo + m.start, s + lo + m.end)
                                 for m in phonenumbers.PhoneNumberMatcher(piece[lo:hi], region, leniency=leniency)
                                 if lo + m.end <= b)
                found.extend(spans)
                rest.extend((a, b) for a, b in _subtract(s, e, spans) if _phone_like(segment, a, b))
            pieces = rest
            if not pieces:
                break
        return tuple(found)

    return find


_DIGIT_GROUP = regex.compile(r"\d+")
MAX_DIALLED_DIGITS = 25  # international prefix (≤ 5) + country code (≤ 3) + national number (≤ 17)
# What may stand between two digit groups of one of the matcher's candidates: at most 4 of its
# punctuation characters (spaces, dashes, dots, slashes, brackets, 'x'; its private pattern: if
# a release renames it, any gap is taken to join groups).
_CANDIDATE_GAP = re.compile(getattr(phonenumbermatcher, "_PUNCTUATION", "(?s:.*)"),
                            getattr(phonenumbermatcher, "_REGEX_FLAGS", re.IGNORECASE))


# The characters the matcher's candidates can hold: digits, its punctuation, '+' and brackets,
# and its extension marks ("ext.", "x", "#", "доб", ...), read from its own (private) pattern:
# if a release renames it, nothing cuts a piece. A piece is parsed stretch by stretch where
# other characters (most letters, quotes, `%`, `$`) cut it: no candidate spans one; a stretch
# without a run of digits that could be a number of the region is not parsed at all.
_CANDIDATE_PATTERN = getattr(phonenumbermatcher, "_PATTERN", None)
_CANDIDATE_CHARS = _CANDIDATE_PATTERN and consumable_class(_CANDIDATE_PATTERN.pattern, _CANDIDATE_PATTERN.flags)
_STRETCH = re.compile(f"{_CANDIDATE_CHARS.pattern}+" if _CANDIDATE_CHARS else "(?s:.)+",
                      _CANDIDATE_CHARS.flags if _CANDIDATE_CHARS else 0)
MATCHER_LOOKAHEAD = 8  # characters after a candidate the matcher reads (3: a time's ":30")


def _stretches(piece: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, digit runs) of each stretch of `piece` that a candidate can be in (_STRETCH)
    and that holds a digit."""
    return [(m.start(), m.end(), _digit_runs(m[0])) for m in _STRETCH.finditer(piece)
            if _DIGIT.search(m[0])]


def _digit_runs(piece: str) -> list[str]:
    """The digits of every run of consecutive digit groups in `piece` that one of the matcher's
    candidates can hold (as ASCII, at most MAX_DIALLED_DIGITS): where a number it parses can
    start and end. ("Chrome/120.0.6099.109 Safari/537.36": a letter parts 109 from 537.)"""
    chains: list[list[str]] = []
    end = None
    for m in _DIGIT_GROUP.finditer(piece):
        if end is None or not _CANDIDATE_GAP.fullmatch(piece, end, m.start()):
            chains.append([])
        group = m[0]
        chains[-1].append(group if group.isascii() else "".join(str(unicodedata.decimal(c)) for c in group))
        end = m.end()
    runs = []
    for groups in chains:
        for i in range(len(groups)):
            digits = ""
            for group in groups[i:]:
                digits += group
                if len(digits) > MAX_DIALLED_DIGITS:
                    break
                runs.append(digits)
    return runs


# python-phonenumbers' own steps, so that the prefilter reads numbers exactly as its parser does.
# (Private functions: if a release renames them, the phone prefilter turns itself off.)
_STRIP_NATIONAL_PREFIX = getattr(phonenumberutil, "_maybe_strip_national_prefix_carrier_code", None)
_FIRST_GROUP_ONLY = getattr(phonenumberutil, "_formatting_rule_has_first_group_only", None)


class _NationalNumbers:
    """What a valid number of one region needs when it is written without `+`, so that python-
    phonenumbers' matcher (~0.1 ms per piece and region) runs only where it can succeed.

    The matcher reads a number from whole groups of digits (it cuts candidates at separators
    only). Without `+`, a number that starts with the region's international prefix is another
    country's (passed on); otherwise the parser may strip the region's country code, then a
    national prefix (with a carrier code, by the region's own rule), and the rest is the national
    number. VALID leniency (presidio's) needs it to have a type: to match one of the number types
    (fixed line, mobile, toll free, ...) of a region of that country code (the US plan's matcher
    also finds Canadian numbers) at one of the type's lengths; and a number written without its
    national prefix only counts where the region's format does not ask for one (German, French,
    British numbers are written with their 0). A piece is parsed only if some run of consecutive
    digit groups can be read so. Also, its longest run of digits close together must reach the
    shortest number (US 10, FR 9)."""

    TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip",
             "pager", "uan", "voicemail")

    def __init__(self, region: str):
        self.meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        self.code = str(phonenumbers.country_code_for_region(region))
        self.by_length: dict[int, regex.Pattern] = {}  # length → the type patterns of that length
        if self.meta is None or None in (_STRIP_NATIONAL_PREFIX, _FIRST_GROUP_ONLY):
            self.shortest = 1
            return
        patterns: dict[int, list[str]] = {}
        for other in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(self.code), ()):
            plan = phonenumbers.PhoneMetadata.metadata_for_region(other)
            if plan is None or plan.general_desc is None:
                continue
            lengths = [n for n in plan.general_desc.possible_length if n > 0]
            for name in self.TYPES:
                desc = getattr(plan, name)
                if desc is not None and desc.national_number_pattern:
                    for n in [n for n in desc.possible_length if n > 0] or lengths:
                        patterns.setdefault(n, []).append(desc.national_number_pattern)
        self.by_length = {n: regex.compile("|".join(f"(?:{p})" for p in dict.fromkeys(ps)))
                          for n, ps in sorted(patterns.items())}
        self.shortest = min(self.by_length, default=1)
        self.idd = regex.compile(self.meta.international_prefix or "(?!)")
        prefix = self.meta.national_prefix_for_parsing
        self.national_prefix = regex.compile(prefix) if prefix else None
        # The format the parser chooses for a national number (its _choose_formatting_pattern_for_
        # number: the first whose last leading-digits pattern matches at the start and whose
        # pattern matches the whole), as one test; and whether that format asks for the prefix.
        formats = phonenumbers.PhoneMetadata.metadata_for_region(
            phonenumbers.region_code_for_country_code(int(self.code))).number_format
        self.format_of = re.compile("|".join(
            (f"(?=(?:{f.leading_digits_pattern[-1]}))" if f.leading_digits_pattern else "")
            + f"(?:{f.pattern})\\Z(?P<f{i}>)" for i, f in enumerate(formats)) or "(?!)")
        self.prefix_wanted = {f"f{i}": bool(f.national_prefix_formatting_rule
                                            and not f.national_prefix_optional_when_formatting
                                            and not _FIRST_GROUP_ONLY(f.national_prefix_formatting_rule))
                              for i, f in enumerate(formats)}
        # Each reading of a run below (but the international prefix's) is the run less a prefix:
        # the country code, then at most two national prefixes as national_prefix_for_parsing
        # matches them; unless a transform rule rewrites the national prefix (Argentina's adds a
        # 9). Without one, a run too short for a number type, or that is not such prefixes and a
        # number of a type (one test: Python's re runs it 1.5x faster than the regex module), is
        # passed over at once.
        self.viable = None
        if not self.meta.national_prefix_transform_rule:
            typed = "|".join(f"(?=\\d{{{n}}}\\Z)(?:{p.pattern})" for n, p in self.by_length.items())
            maybe_prefix = f"(?:{prefix})?" if prefix else ""
            self.viable = re.compile(f"(?:{self.code})?{maybe_prefix}{maybe_prefix}(?:{typed})\\Z")

    def could_be_in(self, runs: list[str]) -> bool:
        """`runs`: the digits of each run of consecutive digit groups of a piece (_digit_runs)."""
        if not self.by_length:
            return True  # nothing to check against: the matcher decides
        for digits in runs:
            if self.idd.match(digits):
                return True
            if self.viable is not None and (len(digits) < self.shortest or not self.viable.match(digits)):
                continue  # no reading of it can be a number (below)
            national, stripped = self._strip(digits)
            if self._typed(digits) and (stripped or not self._wants_prefix(digits)):
                return True
            readings = [national, self._strip(national)[0]] if stripped else []
            if digits.startswith(self.code):  # the country code without '+', then maybe a prefix
                rest = digits[len(self.code):]
                readings += [rest, self._strip(rest)[0]]
            if any(self._typed(number) for number in readings):
                return True
        return False

    def _strip(self, number: str) -> tuple[str, bool]:
        """The number without its national prefix (and carrier code), as the parser strips it,
        and whether it did (its rule is only run where the prefix pattern matches: cheap)."""
        if self.national_prefix is None or self.national_prefix.match(number) is None:
            return number, False
        _, national, stripped = _STRIP_NATIONAL_PREFIX(number, self.meta)
        return national, stripped

    def _typed(self, number: str) -> bool:
        shape = self.by_length.get(len(number))
        return shape is not None and shape.fullmatch(number) is not None

    def _wants_prefix(self, number: str) -> bool:
        """Whether the region writes this national number with its national prefix (the
        matcher's `_is_national_prefix_present_if_required`)."""
        chosen = self.format_of.match(number)
        return chosen is not None and self.prefix_wanted[chosen.lastgroup]


def _subtract(start: int, end: int, spans: list[tuple[int, int]]):
    """[start, end) less the (sorted) spans, as pieces."""
    for s, e in spans:
        if e <= start or s >= end:
            continue
        if s > start:
            yield start, s
        start = max(start, e)
    if start < end:
        yield start, end


def _score(spec: PatternSpec, value: str) -> float:
    score = spec.score
    if spec.validate is not None:
        valid = spec.validate(value)
        if valid is not None:
            score = 1.0 if valid else 0.0
    if spec.invalidate is not None and spec.invalidate(value):
        score = 0.0
    return score


_TABLE_RULE = regex.compile(r"[ \t|+:]*[\-=][ \t\-+|=:]*")  # psql's "-----+-----", markdown's "|---|:--|"
TABLE_LOOKBACK = 4096  # characters searched above a cell for its table's header line


class _ColumnHeaders:
    """The header of the table column a position is in, as context words (like the JSON key of a
    value): a CSV/TSV block, a psql or markdown table (`|`). "name,nhs_number,phone" above
    "Ann,943 476 5919,..." names the number, which is also a valid phone number. The header is the
    first line of the block of lines above with the same number of delimiters, separator rules
    skipped, at most TABLE_LOOKBACK characters up; cached per line and column."""

    def __init__(self, text: str):
        self.text = text
        self.cache: dict[tuple[int, int], tuple[str, ...]] = {}

    def of(self, pos: int) -> tuple[str, ...]:
        text = self.text
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        line = text[start:end if end >= 0 else len(text)]
        delim = next((d for d in "|,\t" if d in line), None)
        if delim is None or start == 0:
            return ()
        column = text.count(delim, start, pos)
        key = (start, column)
        if key not in self.cache:
            self.cache[key] = self._header(start, delim, line.count(delim), column)
        return self.cache[key]

    def _header(self, start: int, delim: str, count: int, column: int) -> tuple[str, ...]:
        text, header, floor = self.text, None, max(0, start - TABLE_LOOKBACK)
        end = start - 1  # the newline ending the line above
        while end > floor:
            begin = text.rfind("\n", floor, end) + 1
            line = text[begin:end]
            if not _TABLE_RULE.fullmatch(line):
                if line.count(delim) != count:
                    break
                header = line
            end = begin - 1
        if header is None:
            return ()
        cells = header.split(delim)
        return tuple(w.lower() for w in _WORD.findall(cells[column])) if column < len(cells) else ()


def _context_distance(text: str, c: _Candidate, extra: tuple[str, ...],
                      placeholders: list[tuple[int, int]]) -> int | None:
    """presidio's LemmaContextAwareEnhancer (substring mode) on surface words: whether a context
    word is part of one of the 5 non-stop words before the match, or of a caller's context word
    (the JSON key); how many words back the nearest one is (the caller's count as the farthest),
    or None."""
    begin = max(0, c.start - 200)
    before = text[begin:c.start]
    if placeholders:
        # What an earlier redaction wrote is not context: redacting twice must change nothing.
        before = PLACEHOLDER.sub(" ", before)
    stop = _stop_words()
    words = [w for w in _WORD.findall(before.lower()) if w not in stop][-CONTEXT_WORDS:]
    words.reverse()
    words.extend(extra)
    for distance, word in enumerate(words):
        if any(cw in word for cw in c.context):
            return min(distance, CONTEXT_WORDS)
    return None
