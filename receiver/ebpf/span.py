"""An observed HTTP exchange as an OTLP CLIENT span, and a process as an INTERNAL one.

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

Every span of a process llmtap tracks also carries the process tree (processes.py):

    process.parent_pid                       int
    llmtap.process.start_time_unix_nano      int: with process.pid, the process's identity
    llmtap.agent.pid / .start_time_unix_nano / .name   its nearest agent ancestor-or-self, if any

A process span (`exec {process.executable.name}`, INTERNAL, exec → exit; span id
processes.process_span_id(pid, start)) has those and:

    process.executable.path     the file given to execve (for a `#!` script: the script)
    process.command_args        string[]: argv, secret-looking values "<REDACTED>" (argsecrets.py)
    llmtap.process.command_args.truncated   true when argv was longer than max_args_bytes
    process.exit.code           int: the exit status; 128 + signal when a signal killed it (as a shell says)
    llmtap.process.exit.signal  int, when a signal killed it (status ERROR, error.type = SIGKILL…)
    process.owner, process.user.id   effective user (name, when the machine knows it)
    container.id, llmtap.process.cgroup_id
    llmtap.process.parent_start_time_unix_nano   the parent's identity with process.parent_pid
    llmtap.process.running      true: still running at shutdown (the span ends then)
    llmtap.process.fork_only    true: forked and never exec'd (runs its parent's program)
    llmtap.process.started_before_capture   true: found in /proc, its start is /proc's (10 ms)

A non-zero exit status is status ERROR with error.type = the status.
"""

from __future__ import annotations

import functools
import os
import pwd
import signal
import socket
from collections import defaultdict
from typing import Callable, Iterable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap import __version__, attributes
from llmtap.receiver.ebpf.argsecrets import redact_args
from llmtap.receiver.ebpf.cgroups import container_id
from llmtap.receiver.ebpf.endpoints import split_authority
from llmtap.receiver.ebpf.headers import scrub_url
from llmtap.receiver.ebpf.processes import Finished, ProcessTable
from llmtap.receiver.ebpf.tracker import Observed

SCOPE_NAME = "llmtap.receiver.ebpf"


def _headers(attrs: dict, prefix: str, headers: Iterable[tuple[str, str]]) -> None:
    grouped: dict[str, list[str]] = defaultdict(list)
    for name, value in headers:
        grouped[name.lower()].append(value)
    for name, values in grouped.items():
        attrs[f"{prefix}.{name}"] = values


def exchange_span(span: Span, observed: Observed, clock_offset_ns: int,
                  process_attributes: dict[str, object] | None = None) -> Span:
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
    if process_attributes:
        attrs.update(process_attributes)
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


@functools.lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def process_span(span: Span, finished: Finished, table: ProcessTable, clock_offset_ns: int, now_ns: int) -> Span:
    """Fill `span` in place: one process, exec (or fork) to exit, or to `now_ns` if still running."""
    p, agent = finished.process, finished.agent
    attrs: dict[str, object] = {"process.pid": p.pid, "process.parent_pid": p.ppid,
                                "process.executable.name": p.executable_name or "unknown"}
    if p.executable_path:
        attrs["process.executable.path"] = p.executable_path
    if p.argv:
        attrs["process.command_args"] = redact_args(p.argv)
    if p.args_truncated:
        attrs["llmtap.process.command_args.truncated"] = True
    status = span.status
    if p.exit_code is not None:
        sig = p.exit_signal
        attrs["process.exit.code"] = 128 + sig if sig else p.exit_status
        if sig:
            attrs["llmtap.process.exit.signal"] = sig
            status.code, status.message = Status.STATUS_CODE_ERROR, f"killed by {_signal_name(sig)}"
            attrs["error.type"] = _signal_name(sig)
        elif p.exit_status:
            status.code, status.message = Status.STATUS_CODE_ERROR, f"exit status {p.exit_status}"
            attrs["error.type"] = str(p.exit_status)
    if p.uid >= 0:
        attrs["process.user.id"] = p.uid
        owner = user_name(p.uid)
        if owner:
            attrs["process.owner"] = owner
    container = container_id(table.cgroup_path(p))
    if container:
        attrs["container.id"] = container
    if p.cgroup_id:
        attrs["llmtap.process.cgroup_id"] = p.cgroup_id
    attrs["llmtap.process.start_time_unix_nano"] = table.start_time_unix_nano(p)
    parent_start = p.parent.start if p.parent is not None else p.parent_start
    if parent_start:
        attrs["llmtap.process.parent_start_time_unix_nano"] = table.unix_ns(parent_start)
    if finished.running:
        attrs["llmtap.process.running"] = True
    if p.execs == 0 and not p.from_proc:
        attrs["llmtap.process.fork_only"] = True
    if p.from_proc:
        attrs["llmtap.process.started_before_capture"] = True
    attrs.update(table.agent_attributes(agent))

    span.trace_id, span.span_id = os.urandom(16), table.span_id(p)
    span.name = f"exec {attrs['process.executable.name']}"
    span.kind = Span.SPAN_KIND_INTERNAL
    end = p.ended_ns if p.ended_ns is not None else now_ns
    span.start_time_unix_nano = p.began_ns + clock_offset_ns
    span.end_time_unix_nano = max(end, p.began_ns) + clock_offset_ns
    attributes.add(span.attributes, attrs)
    return span


def traces_request(observed: list[Observed], clock_offset_ns: int, service_name: str = "", *,
                   process_attributes: Callable[[int], dict[str, object]] | None = None,
                   processes: Iterable[Finished] = (), table: ProcessTable | None = None,
                   now_ns: int = 0) -> ExportTraceServiceRequest:
    """One request, one ResourceSpans per process (service.name is the executable's unless configured):
    its exchanges, and its process span if it is among `processes` (which needs `table`)."""
    request = ExportTraceServiceRequest()
    by_process: dict[int, tuple[str, list]] = {}
    for o in observed:
        by_process.setdefault(o.process.pid, (o.process.executable_name, []))[1].append(o)
    for f in processes:
        by_process.setdefault(f.process.pid, (f.process.executable_name, []))[1].append(f)
    host_name = socket.gethostname()
    for name, items in by_process.values():
        rs = request.resource_spans.add()
        resource = {"service.name": service_name or name or "unknown_service", "host.name": host_name}
        attributes.add(rs.resource.attributes, resource)
        ss = rs.scope_spans.add()
        ss.scope.name = SCOPE_NAME
        ss.scope.version = __version__
        for item in items:
            if isinstance(item, Finished):
                process_span(ss.spans.add(), item, table, clock_offset_ns, now_ns)
            else:
                extra = process_attributes(item.process.pid) if process_attributes else None
                exchange_span(ss.spans.add(), item, clock_offset_ns, extra)
    return request
