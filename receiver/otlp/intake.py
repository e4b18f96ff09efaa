"""Where both transports hand decoded export requests to the pipeline, and the
one place the receiver's accepted/refused counters move.

The outcome of `deliver` is the pipeline's own: it returns when the next
consumer took the data and re-raises RefusedError, PermanentError or anything
else it raised, after counting the items as refused. Each transport turns that
into its status code.
"""

from __future__ import annotations

from typing import Mapping

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmtap.component import Consumer, Signal
from llmtap.pdata import count_items
from llmtap.telemetry import SelfTelemetry

RESPONSE_TYPES: dict[Signal, type[Message]] = {
    Signal.TRACES: ExportTraceServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.LOGS: ExportLogsServiceResponse,
}


class Intake:
    def __init__(self, receiver_id: str, telemetry: SelfTelemetry, consumers: Mapping[Signal, Consumer]):
        self.receiver_id = receiver_id
        self.telemetry = telemetry
        self.consumers = consumers

    @property
    def signals(self) -> list[Signal]:
        """The signals some pipeline takes from this receiver."""
        return [s for s in Signal if s in self.consumers]

    async def deliver(self, signal: Signal, request: Message, transport: str) -> None:
        n = count_items(signal, request)
        if n == 0:
            # As the collector: an empty request is answered, not pushed down the pipeline.
            return
        try:
            await self.consumers[signal].consume(signal, request)
        except BaseException:
            # Cancellation included: a request cut short at shutdown was not accepted.
            self.telemetry.count("receiver", "refused", signal, n, receiver=self.receiver_id, transport=transport)
            raise
        self.telemetry.count("receiver", "accepted", signal, n, receiver=self.receiver_id, transport=transport)
