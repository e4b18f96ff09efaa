"""What a pattern's syntax tree says, so that it runs cheaper without changing what it matches.

`factor_alternations(pattern)`: presidio's URL patterns end the host in an alternation of ~675
top-level domains, `(?:(?:com)|(?:edu)|...)`, tried one by one at every dot (the regex module
has no first-character dispatch for it: the schemeless URL pattern was the costliest pattern of
all). Grouped by first letter, in their order, `(?:c(?:om|...)|e(?:du|...)|...)`, only the
group of the letter at hand is tried, and within it the alternatives are tried in the original
order: at any position only the alternatives starting with that character can match, so the
match chosen — and every backtracking path — is the same. ~3.5x cheaper for those patterns.

`required_literals(pattern, flags)`: strings of which every match must contain one (lower case;
ripgrep and RE2 call it a prefilter), e.g. `{"https://hooks.slack.com/"}` or `{"password",
"passwd", "pwd"}`; None when nothing useful (at least MIN_LITERAL characters) is required. A
text holding none of them, compared in lower case (a superset of the pattern's own case rule),
cannot match: the pattern is not run on it. Derived from the pattern's syntax tree (Python's
`re` parser, which reads the regex module's syntax for these patterns; a pattern it cannot read
gets no prefilter): consecutive parts with a few possible strings each (literals, small
classes, `s?`, alternations of such) multiply out, at most MAX_LITERALS strings; a group, a
repetition of at least one, or an alternation whose every branch requires something carries
its own requirement; the longest requirement wins.

`consumable_class(pattern)`: every character a match can hold, as one class (where a text can be
cut: python-phonenumbers' candidates, detect.py). `stand_ins_keep_matches(pattern)` and
`with_stand_ins(text)`: an ASCII reading of a text for an ASCII-only prefilter (prefilter.py).
"""

from __future__ import annotations

import functools
import re
import re._constants as sre  # noqa: the parser's node names (stable through Python 3.11-3.13)
import re._parser as sre_parse

import regex

MIN_LITERAL = 3
MAX_LITERALS = 64
MAX_CLASS = 8  # a character class this small is expanded into its characters

_TLD_STYLE = re.compile(r"\(\?:(?:\(\?:[a-z0-9\-]+\)\|){16,}\(\?:[a-z0-9\-]+\)\)")


def factor_alternations(pattern: str) -> str:
    return _TLD_STYLE.sub(lambda m: _factored(re.findall(r"\(\?:([a-z0-9\-]+)\)", m[0])), pattern)


def _factored(words: list[str]) -> str:
    groups: dict[str, list[str]] = {}  # first letter → the rest, in order (dicts keep insertion order)
    for w in words:
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "(?:" + "|".join(f"{re.escape(c)}(?:{'|'.join(rest)})" for c, rest in groups.items()) + ")"


NAMED_GROUP = re.compile(r"(?<!\\)\(\?P<\w+>")
_SEQUENCE_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE


def required_literals(pattern: str, flags: int = 0) -> frozenset[str] | None:
    try:
        # Group names do not matter here, and the regex module allows a name twice.
        tree = sre_parse.parse(NAMED_GROUP.sub("(?:", pattern), flags & _SEQUENCE_FLAGS)
    except (re.error, OverflowError, RecursionError):
        return None
    found = _required(list(tree))
    if found is None or min(map(len, found)) < MIN_LITERAL or not all(s.isascii() for s in found):
        return None
    return frozenset(s.lower() for s in found)


