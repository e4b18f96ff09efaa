"""The `llmtap` command as a user runs it."""

import subprocess
import sys
import textwrap

import yaml

from llmtap.cli import default_config_text


def llmtap(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmtap.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_print_default_config_prints_the_built_in_config():
    result = llmtap("run", "--print-default-config")
    assert result.returncode == 0
    assert result.stdout == default_config_text()
    pipelines = yaml.safe_load(result.stdout)["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}


def test_the_default_config_is_valid(tmp_path):
    path = tmp_path / "default.yaml"
    path.write_text(default_config_text())
    result = llmtap("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "configuration is valid: 3 pipeline(s)" in result.stdout


def test_validate_lists_every_error_and_exits_non_zero(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""
        receivers:
          otlp:
            protocols:
              grpc: {endpoint: 4317}
        processors:
          batch: {send_batch_size: many}
        exporters:
          otlp_grpc: {}
        service:
          pipelines:
            traces: {receivers: [otlp], processors: [batch, memory_limiter], exporters: [otlp_grpc]}
        """))
    result = llmtap("validate", "--config", str(path))
    assert result.returncode == 1
    assert "invalid configuration (" in result.stderr
    for expected in [
        "receivers::otlp: protocols.grpc.endpoint: expected string, got int 4317",
        "processors::batch: send_batch_size: expected int, got string 'many'",
        "exporters::otlp_grpc: endpoint: must be set",
        "service::pipelines::traces::processors[1]: processor 'memory_limiter' is not configured under 'processors'",
    ]:
        assert expected in result.stderr


def test_validate_merges_several_files_and_expands_env(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(default_config_text())
    override = tmp_path / "override.yaml"
    override.write_text("exporters:\n  otlp_http:\n    endpoint: ${env:TARGET}\n"
                        "service:\n  pipelines:\n    traces/forward: {receivers: [otlp], exporters: [otlp_http]}\n")
    result = llmtap("validate", "--config", str(base), "--config", str(override),
                    env={"TARGET": "http://collector:4318", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "4 pipeline(s)" in result.stdout


def test_validate_reports_an_unreadable_file():
    result = llmtap("validate", "--config", "/nonexistent/llmtap.yaml")
    assert result.returncode == 1
    assert "cannot read config file /nonexistent/llmtap.yaml" in result.stderr


def test_components_lists_every_type_with_stability_and_signals():
    result = llmtap("components")
    assert result.returncode == 0
    rows = {tuple(line.split()[:2]): line for line in result.stdout.splitlines()[1:]}
    for kind, type_ in [("receiver", "otlp"), ("processor", "batch"), ("processor", "memory_limiter"),
                        ("exporter", "otlp"), ("exporter", "otlphttp"), ("exporter", "file"),
                        ("exporter", "debug"), ("connector", "forward"), ("extension", "health_check"),
                        ("extension", "bearertokenauth"),
                        ("processor", "add_attribute")]:   # from the example plugin package
        assert (kind, type_) in rows
    assert "logs,metrics,traces" in rows[("receiver", "otlp")]
    assert "logs,traces" in rows[("processor", "add_attribute")]
