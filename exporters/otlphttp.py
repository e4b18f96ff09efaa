"""The `otlphttp` exporter: OTLP over HTTP, as the collector's otlphttpexporter,
for traces, metrics and logs. Alias: `otlp_http`.

    exporters:
      otlphttp:
        endpoint: https://api.honeycomb.io   # /v1/traces, /v1/metrics, /v1/logs are appended
        traces_endpoint: ""                  # a full URL that replaces endpoint + /v1/traces
        encoding: proto                      # proto | json
        compression: gzip                    # gzip | none
        headers: {x-honeycomb-team: ${env:HONEYCOMB_API_KEY}}
        tls: {ca_file: "", cert_file: "", key_file: "", insecure_skip_verify: false}
        timeout: 30s                         # per attempt
        sending_queue: {enabled: true, num_consumers: 10, queue_size: 1000}
        retry_on_failure: {enabled: true, initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s}
        auth: {authenticator: bearertokenauth}

Responses follow the OTLP/HTTP spec: a 2xx is a success, and its body (in the
request's encoding) may carry a partial success, whose rejected items are
counted as dropped and whose message is logged; 429, 502, 503 and 504 are
retried, no earlier than the Retry-After header says (seconds or an HTTP-date);
every other status drops the request, logging the google.rpc.Status message
from the body. Redirects are not followed (a POST body cannot be trusted to
survive one); the error names the new location.

One aiohttp ClientSession (a pool of keep-alive connections) serves every
request; HTTPS_PROXY / HTTP_PROXY / NO_PROXY apply, as for the collector. At
most 64 KiB of any response body is read. Bodies over 256 KiB are gzipped in a
worker thread, so a big batch does not hold up the event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import time
from dataclasses import dataclass, field
from datetime import timezone
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from multidict import CIMultiDict

from llmtap import __version__
from llmtap.component import Factory, Host, Kind, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.exporterhelper import PartialSuccess, QueuedRetryExporter, QueueConfig, RetryConfig, SendError
from llmtap.exporters.otlpclient import RESPONSE_TYPES, AuthConfig, TLSClientConfig, header_errors, partial_success
from llmtap.pdata import to_json

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
CONTENT_TYPES = {"proto": "application/x-protobuf", "json": "application/json"}
MAX_RESPONSE_BODY = 64 * 1024
_COMPRESS_IN_THREAD_FROM = 256 * 1024
_USER_AGENT = f"llmtap/{__version__}"
_SIGNAL_ENDPOINT_KEYS = {Signal.TRACES: "traces_endpoint", Signal.METRICS: "metrics_endpoint",
                         Signal.LOGS: "logs_endpoint"}


def _url_error(key: str, url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{key}: {url!r} must be an http:// or https:// URL"
    try:
        parts.port
    except ValueError:
        return f"{key}: {url!r} has an invalid port"
    return None


@dataclass
class Config:
    endpoint: str = field(default="", metadata=doc(
        "Base URL; `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended for each signal."))
    traces_endpoint: str = field(default="", metadata=doc("Full URL for traces, instead of endpoint + /v1/traces."))
    metrics_endpoint: str = field(default="", metadata=doc(
        "Full URL for metrics, instead of endpoint + /v1/metrics."))
    logs_endpoint: str = field(default="", metadata=doc("Full URL for logs, instead of endpoint + /v1/logs."))
    encoding: Literal["proto", "json"] = field(default="proto", metadata=doc(
        "Request body encoding: OTLP protobuf or OTLP/JSON."))
    compression: Literal["gzip", "none"] = field(default="gzip", metadata=doc("Compression of request bodies."))
    headers: dict[str, str] = field(default_factory=dict, metadata=doc("Headers added to every request."))
    tls: TLSClientConfig = field(default_factory=TLSClientConfig, metadata=doc(
        "TLS settings for https:// URLs (the URL scheme decides whether TLS is used)."))
    timeout: Duration = field(default=Duration(30), metadata=doc("Deadline of one attempt; 0 means none."))
    sending_queue: QueueConfig = field(default_factory=QueueConfig, metadata=doc("The in-memory sending queue."))
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig, metadata=doc(
        "Retries of failed requests, with exponential backoff."))
    auth: AuthConfig = field(default_factory=AuthConfig, metadata=doc("Authenticate with an extension."))

    def validate(self) -> list[str]:
        errors = []
        urls = {"endpoint": self.endpoint, **{key: getattr(self, key) for key in _SIGNAL_ENDPOINT_KEYS.values()}}
        if not any(url.strip() for url in urls.values()):
            errors.append("endpoint: must be set (or traces_endpoint, metrics_endpoint and logs_endpoint)")
        errors += [e for key, url in urls.items() if url.strip() and (e := _url_error(key, url.strip()))]
        errors += header_errors(self.headers)
        return errors

    def signal_url(self, signal: Signal) -> str | None:
        override = getattr(self, _SIGNAL_ENDPOINT_KEYS[signal]).strip()
        if override:
            return override
        base = self.endpoint.strip()
        if not base:
            return None
        return f"{base.rstrip('/')}/v1/{signal}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def status_message(body: bytes, content_type: str) -> str:
    """The google.rpc.Status message of an error body, else the start of the body as text."""
    if not body:
        return ""
    try:
        if "json" in content_type:
            message = json.loads(body).get("message")
            if isinstance(message, str) and message:
                return message
        elif "protobuf" in content_type:
            message = status_pb2.Status.FromString(body).message
            if message:
                return message
    except (ValueError, AttributeError, DecodeError):
        pass
    return body[:256].decode("utf-8", "replace").strip()


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    while len(body) < MAX_RESPONSE_BODY:
        chunk = await response.content.read(MAX_RESPONSE_BODY - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


class OtlpHttpExporter(QueuedRetryExporter):
    def __init__(self, settings: Settings, config: Config):
        super().__init__(settings, config)
        self._session: aiohttp.ClientSession | None = None
        self._authenticator = None
        self._urls = {signal: config.signal_url(signal) for signal in Signal}
        # Case-insensitive, so a configured "content-type" cannot end up sent twice.
        self._headers = CIMultiDict(config.headers)
        self._headers["Content-Type"] = CONTENT_TYPES[config.encoding]
        self._headers.setdefault("User-Agent", _USER_AGENT)
        if config.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"

    async def start(self, host: Host) -> None:
        c: Config = self.config
        self._authenticator = c.auth.resolve(host)
        uses_tls = any(url and url.startswith("https://") for url in self._urls.values())
        connector = aiohttp.TCPConnector(ssl=c.tls.ssl_context() if uses_tls else True)
        # trust_env: HTTPS_PROXY / NO_PROXY apply, as they do to the collector's Go HTTP client.
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                              auto_decompress=True, trust_env=True)
        await super().start(host)

    async def _encode(self, data: Message) -> bytes:
        body = data.SerializeToString() if self.config.encoding == "proto" else to_json(data).encode()
        if self.config.compression == "gzip":
            if len(body) > _COMPRESS_IN_THREAD_FROM:
                # zlib releases the GIL: a big body is compressed without holding up the event loop.
                return await asyncio.to_thread(gzip.compress, body, 6, mtime=0)
            body = gzip.compress(body, compresslevel=6, mtime=0)
        return body

    async def send(self, signal: Signal, data: Message) -> PartialSuccess | None:
        url = self._urls[signal]
        if url is None:
            key = _SIGNAL_ENDPOINT_KEYS[signal]
            raise SendError(f"no URL for {signal}: set endpoint or {key}", retryable=False)
        headers = self._headers
        if self._authenticator is not None:
            headers = headers.copy()
            headers[self._authenticator.header] = self._authenticator.header_value()
        assert self._session is not None, "send before start"
        try:
            async with self._session.post(url, data=await self._encode(data), headers=headers, allow_redirects=False,
                                          server_hostname=self.config.tls.server_name_override or None) as response:
                body = await _read_body(response)
                return self._outcome(signal, response, body)
        except aiohttp.ClientError as e:
            raise SendError(f"{type(e).__name__}: {e}", retryable=True) from None

    def _outcome(self, signal: Signal, response: aiohttp.ClientResponse, body: bytes) -> PartialSuccess | None:
        status = response.status
        content_type = response.headers.get("Content-Type", "")
        if 200 <= status < 300:
            return self._partial_success(signal, body, content_type)
        if 300 <= status < 400:
            raise SendError(f"HTTP {status}: redirected to {response.headers.get('Location', '?')}; "
                            "set the endpoint to the final URL", retryable=False)
        message = f"HTTP {status}"
        detail = status_message(body, content_type)
        if detail:
            message += f": {detail}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise SendError(message, retryable=status in RETRYABLE_STATUSES, retry_after=retry_after)

    def _partial_success(self, signal: Signal, body: bytes, content_type: str) -> PartialSuccess | None:
        if not body:
            return None
        answer = RESPONSE_TYPES[signal]()
        # The answer comes in the request's encoding; trust its Content-Type when it says otherwise.
        as_json = "json" in content_type or ("protobuf" not in content_type and self.config.encoding == "json")
        try:
            if as_json:
                json_format.Parse(body, answer, ignore_unknown_fields=True)
            else:
                answer.ParseFromString(body)
        except (json_format.ParseError, DecodeError, ValueError) as e:
            # The data did arrive; an unreadable answer is no reason to send it again.
            self.logger.warning("cannot read the export response: %s", e, extra={"fields": {
                "exporter": str(self.id), "content_type": content_type}})
            return None
        return partial_success(signal, answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


factory = Factory(
    type="otlphttp",
    kind=Kind.EXPORTER,
    config_class=Config,
    create=OtlpHttpExporter,
    signals=frozenset(Signal),
    stability=Stability.BETA,
    description="Sends OTLP over HTTP (alias otlp_http): protobuf or JSON, gzip, with a sending queue and retries",
)
