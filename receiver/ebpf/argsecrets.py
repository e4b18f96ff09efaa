"""Secrets in command lines, replaced by "<REDACTED>" before a process span leaves.

Agents hand credentials to the commands they run: `curl -H "Authorization: Bearer
…"`, `--api-key sk-…`, `mysql -pSECRET`, `OPENAI_API_KEY=… python …`, a token in
a URL's query. `redact_args(argv)` returns argv with every value that looks like
a secret replaced; the rest of each argument is kept, so a `bash -c` script stays
readable (and matchable against the tool call that asked for it).

What counts as a secret:
  - token shapes, anywhere in an argument: OpenAI / Anthropic keys (sk-…, sk-ant-…,
    sk-proj-…), AWS access key ids (AKIA…, ASIA…), GitHub tokens (ghp_…, gho_…, ghu_…,
    ghs_…, ghr_…, github_pat_…), GitLab (glpat-…), Slack (xox[abposr]-…), Google API
    keys (AIza…), Hugging Face (hf_…), Stripe (sk_live_…, rk_live_…), JWTs (eyJ….eyJ….…),
    PEM private key blocks;
  - the value after a credential header name: `Authorization: Bearer x` / `Basic x` /
    any scheme, `x-api-key: x`, `api-key:`, `x-auth-token:`, `cookie:`;
  - the value of a key=value or --flag=value whose key names a credential (password,
    passwd, pwd, secret, token, api_key / api-key / apikey, access_key, private_key,
    credential(s), auth, client_secret, session), as an environment assignment, a
    URL query parameter or a long option; and the argument after such a flag
    (`--password x`, `--token x`, `-p x` for sshpass, `-u user:x` and `-b cookie` for curl);
  - a URL's password (`https://user:x@host`), and `mysql -px`.

This is the receiver's own small detector; the pii_redaction processor has the
general one, and the two should share their patterns.

Cost: a few regular-expression passes over each argument, O(argument bytes);
only emitted process spans are redacted.
"""

from __future__ import annotations

import os
import re

REDACTED = "<REDACTED>"

_CREDENTIAL_KEY = (r"(?:[A-Za-z0-9]*[_-])*(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
                   r"|private[_-]?key|credentials?|auth|client[_-]?secret|session[_-]?id|sig|signature)"
                   r"(?:[_-][A-Za-z0-9]+)*")
# A key that names where a secret is, or something about it, rather than the secret: its value is kept.
_NOT_A_SECRET_SUFFIXES = {"file", "path", "dir", "name", "env", "type", "length", "len", "url", "uri", "prompt",
                          "stdin", "cmd", "command", "helper", "store", "count", "method", "mode", "header",
                          "scheme", "required", "expiry", "expires", "ttl", "policy", "version", "endpoint"}


def _names_a_secret(key: str) -> bool:
    words = re.split(r"[_-]+", key.strip("-").lower())
    return words[-1] not in _NOT_A_SECRET_SUFFIXES and words[0] != "no"

_TOKEN_SHAPES = re.compile("|".join((
    r"\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}",
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"\bgithub_pat_[A-Za-z0-9_]{30,}",
    r"\bglpat-[A-Za-z0-9_-]{20,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\bhf_[A-Za-z0-9]{30,}",
    r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
)))

# `Authorization: Bearer x`, `x-api-key: x`: the value is everything up to the end of the header
# (a quote or the end of the argument closes it inside a script).
_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-auth-token|x-goog-api-key|cookie)"
                     r"(\s*:\s*)(?:(bearer|basic|token|digest|negotiate)\s+)?([^\r\n'\"]+)")

# key=value and --key=value (environment, query strings, options), key: the credential names above.
_ASSIGNMENT = re.compile(rf"(?i)(?<![A-Za-z0-9])(-{{0,2}}{_CREDENTIAL_KEY})(=)([^\s&;'\"]+)")

# --password x / --token x inside a script (the argv form is handled per argument below).
_FLAG_IN_TEXT = re.compile(rf"(?i)(?<![A-Za-z0-9-])(--{_CREDENTIAL_KEY})(\s+)([^\s'\"-][^\s'\"]*)")

# curl's -u user:password inside a script.
_CURL_USER_IN_TEXT = re.compile(r"(\bcurl\b[^|;&\n]*?\s(?:-u|--user|-U|--proxy-user)\s+['\"]?[^\s:'\"]+:)([^\s'\"]+)")

_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@/\s]+)(@)", re.IGNORECASE)

_FLAG = re.compile(rf"(?i)--?{_CREDENTIAL_KEY}")

# Short flags whose next argument is a secret, for the commands that define them so.
_SECRET_NEXT_BY_COMMAND = {
    "sshpass": {"-p"},
    "curl": {"-u", "--user", "-U", "--proxy-user", "--oauth2-bearer", "-b", "--cookie"},
    "redis-cli": {"-a"},
    "htpasswd": {"-b"},
}
# `mysql -pSECRET`: the password glued to the flag.
_GLUED_PASSWORD_COMMANDS = {"mysql", "mysqldump", "mariadb", "mariadb-dump", "mysqladmin"}
_USERINFO_FLAGS = {"-u", "--user", "-U", "--proxy-user"}  # curl's user:password: only the password goes


def redact_text(text: str) -> str:
    """Every secret-looking value inside one string (an argument, or a shell script) replaced."""
    text = _TOKEN_SHAPES.sub(REDACTED, text)
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3] + ' ' if m[3] else ''}{REDACTED}", text)
    text = _ASSIGNMENT.sub(lambda m: m[1] + m[2] + REDACTED if _names_a_secret(m[1]) else m[0], text)
    text = _FLAG_IN_TEXT.sub(lambda m: m[1] + m[2] + REDACTED if _names_a_secret(m[1]) else m[0], text)
    text = _URL_PASSWORD.sub(lambda m: m[1] + REDACTED + m[3], text)
    if "curl" in text:
        text = _CURL_USER_IN_TEXT.sub(lambda m: m[1] + REDACTED, text)
    return text


def _command(argv: list[str]) -> str:
    return os.path.basename(argv[0]) if argv else ""


def redact_args(argv: list[str]) -> list[str]:
    """argv with secret values replaced (a new list; argv itself is not changed)."""
    command = _command(argv)
    secret_next = _SECRET_NEXT_BY_COMMAND.get(command, set())
    out: list[str] = []
    flag = ""  # the flag whose value comes next, when that value is a secret
    for i, arg in enumerate(argv):
        if flag:
            userinfo = command == "curl" and flag in _USERINFO_FLAGS and ":" in arg
            out.append(arg.split(":", 1)[0] + ":" + REDACTED if userinfo else REDACTED)
            flag = ""
            continue
        if i and (arg in secret_next or (_FLAG.fullmatch(arg) and _names_a_secret(arg))):
            flag = arg
            out.append(arg)
            continue
        if i and command in _GLUED_PASSWORD_COMMANDS and arg.startswith("-p") and len(arg) > 2:
            out.append("-p" + REDACTED)
            continue
        out.append(redact_text(arg))
    return out
