"""What a processor that works span by span needs, as the collector's processorhelper
gives it: count what comes in and what goes out (llmtap_processor_incoming/outgoing_*), hand
every span with its resource to `process_span`, and pass the request on, changed in place.
Log requests go to `process_logs` (a no-op unless overridden); metrics pass through.

`process_span` must not raise for one bad span: each processor marks such a span its own way
and lets the rest of the batch through.
"""

from __future__ import annotations

from google.protobuf.message import Message
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap.component import Processor, Signal
from llmtap.pdata import count_items


class SpanProcessor(Processor):
    async def consume(self, signal: Signal, data: Message) -> None:
        telemetry, label = self.settings.telemetry, str(self.id)
        n = count_items(signal, data)
        telemetry.count("processor", "incoming", signal, n, processor=label)
        if signal == Signal.TRACES:
            self.process_traces(data)
        elif signal == Signal.LOGS:
            self.process_logs(data)
        telemetry.count("processor", "outgoing", signal, n, processor=label)
        await self.next.consume(signal, data)

    def process_traces(self, request: Message) -> None:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    self.process_span(span, rs.resource)

    def process_span(self, span: Span, resource: Resource) -> None:
        raise NotImplementedError

    def process_logs(self, request: Message) -> None:
        pass
