"""Which processes are agents by configuration, and what an agent is called.

A pattern of `processes.agents` is one of:
    claude              a glob on the executable's name, or on the name of the script an
                        interpreter runs: `gemini` matches a native `gemini` and
                        `node /usr/local/bin/gemini` alike
    python:my_agent.py  INTERPRETER:SCRIPT, both globs: the executable is the interpreter
                        (a version suffix aside: `python` matches python3.11), the script
                        the file (or, for `python -m`, the module) it runs
    /opt/agents/*       with a `/`, the glob is matched against full paths
                        (of the executable, or of the script)

An agent's name (`llmtap.agent.name`, and gen_ai.agent.name downstream) is the
script's name for an interpreter running one (without its extension; a generic
`cli.js` / `index.js` / `main.py` is named after its directory), else the
executable's name.

Cost: patterns compile to regular expressions once; matching one process is a
scan of its argv for the script and a regex match per pattern.
"""

from __future__ import annotations

import fnmatch
import os
import re

# Interpreters, by name without a version suffix (python3.11 → python).
INTERPRETERS = frozenset({"python", "pypy", "node", "nodejs", "bun", "deno", "ruby", "perl", "php", "java",
                          "bash", "sh", "dash", "zsh", "ksh", "tsx", "ts-node"})
_INLINE_CODE = frozenset({"-c", "-e", "--eval", "-p", "--print"})    # no script: the code is the argument
_NEXT_IS_SCRIPT = frozenset({"-m", "-jar"})
_TAKES_VALUE = frozenset({"-X", "-W", "-r", "--require", "--import", "--loader", "--experimental-loader",
                          "-cp", "-classpath", "--class-path", "--env-file", "-I"})
_SUBCOMMANDS = frozenset({"run", "x", "exec"})                      # bun run x.ts, deno run x.ts
_GENERIC_SCRIPTS = frozenset({"cli", "index", "main", "__main__", "app", "run", "entry", "bin"})
_EXTENSIONS = (".py", ".pyz", ".js", ".mjs", ".cjs", ".ts", ".mts", ".rb", ".pl", ".php", ".jar", ".sh")
_VERSION_SUFFIX = re.compile(r"[\d.]+$")


def interpreter_name(executable_name: str) -> str:
    """python3.11 → python, node20 → node; names without a version are returned as they are."""
    return _VERSION_SUFFIX.sub("", executable_name) or executable_name


def script_of(executable_name: str, argv: list[str]) -> str:
    """The script (file, or module for -m) an interpreter runs, or "" (not an interpreter, or inline code)."""
    interpreter = interpreter_name(executable_name)
    if interpreter not in INTERPRETERS:
        return ""
    args = iter(argv[1:])
    for arg in args:
        if arg in _INLINE_CODE:
            return ""
        if arg in _NEXT_IS_SCRIPT:
            return next(args, "")
        if arg in _TAKES_VALUE:
            next(args, None)
            continue
        if arg == "--":
            return next(args, "")
        if arg.startswith("-"):
            continue
        if arg in _SUBCOMMANDS and interpreter in ("bun", "deno"):
            continue
        return arg
    return ""


def agent_name(executable_name: str, argv: list[str]) -> str:
    script = script_of(executable_name, argv)
    if not script:
        return executable_name
    base = os.path.basename(script.rstrip("/"))
    stem = base
    for ext in _EXTENSIONS:
        if base.endswith(ext) and len(base) > len(ext):
            stem = base[:-len(ext)]
            break
    if stem in _GENERIC_SCRIPTS and "/" in script:
        parent = os.path.basename(os.path.dirname(script.rstrip("/")))
        if parent and parent not in ("bin", "dist", "src", "lib", "build", "."):
            return parent
    return stem or executable_name


class AgentPatterns:
    """The configured agent list. `match(...)` says whether a process is one, and its name."""

    def __init__(self, patterns: list[str]):
        self._patterns: list[tuple[re.Pattern | None, re.Pattern, bool]] = []
        for text in patterns:
            interpreter, sep, target = text.partition(":")
            if not sep:
                interpreter, target = "", text
            full_path = "/" in target
            self._patterns.append((re.compile(fnmatch.translate(interpreter)) if sep else None,
                                   re.compile(fnmatch.translate(target)), full_path))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, executable_name: str, executable_path: str, argv: list[str]) -> str | None:
        """The agent name of a process these patterns select, or None."""
        if not self._patterns:
            return None
        script = script_of(executable_name, argv)
        for interpreter, target, full_path in self._patterns:
            if interpreter is not None:
                exe_ok = interpreter.match(executable_name) or interpreter.match(interpreter_name(executable_name))
                if exe_ok and script and target.match(script if full_path else os.path.basename(script)):
                    return agent_name(executable_name, argv)
                continue
            if target.match(executable_path if full_path else executable_name):
                return executable_name
            if script and target.match(script if full_path else os.path.basename(script)):
                return agent_name(executable_name, argv)
        return None


def validate_patterns(patterns: list[str]) -> list[str]:
    errors = []
    for i, text in enumerate(patterns):
        interpreter, sep, target = text.partition(":")
        if not text.strip() or (sep and (not interpreter or not target)):
            errors.append(f"agents[{i}]: {text!r} must be NAME or INTERPRETER:SCRIPT (globs)")
    return errors
