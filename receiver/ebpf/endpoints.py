"""Which HTTP exchanges are LLM API calls: an allow-list of hosts and paths.

Everything the receiver sees that matches no rule is dropped as early as it can
be: an exchange whose host no rule names makes the kernel stop copying its
connection; one whose host matches but whose path does not is parsed for
framing only (its bodies are never stored). Both are counted.

A rule is a host pattern, optionally with a port, and a path pattern, both
shell-style globs matched case-insensitively on the host and case-sensitively on
the path (without the query). A rule without a port matches any port.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from llmtap.configtypes import doc

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Ollama, vLLM, llama.cpp server, LM Studio, on their default ports.
_LOCAL_PORTS = (11434, 8000, 8080, 1234)

DEFAULT_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "*"),
    ("*.openai.azure.com", "*"),                 # Azure OpenAI
    ("*.cognitiveservices.azure.com", "*"),
    ("*.services.ai.azure.com", "*"),            # Azure AI Foundry
    ("api.anthropic.com", "*"),
    ("generativelanguage.googleapis.com", "*"),  # Gemini API
    ("aiplatform.googleapis.com", "*"),          # Vertex AI
    ("*-aiplatform.googleapis.com", "*"),
    ("bedrock-runtime.*.amazonaws.com", "*"),    # AWS Bedrock runtime
    ("bedrock-runtime-fips.*.amazonaws.com", "*"),
    ("api.mistral.ai", "*"),
    ("api.groq.com", "*"),
    ("api.deepseek.com", "*"),
    ("openrouter.ai", "/api/*"),
    ("api.x.ai", "*"),
    ("api.together.xyz", "*"),
    ("api.fireworks.ai", "*"),
    ("api.cohere.com", "*"),
    *((f"{host}:{port}", "*") for port in _LOCAL_PORTS for host in _LOCAL_HOSTS),
)


@dataclass
class EndpointRule:
    host: str = field(default="", metadata=doc(
        "Host glob, optionally with `:port` (e.g. `api.openai.com`, `*.openai.azure.com`, `localhost:11434`)."))
    path: str = field(default="*", metadata=doc("Path glob, without the query (e.g. `/v1/*`)."))

    def __str__(self) -> str:
        return self.host if self.path == "*" else f"{self.host} {self.path}"

    def validate(self) -> list[str]:
        if not self.host:
            return ["host: must not be empty"]
        if not self.path.startswith(("/", "*")):
            return [f"path: {self.path!r} must start with / or *"]
        return []


def default_rules() -> list[EndpointRule]:
    return [EndpointRule(host, path) for host, path in DEFAULT_ENDPOINTS]


def split_authority(authority: str, default_port: int = 443) -> tuple[str, int]:
    """`host[:port]` (IPv6 in brackets) → (lower-case host, port)."""
    authority = authority.strip().lower()
    m = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(\d+))?", authority)
    if not m:
        return authority, default_port
    return m.group(1), int(m.group(2)) if m.group(2) else default_port


class EndpointMatcher:
    """Compiled rules. `host_may_match` answers for a connection, `matches` for an exchange."""

    def __init__(self, rules: list[EndpointRule]):
        self._rules = []
        for rule in rules:
            host, port = split_authority(rule.host, default_port=0)
            # Only * and ? are wildcards: brackets are IPv6 literals, not character classes.
            self._rules.append((re.compile(fnmatch.translate(host.replace("[", "[[]"))), port or None,
                                re.compile(fnmatch.translate(rule.path))))

    def _hosts(self, authority: str):
        host, port = split_authority(authority)
        return [r for r in self._rules if r[0].match(host) and (r[1] is None or r[1] == port)]

    def host_may_match(self, authority: str) -> bool:
        return bool(self._hosts(authority))

    def matches(self, authority: str, target: str) -> bool:
        path = target.split("?", 1)[0] or "/"
        return any(path_re.match(path) for _, _, path_re in self._hosts(authority))
