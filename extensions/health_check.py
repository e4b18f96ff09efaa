"""STUB: `health_check` extension — to be implemented."""

from dataclasses import dataclass

from llmtap.component import Factory, Kind, Signal


@dataclass
class Config:
    pass


def _create(*args, **kwargs):
    raise NotImplementedError("health_check")


factory = Factory(type="health_check", kind=Kind.EXTENSION, config_class=Config, create=_create, signals=frozenset(set()))
