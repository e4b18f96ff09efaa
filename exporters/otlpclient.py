"""What the `otlp` (gRPC) and `otlphttp` exporters share: the client side of
the collector's configtls / configauth / header settings, and reading the
partial success out of an OTLP export response.

Files named in `tls` are read once, at start; a missing or unreadable file
fails the start with the key it came from. The authenticator extension is
looked up at start and asked for its header value on every request, so a
rotated token is used from the next request on.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmtap.component import ComponentID, Host, Signal
from llmtap.configtypes import doc
from llmtap.exporterhelper import PartialSuccess

RESPONSE_TYPES: dict[Signal, type[Message]] = {
    Signal.TRACES: ExportTraceServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.LOGS: ExportLogsServiceResponse,
}
_REJECTED_FIELD = {Signal.TRACES: "rejected_spans", Signal.METRICS: "rejected_data_points",
                   Signal.LOGS: "rejected_log_records"}

# RFC 9110 token: what a header name may contain (gRPC metadata keys are a subset, lower-cased).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class ExporterStartError(Exception):
    """The exporter cannot start; the message names the config key at fault."""


@dataclass
class TLSClientConfig:
    insecure: bool = field(default=False, metadata=doc(
        "gRPC only: connect without TLS. An `http://` endpoint implies it; otlphttp follows the URL scheme."))
    insecure_skip_verify: bool = field(default=False, metadata=doc(
        "Use TLS but do not verify the server's certificate (otlphttp only: grpcio cannot skip verification)."))
    ca_file: str = field(default="", metadata=doc(
        "PEM CA bundle that the server's certificate must chain to; empty uses the system's roots."))
    cert_file: str = field(default="", metadata=doc("PEM client certificate for mutual TLS (with `key_file`)."))
    key_file: str = field(default="", metadata=doc("PEM private key of `cert_file`."))
    server_name_override: str = field(default="", metadata=doc(
        "Name the server's certificate is checked against (and sent as SNI) instead of the endpoint's host."))

    def validate(self) -> list[str]:
        if bool(self.cert_file) != bool(self.key_file):
            return ["cert_file and key_file must be set together"]
        return []

    def read(self, key: str) -> bytes | None:
        """Contents of the file named by `key` (e.g. "ca_file"), None when unset."""
        path = getattr(self, key)
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as e:
            raise ExporterStartError(f"tls.{key}: cannot read {path!r}: {e.strerror or e}") from None

    def ssl_context(self) -> ssl.SSLContext:
        """Client context for an https:// URL; also how the gRPC exporter checks its PEM files."""
        for key in ("ca_file", "cert_file", "key_file"):
            self.read(key)  # an unreadable file gets its own clear message
        try:
            context = ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as e:
            raise ExporterStartError(f"tls.ca_file: cannot load {self.ca_file!r}: {e}") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # the collector's default min_version
        if self.cert_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as e:
                raise ExporterStartError(f"tls.cert_file/key_file: cannot load {self.cert_file!r} with "
                                         f"{self.key_file!r}: {e}") from None
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass
class AuthConfig:
    authenticator: str = field(default="", metadata=doc(
        "ID of an authenticator extension (e.g. `bearertokenauth`) whose header is added to every request; "
        "it must be listed in `service.extensions`."))

    def validate(self) -> list[str]:
        if not self.authenticator:
            return []
        try:
            ComponentID.parse(self.authenticator)
        except ValueError as e:
            return [f"authenticator: {e}"]
        return []

    def resolve(self, host: Host) -> Any | None:
        """The running authenticator extension, or None when auth is not configured."""
        if not self.authenticator:
            return None
        cid = ComponentID.parse(self.authenticator)
        try:
            extension = host.extension(cid)
        except KeyError:
            raise ExporterStartError(f"auth.authenticator: extension {cid} is not running; "
                                     "define it under `extensions` and list it in `service.extensions`") from None
        if not callable(getattr(extension, "header_value", None)) or not getattr(extension, "header", ""):
            raise ExporterStartError(f"auth.authenticator: extension {cid} cannot authenticate a client "
                                     "(it has no header_value())")
        return extension


def header_errors(headers: dict[str, str]) -> list[str]:
    errors = []
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            errors.append(f"headers.{name}: not a valid header name")
        elif not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            errors.append(f"headers.{name}: value must be a string without line breaks")
    return errors


def partial_success(signal: Signal, response: Message) -> PartialSuccess | None:
    """The partial success an OTLP export response carries, None when it has none."""
    if not response.HasField("partial_success"):
        return None
    ps = response.partial_success
    rejected = getattr(ps, _REJECTED_FIELD[signal])
    if not rejected and not ps.error_message:
        return None
    return PartialSuccess(rejected=rejected, message=ps.error_message)
