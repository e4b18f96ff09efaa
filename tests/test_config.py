"""Config validation: every error before anything starts, all at once, each naming
the component ID (or pipeline) and the key path."""

from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from llmtap.component import ComponentID, Factory, Kind, Signal
from llmtap.config import ConfigError, PipelineID, parse
from llmtap.configtypes import ByteSize, Duration, decode_config, describe_fields, doc
from llmtap.registry import Registry

ALL = frozenset(Signal)


@dataclass
class TLS:
    insecure: bool = False
    ca_file: str = ""


@dataclass
class ExporterConfig:
    endpoint: str = ""
    timeout: Duration = Duration(5)
    headers: dict[str, str] = field(default_factory=dict)
    tls: TLS = field(default_factory=TLS)
    compression: Literal["gzip", "none"] = "gzip"

    def validate(self):
        return [] if self.endpoint else ["endpoint: must be set"]


@dataclass
class ReceiverConfig:
    endpoint: str = "localhost:4317"
    max_request_body_size: ByteSize = ByteSize(20 * 1024 * 1024)


@dataclass
class BatchConfig:
    send_batch_size: int = 8192
    timeout: Duration = field(default=Duration(0.2), metadata=doc("flush after"))


def _factory(kind, type_, config_class, signals=ALL):
    return Factory(type_, kind, config_class, create=lambda *a: None, signals=frozenset(signals))


REGISTRY = Registry([
    _factory(Kind.RECEIVER, "otlp", ReceiverConfig),
    _factory(Kind.PROCESSOR, "batch", BatchConfig),
    _factory(Kind.PROCESSOR, "spans_only", BatchConfig, {Signal.TRACES}),
    _factory(Kind.EXPORTER, "otlp", ExporterConfig),
    _factory(Kind.EXPORTER, "otlphttp", ExporterConfig),
    _factory(Kind.CONNECTOR, "forward", BatchConfig, {(s, s) for s in Signal}),
    _factory(Kind.EXTENSION, "health_check", ReceiverConfig),
])


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(yaml.safe_load(text), REGISTRY)
    return e.value.errors


GOOD = """
receivers:
  otlp:
  otlp/2: {endpoint: "0.0.0.0:4319", max_request_body_size: 4MiB}
processors:
  batch: {timeout: 1s}
exporters:
  otlp_grpc/collector: {endpoint: "collector:4317", tls: {insecure: true}}
  otlp_http: {endpoint: "https://api.honeycomb.io", headers: {x-honeycomb-team: secret}}
extensions:
  health_check:
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp, otlp/2], processors: [batch], exporters: [otlp_grpc/collector, otlp_http]}
    traces/raw: {receivers: [otlp], exporters: [otlp_http]}
    logs: {receivers: [otlp], processors: [batch], exporters: [otlp_http]}
"""


def test_a_good_config_decodes_to_typed_values():
    config = parse(yaml.safe_load(GOOD), REGISTRY)
    receivers = config.components[Kind.RECEIVER]
    assert receivers[ComponentID("otlp")] == ReceiverConfig()           # null → all defaults
    assert receivers[ComponentID("otlp", "2")].max_request_body_size == 4 * 1024 * 1024
    assert config.components[Kind.PROCESSOR][ComponentID("batch")].timeout == 1.0
    exporter = config.components[Kind.EXPORTER][ComponentID("otlp_grpc", "collector")]
    assert exporter.tls.insecure is True and exporter.timeout == 5.0
    # The aliases resolve to the otlp / otlphttp factories.
    assert config.factories[(Kind.EXPORTER, ComponentID("otlp_http"))].type == "otlphttp"
    assert config.factories[(Kind.EXPORTER, ComponentID("otlp_grpc", "collector"))].type == "otlp"
    assert set(config.pipelines) == {PipelineID(Signal.TRACES), PipelineID(Signal.TRACES, "raw"),
                                     PipelineID(Signal.LOGS)}
    assert config.pipelines[PipelineID(Signal.TRACES)].exporters == [
        ComponentID("otlp_grpc", "collector"), ComponentID("otlp_http")]
    assert config.warnings == []


def test_every_error_is_reported_at_once_with_id_and_key_path():
    errors = errors_of("""
receivers:
  otlp: {endpoint: 4317, unknown_key: 1}
  kafka:
processors:
  batch: {send_batch_size: "big", timeout: "soon"}
  spans_only:
exporters:
  otlp: {tls: {insecure: "yes"}, compression: zstd}
  otlphttp: {endpoint: "x", headers: [a, b]}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch, nope], exporters: [otlp]}
    logs: {receivers: [otlp], processors: [spans_only], exporters: [otlphttp, missing]}
    events: {receivers: [otlp], exporters: [otlp]}
    metrics: {receivers: []}
""")
    assert errors == [
        "receivers::otlp: endpoint: expected string, got int 4317",
        "receivers::otlp: unknown_key: unknown key (known keys: endpoint, max_request_body_size)",
        "receivers::kafka: unknown receiver type 'kafka' (known: otlp)",
        "processors::batch: send_batch_size: expected int, got string 'big'",
        "processors::batch: timeout: invalid duration 'soon' (expected e.g. 5s, 200ms, 1m30s)",
        "exporters::otlp: tls.insecure: expected bool, got string 'yes'",
        "exporters::otlp: compression: must be one of gzip, none; got 'zstd'",
        "exporters::otlphttp: headers: expected a map, got list",
        "service::pipelines::traces::processors[1]: processor 'nope' is not configured under 'processors'",
        "service::pipelines::logs::processors[0]: processor 'spans_only' does not support logs (it supports: traces)",
        "service::pipelines::logs::exporters[1]: exporter 'missing' is not configured under 'exporters'",
        "service::pipelines::events: unknown signal 'events' (pipelines are named traces, metrics or logs, "
        "optionally followed by /name)",
        "service::pipelines::metrics: must have at least one receiver",
        "service::pipelines::metrics: must have at least one exporter",
    ]


