"""STUB: `otlphttp` exporter — to be implemented."""

from dataclasses import dataclass

from llmtap.component import Factory, Kind, Signal


@dataclass
class Config:
    pass


def _create(*args, **kwargs):
    raise NotImplementedError("otlphttp")


factory = Factory(type="otlphttp", kind=Kind.EXPORTER, config_class=Config, create=_create, signals=frozenset({Signal.TRACES, Signal.METRICS, Signal.LOGS}))
