"""pii_redaction's fast paths change what detection costs, never what it finds.

Each is checked against the slow way on the labeled corpus and on generated input:
- regexopt.factor_alternations: the factored URL patterns match exactly what presidio's do;
- regexopt.required_literals: a text a pattern matches holds one of its required strings;
- prefilter.Prefilter (Hyperscan): a pattern that matches a text is never skipped (in a text with
  characters beyond ASCII, read with stand-ins), the words it reports are those the text holds,
  and a Detector finds the same with and without it;
- detect._NationalNumbers: a piece in which python-phonenumbers' matcher finds a number is always
  passed to it, for example numbers of every type of presidio's regions written every usual way;
  the format a number takes is the parser's choice;
- detect._phone_finder (stretches, digit runs, the per-region checks): it finds exactly what every
  region's matcher finds on every piece earlier regions left, on the corpus and generated text.
"""

from __future__ import annotations

import functools
import random

import phonenumbers
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from presidio_analyzer.predefined_recognizers import UrlRecognizer

from llmtap.processors.pii_redaction import Config, detect, recognizers
from llmtap.processors.pii_redaction.detect import Detector
from llmtap.processors.pii_redaction.prefilter import Prefilter
from llmtap.processors.pii_redaction.recognizers import known_entities
from llmtap.processors.pii_redaction.regexopt import (consumable_class, factor_alternations, required_literals,
                                                      stand_ins_keep_matches, with_stand_ins)
from pii_corpus import scoring

TEXTS = [r["text"] for r in scoring.load_corpus()]
EVERYTHING = Config(enable=sorted(known_entities(Config()) - set(recognizers.NER_ENTITIES) - {"ORGANIZATION"}))


@pytest.fixture(scope="module")
def every_pattern() -> list[recognizers.PatternSpec]:
    return list(recognizers.build(EVERYTHING).patterns)


# URL-ish text: hosts, dots, paths, quotes, and words that start like top-level domains.
url_text = st.lists(st.sampled_from(["www", "com", "community", "co", "uk", "io", "a", "x1", "-", ".", "/", "?q=1",
                                      "http://", "https://", '"', "'", " ", "\n", "example", "museum", "zw"]),
                    max_size=30).map("".join)


@pytest.mark.parametrize("pattern", UrlRecognizer.PATTERNS, ids=lambda p: p.name)
def test_factored_url_patterns_match_exactly_what_presidio_s_match(pattern):
    flags = regex.IGNORECASE | regex.DOTALL | regex.MULTILINE
    original, factored = regex.compile(pattern.regex, flags), regex.compile(factor_alternations(pattern.regex), flags)
    assert factored.pattern != original.pattern and len(factored.pattern) < len(original.pattern)
    for text in TEXTS:
        assert [m.span() for m in factored.finditer(text)] == [m.span() for m in original.finditer(text)]

    @settings(max_examples=300, deadline=None)
    @given(url_text)
    def same(text):
        assert [m.span() for m in factored.finditer(text)] == [m.span() for m in original.finditer(text)]
    same()


def test_required_literals_are_what_every_match_contains():
    assert required_literals(r"https?://[a-z]+") == {"http://", "https://"}
    assert required_literals(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}") == {
        "sk_live_", "sk_test_", "rk_live_", "rk_test_"}
    assert required_literals(r"(?i:bearer)[ \t]+(?P<value>\S+)") == {"bearer"}
    assert required_literals(r"xox[abprse]-[A-Za-z0-9\-]{10,}") == {f"xox{c}-" for c in "abprse"}
    assert required_literals(r"(?:mysql|curl)\b.*?-p(?P<value>\S+)|(?P<value>\S+)@db") == {"mysql", "curl", "@db"}
    assert required_literals(r"(?:mysql|curl)\b.*?-p\S+|\S+@") is None  # one branch needs only "@"
    assert required_literals(r"[A-Za-z0-9]{40}") is None
    assert required_literals(r"\p{Sc}\d+") is None  # Python's parser cannot read it: no prefilter
    assert required_literals(r"ab") is None  # too short to be worth a test


def test_a_text_a_pattern_matches_holds_one_of_its_required_literals(every_pattern):
    with_literals = [s for s in every_pattern if s.literals is not None]
    assert len(with_literals) >= 20  # the secret formats, at least
    for spec in with_literals:
        for text in TEXTS:
            if spec.regex.search(text):
                assert any(word in text.lower() for word in spec.literals), spec.name


def test_the_prefilter_never_skips_a_pattern_that_matches(every_pattern):
    patterns = [s.regex for s in every_pattern if s.family != "dot"]  # detect.py does not prefilter URLs
    words = sorted({w for s in every_pattern for w in s.literals or ()} | {w for s in every_pattern for w in s.context})
    prefilter = Prefilter(patterns, words)
    assert len(prefilter.always) < len(patterns) / 10
    skipped = 0
    for text in TEXTS:
        hits = prefilter.scan(text)
        if hits is None:
            assert with_stand_ins(text) is None
            continue
        assert hits.words == {w for w in words if w in text.lower()}
        for i, pattern in enumerate(patterns):
            if i not in hits.patterns:
                skipped += 1
                assert pattern.search(text) is None, (pattern.pattern, text)
    assert skipped > 0.6 * len(TEXTS) * len(patterns)  # and it does skip most


