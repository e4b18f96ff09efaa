"""STUB: `forward` connector — to be implemented."""

from dataclasses import dataclass

from llmtap.component import Factory, Kind, Signal


@dataclass
class Config:
    pass


def _create(*args, **kwargs):
    raise NotImplementedError("forward")


factory = Factory(type="forward", kind=Kind.CONNECTOR, config_class=Config, create=_create, signals=frozenset({(s, s) for s in Signal}))
