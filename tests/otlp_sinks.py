"""OTLP servers for the exporter tests, built directly on the opentelemetry-proto
gRPC service stubs (GrpcSink) and on aiohttp (HttpSink). Each records every
request it gets and answers from a script: `sink.script(Reply(...), ...)` sets
the answers to the next requests in order; once the script runs out, every
request succeeds. Both listen on 127.0.0.1; port 0 (the default) picks a free one.

    sink = await GrpcSink().start()
    sink.script(Reply(code=grpc.StatusCode.UNAVAILABLE))   # first request fails, the rest succeed
    ... export to sink.endpoint ...
    await sink.wait_for_items(10)
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from llmtap.component import Signal
from llmtap.pdata import count_items, parse_json, parse_protobuf

RESPONSES = {
    Signal.TRACES: trace_service_pb2.ExportTraceServiceResponse,
    Signal.METRICS: metrics_service_pb2.ExportMetricsServiceResponse,
    Signal.LOGS: logs_service_pb2.ExportLogsServiceResponse,
}
GRPC_METHODS = {
    Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    Signal.LOGS: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
REJECTED_FIELD = {Signal.TRACES: "rejected_spans", Signal.METRICS: "rejected_data_points",
                  Signal.LOGS: "rejected_log_records"}


def free_port() -> int:
    """A port nobody listens on now (for a target that is down at first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    """One scripted answer. The default is a plain success."""

    code: grpc.StatusCode | None = None  # gRPC: fail with this status
    status: int = 200                    # HTTP: answer with this status
    message: str = ""                    # the error's message (google.rpc.Status in HTTP bodies)
    retry_delay: float | None = None     # gRPC: attach a RetryInfo with this delay
    retry_after: str | None = None       # HTTP: Retry-After header
    headers: dict[str, str] = field(default_factory=dict)  # HTTP: more response headers
    rejected: int = 0                    # partial success: items rejected
    error_message: str = ""              # partial success: the server's explanation
    hang: bool = False                   # never answer

    @property
    def accepted(self) -> bool:
        return not self.hang and self.code is None and 200 <= self.status < 300


@dataclass
class Received:
    signal: Signal
    request: Message
    body: bytes              # HTTP: the body after Content-Encoding was undone; gRPC: the request re-serialized
    headers: dict[str, str]  # HTTP headers, or gRPC metadata
    at: float                # loop time of arrival
    reply: Reply
    path: str                # HTTP path, or the gRPC method


@dataclass
class _Sink:
    received: list[Received] = field(default_factory=list)
    _script: deque = field(default_factory=deque)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def _record(self, signal: Signal, request: Message, body: bytes, headers: dict[str, str], path: str) -> Reply:
        reply = self._script.popleft() if self._script else Reply()
        self.received.append(Received(signal, request, body, headers,
                                      asyncio.get_running_loop().time(), reply, path))
        self._arrived.set()
        return reply

    def accepted(self, signal: Signal | None = None) -> list[Received]:
        """Requests that were answered with a success (partial or not)."""
        return [r for r in self.received if r.reply.accepted and (signal is None or r.signal == signal)]

    def items(self, signal: Signal | None = None) -> int:
        return sum(count_items(r.signal, r.request) for r in self.accepted(signal))

    async def _until(self, reached, timeout: float) -> None:
        async def wait():
            while not reached():
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(wait(), timeout)

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Until `n` requests arrived, whatever they were answered."""
        await self._until(lambda: len(self.received) >= n, timeout)

    async def wait_for_items(self, n: int, timeout: float = 5.0) -> None:
        """Until `n` items were accepted."""
        await self._until(lambda: self.items() >= n, timeout)


def _partial_success_response(signal: Signal, reply: Reply) -> Message:
    response = RESPONSES[signal]()
    if reply.rejected or reply.error_message:
        setattr(response.partial_success, REJECTED_FIELD[signal], reply.rejected)
        response.partial_success.error_message = reply.error_message
    return response


class _Servicer:
    """One servicer per signal; the generated add_*_to_server functions only need Export."""

    def __init__(self, sink: GrpcSink, signal: Signal):
        self.sink = sink
        self.signal = signal

    async def Export(self, request, context: grpc.aio.ServicerContext):
        metadata = {key: value for key, value in context.invocation_metadata() or ()}
        reply = self.sink._record(self.signal, request, request.SerializeToString(), metadata,
                                  GRPC_METHODS[self.signal])
        if reply.hang:
            await asyncio.Event().wait()  # until the client gives up and the call is cancelled
        if reply.code is not None:
            trailers = ()
            if reply.retry_delay is not None:
                status = status_pb2.Status(code=reply.code.value[0], message=reply.message)
                info = error_details_pb2.RetryInfo()
                info.retry_delay.FromNanoseconds(int(reply.retry_delay * 1e9))
                status.details.add().Pack(info)
                trailers = (("grpc-status-details-bin", status.SerializeToString()),)
            await context.abort(reply.code, reply.message, trailing_metadata=trailers)
        return _partial_success_response(self.signal, reply)


class GrpcSink(_Sink):
    """An OTLP/gRPC server. `tls=(cert_file, key_file)` serves TLS; `client_ca`
    additionally requires a client certificate signed by that CA."""

    def __init__(self, tls: tuple[str, str] | None = None, client_ca: str | None = None):
        super().__init__()
        self.tls = tls
        self.client_ca = client_ca
        self.server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> GrpcSink:
        # No SO_REUSEPORT: a second server must not share a port another test still holds.
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self, Signal.TRACES), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(self, Signal.METRICS), self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Servicer(self, Signal.LOGS), self.server)
        address = f"127.0.0.1:{port}"
        if self.tls is None:
            self.port = self.server.add_insecure_port(address)
        else:
            cert, key = (Path(path).read_bytes() for path in self.tls)
            ca = Path(self.client_ca).read_bytes() if self.client_ca else None
            credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                                      require_client_auth=ca is not None)
            self.port = self.server.add_secure_port(address, credentials)
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)
            self.server = None


class HttpSink(_Sink):
    """An OTLP/HTTP server on /v1/traces, /v1/metrics, /v1/logs (and /custom/<signal>
    for tests of the per-signal endpoint keys). Protobuf or JSON, answering in the
    request's encoding; aiohttp undoes a gzip Content-Encoding (and answers 400 when
    the body is not gzip)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        super().__init__()
        self.ssl_context = ssl_context
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> HttpSink:
        app = web.Application()
        for signal in Signal:
            app.router.add_post(f"/v1/{signal}", self._handler(signal))
            app.router.add_post(f"/custom/{signal}", self._handler(signal))
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port, ssl_context=self.ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    def _handler(self, signal: Signal):
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            as_json = request.content_type == "application/json"
            message = parse_json(signal, body) if as_json else parse_protobuf(signal, body)
            reply = self._record(signal, message, body, dict(request.headers), request.path)
            if reply.hang:
                await asyncio.Event().wait()
            headers = {**reply.headers, **({"Retry-After": reply.retry_after} if reply.retry_after else {})}
            if 200 <= reply.status < 300:
                answer = _partial_success_response(signal, reply)
            else:
                answer = status_pb2.Status(code=3 if reply.status < 500 else 14, message=reply.message)
            if as_json:
                return web.Response(status=reply.status, headers=headers, content_type="application/json",
                                    text=json_format.MessageToJson(answer))
            return web.Response(status=reply.status, headers=headers, content_type="application/x-protobuf",
                                body=answer.SerializeToString())
        return handle

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
