"""The shared secret table (llmtap/secretpatterns.py): every regex compiles in the `regex`
dialect, finds its documented example, and stays linear (no ambiguous nested repetition).
That both detectors find every example is tested with each of them: test_pii_redaction.py
(the Detector) and test_ebpf_process_parts.py (process arguments)."""

from __future__ import annotations

import re._constants as sre_constants
import re._parser as sre_parser

import pytest
import regex

from llmtap.secretpatterns import FLAGS, SECRET_PATTERNS, VALUE_CHECKS, SecretPattern
from secret_examples import example_secret, name


@pytest.mark.parametrize("pattern", SECRET_PATTERNS, ids=name)
def test_each_pattern_finds_its_example_and_the_example_passes_the_value_check(pattern: SecretPattern):
    assert regex.compile(pattern.regex, FLAGS).search(pattern.example) is not None
    assert VALUE_CHECKS.get(pattern.entity, bool)(example_secret(pattern))
    if pattern.context:  # weak alone: its example shows the context that makes it count
        assert any(word in pattern.example.lower() for word in pattern.context)


def test_value_checks_reject_look_alikes():
    assert not VALUE_CHECKS["AWS_SECRET_ACCESS_KEY"]("3f786850e387550fdab836ed7e6dc881de23001b")  # a git SHA-1
    assert not VALUE_CHECKS["AWS_SECRET_ACCESS_KEY"]("usr/local/lib/python3/dist/packages/abcd")
    assert not VALUE_CHECKS["BASIC_AUTH"]("realm")          # not base64 of user:password
    assert not VALUE_CHECKS["BASIC_AUTH"]("aGVsbG8gd29ybGQ=")  # "hello world": no ':'


def test_names_are_unique_within_an_entity():
    names = [(p.entity, p.name) for p in SECRET_PATTERNS]
    assert len(names) == len(set(names))


# --- linearity ------------------------------------------------------------------------------------
# A repetition inside a repetition backtracks exponentially when the two can split the same text
# in many ways. It is linear when the outer body holds a literal separator the inner repetition
# cannot match (`(?:\.[A-Za-z]+)*`, `(?:[A-Z]+ )*`): each separator fixes where a turn ends.
# Checked on the stdlib parser's tree (same syntax for what the table uses, but for duplicate
# group names, which only `regex` allows).

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
_CATEGORIES = {
    sre_constants.CATEGORY_DIGIT: str.isdigit, sre_constants.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
    sre_constants.CATEGORY_SPACE: str.isspace, sre_constants.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre_constants.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    sre_constants.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


def _children(op, av):
    if op in _REPEATS:
        yield av[2]
    elif op is sre_constants.SUBPATTERN:
        yield av[3]
    elif op is sre_constants.BRANCH:
        yield from av[1]
    elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        yield av[1]


def _unbounded_repeats(tree):
    for op, av in tree:
        if op in _REPEATS and av[1] == sre_constants.MAXREPEAT:
            yield av[2]
        for child in _children(op, av):
            yield from _unbounded_repeats(child)


def _may_match(body, char: str) -> bool:
    """Whether a repetition's body can match `char` (True when it is not one character class)."""
    if len(body) != 1:
        return True
    op, av = body[0]
    code = ord(char)
    if op is sre_constants.LITERAL:
        return av == code
    if op is sre_constants.NOT_LITERAL:
        return av != code
    if op is not sre_constants.IN:
        return True
    negate, hit = False, False
    for item_op, item in av:
        if item_op is sre_constants.NEGATE:
            negate = True
        elif item_op is sre_constants.LITERAL:
            hit |= item == code
        elif item_op is sre_constants.RANGE:
            hit |= item[0] <= code <= item[1]
        elif item_op is sre_constants.CATEGORY:
            hit |= _CATEGORIES[item](char)
    return hit != negate


def _ambiguous_nesting(tree) -> list[str]:
    found = []
    for body in _unbounded_repeats(tree):
        inner = list(_unbounded_repeats(body))
        separators = [chr(av) for op, av in body if op is sre_constants.LITERAL]
        if inner and not any(all(not _may_match(i, s) for i in inner) for s in separators):
            found.append(str(body)[:120])
    return found


@pytest.mark.parametrize("pattern", SECRET_PATTERNS, ids=name)
def test_no_pattern_nests_repetitions_ambiguously(pattern: SecretPattern):
    tree = sre_parser.parse(pattern.regex.replace("(?P<value>", "(?:"))
    assert _ambiguous_nesting(tree) == []


def test_the_linearity_check_catches_what_backtracks():
    for bad in (r"(?:a+)+b", r"(?:[a-z]+[a-z0-9]*)*!", r"(?:\w+\s?)*$"):
        assert _ambiguous_nesting(sre_parser.parse(bad)), bad
    assert _ambiguous_nesting(sre_parser.parse(r"(?:\.[a-z]+)*")) == []
