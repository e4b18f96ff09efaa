"""The ebpf receiver's config: collector-style validation naming the component
ID and key, the allow-list rules, and the process filters."""

from __future__ import annotations

import pytest
import yaml

from llmtap.config import ConfigError, parse
from llmtap.receiver.ebpf import _matches
from llmtap.receiver.ebpf.config import ProcessFilter
from llmtap.receiver.ebpf.endpoints import EndpointMatcher, EndpointRule, default_rules, split_authority
from llmtap.receiver.ebpf.tracker import ProcessInfo
from llmtap.registry import default_registry


def errors_of(receiver: dict) -> list[str]:
    text = yaml.safe_dump({"receivers": {"ebpf/agents": receiver}, "exporters": {"debug": {}},
                           "service": {"pipelines": {"traces": {"receivers": ["ebpf/agents"], "exporters": ["debug"]}}}})
    with pytest.raises(ConfigError) as e:
        parse(yaml.safe_load(text), default_registry())
    return e.value.errors


def test_every_bad_key_is_named_with_the_component_id():
    assert errors_of({"ring_buffer_size": "3MiB", "max_body_bytes": 0}) == [
        "receivers::ebpf/agents: ring_buffer_size: must be a power of two of at least 4KiB; got 3145728",
        "receivers::ebpf/agents: max_body_bytes: must be positive"]
    assert errors_of({"extra_endpoints": [{"host": ""}, {"host": "x", "path": "v1"}],
                      "include": {"pids": ["one"]}, "ring_bufer_size": 1}) == [
        "receivers::ebpf/agents: extra_endpoints[0]: host: must not be empty",
        "receivers::ebpf/agents: extra_endpoints[1]: path: 'v1' must start with / or *",
        "receivers::ebpf/agents: include.pids[0]: expected int, got string 'one'",
        "receivers::ebpf/agents: ring_bufer_size: unknown key (known keys: attach, endpoints, exclude, "
        "extra_endpoints, headers, include, max_body_bytes, processes, required, ring_buffer_size, service_name, static_boringssl)"]


def test_the_ebpf_receiver_takes_traces_only():
    text = yaml.safe_dump({"receivers": {"ebpf": {}}, "exporters": {"debug": {}},
                           "service": {"pipelines": {"logs": {"receivers": ["ebpf"], "exporters": ["debug"]}}}})
    with pytest.raises(ConfigError) as e:
        parse(yaml.safe_load(text), default_registry())
    assert any("receiver 'ebpf' does not support logs" in error for error in e.value.errors)


@pytest.mark.parametrize("authority,target,wanted", [
    ("api.openai.com", "/v1/chat/completions", True),
    ("API.OpenAI.com:443", "/v1/responses", True),
    ("myco.openai.azure.com", "/openai/deployments/gpt4/chat/completions?api-version=2024-10-21", True),
    ("api.anthropic.com", "/v1/messages", True),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", True),
    ("us-central1-aiplatform.googleapis.com", "/v1/projects/p/locations/l/publishers/google/models/m:predict", True),
    ("bedrock-runtime.us-east-1.amazonaws.com", "/model/anthropic.claude-3/invoke-with-response-stream", True),
    ("openrouter.ai", "/api/v1/chat/completions", True),
    ("openrouter.ai", "/docs", False),
    ("localhost:11434", "/api/chat", True),
    ("127.0.0.1:8000", "/v1/completions", True),
    ("[::1]:1234", "/v1/models", True),
    ("localhost:5432", "/", False),
    ("github.com", "/", False),
    ("api.openai.com.evil.example", "/v1/chat/completions", False),
])
def test_the_default_allow_list(authority, target, wanted):
    assert EndpointMatcher(default_rules()).matches(authority, target) is wanted


def test_rules_with_a_path_and_hosts_without_a_port():
    m = EndpointMatcher([EndpointRule("gateway.internal", "/llm/*")])
    assert m.matches("gateway.internal:8443", "/llm/v1/chat?x=1")
    assert not m.matches("gateway.internal", "/metrics")
    assert m.host_may_match("gateway.internal") and not m.host_may_match("other")
    assert split_authority("[::1]:8080") == ("[::1]", 8080) and split_authority("Example.COM") == ("example.com", 443)


def test_process_filters_match_pid_name_path_and_cgroup():
    agent = ProcessInfo(1234, "/usr/bin/node", "node", "/system.slice/docker-abc.scope")
    assert _matches(ProcessFilter(pids=[1234]), agent)
    assert _matches(ProcessFilter(executables=["no*"]), agent)
    assert _matches(ProcessFilter(executables=["/usr/bin/*"]), agent)
    assert not _matches(ProcessFilter(executables=["/opt/*"]), agent)
    assert _matches(ProcessFilter(cgroups=["/system.slice/docker-*"]), agent)
    assert not _matches(ProcessFilter(), agent)
