"""OTLP/gRPC: the opentelemetry-proto Trace/Metrics/Logs services on a grpc.aio server.

Only the services of signals that some pipeline takes are registered, so a call
to another one gets UNIMPLEMENTED. Requests arrive as raw bytes and are parsed
here, so a malformed message gets INVALID_ARGUMENT naming what was wrong rather
than grpc's opaque deserialization failure. Outcomes, as the OTLP spec says:
refused → UNAVAILABLE (RESOURCE_EXHAUSTED when the pipeline throttles), both with
RetryInfo; bad data → INVALID_ARGUMENT; a failed authenticator → UNAUTHENTICATED
before the message is even parsed. grpc itself enforces max_recv_msg_size_mib
(RESOURCE_EXHAUSTED) and holds at most that much per request in memory.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from llmtap.component import PermanentError, RefusedError, Signal
from llmtap.pdata import parse_protobuf
from llmtap.receiver.otlp import rpcstatus
from llmtap.receiver.otlp.config import DEFAULT_MAX_RECV_MSG_SIZE_MIB, GrpcConfig
from llmtap.receiver.otlp.endpoint import format_endpoint, parse_endpoint
from llmtap.receiver.otlp.intake import RESPONSE_TYPES, Intake
from llmtap.receiver.otlp.tls import grpc_credentials

SERVICE_NAMES = {
    Signal.TRACES: trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
    Signal.METRICS: metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
    Signal.LOGS: logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
}


class _RequireAuthentication(grpc.aio.ServerInterceptor):
    """Turns away calls whose metadata the authenticator rejects, before any handler runs."""

    def __init__(self, authenticator: Any):
        self.authenticator = authenticator
        self._deny = grpc.unary_unary_rpc_method_handler(self._unauthenticated)

    async def intercept_service(self, continuation, handler_call_details):
        metadata = {key.lower(): value for key, value in handler_call_details.invocation_metadata or ()
                    if isinstance(value, str)}
        if self.authenticator.authenticate(metadata):
            return await continuation(handler_call_details)
        return self._deny

    @staticmethod
    async def _unauthenticated(request: bytes, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials")


class GrpcServer:
    def __init__(self, config: GrpcConfig, intake: Intake, authenticator: Any, logger: logging.Logger):
        self.config = config
        self.intake = intake
        self.authenticator = authenticator
        self.logger = logger
        self.endpoint = ""  # host:port actually bound, once started
        self._server: grpc.aio.Server | None = None

    async def start(self) -> str:
        max_mib = self.config.max_recv_msg_size_mib or DEFAULT_MAX_RECV_MSG_SIZE_MIB
        # grpc sets SO_REUSEPORT by default: a second process on the same port would silently get
        # half the traffic instead of failing to start.
        options = [("grpc.max_receive_message_length", max_mib * 1024 * 1024), ("grpc.so_reuseport", 0)]
        if self.config.max_concurrent_streams:
            options.append(("grpc.max_concurrent_streams", self.config.max_concurrent_streams))
        interceptors = [_RequireAuthentication(self.authenticator)] if self.authenticator else []
        credentials = grpc_credentials(self.config.tls) if self.config.tls.enabled else None
        server = grpc.aio.server(options=options, interceptors=interceptors)
        for signal in self.intake.signals:
            server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
                SERVICE_NAMES[signal], {"Export": self._export_handler(signal)})])
        host, port = parse_endpoint(self.config.endpoint)
        address = format_endpoint(host or "::", port)
        try:
            bound = (server.add_secure_port(address, credentials) if credentials
                     else server.add_insecure_port(address))
        except RuntimeError as e:
            raise OSError(f"cannot listen on {self.config.endpoint}: {e}") from None
        if not bound:
            raise OSError(f"cannot listen on {self.config.endpoint}")
        await server.start()
        self._server = server
        self.endpoint = format_endpoint(host or "::", bound)
        return self.endpoint

    async def stop(self, grace: float) -> None:
        """Refuse new calls at once; calls already running get `grace` seconds to finish."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    def _export_handler(self, signal: Signal) -> grpc.RpcMethodHandler:
        response_type = RESPONSE_TYPES[signal]

        async def export(body: bytes, context: grpc.aio.ServicerContext) -> Message:
            # Failures set the status instead of raising it with context.abort: grpc keeps a raised
            # abort in a reference cycle with this frame, which would hold the request until the
            # next garbage collection — under a memory_limiter refusal, exactly the wrong time.
            try:
                request = parse_protobuf(signal, body)
                await self.intake.deliver(signal, request, "grpc")
            except PermanentError as e:
                _fail(context, grpc.StatusCode.INVALID_ARGUMENT, str(e))
            except RefusedError as e:
                _fail_refused(context, e)
            except Exception:
                self.logger.exception("OTLP/gRPC export failed unexpectedly", extra={"fields": {
                    "signal": str(signal), "peer": context.peer()}})
                _fail(context, grpc.StatusCode.INTERNAL, "internal error while processing the request")
            return response_type()

        # No request deserializer: the handler parses, so it can say what was malformed.
        return grpc.unary_unary_rpc_method_handler(export, response_serializer=response_type.SerializeToString)


def _fail(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str,
          trailers: tuple[tuple[str, bytes], ...] = ()) -> None:
    context.set_code(code)
    context.set_details(message)
    if trailers:
        context.set_trailing_metadata(trailers)


def _fail_refused(context: grpc.aio.ServicerContext, error: RefusedError) -> None:
    code = grpc.StatusCode.RESOURCE_EXHAUSTED if error.throttle else grpc.StatusCode.UNAVAILABLE
    details = rpcstatus.status(code.value[0], str(error), error.retry_after)
    _fail(context, code, str(error), (
        (rpcstatus.STATUS_DETAILS_KEY, details.SerializeToString()),
        (rpcstatus.RETRY_INFO_KEY, rpcstatus.retry_info(error.retry_after).SerializeToString()),
    ))
