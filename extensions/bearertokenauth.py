"""STUB: `bearertokenauth` extension — to be implemented."""

from dataclasses import dataclass

from llmtap.component import Factory, Kind, Signal


@dataclass
class Config:
    pass


def _create(*args, **kwargs):
    raise NotImplementedError("bearertokenauth")


factory = Factory(type="bearertokenauth", kind=Kind.EXTENSION, config_class=Config, create=_create, signals=frozenset(set()))