# Characters beyond ASCII of every kind: letters (and a combining mark), white space (no-break,
# ideographic), dashes, quotes, symbols, emoji; and those that get no stand-in: digits beyond
# ASCII and letters with an ASCII case variant (Kelvin sign, long s, dotted I, sharp s).
_BEYOND_ASCII = "éÉłżñßüÓ\u0301ЖдΩ中あ\u00a0\u3000\u2009—–’“”«»€£→•…😀\u200b٣\u212a\u017f\u0130"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEXTS), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_BEYOND_ASCII), st.booleans()),
                                        min_size=1, max_size=12))
def test_the_prefilter_with_stand_ins_never_skips_a_pattern_that_matches(every_pattern, text, edits):
    for where, char, insert in edits:  # characters beyond ASCII put into (or over) a corpus text
        i = int(where * len(text))
        text = text[:i] + char + text[i + (0 if insert else 1):]
    patterns = [s.regex for s in every_pattern if s.family != "dot"]
    hits = _prefilter_of(tuple(patterns)).scan(text)
    if hits is None:
        assert with_stand_ins(text) is None
        return
    for i, pattern in enumerate(patterns):
        if i not in hits.patterns:
            assert pattern.search(text) is None, (pattern.pattern, text)


@functools.lru_cache(maxsize=1)
def _prefilter_of(patterns):
    return Prefilter(patterns)


def test_which_patterns_stand_ins_keep_the_matches_of():
    assert stand_ins_keep_matches(r"[^\s@/]+@\w+\b")  # each kind stays itself: `_` a word character
    assert stand_ins_keep_matches(r"(?<![A-Za-z0-9_])[^A-Za-z0-9]x")  # a look-around is not looked into
    assert not stand_ins_keep_matches(r"[^A-Za-z0-9_]x")  # matches `é`, not its stand-in `_`
    assert not stand_ins_keep_matches(r"[^\x00-\x1f]")  # matches `—`, not its stand-in SOH
    assert not stand_ins_keep_matches(r"[\u2010-\u2015]")  # names characters beyond ASCII
    assert not stand_ins_keep_matches(r"\p{L}+")  # syntax Python's parser does not read
    assert with_stand_ins("café — 1\u00a0€") == "caf_ \x01 1\x0b\x01"
    assert with_stand_ins("٣") is None and with_stand_ins("\u212a") is None  # a digit; the Kelvin sign is a K


def test_a_pattern_hyperscan_cannot_compile_is_always_run():
    prefilter = Prefilter([regex.compile(r"(?r)abc"), regex.compile(r"secret-\d+")], ["key", "a.b\x00c", "clé"])
    assert prefilter.always == {0}
    assert prefilter.scan("nothing here") == ({0}, set())
    assert prefilter.scan("a secret-42 KEY") == ({0, 1}, {"key"})
    assert prefilter.scan("A.B\x00C") == ({0}, {"a.b\x00c"})  # a word is literal, NUL and all
    assert prefilter.scan("naïve secret-42") == ({0, 1}, set())  # read with a stand-in for ï
    assert prefilter.scan("a \u212a secret-42") is None  # the Kelvin sign: every pattern runs


class _NoPrefilter:
    @staticmethod
    def scan(text):
        return None


@pytest.mark.parametrize("config", [Config(), Config(enable=["URL", "UK_NINO", "IN_PAN", "IN_AADHAAR", "AU_TFN"])],
                         ids=["default", "bench"])
def test_findings_are_the_same_with_and_without_the_prefilter(config):
    fast, slow = Detector(config), Detector(config)
    slow._prefilter = _NoPrefilter
    for text in TEXTS:
        assert fast.analyze(text) == slow.analyze(text)


def _written_ways(number: phonenumbers.PhoneNumber, rng: random.Random) -> list[str]:
    """A number as people write it without '+': national, international after the region's
    exit code, regrouped, in a sentence."""
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    digits = phonenumbers.national_significant_number(number)
    cut = rng.randrange(1, len(digits))
    return [national, f"call {national} today", international.lstrip("+"), "00" + international.lstrip("+"),
            "011 " + international.lstrip("+"), digits, f"{digits[:cut]} {digits[cut:]}",
            f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "0" + digits, f"tel. 0{digits[:cut]}/{digits[cut:]}"]


