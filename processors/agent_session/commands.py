"""Which process carried out which tool call: command lines as token lists, and how two compare.

A tool call's commands come from its arguments as the model wrote them: the string or list
under `command`, `cmd`, `script` or `commands` (one level down too: `{"action": {"command":
[...]}}`), or the whole arguments when they are a plain string. A process's commands are its
argv, and for a shell started with `-c` (`bash -c`, `sh -lc`, `zsh -ec`) the script it was
given. Strings are split as a POSIX shell splits words (shlex; plain whitespace when the quotes
do not balance), so quoting and runs of whitespace do not matter; a leading path on the first
word is dropped (`/usr/bin/ls` is `ls`).

Two token lists match `exact` when equal, `contains` when one is a contiguous run of the other
(`ls -la` inside `cd /repo && ls -la | head`, or a process `ls --color=auto` for a call `ls`).
A bare shell (`bash`, `sh -l`: no script) never matches by containment: a persistent shell that
an agent writes commands into is no evidence of any one of them. A redaction placeholder in a
word (`<REDACTED>` from the receiver's argv scrubbing, `<API_KEY>` or `<API_KEY:0123…>` from
pii_redaction) stands for any text there, so a command with a secret in it still matches. An
argv the receiver cut short (`truncated`) loses its last word, which may be cut, and can then
only match by containment.

Cost bound: a command is cut at MAX_COMMAND_CHARS characters and MAX_TOKENS tokens before it
is split, so comparing two is at most MAX_TOKENS² token comparisons (in practice linear: a run
is only tried where its first token occurs).
"""

from __future__ import annotations

import functools
import re
import shlex
from typing import Any, Iterable, Literal

Tokens = tuple[str, ...]
Match = Literal["exact", "contains"]

MAX_COMMAND_CHARS = 4096
MAX_TOKENS = 256
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"})
COMMAND_KEYS = ("command", "cmd", "script", "commands")
_PLACEHOLDER = re.compile(r"<(?:REDACTED|[A-Z][A-Z0-9_]*(?::[0-9a-f]{16})?)>")


def split_words(text: str) -> Tokens:
    text = text[:MAX_COMMAND_CHARS]
    try:
        words = shlex.split(text, posix=True)
    except ValueError:  # unbalanced quotes: a cut-off or made-up command still compares word by word
        words = text.split()
    return _normalize(words)


def _normalize(words: Iterable[Any]) -> Tokens:
    tokens = [w if isinstance(w, str) else str(w) for w in words][:MAX_TOKENS]
    if tokens and "/" in tokens[0]:
        tokens[0] = tokens[0].rstrip("/").rsplit("/", 1)[-1] or tokens[0]
    return tuple(tokens)


def _operands(argv: Tokens) -> tuple[bool, list[str]]:
    """A shell's argv after its options: whether `-c` was among them, and the operands."""
    seen_c, i = False, 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-o", "+o", "-O", "+O"):  # set -o / shopt -O take a value
            i += 2
            continue
        if len(arg) > 1 and arg[0] in "-+":
            seen_c = seen_c or (not arg.startswith("--") and "c" in arg[1:])
            i += 1
            continue
        break
    return seen_c, list(argv[i:])


def shell_script(argv: Tokens) -> str | None:
    """The script of `sh -c SCRIPT` (options may come before and be combined: `-lc`, `-e -c`)."""
    if not argv or argv[0] not in SHELLS:
        return None
    seen_c, operands = _operands(argv)
    return operands[0] if seen_c and operands else None


def is_bare_shell(argv: Tokens) -> bool:
    """A shell given neither a script nor a script file: it reads its commands from stdin."""
    return bool(argv) and argv[0] in SHELLS and not _operands(argv)[1]


def process_commands(argv: Any, truncated: bool = False) -> list[Tokens]:
    """The command lines a process ran: its argv, and its script when it is a `sh -c`."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return []
    tokens = _normalize(argv)
    script = shell_script(tokens)
    if script is not None:
        found = [tokens, split_words(script)]
    else:
        found = [] if is_bare_shell(tokens) else [tokens]
    if truncated:
        found = [t[:-1] for t in found]
    return [t for t in found if t]


def _from_value(value: Any, key: str) -> list[Tokens]:
    if isinstance(value, str):
        return [t for t in [split_words(value)] if t]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if key == "commands":  # LangChain's shell tool: a list of separate commands
            return [t for v in value if (t := split_words(v))]
        return process_commands(value)  # an argv, as Codex's shell tool sends: ["bash", "-lc", "ls"]
    return []


def tool_commands(arguments: Any) -> list[Tokens]:
    """The command lines a tool call asked for (empty: not a command-running call)."""
    if isinstance(arguments, str):
        return [t for t in [split_words(arguments)] if t]
    if not isinstance(arguments, dict):
        return []
    found = [t for key in COMMAND_KEYS for t in _from_value(arguments.get(key), key)]
    if not found:
        for nested in arguments.values():
            if isinstance(nested, dict):
                found += [t for key in COMMAND_KEYS for t in _from_value(nested.get(key), key)]
    return found


@functools.lru_cache(maxsize=1024)
def _pattern(token: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(piece) for piece in _PLACEHOLDER.split(token)), re.DOTALL)


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    return any("<" in x and _PLACEHOLDER.search(x) and _pattern(x).fullmatch(y) for x, y in ((a, b), (b, a)))


@functools.lru_cache(maxsize=4096)  # the same pending commands are compared with every process
def _has_placeholder(tokens: Tokens) -> bool:
    return any("<" in t and _PLACEHOLDER.search(t) for t in tokens)


def _contains(long: Tokens, short: Tokens, fuzzy: bool) -> bool:
    n = len(short)
    if not fuzzy:
        first = short[0]
        return any(long[i] == first and long[i:i + n] == short for i in range(len(long) - n + 1))
    return any(all(_same(x, y) for x, y in zip(long[i:i + n], short)) for i in range(len(long) - n + 1))


def compare(tool: Tokens, process: Tokens) -> Match | None:
    if not tool or not process:
        return None
    if tool == process:
        return "exact"
    fuzzy = _has_placeholder(tool) or _has_placeholder(process)
    if fuzzy and len(tool) == len(process) and all(_same(x, y) for x, y in zip(tool, process)):
        return "exact"
    if len(tool) > len(process):
        long, short = tool, process
    else:
        long, short = process, tool
    if is_bare_shell(short):
        return None
    return "contains" if _contains(long, short, fuzzy) else None


def best_match(tool: list[Tokens], process: list[Tokens]) -> Match | None:
    result: Match | None = None
    for t in tool:
        for p in process:
            m = compare(t, p)
            if m == "exact":
                return m
            result = result or m
    return result
