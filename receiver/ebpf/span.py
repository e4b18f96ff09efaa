"""An observed HTTP exchange as an OTLP CLIENT span.

Standard attributes follow the OpenTelemetry HTTP and process semantic
conventions; everything llmtap captured beyond them (allow-listed headers,
bodies, per-read timestamps, truncation and loss markers) sits under `llmtap.*`
for the GenAI processors, which drop it before export unless told to keep it.

    llmtap.http.request.header.<name>   string[]  (allow-listed; secrets never captured)
    llmtap.http.response.header.<name>  string[]
    llmtap.http.request.body            string (UTF-8) or bytes (anything else), decoded as the server saw it
    llmtap.http.request.body.size       int: bytes on the wire, before content decoding
    llmtap.http.request.body.truncated  bool, only when true (body over max_body_bytes)
    llmtap.http.response.body / .body.size / .body.truncated   likewise
    llmtap.http.response.read.time_unix_nano  int[]: when each read that carried body bytes returned
    llmtap.http.response.read.end_offset      int[]: body bytes (transfer-decoded, before content
                                                     decoding) received up to and including that read
    llmtap.http.response.content_encoding_error  string, when the body could not be decoded (kept raw)
    llmtap.http.stream_id               int: the HTTP/2 stream
    llmtap.capture.lost_bytes           int, only when > 0: bytes the capture lost inside this exchange
    llmtap.http.response.complete       false, only when the response's end was not seen

Status: ERROR with `error.type` = the status code for 4xx/5xx, `incomplete` for an exchange cut
short (connection closed or process exited mid-response, bytes lost), `capture` for a complete
exchange the capture had trouble with. An SSE stream whose client hung up right after the
stream's final event (openai and anthropic SDKs do) is incomplete but not an error.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from typing import Iterable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap import __version__, attributes
from llmtap.receiver.ebpf.endpoints import split_authority
from llmtap.receiver.ebpf.headers import scrub_url
from llmtap.receiver.ebpf.tracker import Observed

SCOPE_NAME = "llmtap.receiver.ebpf"


def _headers(attrs: dict, prefix: str, headers: Iterable[tuple[str, str]]) -> None:
    grouped: dict[str, list[str]] = defaultdict(list)
    for name, value in headers:
        grouped[name.lower()].append(value)
    for name, values in grouped.items():
        attrs[f"{prefix}.{name}"] = values


def exchange_span(span: Span, observed: Observed, clock_offset_ns: int) -> Span:
    """Fill `span` in place. `clock_offset_ns` turns the kernel's CLOCK_MONOTONIC stamps into Unix time."""
    x, proc = observed.exchange, observed.process
    host, port = split_authority(x.authority, 443 if x.scheme == "https" else 80)
    path = x.target.split("?", 1)[0] or "/"
    attrs: dict[str, object] = {
        "http.request.method": x.method or "_OTHER",
        "url.full": f"{x.scheme}://{x.authority}{scrub_url(x.target)}",
        "server.address": host.strip("[]"),
        "server.port": port,
        "network.protocol.name": "http",
        "network.protocol.version": x.protocol,
        "process.pid": proc.pid,
        "process.executable.name": proc.executable_name,
        "thread.id": observed.tid,
    }
    if proc.executable_path:
        attrs["process.executable.path"] = proc.executable_path
    if x.user_agent:
        attrs["user_agent.original"] = x.user_agent
    if x.status is not None:
        attrs["http.response.status_code"] = x.status
    if x.stream_id is not None:
        attrs["llmtap.http.stream_id"] = x.stream_id
    _headers(attrs, "llmtap.http.request.header", x.request_headers)
    _headers(attrs, "llmtap.http.response.header", x.response_headers)
    for side, body, size, truncated in (("request", x.request_body, x.request_body_size, x.request_truncated),
                                        ("response", x.response_body, x.response_body_size, x.response_truncated)):
        attrs[f"llmtap.http.{side}.body"] = body
        attrs[f"llmtap.http.{side}.body.size"] = size
        if truncated:
            attrs[f"llmtap.http.{side}.body.truncated"] = True
    if x.response_reads:
        attrs["llmtap.http.response.read.time_unix_nano"] = [t + clock_offset_ns for t, _ in x.response_reads]
        attrs["llmtap.http.response.read.end_offset"] = [end for _, end in x.response_reads]
    if x.content_encoding_error:
        attrs["llmtap.http.response.content_encoding_error"] = x.content_encoding_error
    if x.lost_bytes:
        attrs["llmtap.capture.lost_bytes"] = x.lost_bytes

    if not x.complete:
        attrs["llmtap.http.response.complete"] = False
    status = span.status
    if x.error:
        status.code = Status.STATUS_CODE_ERROR
        status.message = x.error
        attrs["error.type"] = "incomplete" if not x.complete else "capture"
    elif x.status is not None and x.status >= 400:
        status.code = Status.STATUS_CODE_ERROR
        attrs["error.type"] = str(x.status)

    span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
    span.name = f"{x.method} {path}" if x.method else "HTTP"
    span.kind = Span.SPAN_KIND_CLIENT
    span.start_time_unix_nano = x.start_ns + clock_offset_ns
    span.end_time_unix_nano = max(x.end_ns, x.start_ns) + clock_offset_ns
    attributes.add(span.attributes, attrs)
    return span


def traces_request(observed: list[Observed], clock_offset_ns: int,
                   service_name: str = "") -> ExportTraceServiceRequest:
    """One request, one ResourceSpans per process (service.name is the executable's unless configured)."""
    request = ExportTraceServiceRequest()
    by_process: dict[int, list[Observed]] = defaultdict(list)
    for o in observed:
        by_process[o.process.pid].append(o)
    host_name = socket.gethostname()
    for items in by_process.values():
        rs = request.resource_spans.add()
        resource = {"service.name": service_name or items[0].process.executable_name or "unknown_service",
                    "host.name": host_name}
        attributes.add(rs.resource.attributes, resource)
        ss = rs.scope_spans.add()
        ss.scope.name = SCOPE_NAME
        ss.scope.version = __version__
        for o in items:
            exchange_span(ss.spans.add(), o, clock_offset_ns)
    return request
