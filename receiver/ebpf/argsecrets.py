"""Secrets in command lines, replaced by "<REDACTED>" before a process span leaves.

Agents hand credentials to the commands they run: `curl -H "Authorization: Bearer
…"`, `--api-key sk-…`, `mysql -pSECRET`, `OPENAI_API_KEY=… python …`, a token in
a URL's query. `redact_args(argv)` returns argv with every value that looks like
a secret replaced; the rest of each argument is kept, so a `bash -c` script stays
readable (and matchable against the tool call that asked for it).

What counts as a secret:
  - whatever llmtap's secret table knows (llmtap/secretpatterns.py, the formats the
    pii_redaction processor detects too), anywhere in an argument: provider keys and tokens
    (OpenAI, Anthropic, OpenRouter, Google, AWS, GitHub, GitLab, Slack, Stripe, Hugging Face,
    Groq), JWTs, PEM private keys, `Bearer x`, `Authorization: Basic x`, a URL's password,
    password assignments (`Password=x;`, `db_password: x`) and, inside a script, the passwords
    of the command lines the table lists (`mysql -px`, `redis-cli -a x`, `sshpass -p x`,
    `curl -u user:x`). A pattern with context words (the AWS secret key: 40 characters of
    base64, nothing else) counts only in a command line that holds one of them (`aws`, `secret`);
  - the value after a credential header name: `Authorization: Bearer x` / `Basic x` /
    any scheme, `x-api-key: x`, `api-key:`, `x-auth-token:`, `cookie:`;
  - the value of a key=value or --flag=value whose key names a credential (password,
    passwd, pwd, secret, token, api_key / api-key / apikey, access_key, private_key,
    credential(s), auth, client_secret, session id, signature), as an environment assignment,
    a URL query parameter or a long option; the argument after such a flag (`--password x`,
    `--token x`);
  - in argv, by the same table: `mysql -px`, `redis-cli -a x`, `sshpass -p x`, `curl -u user:x`
    (also as `--user=user:x`); and curl's `--oauth2-bearer x`, `-b x` when x is cookie data (a
    `name=value`, not a file name), and the last argument of `htpasswd -b`.

Switches are not followed by a value, so the argument after one is kept: a flag that makes
the command ask for the password on its terminal (`--password` of PostgreSQL's and MySQL's
clients: `psql --password dbname`, `mysql --password shop`; psql's `-W`, mysql's bare `-p` and
`curl -u user` ask too), a flag named as a switch (`--no-password`, `--ask-pass`,
`--with-token`, `--prompt-password`), and a credential flag followed by another option
(`mongod --auth --port 27017`). An argument's command is the nearest argument before it that
names a command with rules of its own, so `sudo`, `env`, `ssh host` or `docker exec db` in
front do not hide it, and `sshpass -p x ssh -p 2222` keeps ssh's port.

Cost: one pass of each of the table's regexes (linear; a command and its flag at most 200
characters apart) and a few of our own over each argument, O(argument bytes × patterns); only
emitted process spans are redacted.
"""

from __future__ import annotations

import os

import regex

from llmtap.secretpatterns import (FLAGS, GLUED_PASSWORD_FLAGS, MYSQL_CLIENTS, PASSWORD_VALUE_FLAGS,
                                   SECRET_PATTERNS, USER_PASSWORD_FLAGS, VALUE_CHECKS)

REDACTED = "<REDACTED>"

# The table's patterns, compiled once: those that count alone, and those that need a context word.
_TABLE = [(regex.compile(p.regex, FLAGS), VALUE_CHECKS.get(p.entity), frozenset(p.context)) for p in SECRET_PATTERNS]
_ALONE = [(rx, check) for rx, check, context in _TABLE if not context]
_WORD = regex.compile(r"[a-z0-9]+")

_CREDENTIAL_KEY = (r"(?:[A-Za-z0-9]*[_-])*(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
                   r"|private[_-]?key|credentials?|auth|client[_-]?secret|session[_-]?id|sig|signature)"
                   r"(?:[_-][A-Za-z0-9]+)*")
# A key that names where a secret is, or something about it, rather than the secret: its value is kept.
_NOT_A_SECRET_SUFFIXES = {"file", "path", "dir", "name", "env", "type", "length", "len", "url", "uri", "prompt",
                          "stdin", "cmd", "command", "helper", "store", "count", "method", "mode", "header",
                          "scheme", "required", "expiry", "expires", "ttl", "policy", "version", "endpoint"}
# A key that turns something on or off: `--no-password`, `--ask-pass`, `--with-token` take no value.
_SWITCH_PREFIXES = {"no", "ask", "with", "without", "prompt"}

# Clients whose --password makes them ask on the terminal: the next argument is not a password.
_PROMPTING_PASSWORD_COMMANDS = frozenset({
    "psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "pgbench", "createdb", "dropdb",
    "createuser", "dropuser", "vacuumdb", "reindexdb", "clusterdb", *MYSQL_CLIENTS})
# Flags whose next argument is a secret beyond the table's passwords (curl's -b: when it is cookie data).
_TOKEN_FLAGS = {"curl": ("--oauth2-bearer",)}
_COOKIE_FLAGS = {"curl": ("-b", "--cookie")}
# Commands with rules of their own, and those that sshpass runs (their -p is a port).
_KNOWN_COMMANDS = frozenset({*GLUED_PASSWORD_FLAGS, *PASSWORD_VALUE_FLAGS, *USER_PASSWORD_FLAGS, *_TOKEN_FLAGS,
                             *_PROMPTING_PASSWORD_COMMANDS, "htpasswd", "ssh", "scp", "sftp", "rsync"})


