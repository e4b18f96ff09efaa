"""Which patterns can match a text at all, and which words it holds, in one pass: Hyperscan.

On a typical prompt or tool output only 1 pattern in 13 has any match, but each is a scan of
its own (~20 ns per character each for the regex module). Hyperscan compiles all of them into
one automaton; in prefilter mode (HS_FLAG_PREFILTER) it accepts what it cannot run exactly
(look-arounds, back references, lazy and possessive repeats) by widening it, so it reports a
superset of the patterns that match. The same automaton looks for words, case-insensitively
(the strings patterns require, the context words that lift weak ones): one scan of the text
(~1 GB/s) says which patterns to run and which words are there. The findings are the same with
or without it; only their cost changes.

Hyperscan reads bytes: there `\\w`, `\\d`, `\\s`, `\\b` and case-insensitivity mean the same to it and
to the regex module for ASCII characters only. A text with others is read with a stand-in for each
by its kind (regexopt.with_stand_ins: `_` for a letter, VT for white space, SOH for the rest), and
a pattern of which some part could match such a character but not its stand-in (`[^A-Za-z_]`) is
run on such a text anyway (regexopt.stand_ins_keep_matches). A text with a digit beyond ASCII or a
letter with an ASCII case variant (the Kelvin sign is a `k` to `(?i)k`) is scanned by every
pattern, as without a prefilter. A pattern Hyperscan cannot compile is always run (a word: always
deemed there).

Cost: compiling (~0.5 s for presidio's default patterns and the secret formats, once per process
for each set of patterns: cached; presidio's URL patterns would take 4 s, detect.py leaves
them out); a scan per text (~10 µs for a prompt).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import NamedTuple, Sequence

import hyperscan
import regex

from llmtap.processors.pii_redaction.regexopt import NAMED_GROUP, stand_ins_keep_matches, with_stand_ins

log = logging.getLogger("llmtap.processors.pii_redaction")


_PREFILTER = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
_WORD = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY


def _pattern(pattern: regex.Pattern) -> tuple[bytes, int]:
    flags = _PREFILTER
    if pattern.flags & regex.IGNORECASE:
        flags |= hyperscan.HS_FLAG_CASELESS
    if pattern.flags & regex.DOTALL:
        flags |= hyperscan.HS_FLAG_DOTALL
    if pattern.flags & regex.MULTILINE:
        flags |= hyperscan.HS_FLAG_MULTILINE
    # Group names mean nothing here; the regex module allows one name twice, Hyperscan does not.
    return NAMED_GROUP.sub("(?:", pattern.pattern).encode("ascii"), flags


def _word(word: str) -> tuple[bytes, int]:
    # Every character but letters and digits written as \xHH: nothing in it is syntax (or a NUL).
    return "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in word).encode("ascii"), _WORD


def _database(expressions: Sequence[tuple[bytes, int]], ids: list[int]) -> hyperscan.Database:
    db = hyperscan.Database()
    db.compile(expressions=[expressions[i][0] for i in ids], ids=ids, flags=[expressions[i][1] for i in ids])
    return db


class Hits(NamedTuple):
    patterns: set[int]  # indexes (into `patterns`) of the patterns that may match
    words: set[str]  # the words the text holds


class Prefilter:
    """`scan(text)`: which of `patterns` may match `text` and which of `words` (lower case) it
    holds, or None when the prefilter does not apply (see above): then all patterns may."""

    def __init__(self, patterns: Sequence[regex.Pattern], words: Sequence[str] = ()):
        self.db = None
        self._scratch = threading.local()  # Hyperscan's scratch space is per thread
        self.words = [w for w in words if w.isascii()]  # another word is never in a text read so
        expressions: list[tuple[bytes, int] | None] = []
        for pattern in patterns:
            try:
                expressions.append(_pattern(pattern))
            except UnicodeEncodeError:
                expressions.append(None)
        expressions += map(_word, self.words)
        ids = [i for i, e in enumerate(expressions) if e is not None]
        self.always = frozenset(i for i, e in enumerate(expressions) if e is None)
        try:
            self.db = _database(expressions, ids) if ids else None
        except hyperscan.error:
            # Some pattern Hyperscan cannot read: find which (one at a time), and leave those out.
            self.always |= {i for i in ids if not _compiles(expressions[i])}
            ids = [i for i in ids if i not in self.always]
            try:
                self.db = _database(expressions, ids) if ids else None
            except hyperscan.error as e:  # each compiles alone, not all together: run them all
                log.warning("pii_redaction runs without its prefilter (slower, same findings): %s", e)
                self.always = frozenset(range(len(expressions)))
        self._count = len(patterns)
        self._always = Hits({i for i in self.always if i < self._count},
                            {self.words[i - self._count] for i in self.always if i >= self._count})
        # In a text with characters beyond ASCII, read with stand-ins for them, these too.
        self._unsure = self._always.patterns | {
            i for i, p in enumerate(patterns) if not stand_ins_keep_matches(p.pattern, p.flags)}

    def scan(self, text: str) -> Hits | None:
        always = self._always.patterns
        if not text.isascii():
            text, always = with_stand_ins(text), self._unsure
            if text is None:
                return None
        hits = Hits(set(always), set(self._always.words))
        if self.db is not None:
            scratch = getattr(self._scratch, "space", None)
            if scratch is None:
                scratch = self._scratch.space = hyperscan.Scratch(self.db)
            found: list[int] = []
            self.db.scan(text.encode("ascii"), match_event_handler=_collect, context=found, scratch=scratch)
            for i in found:
                if i < self._count:
                    hits.patterns.add(i)
                else:
                    hits.words.add(self.words[i - self._count])
        return hits


def _compiles(expression: tuple[bytes, int]) -> bool:
    try:
        _database([expression], [0])
        return True
    except hyperscan.error:
        return False


def _collect(expression_id: int, start: int, end: int, flags: int, found: list[int]) -> None:
    found.append(expression_id)


@functools.lru_cache(maxsize=16)
def prefilter(patterns: tuple[regex.Pattern, ...], words: tuple[str, ...]) -> Prefilter:
    """One per set of patterns and words (a Detector per pipeline and per config share it)."""
    return Prefilter(patterns, words)
