"""`llmtap run` with the ebpf receiver, as users run it: the two placements of
DESIGN.md (in-process, and split into a privileged capture process feeding an
unprivileged pipeline process), the built-in default config, and what happens
on a machine that cannot run eBPF.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ebpf_support import require_ebpf
from llm_server import LlmServer
from llm_traffic import SECRET_MARKER, run_client
from otlp_sinks import free_port

ROOT = Path(__file__).resolve().parent.parent
LLMTAP = [sys.executable, "-m", "llmtap.cli"]
TEST_SERVER = {"extra_endpoints": [{"host": "localhost", "path": "/v1/*"}]}


class LlmtapProcess:
    started: list["LlmtapProcess"] = []  # every one is stopped when its test ends, passed or failed

    def __init__(self, args: list[str], env: dict[str, str], user: str | None = None):
        prefix = ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--clear-groups"] if user else []
        self.stderr_path = Path(env["LLMTAP_TEST_DIR"]) / f"stderr-{time.monotonic_ns()}.log"
        self._stderr = open(self.stderr_path, "w+b")
        self.proc = subprocess.Popen(prefix + LLMTAP + args, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, cwd=env["LLMTAP_TEST_DIR"])
        LlmtapProcess.started.append(self)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert self.proc.poll() is None, f"llmtap exited {self.proc.returncode}:\n{self.stderr}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.stderr}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            self._stderr.close()


@pytest.fixture(autouse=True)
def no_llmtap_left_running():
    yield
    while LlmtapProcess.started:
        process = LlmtapProcess.started.pop()
        if process.proc.poll() is None:
            process.proc.kill()
        process.proc.wait(30)


@pytest.fixture
def tmp_dir():
    # Not under pytest's tmp_path: its parent is root-only, and the unprivileged processes write here too.
    path = Path(tempfile.mkdtemp(prefix="llmtap-ebpf-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def environment(tmp_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "LLMTAP_TEST_DIR": str(tmp_dir), "PYTHONDONTWRITEBYTECODE": "1", **extra}


def default_config_environment(tmp_dir: Path, require_ebpf: str) -> dict[str, str]:
    """The built-in config, on free loopback ports, writing into tmp_dir."""
    return environment(tmp_dir, LLMTAP_REQUIRE_EBPF=require_ebpf, LLMTAP_FILE_PATH=str(tmp_dir / "o.jsonl"),
                       **{var: f"127.0.0.1:{free_port()}" for var in (
                           "LLMTAP_OTLP_GRPC_ENDPOINT", "LLMTAP_OTLP_HTTP_ENDPOINT", "LLMTAP_METRICS_ADDRESS",
                           "LLMTAP_HEALTH_ENDPOINT", "LLMTAP_PROMETHEUS_ENDPOINT")})


def spans_in(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [span for line in path.read_text().splitlines() for rs in json.loads(line).get("resourceSpans", [])
            for ss in rs["scopeSpans"] for span in ss["spans"]]


def exchange_spans(path: Path) -> list[dict]:
    """The spans of LLM calls (CLIENT), without the process spans of the clients."""
    return [span for span in spans_in(path) if span["kind"] == 3]


def wait_for_spans(path: Path, n: int, timeout: float = 30) -> list[dict]:
    """The exchange spans in the file, once there are `n`."""
    deadline = time.monotonic() + timeout
    while len(found := exchange_spans(path)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def attrs(span: dict) -> dict:
    """OTLP/JSON attributes as plain values (64-bit ints arrive as strings)."""
    out = {}
    for a in span["attributes"]:
        kind, value = next(iter(a["value"].items()), (None, None))
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s


def test_in_process_ebpf_and_otlp_in_one_pipeline(tmp_dir, server):
    require_ebpf()
    config = tmp_dir / "llmtap.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"ebpf": TEST_SERVER, "otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{free_port()}"}}}},
        "exporters": {"file": {"path": str(tmp_dir / "out.jsonl")}},
        "service": {"telemetry": {"metrics": {"address": f"127.0.0.1:{free_port()}"}},
                    "pipelines": {"traces": {"receivers": ["ebpf", "otlp"], "exporters": ["file"]}}},
    }))
    llmtap = LlmtapProcess(["run", "--config", str(config)], environment(tmp_dir))
    llmtap.wait_for_log("eBPF TLS capture attached")
    llmtap.wait_for_log("everything is ready")
    client = run_client("openai", "chat_stream", server)
    run_client("anthropic", "messages_stream", server)
    assert len(wait_for_spans(tmp_dir / "out.jsonl", 2)) >= 2
    assert llmtap.stop() == 0  # and whatever was in flight is flushed by then
    spans = exchange_spans(tmp_dir / "out.jsonl")
    mine = [s for s in spans if attrs(s)["process.pid"] == client.pid]
    assert len(mine) == 1 and mine[0]["kind"] == 3  # SPAN_KIND_CLIENT
    assert attrs(mine[0])["http.response.status_code"] == 200
    # Nothing the clients sent as a credential reaches the output file.
    assert SECRET_MARKER not in (tmp_dir / "out.jsonl").read_text()


def scrape(address: str) -> dict[str, list]:
    """The Prometheus endpoint's samples by metric family name, parsed by prometheus_client."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_the_default_config_gives_genai_spans_with_usage_and_cost_and_metrics(tmp_dir, server):
    """The built-in config as shipped (only the test server's host added to the capture, metrics
    flushed every second): real SDK calls through eBPF come out as GenAI spans with provider
    usage (or an estimate, marked, when the stream carried none) and cost, and as GenAI metrics
    on the Prometheus endpoint."""
    require_ebpf()
    default = tmp_dir / "default.yaml"
    default.write_text(subprocess.run(LLMTAP + ["run", "--print-default-config"], capture_output=True, text=True,
                                      check=True).stdout)
    override = tmp_dir / "override.yaml"
    override.write_text(yaml.safe_dump({"receivers": {"ebpf": TEST_SERVER},
                                        "connectors": {"genai_metrics": {"metrics_flush_interval": "1s"}}}))
    env = default_config_environment(tmp_dir, require_ebpf="1")
    llmtap = LlmtapProcess(["run", "--config", str(default), "--config", str(override)], env)
    try:
        llmtap.wait_for_log("everything is ready")
        openai_call = run_client("openai", "chat_stream", server)
        anthropic_call = run_client("anthropic", "messages", server)
        no_usage = json.dumps({"model": "gpt-4o-mini", "stream": True,
                               "messages": [{"role": "user", "content": "Count my tokens, please"}]}).encode()
        estimated_call = run_client("curl", "chat_stream", server, body=no_usage)
        pids = {openai_call.pid, anthropic_call.pid, estimated_call.pid}
        spans = {attrs(s)["process.pid"]: attrs(s) for s in wait_for_spans(tmp_dir / "o.jsonl", 3)
                 if attrs(s).get("process.pid") in pids}
        assert set(spans) == pids

        reported = openai_call.results[0]["usage"]
        got = spans[openai_call.pid]
        assert (got["gen_ai.provider.name"], got["gen_ai.request.model"]) == ("openai", "gpt-4o-mini")
        assert got["gen_ai.usage.input_tokens"] == reported["prompt_tokens"]
        assert got["gen_ai.usage.output_tokens"] == reported["completion_tokens"]
        assert "llmtap.usage.estimated" not in got
        assert got["gen_ai.usage.cost"] > 0 and got["llmtap.cost.price_source"].startswith("genai-prices")
        assert got["llmtap.cost.estimated"] is False
        assert spans[anthropic_call.pid]["gen_ai.usage.cost"] > 0
        estimated = spans[estimated_call.pid]
        assert estimated["llmtap.usage.estimated"] is True and estimated["llmtap.usage.encoding"] == "o200k_base"
        assert estimated["gen_ai.usage.output_tokens"] > 0 and estimated["llmtap.cost.estimated"] is True
        assert not [k for k in got if k.startswith("llmtap.http.")]

        def total(family: str, *labels: str) -> dict:  # summed over the other labels (job is per process)
            out: dict = {}
            for x in families.get(family, []):
                if x.name.endswith(("_count", "_total")):
                    key = tuple(x.labels[name] for name in labels)
                    out[key] = out.get(key, 0) + x.value
            return out

        deadline = time.monotonic() + 30
        while True:
            families = scrape(env["LLMTAP_PROMETHEUS_ENDPOINT"])
            if sum(total("llmtap_requests").values()) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        tokens = total("gen_ai_client_token_usage", "gen_ai_request_model", "gen_ai_token_type")
        assert tokens[("gpt-4o-mini", "input")] == 2  # the SDK's call and the estimated one
        assert tokens[("claude-sonnet-4-5-20250929", "output")] == 1
        assert total("llmtap_requests", "gen_ai_provider_name") == {("openai",): 2, ("anthropic",): 1}
        assert sum(x.value for x in families["llmtap_cost_USD"]) == pytest.approx(
            sum(span["gen_ai.usage.cost"] for span in spans.values()))
        assert SECRET_MARKER not in (tmp_dir / "o.jsonl").read_text()
    finally:
        assert llmtap.stop() == 0


