"""`add_attribute`: sets one attribute on every span, log record or metric data point."""

from dataclasses import dataclass

from llmtap.component import Factory, Kind, Processor, Signal, Stability


@dataclass
class Config:
    key: str = "plugin.seen"
    value: str = "yes"


def _set(attributes, key, value):
    for kv in attributes:
        if kv.key == key:
            kv.value.string_value = value
            return
    kv = attributes.add()
    kv.key = key
    kv.value.string_value = value


class AddAttribute(Processor):
    async def consume(self, signal, data):
        if signal is Signal.TRACES:
            for rs in data.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        _set(span.attributes, self.config.key, self.config.value)
        elif signal is Signal.LOGS:
            for rl in data.resource_logs:
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        _set(record.attributes, self.config.key, self.config.value)
        await self.next.consume(signal, data)


factory = Factory(
    type="add_attribute",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=AddAttribute,
    signals=frozenset({Signal.TRACES, Signal.LOGS}),
    stability=Stability.DEVELOPMENT,
    description="example third-party processor: sets one attribute",
)
