"""Detectors for the credentials presidio does not know: provider API keys, tokens, private keys
and passwords in connection strings.

Each one is a presidio `PatternRecognizer` (so it is configured, enabled and scored like
presidio's own) with a regex of the documented key format. The regexes are case-sensitive
(keys are), start with a literal prefix where the format has one, and have no nested
quantifiers: matching is linear in the text. A regex with a group named `value` reports only
that group (the password of `scheme://user:password@host`, the token after `Bearer`), so the
rest of the text stays readable.

`AWS_SECRET_ACCESS_KEY` is 40 characters of base64 with no prefix: alone it is too weak to
report (score 0.3, under the default threshold). Context lifts it — an AWS access key id near
it (`AWS_KEY_PROXIMITY` characters), or a context word (`aws`, `secret`) before it or in the
JSON key that holds it. 40 lowercase hex characters (a git SHA-1) and values without upper
case, lower case and digits are rejected.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

# Ours are exact formats: no IGNORECASE, unlike presidio's default flags.
import regex

FLAGS = regex.DOTALL | regex.MULTILINE
AWS_KEY_PROXIMITY = 256

# Left boundary for tokens made of base64url characters: not inside a longer token.
_B = r"(?<![A-Za-z0-9_\-])"
_E = r"(?![A-Za-z0-9_\-])"

# entity, pattern name, regex, score, context words
SECRET_PATTERNS: list[tuple[str, str, str, float, list[str]]] = [
    ("ANTHROPIC_API_KEY", "Anthropic key", _B + r"sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{20,}", 1.0, []),
    ("OPENAI_API_KEY", "OpenAI project/service key", _B + r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}", 1.0, []),
    ("OPENAI_API_KEY", "OpenAI legacy key", _B + r"sk-[A-Za-z0-9]{20,}" + _E, 1.0, []),
    ("GOOGLE_API_KEY", "Google API key", _B + r"AIza[0-9A-Za-z_\-]{35}" + _E, 1.0, []),
    ("AWS_ACCESS_KEY_ID", "AWS access key id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
     1.0, []),
    ("AWS_SECRET_ACCESS_KEY", "AWS secret key (weak)", r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
     0.3, ["aws", "secret"]),
    ("GITHUB_TOKEN", "GitHub token", _B + r"gh[pousr]_[A-Za-z0-9]{36,}" + _E, 1.0, []),
    ("GITHUB_TOKEN", "GitHub fine-grained token", _B + r"github_pat_[A-Za-z0-9_]{22,}" + _E, 1.0, []),
    ("SLACK_TOKEN", "Slack token", _B + r"xox[abprse]-[A-Za-z0-9\-]{10,}" + _E, 1.0, []),
    ("SLACK_WEBHOOK_URL", "Slack webhook",
     r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+\-]{8,}", 1.0, []),
    ("STRIPE_API_KEY", "Stripe key", _B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E, 1.0, []),
    ("HUGGINGFACE_TOKEN", "Hugging Face token", _B + r"hf_[A-Za-z0-9]{34,}" + _E, 1.0, []),
    ("GROQ_API_KEY", "Groq key", _B + r"gsk_[A-Za-z0-9]{48,}" + _E, 1.0, []),
    ("JWT", "JSON Web Token", _B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", 1.0, []),
    # A PEM block to its END line; cut short (a truncated capture), to the end of its base64.
    ("PRIVATE_KEY", "PEM private key",
     r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
     r"(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)", 1.0, []),
    ("BEARER_TOKEN", "Bearer token",
     r"(?i:\bbearer)[ \t]+(?P<value>(?=[A-Za-z0-9\-._~+/]{16})[A-Za-z0-9\-_~+/]+(?:\.[A-Za-z0-9\-_~+/]+)*=*)(?![A-Za-z0-9\-_~+/=]|\.[A-Za-z0-9\-_~+/])", 1.0, []),
    # scheme://user:password@host — the user may be empty (redis://:pw@host); '@' ends the password.
    ("PASSWORD", "Password in a URL",
     r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/\"'<>]*:(?P<value>[^\s@/\"'<>][^\s@\"'<>]*)@[A-Za-z0-9\[]", 1.0, []),
    # Key=value and key: value forms: connection strings (Password=...;), env files (DB_PASSWORD=...),
    # YAML and JSON ("auth_password": "...").
    # (Not the shell's PWD=/OLDPWD=, the working directory.)
    ("PASSWORD", "Password assignment",
     r"(?i:(?<![a-z0-9_])(?!(?-i:(?:OLD)?PWD=/))[a-z0-9_]{0,24}?(?:password|passwd|pwd))[\"']?[ \t]*[=:][ \t]*[\"']?"
     r"(?P<value>[^\s;&'\"<,}][^\s;&'\",}]{3,})", 0.8, []),
    # A name/value pair holding one (Kubernetes env, AWS/ECS task definitions, HTTP form dumps):
    # {"name": "DB_PASSWORD", "value": "..."}.
    ("PASSWORD", "Password in a name/value pair",
     r"(?i:\"(?:name|key)\"[ \t]*:[ \t]*\"[A-Za-z0-9_.\-]{0,40}(?:password|passwd|pwd)[A-Za-z0-9_.\-]{0,40}\""
     r"[ \t]*,[ \t]*\"value\"[ \t]*:[ \t]*\")(?P<value>[^\"\\\s][^\"\\]{3,})\"", 1.0, []),
    # Command lines: mysql -pSECRET, curl -u user:SECRET, redis-cli -a SECRET, sshpass -p SECRET
    ("PASSWORD", "Password on a command line",
     r"\b(?:mysql|mysqldump|mariadb)\b[^\n]{0,200}?[ \t]-p(?P<value>[^\s-][^\s]{3,})|"
     r"\bcurl\b[^\n]{0,200}?[ \t](?:-u|--user)[ \t]+[^\s:]+:(?P<value>[^\s]{4,})|"
     r"\b(?:redis-cli|sshpass)\b[^\n]{0,200}?[ \t](?:-a|-p|--pass)[ \t]+(?P<value>[^\s-][^\s]{3,})", 1.0, []),
]


class SecretRecognizer(PatternRecognizer):
    """One secret entity, with the format checks a regex cannot express."""

    def __init__(self, entity: str, patterns: list[Pattern], context: list[str]):
        super().__init__(supported_entity=entity, name=f"{entity.title().replace('_', '')}Recognizer",
                         patterns=patterns, context=context or None, global_regex_flags=FLAGS)

    def invalidate_result(self, pattern_text: str) -> bool | None:
        if self.supported_entities[0] == "AWS_SECRET_ACCESS_KEY":
            # base64 of 30 random bytes: mixed case and digits; a hex digest is not one.
            return not (any(c.isupper() for c in pattern_text) and any(c.islower() for c in pattern_text)
                        and any(c.isdigit() for c in pattern_text))
        return None


def secret_recognizers() -> list[SecretRecognizer]:
    by_entity: dict[str, tuple[list[Pattern], list[str]]] = {}
    for entity, name, rx, score, context in SECRET_PATTERNS:
        patterns, words = by_entity.setdefault(entity, ([], []))
        patterns.append(Pattern(name, rx, score))
        words.extend(w for w in context if w not in words)
    return [SecretRecognizer(entity, patterns, words) for entity, (patterns, words) in by_entity.items()]


SECRET_ENTITIES = frozenset(entity for entity, *_ in SECRET_PATTERNS)