def test_split_mode_capture_process_feeds_an_unprivileged_pipeline(tmp_dir, server):
    require_ebpf()
    grpc_port = free_port()
    pipeline = LlmtapProcess(
        ["run", "--config", str(ROOT / "collector-config/llmtap-ebpf-pipeline.yaml")],
        environment(tmp_dir, LLMTAP_OTLP_GRPC_ENDPOINT=f"127.0.0.1:{grpc_port}",
                    LLMTAP_OTLP_HTTP_ENDPOINT=f"127.0.0.1:{free_port()}", LLMTAP_FILE_PATH=str(tmp_dir / "out.jsonl"),
                    LLMTAP_METRICS_ADDRESS=f"127.0.0.1:{free_port()}", LLMTAP_HEALTH_ENDPOINT=f"127.0.0.1:{free_port()}"),
        user="nobody")
    override = tmp_dir / "capture-test.yaml"
    override.write_text(yaml.safe_dump({"receivers": {"ebpf": TEST_SERVER}}))
    capture = LlmtapProcess(
        ["run", "--config", str(ROOT / "collector-config/llmtap-ebpf-capture.yaml"), "--config", str(override)],
        environment(tmp_dir, LLMTAP_PIPELINE_ENDPOINT=f"127.0.0.1:{grpc_port}",
                    LLMTAP_METRICS_ADDRESS=f"127.0.0.1:{free_port()}", LLMTAP_HEALTH_ENDPOINT=f"127.0.0.1:{free_port()}"))
    try:
        pipeline.wait_for_log("everything is ready")
        capture.wait_for_log("eBPF TLS capture attached")
        capture.wait_for_log("everything is ready")
        assert pwd.getpwuid(os.stat(f"/proc/{pipeline.proc.pid}").st_uid).pw_name == "nobody"
        client = run_client("curl", "chat_stream", server, http2=True)
        spans = [s for s in wait_for_spans(tmp_dir / "out.jsonl", 1) if attrs(s)["process.pid"] == client.pid]
        assert len(spans) == 1
        assert attrs(spans[0])["network.protocol.version"] == "2"
    finally:
        assert capture.stop() == 0
        assert pipeline.stop() == 0


