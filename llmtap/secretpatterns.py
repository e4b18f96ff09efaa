"""The secrets llmtap recognizes, as data: one table for its two secret detectors.

The pii_redaction processor builds presidio recognizers from SECRET_PATTERNS
(processors/pii_redaction/secrets.py); the eBPF receiver redacts the arguments of the
processes it reports with the same regexes (receiver/ebpf/argsecrets.py). The receiver runs
in the small privileged capture process, so this module imports no presidio: only `regex`.

Each SecretPattern is an entity type, a pattern name, a regex (the `regex` module's dialect,
compiled with FLAGS), a score, context words and an example: a text holding a fake secret of
the format, which the tests hand to both detectors. A regex with a group named `value`
reports only that group (the password of `scheme://user:password@host`, the token after
`Bearer`), so the rest of the text stays readable. A pattern with context words scores under
pii_redaction's default threshold alone: it counts only with one of them near.

The regexes are case-sensitive where the format is (keys are), start with a literal prefix
where it has one, and nest no repetitions ambiguously (a repeated group holds a separator its
inner repetition cannot match: tests/test_secret_patterns.py checks it): matching is linear in
the text, with bounded gaps (`[^\\n;|&]{0,200}?` between a command and its flag).

VALUE_CHECKS holds, per entity, what a regex cannot express: a check the matched value must
pass to count.

Commands that take a password on their command line are data too (GLUED_PASSWORD_FLAGS,
PASSWORD_VALUE_FLAGS, USER_PASSWORD_FLAGS): the "Password on a command line" regex is built
from them, and the receiver reads the same tables to redact argv argument by argument.
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable, NamedTuple

import regex

FLAGS = regex.DOTALL | regex.MULTILINE


class SecretPattern(NamedTuple):
    entity: str
    name: str
    regex: str
    score: float
    context: tuple[str, ...]
    example: str  # fake, realistic: a secret of this format, or a text holding one


# Commands that take a password on their command line: glued to a flag (`mysql -pSECRET`), as
# the next argument (`redis-cli -a SECRET`), or after the user name in it (`curl -u user:SECRET`).
MYSQL_CLIENTS = ("mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump", "mariadb-admin")
GLUED_PASSWORD_FLAGS: dict[str, tuple[str, ...]] = {command: ("-p",) for command in MYSQL_CLIENTS}
PASSWORD_VALUE_FLAGS: dict[str, tuple[str, ...]] = {"redis-cli": ("-a", "--pass"), "sshpass": ("-p",)}
USER_PASSWORD_FLAGS: dict[str, tuple[str, ...]] = {"curl": ("-u", "--user", "-U", "--proxy-user")}

# Not inside a longer token of base64url characters.
_B = r"(?<![A-Za-z0-9_\-])"
_E = r"(?![A-Za-z0-9_\-])"
# A password on a command line: up to the next blank or quote (the quote closes it in a script).
_ARG_VALUE = r"(?P<value>[^\s'\"-][^\s'\"]*)"


def _command_line(*forms: tuple[dict[str, tuple[str, ...]], str]) -> str:
    """`command … flag<value>` for each (commands' flags, value) form, the flag within the same
    shell command (no `;`, `|`, `&` or newline between) and 200 characters: one regex, one scan."""
    branches = []
    for flags, value in forms:
        by_flags: dict[tuple[str, ...], list[str]] = {}
        for command, its_flags in flags.items():
            by_flags.setdefault(its_flags, []).append(command)
        branches += [rf"\b(?:{'|'.join(map(regex.escape, commands))})\b[^\n;|&]{{0,200}}?[ \t]"
                     rf"(?:{'|'.join(map(regex.escape, its_flags))}){value}" for its_flags, commands in by_flags.items()]
    return "|".join(branches)


SECRET_PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern("ANTHROPIC_API_KEY", "Anthropic key", _B + r"sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{20,}", 1.0, (),
                  "sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA-2O76UMFxFkM-R5Kjp1vRt_1fjORS-6ilI8ihN5KXSc7Tvo"
                  "-hBKqFYAA"),
    SecretPattern("OPENAI_API_KEY", "OpenAI project/service key", _B + r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}",
                  1.0, (), "sk-proj-Y-kv5ZJr3J1TWDtkwtDDb_xHKas1VOqg6YYZYn9Z"),
    SecretPattern("OPENAI_API_KEY", "OpenAI legacy key", _B + r"sk-[A-Za-z0-9]{20,}" + _E, 1.0, (),
                  "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"),
    SecretPattern("OPENROUTER_API_KEY", "OpenRouter key", _B + r"sk-or-v1-[0-9a-f]{64}" + _E, 1.0, (),
                  "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"),
    SecretPattern("GOOGLE_API_KEY", "Google API key", _B + r"AIza[0-9A-Za-z_\-]{35}" + _E, 1.0, (),
                  "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    SecretPattern("AWS_ACCESS_KEY_ID", "AWS access key id",
                  r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])", 1.0, (),
                  "AKIAIOSFODNN7EXAMPLE"),
    # 40 characters of base64 with no prefix: too weak alone. Context lifts it (an AWS access key
    # id near it also does, in pii_redaction); VALUE_CHECKS rejects hex digests.
    SecretPattern("AWS_SECRET_ACCESS_KEY", "AWS secret key (weak)",
                  r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", 0.3, ("aws", "secret"),
                  "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    SecretPattern("GITHUB_TOKEN", "GitHub token", _B + r"gh[pousr]_[A-Za-z0-9]{36,}" + _E, 1.0, (),
                  "ghp_XlMaXZjljENUhJduRHHJEYXg4JdpmrcXgGCJ"),
    SecretPattern("GITHUB_TOKEN", "GitHub fine-grained token", _B + r"github_pat_[A-Za-z0-9_]{22,}" + _E, 1.0, (),
                  "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"),
    SecretPattern("GITLAB_TOKEN", "GitLab personal access token", _B + r"glpat-[A-Za-z0-9_\-]{20,}" + _E, 1.0, (),
                  "glpat-cXQLioDnkHIfxIq2HZt-"),
    SecretPattern("SLACK_TOKEN", "Slack token", _B + r"xox[abeoprs]-[A-Za-z0-9\-]{10,}" + _E, 1.0, (),
                  "xoxb-572492086828-8909310025167-JdObOIRpFqaDZeV7G5IfQHeV"),
    SecretPattern("SLACK_WEBHOOK_URL", "Slack webhook",
                  r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+\-]{8,}", 1.0, (),
                  "https://hooks.slack.com/services/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"),
    SecretPattern("STRIPE_API_KEY", "Stripe key", _B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E, 1.0, (),
                  "sk_live_zGtSnovm14TUOizwd1iaeOV4"),
    SecretPattern("HUGGINGFACE_TOKEN", "Hugging Face token", _B + r"hf_[A-Za-z0-9]{34,}" + _E, 1.0, (),
                  "hf_SufrdZSlB5er8bOfZqfM2oeq3hDavJA76r"),
    SecretPattern("GROQ_API_KEY", "Groq key", _B + r"gsk_[A-Za-z0-9]{48,}" + _E, 1.0, (),
                  "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"),
    SecretPattern("JWT", "JSON Web Token", _B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", 1.0,
                  (), "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    # A PEM block to its END line; cut short (a truncated capture), to the end of its base64.
    SecretPattern("PRIVATE_KEY", "PEM private key",
                  r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                  r"(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)",
                  1.0, (),
                  "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98s0fX9o1mK2QzTr4\nX9o1mK2Q==\n"
                  "-----END RSA PRIVATE KEY-----"),
    SecretPattern("BEARER_TOKEN", "Bearer token",
                  r"(?i:\bbearer)[ \t]+"
                  r"(?P<value>(?=[A-Za-z0-9\-._~+/]{16})[A-Za-z0-9\-_~+/]+(?:\.[A-Za-z0-9\-_~+/]+)*=*)"
                  r"(?![A-Za-z0-9\-_~+/=]|\.[A-Za-z0-9\-_~+/])", 1.0, (),
                  "Authorization: Bearer qBkdfQ1y3GQsMpSscDlkrCaqx9vJupc9"),
    # The base64 of user:password after an Authorization header's Basic scheme (VALUE_CHECKS decodes it).
    SecretPattern("BASIC_AUTH", "HTTP Basic credentials",
                  r"(?i:\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?basic)[ \t]+"
                  r"(?P<value>[A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", 1.0, (),
                  "Authorization: Basic ZGVwbG95OlZxOC1McjJ6S3A="),
    # scheme://user:password@host — the user may be empty (redis://:pw@host); '@' ends the password.
    SecretPattern("PASSWORD", "Password in a URL",
                  r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/\"'<>]*:(?P<value>[^\s@/\"'<>][^\s@\"'<>]*)@[A-Za-z0-9\[]", 1.0,
                  (), "DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app"),
    # Key=value and key: value forms: connection strings (Password=...;), env files (DB_PASSWORD=...),
    # YAML and JSON ("auth_password": "..."). Not the shell's PWD=/OLDPWD=, the working directory.
    SecretPattern("PASSWORD", "Password assignment",
                  r"(?i:(?<![a-z0-9_])(?!(?-i:(?:OLD)?PWD=/))[a-z0-9_]{0,24}?(?:password|passwd|pwd))[\"']?[ \t]*[=:]"
                  r"[ \t]*[\"']?(?P<value>[^\s;&'\"<,}][^\s;&'\",}]{3,})", 0.8, (),
                  "Server=db1;Database=app;User Id=sa;Password=Tr0ub4dor3x;"),
    # A name/value pair holding one (Kubernetes env, AWS/ECS task definitions, HTTP form dumps).
    SecretPattern("PASSWORD", "Password in a name/value pair",
                  r"(?i:\"(?:name|key)\"[ \t]*:[ \t]*\""
                  r"[A-Za-z0-9_.\-]{0,40}(?:password|passwd|pwd)[A-Za-z0-9_.\-]{0,40}\""
                  r"[ \t]*,[ \t]*\"value\"[ \t]*:[ \t]*\")(?P<value>[^\"\\\s][^\"\\]{3,})\"", 1.0, (),
                  '"env": [{"name": "DB_PASSWORD", "value": "42PWSlGRUDFjyfJ4"}]'),
    # mysql -pSECRET, redis-cli -a SECRET, sshpass -p SECRET, curl -u user:SECRET
    SecretPattern("PASSWORD", "Password on a command line",
                  _command_line((GLUED_PASSWORD_FLAGS, _ARG_VALUE), (PASSWORD_VALUE_FLAGS, r"[ \t]+" + _ARG_VALUE),
                                (USER_PASSWORD_FLAGS, r"[ \t]+['\"]?[^\s:'\"]+:" + _ARG_VALUE)), 1.0, (),
                  "mysql -h db.internal -u root -pHunter2pw shop"),
)


def _random_base64(value: str) -> bool:
    """Base64 of random bytes (30 of them: an AWS secret key) has upper case, lower case and
    digits; a hex digest or a path of lower-case words does not."""
    return any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)


def _user_and_password(value: str) -> bool:
    """Basic credentials are base64 of `user:password`."""
    try:
        return b":" in base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


VALUE_CHECKS: dict[str, Callable[[str], bool]] = {
    "AWS_SECRET_ACCESS_KEY": _random_base64,
    "BASIC_AUTH": _user_and_password,
}

SECRET_ENTITIES = frozenset(p.entity for p in SECRET_PATTERNS)
