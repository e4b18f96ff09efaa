"""The `bearertokenauth` extension: a shared-secret token, as the collector's
bearertokenauthextension. Receivers call `authenticate(headers)` on every request;
exporters put `header_value()` in the `header` of every request they send.

    extensions:
      bearertokenauth:
        scheme: Bearer              # the header value is "<scheme> <token>"; "" sends the bare token
        token: ${env:LLMTAP_TOKEN}  # or `tokens: [a, b]` (any one is accepted), or
        filename: /run/secrets/otlp-token   # one token per line, re-read when the file changes
        header: authorization

Comparisons take the same time whatever the header holds (hmac.compare_digest),
so a client cannot find the token byte by byte. A token file is stat'ed on each
use (one syscall) and re-read when its modification time or size changes, so a
rotated secret takes effect without a restart.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Mapping

from llmtap.component import Extension, Factory, Host, Kind, Stability
from llmtap.configtypes import doc


@dataclass
class Config:
    scheme: str = field(default="Bearer", metadata=doc(
        'Auth scheme written before the token ("Bearer <token>"); empty means the header holds the bare token.'))
    token: str = field(default="", metadata=doc("The token."))
    tokens: list[str] = field(default_factory=list, metadata=doc(
        "Several tokens, any of which a receiver accepts (exporters send the first)."))
    filename: str = field(default="", metadata=doc(
        "File holding the token(s), one per line; takes precedence over token/tokens and is re-read when it changes."))
    header: str = field(default="authorization", metadata=doc("Header (gRPC metadata key) carrying the token."))

    def validate(self) -> list[str]:
        errors = []
        if self.token and self.tokens:
            errors.append("token, tokens: set one of them, not both")
        if not (self.token or self.tokens or self.filename):
            errors.append("token: one of token, tokens or filename must be set")
        if any(not t for t in self.tokens):
            errors.append("tokens: must not contain empty tokens")
        if not self.header.strip():
            errors.append("header: must not be empty")
        return errors


class BearerTokenAuth(Extension):
    def __init__(self, settings, config: Config):
        super().__init__(settings, config)
        self._tokens: list[str] = [config.token] if config.token else list(config.tokens)
        self._expected: list[bytes] = []
        self._file_stamp: tuple[int, int] | None = None
        self._set_tokens(self._tokens)

    @property
    def scheme(self) -> str:
        return self.config.scheme

    @property
    def header(self) -> str:
        return self.config.header

    async def start(self, host: Host) -> None:
        if self.config.filename:
            self._reload(at_start=True)

    def header_value(self) -> str:
        """What a client sends in `header`."""
        self._refresh()
        token = self._tokens[0] if self._tokens else ""
        return f"{self.config.scheme} {token}" if self.config.scheme else token

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        """Whether `headers` (any key case) carry one of the tokens."""
        self._refresh()
        value = _lookup(headers, self.config.header)
        if value is None or not self._expected:
            return False
        presented = value.encode()
        matched = False
        for expected in self._expected:
            # No short-circuit: the time taken does not reveal which token matched.
            matched |= hmac.compare_digest(presented, expected)
        return matched

    def _set_tokens(self, tokens: list[str]) -> None:
        self._tokens = tokens
        scheme = self.config.scheme
        self._expected = [(f"{scheme} {t}" if scheme else t).encode() for t in tokens]

    def _refresh(self) -> None:
        if self.config.filename:
            self._reload(at_start=False)

    def _reload(self, at_start: bool) -> None:
        path = self.config.filename
        try:
            stat = os.stat(path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._file_stamp:
                return
            with open(path, encoding="utf-8") as f:
                tokens = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            if at_start:
                raise RuntimeError(f"filename: cannot read token file {path!r}: {e}") from None
            if self._file_stamp is not None:
                self.logger.warning("cannot re-read token file; keeping the tokens read before",
                                    extra={"fields": {"extension": str(self.id), "filename": path,
                                                      "error": str(e)}})
                self._file_stamp = None
            return
        if not tokens:
            if at_start:
                raise RuntimeError(f"filename: token file {path!r} is empty")
            self.logger.warning("token file is empty; keeping the tokens read before",
                                extra={"fields": {"extension": str(self.id), "filename": path}})
            self._file_stamp = stamp
            return
        self._file_stamp = stamp
        self._set_tokens(tokens)


def _lookup(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


factory = Factory(
    type="bearertokenauth",
    kind=Kind.EXTENSION,
    config_class=Config,
    create=BearerTokenAuth,
    stability=Stability.BETA,
    description="Authenticates OTLP requests with a bearer token (receivers) and adds it to outgoing ones (exporters).",
)
