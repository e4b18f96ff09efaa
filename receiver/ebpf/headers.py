"""Which captured headers may be kept, and removing credentials from URLs.

Promises:
- `HeaderAllowList.filter` keeps only headers whose name matches one of the
  allow-list's glob patterns (fnmatch, case-insensitive), and NEVER a secret
  header (`is_secret_header`), whatever the allow-list says;
- `scrub_url` replaces the value of every credential-carrying query parameter with
  `REDACTED` (and userinfo in an absolute URL with `REDACTED:REDACTED`), as the
  OpenTelemetry semantic conventions ask for `url.full`; everything else is kept
  byte for byte.
Costs: O(len(name) + len(value)) per header (one compiled regex per allow-list,
built once), O(len(target)) per URL.

The secret rule, applied to the lower-cased header name:
- the well-known credential headers: authorization, proxy-authorization, cookie,
  set-cookie, x-api-key, api-key, x-goog-api-key;
- any name containing one of: auth, token (but not "tokens": the rate-limit
  headers x-ratelimit-*-tokens and anthropic-ratelimit-*-tokens-* are counts),
  secret, passw, cookie, session, credential, signature, apikey, api-key, api_key,
  jwt, csrf, xsrf;
- any name whose last word is "key" (x-api-key, x-goog-api-key, *-api-key,
  ocp-apim-subscription-key, ...), except idempotency-key, which is a random
  per-request id that clients generate;
- any header whose value starts like a credential whatever its name: an
  authorization scheme ("Bearer ", "Basic ", "Digest ", "AWS4-HMAC-SHA256 ") or an
  API key prefix ("sk-" as used by OpenAI and Anthropic, "AIza" as used by Google).
The SDK metadata headers x-stainless-* match none of these and are kept.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable, Sequence
from urllib.parse import unquote_plus

DEFAULT_REQUEST_HEADERS: tuple[str, ...] = (
    "content-type", "content-length", "content-encoding", "accept", "accept-encoding", "user-agent", "host",
    "anthropic-version", "anthropic-beta", "openai-organization", "openai-project", "openai-beta",
    "x-stainless-*", "x-request-id", "idempotency-key", "x-goog-api-client",
)
DEFAULT_RESPONSE_HEADERS: tuple[str, ...] = (
    "content-type", "content-length", "content-encoding", "transfer-encoding", "date", "server",
    "x-request-id", "request-id", "openai-*", "x-ratelimit-*", "anthropic-ratelimit-*", "retry-after",
    "x-envoy-upstream-service-time", "cf-ray",
)

_SECRET_NAMES = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-goog-api-key",
})
_SECRET_NAME_PARTS = re.compile(
    r"auth|token(?!s)|secret|passw|cookie|session|credential|signature|apikey|api-key|api_key|jwt|csrf|xsrf")
_ENDS_WITH_KEY = re.compile(r"(?:^|[-_.])key$")
_NOT_SECRET_KEYS = frozenset({"idempotency-key"})
_SECRET_VALUE = re.compile(r"\s*(?:(?i:bearer|basic|digest|aws4-hmac-sha256)\s|sk-|AIza)")

REDACTED = "REDACTED"
_CREDENTIAL_QUERY_PARAMS = frozenset({
    "key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature", "x-goog-signature",
    "awsaccesskeyid", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
})
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def is_secret_header(name: str, value: str = "") -> bool:
    """True when a header with this name (or this value) may carry a credential."""
    name = name.lower()
    if name in _SECRET_NAMES or _SECRET_NAME_PARTS.search(name):
        return True
    if _ENDS_WITH_KEY.search(name) and name not in _NOT_SECRET_KEYS:
        return True
    return bool(_SECRET_VALUE.match(value))


class HeaderAllowList:
    """Glob patterns of header names to keep; secrets are dropped even when listed."""

    def __init__(self, patterns: Sequence[str]):
        self.patterns = tuple(p.lower() for p in patterns)
        translated = "|".join(fnmatch.translate(p) for p in self.patterns) or r"(?!)"
        self._regex = re.compile(translated)

    def allows(self, name: str) -> bool:
        return self._regex.match(name.lower()) is not None

    def filter(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The allowed, non-secret headers, names lower-cased, in their original order."""
        return [(name.lower(), value) for name, value in headers
                if self.allows(name) and not is_secret_header(name, value)]


def scrub_url(target: str) -> str:
    """`target` (origin-form path?query or an absolute URL) with credential query values
    and userinfo replaced by REDACTED. Parameter names compare case-insensitively,
    after percent-decoding."""
    rest, hash_mark, fragment = target.partition("#")
    path, question_mark, query = rest.partition("?")
    path = _USERINFO.sub(rf"\1{REDACTED}:{REDACTED}@", path)
    if question_mark:
        params = []
        for param in query.split("&"):
            name, equals, _value = param.partition("=")
            if equals and unquote_plus(name).lower() in _CREDENTIAL_QUERY_PARAMS:
                param = f"{name}={REDACTED}"
            params.append(param)
        query = "&".join(params)
    return path + question_mark + query + hash_mark + fragment


def scrub_authority(authority: str) -> str:
    """host[:port] without any userinfo ("user:pass@host" is deprecated but still seen)."""
    return authority.rpartition("@")[2]