def _names_a_secret(key: str) -> bool:
    words = regex.split(r"[_-]+", key.strip("-").lower())
    return words[-1] not in _NOT_A_SECRET_SUFFIXES and words[0] not in _SWITCH_PREFIXES


# `Authorization: Bearer x`, `x-api-key: x`: the value is everything up to the end of the header
# (a quote or the end of the argument closes it inside a script).
_HEADER = regex.compile(r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-auth-token|x-goog-api-key|cookie)"
                        r"(\s*:\s*)(?:(bearer|basic|token|digest|negotiate)\s+)?([^\r\n'\"]+)")

# key=value and --key=value (environment, query strings, options), key: the credential names above.
_ASSIGNMENT = regex.compile(rf"(?i)(?<![A-Za-z0-9])(-{{0,2}}{_CREDENTIAL_KEY})(=)([^\s&;'\"]+)")

# --password x / --token x inside a script (the argv form is handled per argument below).
_FLAG_IN_TEXT = regex.compile(rf"(?i)(?<![A-Za-z0-9-])(--{_CREDENTIAL_KEY})(\s+)([^\s'\"-][^\s'\"]*)")
_SHELL_SEPARATORS = ";|&\n(`"

_FLAG = regex.compile(rf"(?i)--?{_CREDENTIAL_KEY}")


def _table_redacted(text: str, patterns) -> str:
    """`text` with every value the table's patterns find replaced (overlapping ones as one)."""
    spans = []
    for rx, check in patterns:
        for m in rx.finditer(text):
            start, end = m.span("value") if "value" in rx.groupindex else m.span()
            if end > start and (check is None or check(text[start:end])):
                spans.append((start, end))
    if not spans:
        return text
    pieces, pos = [], 0
    for start, end in sorted(spans):
        if end <= pos:
            continue
        if start >= pos:
            pieces.append(text[pos:start])
            pieces.append(REDACTED)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _asks_for_the_password(text: str, flag_at: int) -> bool:
    """Whether the shell command that a `--password` at `flag_at` belongs to prompts for it."""
    start = max(text.rfind(c, 0, flag_at) for c in _SHELL_SEPARATORS) + 1
    return any(os.path.basename(word) in _PROMPTING_PASSWORD_COMMANDS for word in text[start:flag_at].split())


def _flag_in_text(m) -> str:
    if not _names_a_secret(m[1]) or (m[1].lower() == "--password" and _asks_for_the_password(m.string, m.start())):
        return m[0]
    return m[1] + m[2] + REDACTED


def redact_text(text: str, patterns=_ALONE) -> str:
    """Every secret-looking value inside one string (an argument, or a shell script) replaced."""
    text = _table_redacted(text, patterns)
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3] + ' ' if m[3] else ''}{REDACTED}", text)
    text = _ASSIGNMENT.sub(lambda m: m[1] + m[2] + REDACTED if _names_a_secret(m[1]) else m[0], text)
    return _FLAG_IN_TEXT.sub(_flag_in_text, text)


def _patterns_for(argv: list[str]):
    """The table's patterns for this command line: those with context words only when it holds one."""
    words = set(_WORD.findall(" ".join(argv).lower()))
    return _ALONE + [(rx, check) for rx, check, context in _TABLE if context & words]


def _value_after(command: str, flag: str, value: str) -> str | None:
    """The argument after `flag` with the secret it holds as `flag`'s value replaced, or None when
    `flag` takes no secret there."""
    if flag in USER_PASSWORD_FLAGS.get(command, ()):  # a user name alone: the command asks for the password
        return value.split(":", 1)[0] + ":" + REDACTED if ":" in value else None
    if flag in PASSWORD_VALUE_FLAGS.get(command, ()) or flag in _TOKEN_FLAGS.get(command, ()):
        return REDACTED
    if flag in _COOKIE_FLAGS.get(command, ()):
        return REDACTED if "=" in value else None  # without '=' it is a cookie file's name
    if value.startswith("-") or not (_FLAG.fullmatch(flag) and _names_a_secret(flag)):
        return None  # a switch, followed by the next option
    if flag.lower() == "--password" and command in _PROMPTING_PASSWORD_COMMANDS:
        return None
    return REDACTED


def _redact_option(command: str, arg: str) -> str | None:
    """`mysql -pSECRET`, `curl --user=bob:SECRET`: a command's password inside the option itself."""
    for flag in GLUED_PASSWORD_FLAGS.get(command, ()):
        if arg.startswith(flag) and len(arg) > len(flag):
            return flag + REDACTED
    name, eq, value = arg.partition("=")
    if eq and name.startswith("--"):
        redacted = _value_after(command, name, value)
        if redacted is not None:
            return name + "=" + redacted
    return None


def _htpasswd_batch(command: str, argv: list[str]) -> bool:
    """`htpasswd -b[c] file user password`, `htpasswd -nb user password`: the last argument is one."""
    return command == "htpasswd" and any(a.startswith("-") and not a.startswith("--") and "b" in a for a in argv)


def redact_args(argv: list[str]) -> list[str]:
    """argv with secret values replaced (a new list; argv itself is not changed)."""
    patterns = _patterns_for(argv)
    command = os.path.basename(argv[0]) if argv else ""
    out: list[str] = []
    for i, arg in enumerate(argv):
        name = os.path.basename(arg)
        if i and name in _KNOWN_COMMANDS:
            command = name
        redacted = _value_after(command, argv[i - 1], arg) if i and argv[i - 1].startswith("-") else None
        if redacted is None and i:
            redacted = _redact_option(command, arg)
        if redacted is None and i == len(argv) - 1 and i > 1 and _htpasswd_batch(command, argv[1:i]):
            redacted = REDACTED
        # The rest is looked at too: `curl -u sk_live_…: …` puts the key in the user name.
        out.append(redact_text(arg if redacted is None else redacted, patterns))
    return out
