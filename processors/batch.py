"""STUB: `batch` processor — to be implemented."""

from dataclasses import dataclass

from llmtap.component import Factory, Kind, Signal


@dataclass
class Config:
    pass


def _create(*args, **kwargs):
    raise NotImplementedError("batch")


factory = Factory(type="batch", kind=Kind.PROCESSOR, config_class=Config, create=_create, signals=frozenset({Signal.TRACES, Signal.METRICS, Signal.LOGS}))