def test_the_phone_prefilter_passes_every_piece_the_matcher_finds_a_number_in():
    regions = Detector()._phone.supported_regions
    leniency = phonenumbers.Leniency.VALID
    rng = random.Random(7)
    checked = found = 0
    for region in regions:
        numbers = detect._NationalNumbers(region)
        code = phonenumbers.country_code_for_region(region)
        for other in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
            for kind in phonenumbers.PhoneNumberType.values():
                example = phonenumbers.example_number_for_type(other, kind)
                if example is None:
                    continue
                for text in _written_ways(example, rng):
                    checked += 1
                    if any(phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency)):
                        found += 1
                        assert numbers.could_be_in(detect._digit_runs(text)), (region, other, kind, text)
    assert checked > 2000 and found > 500


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from("0123456789") | st.sampled_from([" ", "-", "(", ")", ".", "/", "0", "1", "00", "011"]),
                min_size=7, max_size=24).map("".join),
       st.sampled_from(["US", "GB", "DE", "FR", "IL", "IN", "BR"]))
def test_the_phone_prefilter_on_random_digit_runs(text, region):
    if any(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)):
        assert detect._NationalNumbers(region).could_be_in(detect._digit_runs(text))


def _every_region_on_every_piece(regions, leniency, segment: str) -> list[tuple[int, int]]:
    """detect._phone_finder without its prefilter: each region's matcher on all that earlier
    regions left of the segment."""
    found, pieces, codes = [], [(0, len(segment))], set()
    for region in regions:
        if phonenumbers.country_code_for_region(region) in codes:
            continue
        codes.add(phonenumbers.country_code_for_region(region))
        rest = []
        for s, e in pieces:
            spans = [(s + m.start, s + m.end) for m in phonenumbers.PhoneNumberMatcher(segment[s:e], region, leniency)]
            found += spans
            rest += [(a, b) for a, b in detect._subtract(s, e, spans) if detect._phone_like(segment, a, b)]
        pieces = rest
    return sorted(found)


REGIONS = Detector()._phone.supported_regions
_fast_find = detect._phone_finder(REGIONS, phonenumbers.Leniency.VALID)


def test_the_phone_finder_finds_what_every_region_on_every_piece_finds_on_the_corpus():
    detector, segments = Detector(), []
    for text in TEXTS:
        segments += [text[s:e] for s, e in detect._windows("digit", text)]
    numbers = 0
    for segment in segments:
        expected = _every_region_on_every_piece(REGIONS, phonenumbers.Leniency.VALID, segment)
        assert sorted(_fast_find(segment)) == expected, segment
        numbers += len(expected)
    assert numbers > 300


# Digits with what stands around numbers: punctuation the matcher reads, extension marks, letters
# that cut a candidate (or not: 'x', 'ſ' is an 's' to it), times, dates, '+', '%', currencies.
_phone_text = st.lists(st.sampled_from("0123456789") | st.sampled_from(
    [" ", "  ", "-", "(", ")", ".", "/", "+", "+1 ", "+44 ", "00", "011", "0", "x", "X", "ext. ", " ext ", "#", ";ext=",
     ":", ":30", ",", "a", "b", "Tel ", "\n", '"', "%", "$", "€", "ſ", "٣", "2024-05-01", "12/03/2025", " / ", "–"]),
    min_size=3, max_size=30).map("".join)


@settings(max_examples=500, deadline=None)
@given(_phone_text)
def test_the_phone_finder_on_generated_text(text):
    assert sorted(_fast_find(text)) == _every_region_on_every_piece(REGIONS, phonenumbers.Leniency.VALID, text)


def test_the_characters_a_candidate_can_hold_come_from_the_matcher_s_own_pattern():
    chars = detect._CANDIDATE_CHARS
    assert chars is not None  # python-phonenumbers still has its _PATTERN, and it is a short list
    for c in "0123456789٣ -./()[]+x#;=,:ext":
        assert chars.match(c), c
    for c in 'bcdfghjklm"\'%$€\n':
        assert not chars.match(c), c
    assert all(consumable_class(p) is None for p in (r"a.b", r"[^x]", r"\w+", r"\p{L}"))  # no short list
    ab = consumable_class(r"(?:ab|\d)+")
    assert all(ab.match(c) for c in "abAB5٣") and not ab.match("c")  # in any case, whatever the flags


@pytest.mark.skipif(not hasattr(phonenumbers.phonenumberutil, "_choose_formatting_pattern_for_number"),
                    reason="python-phonenumbers no longer has the function to compare with")
def test_the_format_a_national_number_takes_is_the_parser_s_choice():
    choose = phonenumbers.phonenumberutil._choose_formatting_pattern_for_number
    first_group_only = phonenumbers.phonenumberutil._formatting_rule_has_first_group_only
    rng, checked = random.Random(3), 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        numbers = detect._NationalNumbers(region)
        if not numbers.by_length:
            continue
        formats = phonenumbers.PhoneMetadata.metadata_for_region(
            phonenumbers.region_code_for_country_code(int(numbers.code))).number_format
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            for number in [national] + [national[:i] + rng.choice("0123456789") + national[i + 1:]
                                        for i in range(len(national))]:
                fmt = choose(formats, number)
                wanted = bool(fmt is not None and fmt.national_prefix_formatting_rule
                              and not fmt.national_prefix_optional_when_formatting
                              and not first_group_only(fmt.national_prefix_formatting_rule))
                assert numbers._wants_prefix(number) == wanted, (region, number)
                checked += 1
    assert checked > 10000
