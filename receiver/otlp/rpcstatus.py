"""google.rpc.Status values, as OTLP answers failures on both transports: the body
of an OTLP/HTTP error response, and the `grpc-status-details-bin` trailer of a
gRPC one. A retryable refusal carries a google.rpc.RetryInfo with the delay."""

from __future__ import annotations

import math

from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

# Trailer keys: the standard rich-status trailer (Go clients, the collector), and
# the bare RetryInfo trailer that the OpenTelemetry Python SDK's gRPC exporter reads.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"

# The gRPC code an OTLP/HTTP error status carries, by HTTP status.
CODE_FOR_HTTP_STATUS = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    413: code_pb2.INVALID_ARGUMENT,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    503: code_pb2.UNAVAILABLE,
}


def retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    seconds = max(0.0, retry_after)
    whole = math.floor(seconds)
    delay = duration_pb2.Duration(seconds=whole, nanos=int(round((seconds - whole) * 1e9)) % 1_000_000_000)
    return error_details_pb2.RetryInfo(retry_delay=delay)


def status(code: int, message: str, retry_after: float | None = None) -> status_pb2.Status:
    result = status_pb2.Status(code=code, message=message)
    if retry_after is not None:
        result.details.add().Pack(retry_info(retry_after))
    return result


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; round up so the client never comes back early."""
    return str(max(0, math.ceil(seconds)))