def test_cross_field_validation_runs_when_fields_decode():
    assert errors_of("""
receivers: {otlp: }
exporters: {otlp: {}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}}
""") == ["exporters::otlp: endpoint: must be set"]


def test_unused_components_are_warnings_not_errors():
    config = parse(yaml.safe_load("""
receivers: {otlp: , otlp/unused: }
processors: {batch: }
exporters: {otlp: {endpoint: x}}
extensions: {health_check: }
service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}}
"""), REGISTRY)
    assert config.warnings == [
        "receivers::otlp/unused: configured but not used in any pipeline",
        "processors::batch: configured but not used in any pipeline",
        "extensions::health_check: configured but not used in service::extensions",
    ]


@pytest.mark.parametrize("snippet, error", [
    ("bogus: {}", "bogus: unknown top-level key (known: receivers, processors, exporters, connectors, "
                  "extensions, service)"),
    ("receivers: [otlp]", "receivers: expected a map of component IDs to their configs"),
    ("receivers: {'otlp/': }", "receivers::otlp/: invalid component ID 'otlp/': must be 'type' or 'type/name'"),
    ("service: {extensions: [health_check]}",
     "service::extensions[0]: extension 'health_check' is not configured under 'extensions'"),
    ("service: {pipelines: {}}", "service::pipelines: at least one pipeline must be configured"),
    ("service: {shutdown_timeout: -1}", "service::shutdown_timeout: must not be negative"),
    ("service: {telemetry: {logs: {level: loud}}}",
     "service::telemetry.logs.level: must be one of debug, info, warn, error; got 'loud'"),
])
def test_structural_errors(snippet, error):
    base = yaml.safe_load("receivers: {otlp: }\nexporters: {otlp: {endpoint: x}}\n"
                          "service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}}")
    override = yaml.safe_load(snippet)
    for key, value in override.items():
        if key == "service" and isinstance(value, dict):
            base["service"].update(value)
        else:
            base[key] = value
    with pytest.raises(ConfigError) as e:
        parse(base, REGISTRY)
    assert error in e.value.errors


def test_a_component_listed_twice_in_one_pipeline():
    assert errors_of("""
receivers: {otlp: }
exporters: {otlp: {endpoint: x}}
service: {pipelines: {traces: {receivers: [otlp, otlp], exporters: [otlp]}}}
""") == ["service::pipelines::traces::receivers[1]: 'otlp' is listed twice"]


def test_connectors_join_pipelines_and_must_be_used_at_both_ends():
    config = parse(yaml.safe_load("""
receivers: {otlp: }
exporters: {otlp: {endpoint: x}}
connectors: {forward: }
service:
  pipelines:
    traces/in: {receivers: [otlp], exporters: [forward]}
    traces/out: {receivers: [forward], exporters: [otlp]}
"""), REGISTRY)
    assert config.pipelines[PipelineID(Signal.TRACES, "out")].receivers == [ComponentID("forward")]
    assert errors_of("""
receivers: {otlp: }
exporters: {otlp: {endpoint: x}}
connectors: {forward: }
service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp, forward]}}}
""") == ["connectors::forward: a connector must be used both as an exporter of one pipeline and as a "
         "receiver of another"]
    assert errors_of("""
receivers: {otlp: }
exporters: {otlp: {endpoint: x}}
connectors: {forward: }
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [forward]}
    logs: {receivers: [forward], exporters: [otlp]}
""") == ["connectors::forward: used as an exporter of a traces pipeline but is not the receiver of any "
         "pipeline it can feed from traces",
         "connectors::forward: used as a receiver of a logs pipeline but is not the exporter of any "
         "pipeline it can feed logs from"]


def test_durations_and_sizes():
    @dataclass
    class C:
        d: Duration = Duration(0)
        s: ByteSize = ByteSize(0)

    for text, seconds in [("5s", 5), ("200ms", 0.2), ("1m30s", 90), ("1h", 3600), (2, 2), (0.5, 0.5), ("0", 0)]:
        assert decode_config(C, {"d": text}) == (C(d=Duration(seconds)), [])
    for text, size in [(1024, 1024), ("20MiB", 20 * 1024 * 1024), ("1KB", 1000), ("512 KiB", 512 * 1024)]:
        assert decode_config(C, {"s": text}) == (C(s=ByteSize(size)), [])
    assert decode_config(C, {"d": "5 parsecs", "s": "lots"})[1] == [
        "d: invalid duration '5 parsecs' (expected e.g. 5s, 200ms, 1m30s)",
        "s: invalid size 'lots' (expected e.g. 20971520, 20MiB, 512KiB)",
    ]


def test_reference_rows_are_generated_from_the_config_class():
    rows = {key: (type_, default, text) for key, type_, default, text in describe_fields(ExporterConfig)}
    assert rows["timeout"] == ("duration", "5s", "")
    assert rows["tls.insecure"] == ("bool", "false", "")
    assert rows["compression"] == ("gzip \\| none", "gzip", "")
    assert describe_fields(BatchConfig)[1] == ("timeout", "duration", "0.2s", "flush after")
