"""The `otlp` exporter: OTLP over gRPC, as the collector's otlpexporter, for
traces, metrics and logs. Alias: `otlp_grpc`.

    exporters:
      otlp:
        endpoint: collector:4317        # or http://host:port (plaintext), https://host:port
        tls: {insecure: false, ca_file: "", cert_file: "", key_file: "", server_name_override: ""}
        headers: {x-tenant: acme}
        compression: gzip               # gzip | none
        timeout: 5s                     # per attempt
        sending_queue: {enabled: true, num_consumers: 10, queue_size: 1000}
        retry_on_failure: {enabled: true, initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s}
        auth: {authenticator: bearertokenauth}

Without a scheme the connection uses TLS unless `tls.insecure` is true, as in
the collector. One grpc.aio channel (one HTTP/2 connection) carries every
request; `sending_queue.num_consumers` of them may be in flight at once.

Failures follow the OTLP/gRPC spec: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED,
ABORTED, OUT_OF_RANGE and DATA_LOSS are retried, RESOURCE_EXHAUSTED only when
the server sent a RetryInfo (whose retry_delay is then the least wait before
the next attempt); every other code drops the request. A partial success is
not retried: the rejected items are counted as dropped and the server's
message is logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from llmtap.component import Factory, Host, Kind, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.exporterhelper import PartialSuccess, QueuedRetryExporter, QueueConfig, RetryConfig, SendError
from llmtap.exporters.otlpclient import AuthConfig, TLSClientConfig, header_errors, partial_success

RETRYABLE_CODES = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})
STATUS_DETAILS_KEY = "grpc-status-details-bin"
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"  # the bare RetryInfo trailer some servers send instead

_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+):(\d{1,5})")
_METADATA_KEY = re.compile(r"[0-9a-z_.\-]+")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def parse_endpoint(endpoint: str) -> tuple[str, str]:
    """`host:port`, `http://host:port` or `https://host:port` → (scheme or "", "host:port")."""
    scheme, sep, rest = endpoint.strip().partition("://")
    if not sep:
        scheme, rest = "", endpoint.strip()
    elif scheme not in ("http", "https"):
        raise ValueError(f"{endpoint!r}: scheme {scheme}:// is not supported (use host:port, http:// or https://)")
    target = rest.rstrip("/")
    m = _HOST_PORT.fullmatch(target)
    if not m:
        raise ValueError(f"{endpoint!r} must be host:port, http://host:port or https://host:port")
    if not 0 < int(m.group(2)) <= 65535:
        raise ValueError(f"{endpoint!r}: port {m.group(2)} is out of range")
    return scheme, target


@dataclass
class KeepaliveConfig:
    time: Duration = field(default=Duration(0), metadata=doc(
        "Ping the server after this long without activity; 0 leaves gRPC's default (no pings)."))
    timeout: Duration = field(default=Duration(0), metadata=doc(
        "Close the connection when a ping is not answered within this long; 0 leaves gRPC's default (20s)."))
    permit_without_stream: bool = field(default=False, metadata=doc("Ping even when no request is in flight."))


@dataclass
class Config:
    endpoint: str = field(default="", metadata=doc(
        "Where to send (required): `host:port`, `http://host:port` (plaintext) or `https://host:port`."))
    tls: TLSClientConfig = field(default_factory=TLSClientConfig, metadata=doc(
        "TLS settings; TLS is on unless `insecure` is true or the endpoint starts with http://."))
    headers: dict[str, str] = field(default_factory=dict, metadata=doc(
        "Metadata added to every request (keys are sent lower-cased)."))
    compression: Literal["gzip", "none"] = field(default="gzip", metadata=doc("Compression of requests."))
    timeout: Duration = field(default=Duration(5), metadata=doc("Deadline of one attempt; 0 means none."))
    sending_queue: QueueConfig = field(default_factory=QueueConfig, metadata=doc("The in-memory sending queue."))
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig, metadata=doc(
        "Retries of failed requests, with exponential backoff."))
    auth: AuthConfig = field(default_factory=AuthConfig, metadata=doc("Authenticate with an extension."))
    keepalive: KeepaliveConfig = field(default_factory=KeepaliveConfig, metadata=doc("HTTP/2 keepalive pings."))
    balancer_name: str = field(default="", metadata=doc(
        "gRPC load-balancing policy (`pick_first`, `round_robin`); empty leaves gRPC's default."))
    authority: str = field(default="", metadata=doc("Overrides the :authority header of requests."))
    wait_for_ready: bool = field(default=False, metadata=doc(
        "Let a request wait (within `timeout`) for the connection to come up instead of failing at once."))

    def validate(self) -> list[str]:
        errors = []
        if not self.endpoint.strip():
            errors.append("endpoint: must be set")
        else:
            try:
                parse_endpoint(self.endpoint)
            except ValueError as e:
                errors.append(f"endpoint: {e}")
        if self.tls.insecure_skip_verify:
            errors.append("tls.insecure_skip_verify: not supported by the gRPC exporter (grpcio cannot skip "
                          "certificate verification); set tls.ca_file to the server's CA, or use otlphttp")
        if self.balancer_name not in ("", "pick_first", "round_robin"):
            errors.append(f"balancer_name: must be pick_first or round_robin; got {self.balancer_name!r}")
        errors += header_errors(self.headers)
        for name in self.headers:
            key = name.lower()
            if _METADATA_KEY.fullmatch(key) and (key.startswith("grpc-") or key.endswith("-bin")):
                errors.append(f"headers.{name}: reserved (grpc-*) or binary (*-bin) metadata keys cannot be set")
            elif _METADATA_KEY.fullmatch(key) is None and not header_errors({name: ""}):
                errors.append(f"headers.{name}: gRPC metadata keys may only hold letters, digits, '-', '_' and '.'")
        return errors

    def uses_tls(self) -> bool:
        scheme, _ = parse_endpoint(self.endpoint)
        return scheme == "https" or (scheme == "" and not self.tls.insecure)


def retry_delay(trailing_metadata) -> float | None:
    """The RetryInfo delay in a failed call's trailers, None when there is none."""
    for key, value in trailing_metadata or ():
        try:
            if key == STATUS_DETAILS_KEY:
                for detail in status_pb2.Status.FromString(value).details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            elif key == RETRY_INFO_KEY:
                info = error_details_pb2.RetryInfo.FromString(value)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        except (DecodeError, TypeError):
            continue  # a garbled trailer is no reason to misjudge the status code
    return None


