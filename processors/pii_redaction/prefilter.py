"""Which patterns can match a text at all, in one pass: Hyperscan in prefilter mode.

On a typical prompt or tool output only 1 pattern in 13 has any match, but each is a scan of
its own (~20 ns per character each for the regex module). Hyperscan compiles all of them into
one automaton; in prefilter mode (HS_FLAG_PREFILTER) it accepts what it cannot run exactly
(look-arounds, back references, lazy and possessive repeats) by widening it, so it reports a
superset of the patterns that match. One scan of the text (~1 GB/s) says which patterns to run:
the others are skipped. The findings are the same with or without it; only their cost changes.

ASCII texts only: there `\\w`, `\\d`, `\\s`, `\\b` and case-insensitivity mean the same to Hyperscan
and to the regex module. A text with other characters is scanned by every pattern, as without
a prefilter. A pattern Hyperscan cannot compile is always run.

Cost: compiling (~0.5 s for presidio's default patterns and the secret formats, once per process
for each set of patterns: cached; presidio's URL patterns would take 4 s, detect.py leaves
them out); a scan per ASCII text (~3 µs for a prompt).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Sequence

import hyperscan
import regex

from llmtap.processors.pii_redaction.regexopt import NAMED_GROUP

log = logging.getLogger("llmtap.processors.pii_redaction")


def _flags(pattern: regex.Pattern) -> int:
    flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    if pattern.flags & regex.IGNORECASE:
        flags |= hyperscan.HS_FLAG_CASELESS
    if pattern.flags & regex.DOTALL:
        flags |= hyperscan.HS_FLAG_DOTALL
    if pattern.flags & regex.MULTILINE:
        flags |= hyperscan.HS_FLAG_MULTILINE
    return flags


def _expression(pattern: regex.Pattern) -> bytes:
    # Group names mean nothing here; the regex module allows one name twice, Hyperscan does not.
    return NAMED_GROUP.sub("(?:", pattern.pattern).encode("ascii")


def _database(patterns: Sequence[regex.Pattern], ids: list[int]) -> hyperscan.Database:
    db = hyperscan.Database()
    db.compile(expressions=[_expression(patterns[i]) for i in ids], ids=ids, flags=[_flags(patterns[i]) for i in ids])
    return db


def _compiles(pattern: regex.Pattern) -> bool:
    try:
        _database([pattern], [0])
        return True
    except (hyperscan.error, UnicodeEncodeError):
        return False


class Prefilter:
    """`possible(text)`: the indexes (into `patterns`) of the patterns that may match `text`, or
    None when the prefilter does not apply (non-ASCII text): then all may."""

    def __init__(self, patterns: Sequence[regex.Pattern]):
        self.db = None
        self._scratch = threading.local()  # Hyperscan's scratch space is per thread
        self.always = frozenset()
        ids = list(range(len(patterns)))
        try:
            self.db = _database(patterns, ids) if ids else None
        except (hyperscan.error, UnicodeEncodeError):
            # Some pattern Hyperscan cannot read: find which (one at a time), and leave those out.
            self.always = frozenset(i for i in ids if not _compiles(patterns[i]))
            ids = [i for i in ids if i not in self.always]
            try:
                self.db = _database(patterns, ids) if ids else None
            except hyperscan.error as e:  # each compiles alone, not all together: run them all
                log.warning("pii_redaction runs without its prefilter (slower, same findings): %s", e)
                self.always = frozenset(range(len(patterns)))

    def possible(self, text: str) -> set[int] | None:
        if self.db is None or not text.isascii():
            return None
        scratch = getattr(self._scratch, "space", None)
        if scratch is None:
            scratch = self._scratch.space = hyperscan.Scratch(self.db)
        found = set(self.always)
        self.db.scan(text.encode("ascii"), match_event_handler=_collect, context=found, scratch=scratch)
        return found


def _collect(pattern_id: int, start: int, end: int, flags: int, found: set[int]) -> None:
    found.add(pattern_id)


@functools.lru_cache(maxsize=16)
def prefilter(patterns: tuple[regex.Pattern, ...]) -> Prefilter:
    """One per set of patterns (a Detector per pipeline and per config share it)."""
    return Prefilter(patterns)
