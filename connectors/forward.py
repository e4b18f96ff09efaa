"""`forward` connector: joins pipelines of the same signal, as the collector's
forwardconnector does. It is an exporter at the end of some pipelines and the
receiver of others; whatever it is given goes, unchanged, to every pipeline it
feeds (each gets its own copy when there are several). Refusals and errors of
those pipelines go back to the sender. No buffering.
"""

from __future__ import annotations

from google.protobuf.message import Message

from llmtap.component import Connector, EmptyConfig, Factory, Kind, PermanentError, Signal, Stability


class ForwardConnector(Connector):
    async def consume(self, signal: Signal, data: Message) -> None:
        # Looked up per call: the service fills `consumers` in after creating us.
        consumer = self.consumers.get(signal)
        if consumer is None:
            raise PermanentError(f"connector {self.id} feeds no {signal} pipeline")
        await consumer.consume(signal, data)


factory = Factory(
    type="forward",
    kind=Kind.CONNECTOR,
    config_class=EmptyConfig,
    create=ForwardConnector,
    signals=frozenset((s, s) for s in Signal),
    stability=Stability.BETA,
    description="Passes data from the pipelines it exports from to the pipelines it receives for, same signal",
)