def _better(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None or b is None:
        return a if b is None else b
    return max(a, b, key=lambda s: (min(map(len, s)), -len(s)))


def _required(seq: list) -> frozenset[str] | None:
    """What every match of the node sequence must contain (one of the strings)."""
    best, run = None, frozenset({""})
    for op, av in seq:
        exact = _exact(op, av)
        if exact is not None and len(run) * len(exact) <= MAX_LITERALS:
            run = frozenset(a + b for a in run for b in exact)
            continue
        best = _better(best, run if run != {""} else None)
        if exact is not None:  # too many combinations: start a new run with this part
            run = exact
            continue
        run = frozenset({""})
        best = _better(best, _required_of(op, av))
    return _better(best, run if run != {""} else None)


def _required_of(op, av) -> frozenset[str] | None:
    if op is sre.SUBPATTERN:
        return _required(list(av[-1]))
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
        return _required(list(av[2]))
    if op is sre.ATOMIC_GROUP:
        return _required(list(av))
    if op is sre.BRANCH:
        branches = [_required(list(b)) for b in av[1]]
        if any(b is None for b in branches):
            return None
        return frozenset().union(*branches)
    return None


def _exact(op, av) -> frozenset[str] | None:
    """The strings the node can match, when there are few (zero-width nodes match "")."""
    if op is sre.LITERAL:
        return frozenset({chr(av)})
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return frozenset({""})
    if op is sre.IN:
        chars: set[str] = set()
        for item_op, item in av:
            if item_op is sre.LITERAL:
                chars.add(chr(item))
            elif item_op is sre.RANGE and item[1] - item[0] < MAX_CLASS:
                chars.update(map(chr, range(item[0], item[1] + 1)))
            else:
                return None
        return frozenset(chars) if len(chars) <= MAX_CLASS else None
    if op is sre.SUBPATTERN:
        return _exact_seq(list(av[-1]))
    if op is sre.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            strings = _exact_seq(list(branch))
            if strings is None:
                return None
            out |= strings
        return frozenset(out) if len(out) <= MAX_LITERALS else None
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[1] <= 1:
        inner = _exact_seq(list(av[2]))
        if inner is None:
            return None
        return inner | {""} if av[0] == 0 else inner
    return None


def _exact_seq(seq: list) -> frozenset[str] | None:
    out = frozenset({""})
    for op, av in seq:
        exact = _exact(op, av)
        if exact is None or len(out) * len(exact) > MAX_LITERALS:
            return None
        out = frozenset(a + b for a in out for b in exact)
    return out


MAX_RANGE = 256  # a wider range of characters is not listed: no class then


def consumable_class(pattern: str, flags: int = 0) -> re.Pattern | None:
    """A one-character pattern matching every character a match of `pattern` can hold (in any
    case, whatever the flags say); None when that is no short list (`.`, a negated class,
    `\\w`, a category but `\\d`). Characters it does not match can be no part of a match: a text
    can be cut there."""
    try:
        tree = sre_parse.parse(NAMED_GROUP.sub("(?:", pattern), flags & _SEQUENCE_FLAGS)
        chars, digits = _consumable(list(tree))
    except (re.error, OverflowError, RecursionError, _Unbounded):
        return None
    cased = {v for c in chars for v in (c, c.lower(), c.upper(), c.casefold()) for v in v}
    # (Compiled case-insensitive too: re's own case rules, e.g. 's' and 'ſ', apply to it.)
    return re.compile("[" + (r"\d" if digits else "") + "".join(map(re.escape, sorted(cased))) + "]",
                      re.IGNORECASE)


class _Unbounded(Exception):
    pass


def _consumable(seq: list) -> tuple[set[str], bool]:
    """The characters the node sequence can consume, and whether digits (`\\d`)."""
    chars, digits = set(), False
    for op, av in seq:
        if op is sre.LITERAL:
            chars.add(chr(av))
        elif op is sre.IN:
            for item_op, item in av:
                if item_op is sre.LITERAL:
                    chars.add(chr(item))
                elif item_op is sre.RANGE and item[1] - item[0] < MAX_RANGE:
                    chars.update(map(chr, range(item[0], item[1] + 1)))
                elif item_op is sre.CATEGORY and item is sre.CATEGORY_DIGIT:
                    digits = True
                else:
                    raise _Unbounded
        elif op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT, sre.GROUPREF):
            continue  # consumes nothing, or what its group did
        else:
            parts = _parts(op, av)
            if parts is None:
                raise _Unbounded
            for part in parts:
                more, d = _consumable(part)
                chars |= more
                digits |= d
    return chars, digits


def _parts(op, av) -> list[list] | None:
    """The node sequences in a group, a repetition or an alternation; None for any other node."""
    if op is sre.SUBPATTERN:
        return [list(av[-1])]
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [list(av[2])]
    if op is sre.ATOMIC_GROUP:
        return [list(av)]
    if op is sre.BRANCH:
        return [list(b) for b in av[1]]
    if op is sre.GROUPREF_EXISTS:
        return [list(b) for b in av[1:] if b is not None]
    return None


