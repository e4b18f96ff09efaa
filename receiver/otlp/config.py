"""The `otlp` receiver's config, with the OTel Collector's keys and defaults.

A protocol is enabled by naming it, as in the collector: `grpc:` with no value
(YAML null) or `grpc: {}` turns gRPC on with its defaults; leaving the key out
turns it off. The YAML decoder cannot tell an absent key from a null one, so the
*default* of each protocol field is an instance marked `configured = False`
(`_absent`); anything the decoder builds from the file, even from null, is a
fresh instance whose class-level `configured` is True. `configured` is a
ClassVar, not a dataclass field, so it is no config key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, TypeVar

from llmtap.component import ComponentID
from llmtap.configtypes import ByteSize, doc
from llmtap.selfmetrics import split_endpoint

DEFAULT_MAX_REQUEST_BODY_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_RECV_MSG_SIZE_MIB = 4


@dataclass
class TLSServerConfig:
    cert_file: str = field(default="", metadata=doc(
        "PEM certificate the server presents; setting it (with `key_file`) turns TLS on."))
    key_file: str = field(default="", metadata=doc("PEM private key of `cert_file`."))
    client_ca_file: str = field(default="", metadata=doc(
        "PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)."))

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    def validate(self) -> list[str]:
        errors = []
        if bool(self.cert_file) != bool(self.key_file):
            errors.append("cert_file and key_file must be set together")
        if self.client_ca_file and not self.cert_file:
            errors.append("client_ca_file: mutual TLS needs cert_file and key_file as well")
        return errors


@dataclass
class AuthConfig:
    authenticator: str = field(default="", metadata=doc(
        "ID of an authenticator extension (e.g. `bearertokenauth`) that every request must pass; "
        "it must be listed in `service.extensions`."))

    def validate(self) -> list[str]:
        if not self.authenticator:
            return []
        try:
            ComponentID.parse(self.authenticator)
        except ValueError as e:
            return [f"authenticator: {e}"]
        return []


def _endpoint_errors(endpoint: str) -> list[str]:
    try:
        _, port = split_endpoint(endpoint)
    except ValueError:
        return [f"endpoint: {endpoint!r} must be host:port"]
    if not 0 <= port <= 65535:
        return [f"endpoint: port {port} is out of range"]
    return []


@dataclass
class GrpcConfig:
    endpoint: str = field(default="localhost:4317", metadata=doc(
        "host:port to listen on. `0.0.0.0` or `[::]` listens on every interface; port 0 picks a free port."))
    max_recv_msg_size_mib: int = field(default=DEFAULT_MAX_RECV_MSG_SIZE_MIB, metadata=doc(
        "Largest request message accepted, in MiB; larger ones get RESOURCE_EXHAUSTED. 0 means 4."))
    max_concurrent_streams: int = field(default=0, metadata=doc(
        "Concurrent streams per client connection; 0 means no limit."))
    include_metadata: bool = field(default=False, metadata=doc(
        "Accepted for collector config compatibility; llmtap does not pass client metadata down the pipeline."))
    tls: TLSServerConfig = field(default_factory=TLSServerConfig, metadata=doc(
        "Serve over TLS (off unless cert_file is set)."))
    auth: AuthConfig = field(default_factory=AuthConfig, metadata=doc(
        "Require every request to pass an authenticator extension (off by default)."))

    configured: ClassVar[bool] = True

    def validate(self) -> list[str]:
        errors = _endpoint_errors(self.endpoint)
        if self.max_recv_msg_size_mib < 0:
            errors.append("max_recv_msg_size_mib: must not be negative")
        if self.max_concurrent_streams < 0:
            errors.append("max_concurrent_streams: must not be negative")
        return errors


@dataclass
class HttpConfig:
    endpoint: str = field(default="localhost:4318", metadata=doc(
        "host:port to listen on. `0.0.0.0` or `[::]` listens on every interface; port 0 picks a free port."))
    traces_url_path: str = field(default="/v1/traces", metadata=doc("Path that takes traces."))
    metrics_url_path: str = field(default="/v1/metrics", metadata=doc("Path that takes metrics."))
    logs_url_path: str = field(default="/v1/logs", metadata=doc("Path that takes logs."))
    max_request_body_size: ByteSize = field(default=ByteSize(DEFAULT_MAX_REQUEST_BODY_SIZE), metadata=doc(
        "Largest request body, counted both as sent and after decompression; larger ones get 413. 0 means 20MiB."))
    include_metadata: bool = field(default=False, metadata=doc(
        "Accepted for collector config compatibility; llmtap does not pass client metadata down the pipeline."))
    tls: TLSServerConfig = field(default_factory=TLSServerConfig, metadata=doc(
        "Serve over TLS (off unless cert_file is set)."))
    auth: AuthConfig = field(default_factory=AuthConfig, metadata=doc(
        "Require every request to pass an authenticator extension (off by default)."))

    configured: ClassVar[bool] = True

    def url_paths(self) -> dict[str, str]:
        """Signal name → path, with the leading slash the collector adds when it is missing."""
        paths = {"traces": self.traces_url_path, "metrics": self.metrics_url_path, "logs": self.logs_url_path}
        return {signal: path if path.startswith("/") else "/" + path for signal, path in paths.items()}

    def body_limit(self) -> int:
        return int(self.max_request_body_size) or DEFAULT_MAX_REQUEST_BODY_SIZE

    def validate(self) -> list[str]:
        errors = _endpoint_errors(self.endpoint)
        if self.max_request_body_size < 0:
            errors.append("max_request_body_size: must not be negative")
        paths = self.url_paths()
        if len(set(paths.values())) < len(paths):
            errors.append("traces_url_path, metrics_url_path and logs_url_path must be different paths")
        return errors


T = TypeVar("T")


def _absent(cls: type[T]) -> Callable[[], T]:
    """Default for a protocol key left out of the file: defaults inside, but off."""
    def make() -> T:
        config = cls()
        config.configured = False
        return config
    return make


@dataclass
class Protocols:
    grpc: GrpcConfig = field(default_factory=_absent(GrpcConfig), metadata=doc(
        "OTLP/gRPC. Naming the key (even with no value) turns it on; leaving it out turns it off."))
    http: HttpConfig = field(default_factory=_absent(HttpConfig), metadata=doc(
        "OTLP/HTTP (protobuf and JSON). Naming the key (even with no value) turns it on; "
        "leaving it out turns it off."))


@dataclass
class Config:
    protocols: Protocols = field(default_factory=Protocols, metadata=doc(
        "The transports to serve; at least one of `grpc` and `http`."))

    def validate(self) -> list[str]:
        if not (self.protocols.grpc.configured or self.protocols.http.configured):
            return ["protocols: must specify at least one protocol (grpc or http) when using the OTLP receiver"]
        return []
