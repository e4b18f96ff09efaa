"""Where component types come from: llmtap's built-ins, then every factory that an
installed package registers under the `llmtap.components` entry-point group.

A plugin's pyproject.toml:

    [project.entry-points."llmtap.components"]
    my_processor = "my_package.processor:factory"

The entry point must load a `Factory` (or a list of them).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from llmtap.component import Factory, Kind

ENTRY_POINT_GROUP = "llmtap.components"

_BUILTIN_MODULES = [
    "llmtap.receiver.otlp",
    "llmtap.receiver.ebpf",
    "llmtap.processors.batch",
    "llmtap.processors.memory_limiter",
    "llmtap.processors.sse_reassembly",
    "llmtap.processors.genai_semconv",
    "llmtap.processors.token_count",
    "llmtap.processors.cost_attribution",
    "llmtap.processors.agent_session",
    "llmtap.processors.pii_redaction",
    "llmtap.exporters.otlp",
    "llmtap.exporters.otlphttp",
    "llmtap.exporters.file",
    "llmtap.exporters.debug",
    "llmtap.exporters.prometheus",
    "llmtap.connectors.forward",
    "llmtap.connectors.genai_metrics",
    "llmtap.extensions.health_check",
    "llmtap.extensions.bearertokenauth",
]

# The collector renamed its OTLP exporters; both spellings work.
ALIASES = {Kind.EXPORTER: {"otlp_grpc": "otlp", "otlp_http": "otlphttp"}}

log = logging.getLogger("llmtap.registry")


class Registry:
    def __init__(self, factories: list[Factory] = ()):
        self._factories: dict[tuple[Kind, str], Factory] = {}
        for factory in factories:
            self.add(factory)

    def add(self, factory: Factory) -> None:
        if not isinstance(factory, Factory):
            raise TypeError(f"not a llmtap Factory: {factory!r}")
        key = (factory.kind, factory.type)
        if key in self._factories and self._factories[key] is not factory:
            raise ValueError(f"{factory.kind} type {factory.type!r} is registered twice")
        self._factories[key] = factory

    def get(self, kind: Kind, type_: str) -> Factory | None:
        type_ = ALIASES.get(kind, {}).get(type_, type_)
        return self._factories.get((kind, type_))

    def of_kind(self, kind: Kind) -> list[Factory]:
        return sorted((f for (k, _), f in self._factories.items() if k == kind), key=lambda f: f.type)

    def all(self) -> list[Factory]:
        return sorted(self._factories.values(), key=lambda f: (list(Kind).index(f.kind), f.type))


def _load_plugins(registry: Registry) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            for factory in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
                registry.add(factory)
        except Exception as e:  # a broken plugin must not take the built-ins down
            log.error("cannot load component plugin %s (%s): %s", ep.name, ep.value, e)


def default_registry() -> Registry:
    registry = Registry(importlib.import_module(m).factory for m in _BUILTIN_MODULES)
    _load_plugins(registry)
    return registry