def send_error(error: grpc.aio.AioRpcError) -> SendError:
    """A failed call as the OTLP/gRPC spec says to treat it."""
    code = error.code()
    delay = retry_delay(error.trailing_metadata())
    retryable = code in RETRYABLE_CODES or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None)
    return SendError(f"{code.name}: {error.details() or 'no details'}", retryable=retryable, retry_after=delay)


class OtlpGrpcExporter(QueuedRetryExporter):
    def __init__(self, settings: Settings, config: Config):
        super().__init__(settings, config)
        self._channel: grpc.aio.Channel | None = None
        self._export: dict[Signal, grpc.aio.UnaryUnaryMultiCallable] = {}
        self._authenticator = None
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())

    def _channel_options(self) -> list[tuple[str, object]]:
        c: Config = self.config
        rc = c.retry_on_failure
        # Reconnect no slower than our own retries, or they would keep meeting a channel in backoff.
        options: list[tuple[str, object]] = [
            ("grpc.initial_reconnect_backoff_ms", max(1, int(min(1.0, rc.initial_interval or 1.0) * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(1, int((rc.max_interval or 30.0) * 1000))),
        ]
        if c.tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", c.tls.server_name_override))
        if c.authority:
            options.append(("grpc.default_authority", c.authority))
        if c.balancer_name:
            options.append(("grpc.lb_policy_name", c.balancer_name))
        if c.keepalive.time:
            options.append(("grpc.keepalive_time_ms", int(c.keepalive.time * 1000)))
        if c.keepalive.timeout:
            options.append(("grpc.keepalive_timeout_ms", int(c.keepalive.timeout * 1000)))
        if c.keepalive.permit_without_stream:
            options.append(("grpc.keepalive_permit_without_calls", 1))
        return options

    async def start(self, host: Host) -> None:
        c: Config = self.config
        self._authenticator = c.auth.resolve(host)
        _, target = parse_endpoint(c.endpoint)
        compression = grpc.Compression.Gzip if c.compression == "gzip" else grpc.Compression.NoCompression
        if c.uses_tls():
            c.tls.ssl_context()  # grpc would only find bad PEM when connecting, and then retry forever
            credentials = grpc.ssl_channel_credentials(
                root_certificates=c.tls.read("ca_file"), private_key=c.tls.read("key_file"),
                certificate_chain=c.tls.read("cert_file"))
            self._channel = grpc.aio.secure_channel(target, credentials, self._channel_options(), compression)
        else:
            if self._authenticator is not None and target.rpartition(":")[0] not in _LOOPBACK_HOSTS:
                self.logger.warning("sending credentials over a plaintext connection", extra={"fields": {
                    "exporter": str(self.id), "endpoint": c.endpoint}})
            self._channel = grpc.aio.insecure_channel(target, self._channel_options(), compression)
        self._export = {
            Signal.TRACES: TraceServiceStub(self._channel).Export,
            Signal.METRICS: MetricsServiceStub(self._channel).Export,
            Signal.LOGS: LogsServiceStub(self._channel).Export,
        }
        await super().start(host)

    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        if self._authenticator is None:
            return self._metadata
        return (*self._metadata, (self._authenticator.header.lower(), self._authenticator.header_value()))

    async def send(self, signal: Signal, data: Message) -> PartialSuccess | None:
        try:
            response = await self._export[signal](
                data, timeout=self.config.timeout or None, metadata=self._call_metadata(),
                wait_for_ready=self.config.wait_for_ready)
        except grpc.aio.AioRpcError as e:
            raise send_error(e) from None
        return partial_success(signal, response)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


factory = Factory(
    type="otlp",
    kind=Kind.EXPORTER,
    config_class=Config,
    create=OtlpGrpcExporter,
    signals=frozenset(Signal),
    stability=Stability.BETA,
    description="Sends OTLP over gRPC (alias otlp_grpc), with a sending queue and retries",
)
