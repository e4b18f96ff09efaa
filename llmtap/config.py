"""The service config: the collector's file format, decoded and validated as a
whole before anything starts. Every problem is reported at once, each naming the
component ID (or pipeline) and the key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llmtap.component import ComponentID, Factory, Kind, Signal
from llmtap.configtypes import Duration, decode_config, doc
from llmtap.registry import Registry

SECTIONS = {
    "receivers": Kind.RECEIVER,
    "processors": Kind.PROCESSOR,
    "exporters": Kind.EXPORTER,
    "connectors": Kind.CONNECTOR,
    "extensions": Kind.EXTENSION,
}


class ConfigError(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid configuration:\n" + "\n".join(f"  * {e}" for e in errors))


@dataclass
class MetricsTelemetryConfig:
    address: str = field(default="localhost:8888", metadata=doc(
        "Where llmtap serves its own Prometheus metrics (`/metrics`); empty disables."))
    level: Literal["none", "basic", "normal", "detailed"] = field(default="normal", metadata=doc(
        "`none` turns self-metrics off."))


@dataclass
class LogsTelemetryConfig:
    level: Literal["debug", "info", "warn", "error"] = "info"
    encoding: Literal["console", "json"] = field(default="console", metadata=doc(
        "`console`: readable lines with the structured fields appended; `json`: one JSON object per line."))


@dataclass
class TelemetryConfig:
    metrics: MetricsTelemetryConfig = field(default_factory=MetricsTelemetryConfig)
    logs: LogsTelemetryConfig = field(default_factory=LogsTelemetryConfig)


@dataclass
class _RawPipeline:
    receivers: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)


@dataclass
class _RawService:
    extensions: list[str] = field(default_factory=list)
    pipelines: dict[str, _RawPipeline] = field(default_factory=dict)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    shutdown_timeout: Duration = field(default=Duration(30), metadata=doc(
        "How long a SIGTERM/SIGINT waits for accepted data to be exported before dropping (and counting) the rest."))


@dataclass(frozen=True)
class PipelineID:
    signal: Signal
    name: str = ""

    def __str__(self) -> str:
        return f"{self.signal}/{self.name}" if self.name else str(self.signal)


@dataclass
class Pipeline:
    id: PipelineID
    receivers: list[ComponentID]
    processors: list[ComponentID]
    exporters: list[ComponentID]


@dataclass
class Config:
    components: dict[Kind, dict[ComponentID, Any]]
    factories: dict[tuple[Kind, ComponentID], Factory]
    pipelines: dict[PipelineID, Pipeline]
    extensions: list[ComponentID]
    telemetry: TelemetryConfig
    shutdown_timeout: float
    warnings: list[str] = field(default_factory=list)


def parse(raw: dict, registry: Registry) -> Config:
    """Decode and validate a merged, expanded config map. Raises ConfigError."""
    errors: list[str] = []
    warnings: list[str] = []
    components: dict[Kind, dict[ComponentID, Any]] = {k: {} for k in Kind}
    factories: dict[tuple[Kind, ComponentID], Factory] = {}

    for key in raw:
        if key not in SECTIONS and key != "service":
            errors.append(f"{key}: unknown top-level key (known: {', '.join([*SECTIONS, 'service'])})")

    for section, kind in SECTIONS.items():
        entries = raw.get(section) or {}
        if not isinstance(entries, dict):
            errors.append(f"{section}: expected a map of component IDs to their configs")
            continue
        for id_text, comp_raw in entries.items():
            try:
                cid = ComponentID.parse(str(id_text))
            except ValueError as e:
                errors.append(f"{section}::{id_text}: {e}")
                continue
            factory = registry.get(kind, cid.type)
            if factory is None:
                known = ", ".join(f.type for f in registry.of_kind(kind)) or "none"
                errors.append(f"{section}::{cid}: unknown {kind} type {cid.type!r} (known: {known})")
                continue
            comp_config, comp_errors = decode_config(factory.config_class, comp_raw)
            errors.extend(f"{section}::{cid}: {e}" for e in comp_errors)
            components[kind][cid] = comp_config
            factories[(kind, cid)] = factory

    service, service_errors = decode_config(_RawService, raw.get("service"))
    errors.extend(f"service::{e}" for e in service_errors)

    extensions = []
    for i, text in enumerate(service.extensions):
        cid = _ref(text, f"service::extensions[{i}]", errors)
        if cid is not None and cid not in components[Kind.EXTENSION]:
            errors.append(f"service::extensions[{i}]: extension {str(cid)!r} is not configured under 'extensions'")
        elif cid is not None:
            extensions.append(cid)

    pipelines = _parse_pipelines(service.pipelines, components, factories, errors)
    if not pipelines and "service" in raw and not service_errors:
        errors.append("service::pipelines: at least one pipeline must be configured")

    used = {(kind, cid) for p in pipelines.values() for kind, ids in
            ((Kind.RECEIVER, p.receivers), (Kind.PROCESSOR, p.processors), (Kind.EXPORTER, p.exporters))
            for cid in ids}
    used |= {(Kind.EXTENSION, cid) for cid in extensions}
    for kind, by_id in components.items():
        for cid in by_id:
            if kind is Kind.CONNECTOR:
                as_exporter = (Kind.EXPORTER, cid) in used
                as_receiver = (Kind.RECEIVER, cid) in used
                if as_exporter != as_receiver:
                    errors.append(f"connectors::{cid}: a connector must be used both as an exporter "
                                  f"of one pipeline and as a receiver of another")
                elif not as_exporter:
                    warnings.append(f"connectors::{cid}: configured but not used in any pipeline")
                else:
                    errors.extend(_connector_pairing(cid, factories[(kind, cid)], pipelines))
            elif (kind, cid) not in used:
                section = next(s for s, k in SECTIONS.items() if k is kind)
                where = "service::extensions" if kind is Kind.EXTENSION else "any pipeline"
                warnings.append(f"{section}::{cid}: configured but not used in {where}")

    if errors:
        raise ConfigError(errors)
    return Config(components, factories, pipelines, extensions, service.telemetry,
                  float(service.shutdown_timeout), warnings)


def _ref(text: str, where: str, errors: list[str]) -> ComponentID | None:
    try:
        return ComponentID.parse(text)
    except ValueError as e:
        errors.append(f"{where}: {e}")
        return None


def _parse_pipelines(raw_pipelines, components, factories, errors) -> dict[PipelineID, Pipeline]:
    pipelines = {}
    for pid_text, raw in raw_pipelines.items():
        signal_text, _, name = pid_text.partition("/")
        where = f"service::pipelines::{pid_text}"
        try:
            pid = PipelineID(Signal(signal_text), name)
        except ValueError:
            errors.append(f"{where}: unknown signal {signal_text!r} (pipelines are named traces, metrics "
                          f"or logs, optionally followed by /name)")
            continue
        lists = {}
        for role, kind in (("receivers", Kind.RECEIVER), ("processors", Kind.PROCESSOR),
                           ("exporters", Kind.EXPORTER)):
            ids = []
            for i, text in enumerate(getattr(raw, role)):
                cid = _ref(text, f"{where}::{role}[{i}]", errors)
                if cid is None:
                    continue
                if cid in ids:
                    errors.append(f"{where}::{role}[{i}]: {str(cid)!r} is listed twice")
                    continue
                ids.append(cid)
                _check_reference(pid, role, kind, cid, components, factories, f"{where}::{role}[{i}]", errors)
            lists[role] = ids
        if not raw.receivers:
            errors.append(f"{where}: must have at least one receiver")
        if not raw.exporters:
            errors.append(f"{where}: must have at least one exporter")
        pipelines[pid] = Pipeline(pid, lists["receivers"], lists["processors"], lists["exporters"])
    return pipelines


def _connector_pairing(cid: ComponentID, factory: Factory, pipelines: dict) -> list[str]:
    """Every signal a connector takes in must go out to some pipeline it feeds, and the other way round."""
    exported = {p.id.signal for p in pipelines.values() if cid in p.exporters}
    received = {p.id.signal for p in pipelines.values() if cid in p.receivers}
    errors = []
    for signal in sorted(exported):
        if not any(a == signal and b in received for a, b in factory.signals):
            errors.append(f"connectors::{cid}: used as an exporter of a {signal} pipeline but is not the "
                          f"receiver of any pipeline it can feed from {signal}")
    for signal in sorted(received):
        if not any(b == signal and a in exported for a, b in factory.signals):
            errors.append(f"connectors::{cid}: used as a receiver of a {signal} pipeline but is not the "
                          f"exporter of any pipeline it can feed {signal} from")
    return errors


def _check_reference(pid, role, kind, cid, components, factories, where, errors) -> None:
    factory = factories.get((kind, cid))
    connector = factories.get((Kind.CONNECTOR, cid))
    if factory is None and connector is not None and kind in (Kind.RECEIVER, Kind.EXPORTER):
        # A connector is an exporter of one pipeline and a receiver of another:
        # check that some signal pair it supports fits this end.
        pairs = connector.signals
        fits = any((a if kind is Kind.EXPORTER else b) == pid.signal for a, b in pairs)
        if not fits:
            errors.append(f"{where}: connector {str(cid)!r} cannot be used as a {kind} of a {pid.signal} pipeline")
        return
    if factory is None:
        if cid not in components[kind]:
            section = {Kind.RECEIVER: "receivers", Kind.PROCESSOR: "processors", Kind.EXPORTER: "exporters"}[kind]
            errors.append(f"{where}: {kind} {str(cid)!r} is not configured under '{section}'")
        return
    if pid.signal not in factory.signals:
        supported = ", ".join(sorted(factory.signals)) or "none"
        errors.append(f"{where}: {kind} {str(cid)!r} does not support {pid.signal} (it supports: {supported})")
