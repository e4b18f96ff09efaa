"""The component model: what every receiver, processor, exporter, connector and
extension looks like, as in the OpenTelemetry Collector.

A component has a type name, a typed config (a dataclass with defaults), a
factory that creates it, and `start`/`shutdown`. Data moves between components
as OTLP export requests (`ExportTraceServiceRequest`, `ExportMetricsServiceRequest`,
`ExportLogsServiceRequest`) through one coroutine, `Consumer.consume(signal, data)`.
One method for all three signals (rather than one per signal, as in Go) because
batching, queueing and fan-out are the same for all of them; a component that
handles one signal only says so in its factory and the config is checked against it.
"""

from __future__ import annotations

import abc
import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from google.protobuf.message import Message

if TYPE_CHECKING:
    from llmtap.telemetry import SelfTelemetry


class Signal(enum.StrEnum):
    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


class Kind(enum.StrEnum):
    RECEIVER = "receiver"
    PROCESSOR = "processor"
    EXPORTER = "exporter"
    CONNECTOR = "connector"
    EXTENSION = "extension"


class Stability(enum.StrEnum):
    DEVELOPMENT = "development"
    ALPHA = "alpha"
    BETA = "beta"
    STABLE = "stable"


@dataclass(frozen=True, order=True)
class ComponentID:
    """`type[/name]`, as the collector spells component IDs."""

    type: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> ComponentID:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"invalid component ID {text!r}: must be 'type' or 'type/name'")
        type_, sep, name = text.strip().partition("/")
        if not type_ or (sep and not name) or "/" in name:
            raise ValueError(f"invalid component ID {text!r}: must be 'type' or 'type/name'")
        return cls(type_, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


class RefusedError(Exception):
    """The pipeline cannot take this data now; the sender should retry later.

    Receivers turn it into HTTP 503 (or 429 when `throttle`) with Retry-After, and
    gRPC UNAVAILABLE (or RESOURCE_EXHAUSTED with RetryInfo when `throttle`).
    """

    def __init__(self, message: str, *, retry_after: float = 1.0, throttle: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.throttle = throttle


class PermanentError(Exception):
    """The data is bad and retrying cannot help (HTTP 400, gRPC INVALID_ARGUMENT)."""


class Consumer(abc.ABC):
    """Anything that takes OTLP data: a processor, an exporter, a fan-out."""

    @abc.abstractmethod
    async def consume(self, signal: Signal, data: Message) -> None:
        """Take ownership of `data`. Raise RefusedError or PermanentError to refuse it."""


@dataclass
class Settings:
    """What a component gets at creation besides its config."""

    id: ComponentID
    kind: Kind
    telemetry: SelfTelemetry
    logger: logging.Logger


class Host(abc.ABC):
    """What a component can see of the running service."""

    # "starting" → "ready" → "stopping"; the health_check extension reports it.
    status: str = "starting"
    # Loop time by which shutdown must be over; set when shutdown begins.
    shutdown_deadline: float | None = None

    @abc.abstractmethod
    def extension(self, id: ComponentID) -> Any:
        """The started extension with this ID, or KeyError."""


class Component:
    """Base of every component: a lifecycle and the settings it was made with."""

    def __init__(self, settings: Settings, config: Any):
        self.settings = settings
        self.config = config
        self.id = settings.id
        self.logger = settings.logger

    async def start(self, host: Host) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class Receiver(Component):
    """Produces data. `consumers` holds the next consumer per signal it feeds."""

    def __init__(self, settings: Settings, config: Any, consumers: Mapping[Signal, Consumer]):
        super().__init__(settings, config)
        self.consumers = dict(consumers)


class Processor(Component, Consumer):
    """Transforms data of one pipeline and hands it to `next`.

    A processor instance belongs to one pipeline (as in the collector), so state
    such as a batch is never shared between pipelines.
    """

    def __init__(self, settings: Settings, config: Any, signal: Signal, next: Consumer):
        super().__init__(settings, config)
        self.signal = signal
        self.next = next


class Exporter(Component, Consumer):
    """Ships data out. One instance per ID, shared by every pipeline that lists it."""


class Connector(Exporter):
    """An exporter of some pipelines that is the receiver of others."""

    def __init__(self, settings: Settings, config: Any, consumers: Mapping[Signal, Consumer]):
        super().__init__(settings, config)
        self.consumers = dict(consumers)


class Extension(Component):
    """Not in a pipeline: health checks, authenticators."""


@dataclass(frozen=True)
class Factory:
    """How to make one component type.

    `signals` lists the signals the component handles; for a connector, the
    (exported-from, received-into) signal pairs it supports.
    """

    type: str
    kind: Kind
    config_class: type
    create: Callable[..., Component]
    signals: frozenset = frozenset()
    stability: Stability = Stability.ALPHA
    description: str = ""

    def default_config(self) -> Any:
        return self.config_class()


@dataclass
class EmptyConfig:
    """For components that take no settings."""