# Stand-ins for the characters outside ASCII of a text, by kind (a word character, white space,
# anything else), so that an ASCII-only automaton can read it: `_` is a word character, VT white
# space, SOH neither, like what they stand for (so `\b` is where it was).
STAND_IN_WORD, STAND_IN_SPACE, STAND_IN_OTHER = "_", "\x0b", "\x01"
# (Kinds as the regex module, which runs the patterns, sees them.)
_WORD_CHAR, _SPACE_CHAR, _DIGIT_CHAR = regex.compile(r"\w"), regex.compile(r"\s"), regex.compile(r"\d")
_BEYOND_ASCII = re.compile(r"[^\x00-\x7f]")

_CATEGORIES = {  # category → its syntax, the kinds of character beyond ASCII it matches (digits: none)
    sre.CATEGORY_WORD: (r"\w", "w"), sre.CATEGORY_NOT_WORD: (r"\W", "so"), sre.CATEGORY_SPACE: (r"\s", "s"),
    sre.CATEGORY_NOT_SPACE: (r"\S", "wo"), sre.CATEGORY_DIGIT: (r"\d", ""), sre.CATEGORY_NOT_DIGIT: (r"\D", "wso")}
_STAND_INS = {"w": STAND_IN_WORD, "s": STAND_IN_SPACE, "o": STAND_IN_OTHER}


def stand_ins_keep_matches(pattern: str, flags: int = 0) -> bool:
    """Whether `pattern` matches a text with its characters beyond ASCII replaced by their stand-
    ins (as long as none is a digit and none has an ASCII case variant: `K`, `ſ`, `İ`) wherever
    it matches the text: each part of it that can match a character beyond ASCII of some kind
    also matches that kind's stand-in. Look-arounds are not looked into: a prefilter drops them.
    False when unsure (a character beyond ASCII in the pattern, syntax Python's parser lacks)."""
    if not pattern.isascii():
        return False
    try:
        return _keeps(list(sre_parse.parse(NAMED_GROUP.sub("(?:", pattern), flags & _SEQUENCE_FLAGS)), flags)
    except (re.error, OverflowError, RecursionError):
        return False


def _keeps(seq: list, flags: int) -> bool:
    for op, av in seq:
        if op is sre.ANY or op is sre.NOT_LITERAL:
            source, kinds = ("." if op is sre.ANY else f"[^{re.escape(chr(av))}]"), "wso"
        elif op is sre.IN:
            kinds, items, negated = "", [], False
            for item_op, item in av:
                if item_op is sre.NEGATE:
                    negated = True
                    items.append("^")
                elif item_op is sre.LITERAL and item < 128:
                    items.append(re.escape(chr(item)))
                elif item_op is sre.RANGE and item[1] < 128:
                    items.append(f"{re.escape(chr(item[0]))}-{re.escape(chr(item[1]))}")
                elif item_op is sre.CATEGORY and item in _CATEGORIES:
                    source, category_kinds = _CATEGORIES[item]
                    kinds += category_kinds
                    items.append(source)
                else:
                    return False
            source = "[" + "".join(items) + "]"
            if negated:  # it matches the kinds beyond ASCII that its categories do not name
                kinds = "".join(k for k in "wso" if k not in kinds)
        elif op is sre.LITERAL and av < 128 or op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT, sre.GROUPREF):
            continue  # an ASCII character; zero width; what its group matched
        else:
            parts = _parts(op, av)
            if parts is None or not all(_keeps(part, flags) for part in parts):
                return False
            continue
        one = re.compile(source, flags & (re.IGNORECASE | re.DOTALL))
        if not all(one.fullmatch(_STAND_INS[k]) for k in set(kinds)):
            return False
    return True


def with_stand_ins(text: str) -> str | None:
    """`text` with each character beyond ASCII replaced by its stand-in; None if one is a digit
    or has an ASCII case variant (no stand-in keeps what patterns match there)."""
    table = {ord(c): _stand_in(c) for c in set(_BEYOND_ASCII.findall(text))}
    return None if None in table.values() else text.translate(table)


@functools.lru_cache(maxsize=8192)
def _stand_in(c: str) -> str | None:
    if any(v.isascii() for v in c.lower() + c.upper() + c.casefold()) or _DIGIT_CHAR.match(c):
        return None
    return STAND_IN_WORD if _WORD_CHAR.match(c) else STAND_IN_SPACE if _SPACE_CHAR.match(c) else STAND_IN_OTHER