def test_without_privileges_the_default_config_warns_and_runs_on(tmp_dir):
    # The default config includes the ebpf receiver; as an ordinary user it cannot load.
    llmtap = LlmtapProcess(["run"], default_config_environment(tmp_dir, require_ebpf="0"), user="nobody")
    llmtap.wait_for_log("everything is ready")
    assert "eBPF capture is OFF" in llmtap.stderr and "llmtap doctor" in llmtap.stderr
    assert llmtap.stop() == 0


def test_a_required_ebpf_receiver_that_cannot_load_stops_the_start(tmp_dir):
    llmtap = LlmtapProcess(["run"], default_config_environment(tmp_dir, require_ebpf="1"), user="nobody")
    assert llmtap.proc.wait(60) == 1
    assert "cannot start receiver ebpf" in llmtap.stderr and "not running as root" in llmtap.stderr


def test_doctor_says_what_is_there_and_what_is_missing():
    require_ebpf()
    out = subprocess.run(LLMTAP + ["doctor"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ("kernel", "BTF", "privileges", "tracefs", "uprobes", "tracepoints", "bcc", "kernel headers",
                  "probes"):
        assert any(line.startswith("ok") and f" {check} " in line + " " for line in out.stdout.splitlines()), check
    assert out.stdout.rstrip().endswith("eBPF capture: available")

    unprivileged = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   *LLMTAP, "doctor"], capture_output=True, text=True, timeout=120)
    assert unprivileged.returncode == 1
    assert "MISSING  privileges" in unprivileged.stdout and "fix: run as root" in unprivileged.stdout
    assert "ok       BTF             /sys/kernel/btf/vmlinux: the 11 struct fields" in unprivileged.stdout  # 0444
    assert unprivileged.stdout.rstrip().endswith("eBPF capture: NOT available on this machine")
