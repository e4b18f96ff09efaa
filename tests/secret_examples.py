"""The shared secret table's examples (llmtap/secretpatterns.py), as the tests of both of its
readers use them: the pii_redaction Detector and the eBPF receiver's argument redaction."""

from __future__ import annotations

import regex

from llmtap.secretpatterns import FLAGS, SECRET_PATTERNS, SecretPattern


def example_secret(pattern: SecretPattern) -> str:
    """What the pattern reports in its example: its `value` group, or the whole match."""
    m = regex.compile(pattern.regex, FLAGS).search(pattern.example)
    return m["value"] if "value" in m.re.groupindex else m[0]


# Formats recognized by their shape alone: the example is the secret, found wherever it sits.
TOKENS = [p for p in SECRET_PATTERNS if example_secret(p) == p.example]
# The others need what is around them (a header name, a URL, a command): the example shows it.
IN_CONTEXT = [p for p in SECRET_PATTERNS if p not in TOKENS]


def name(pattern: SecretPattern) -> str:
    return pattern.name
