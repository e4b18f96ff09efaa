"""End to end: real agents → TLS and exec/exit → eBPF capture → sse_reassembly → genai_semconv
→ agent_session, one trace per agent session (docs/agents.md says how agents are tested).

The agents are real: an OpenAI Agents SDK agent with a shell tool (tests/agents/openai_agent.py),
Gemini CLI and Claude Code from npm (tests/agents/package.json). Each runs in its own process
tree against the local TLS test server, whose scripted conversations make the model ask for
commands (`ls`, `curl` to the server's /healthz) and then answer; the commands really run. The
spans the eBPF receiver captured for that tree go through the processors, and the trace that
comes out is checked against what the agent reported (its pid, each command's pid and exit
code) and what the server logged (the tool call ids it sent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ebpf_support import Capture, attributes, require_ebpf
from llm_server import LlmServer
from llm_traffic import client_env
from llmtap.component import ComponentID, Kind, Settings, Signal
from llmtap.configtypes import decode_config
from llmtap.registry import Registry, default_registry
from llmtap.telemetry import SelfTelemetry
from processor_support import Collect, _Host

AGENTS_DIR = Path(__file__).resolve().parent / "agents"
SDK_AGENT = AGENTS_DIR / "openai_agent.py"
GEMINI_JS = AGENTS_DIR / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"
CLAUDE_BIN = AGENTS_DIR / "node_modules" / "@anthropic-ai" / "claude-code-linux-x64" / "claude"

# The test server speaks every API under /v1 (OpenAI, Anthropic) or /v1beta (Gemini); /healthz,
# which the agents' curl fetches, is plain traffic and no LLM call. Process capture is on with
# its defaults: the SDK agent becomes an agent by its first LLM call, `gemini` and `claude`
# are on the default agent list.
CAPTURE_CONFIG = {"extra_endpoints": [{"host": "localhost", "path": "/v1*"}], "processes": {"enabled": True}}
PIPELINE = (("sse_reassembly", {}), ("genai_semconv", {}), ("agent_session", {}))

AGENT_PID, AGENT_START = "llmtap.agent.pid", "llmtap.agent.start_time_unix_nano"
PROCESS_START = "llmtap.process.start_time_unix_nano"
TOOL_CALL_ID_RE = re.compile(r"(?:call|toolu)_[0-9a-z]{22,32}")


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s
        assert "Traceback" not in s.stderr(), s.stderr()


@pytest.fixture(scope="module")
def ebpf():
    require_ebpf()
    with Capture(CAPTURE_CONFIG) as c:
        yield c


@pytest.fixture(scope="module")
def node_agents():
    """tests/agents/node_modules, installed from the lock file once (npm ci)."""
    if not (GEMINI_JS.exists() and CLAUDE_BIN.exists()):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AGENTS_DIR, check=True,
                       timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return AGENTS_DIR / "node_modules"


def registry() -> Registry:
    base = default_registry()
    if base.get(Kind.PROCESSOR, "agent_session") is not None:
        return base
    from llmtap.processors.agent_session import factory  # not registered yet: add it here
    return Registry([*base.all(), factory])


# --- running an agent --------------------------------------------------------------------


@dataclass
class AgentRun:
    pid: int                 # the agent root process (the one that makes the LLM calls)
    returncode: int
    summary: dict            # what the agent program printed last (the SDK agent: its runs)
    stderr: str


def start_sdk_agent(server: LlmServer, prompt: str, *, api: str = "responses", stream: bool = False,
                    max_turns: int = 20) -> subprocess.Popen:
    argv = [sys.executable, str(SDK_AGENT), "--base-url", server.base_url, "--ca", server.ca_file,
            "--prompt", prompt, "--api", api, "--max-turns", str(max_turns)] + (["--stream"] if stream else [])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=client_env(server), cwd=AGENTS_DIR)


def finish(proc: subprocess.Popen, timeout: float = 90) -> AgentRun:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except ValueError:
        summary = {"stdout": lines[-5:]}
    run = AgentRun(proc.pid, proc.returncode, summary, err.decode(errors="replace"))
    assert run.returncode == 0, f"agent exited {run.returncode}: {run.stderr[-3000:]}"
    return run


def run_sdk_agent(server, prompt, **options) -> AgentRun:
    return finish(start_sdk_agent(server, prompt, **options))


def curl_command(server: LlmServer) -> str:
    return f"curl -sS --cacert {server.ca_file} {server.base_url}/healthz"


# --- from the capture through the pipeline -------------------------------------------------


@dataclass
class OutSpan:
    span: Span
    attrs: dict[str, Any]

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def id(self) -> bytes:
        return self.span.span_id

    @property
    def parent(self) -> bytes:
        return self.span.parent_span_id

    def links_to(self) -> set[bytes]:
        return {link.span_id for link in self.span.links}

    def anomalies(self) -> list[dict]:
        return [attributes(e.attributes) for e in self.span.events if e.name == "llmtap.anomaly"]


def is_process_span(attrs: dict) -> bool:
    return PROCESS_START in attrs and "url.full" not in attrs and "http.request.method" not in attrs


def wait_for_agent(ebpf: Capture, agent_pid: int, timeout: float = 30.0) -> None:
    """Until the agent root's own process span (emitted at its exit) has been captured."""
    found = ebpf.wait_for(1, lambda s: s.attrs.get("process.pid") == agent_pid and s.span.name.startswith("exec "),
                          timeout=timeout)
    assert found, f"no process span for the agent root {agent_pid}"


def captured(ebpf: Capture, keep: Callable[[dict], bool]) -> list[ExportTraceServiceRequest]:
    """The receiver's export requests as they came, with only the spans `keep` accepts."""
    with ebpf.sink.lock:
        requests = list(ebpf.sink.requests)
    out = []
    for data in requests:
        request = ExportTraceServiceRequest()
        for rs in data.resource_spans:
            kept_rs = None
            for ss in rs.scope_spans:
                spans = [s for s in ss.spans if keep(attributes(s.attributes))]
                if not spans:
                    continue
                if kept_rs is None:
                    kept_rs = request.resource_spans.add()
                    kept_rs.resource.CopyFrom(rs.resource)
                kept_ss = kept_rs.scope_spans.add()
                kept_ss.scope.CopyFrom(ss.scope)
                kept_ss.spans.extend(spans)
        if request.resource_spans:
            out.append(request)
    return out


def of_agents(*pids: int) -> Callable[[dict], bool]:
    return lambda attrs: attrs.get(AGENT_PID) in pids


def through_pipeline(requests: list[ExportTraceServiceRequest]) -> tuple[list[OutSpan], SelfTelemetry]:
    """The requests, in order, through the GenAI processors and agent_session (then shut down)."""
    telemetry = SelfTelemetry()
    sink = Collect()
    chain, next_consumer = [], sink
    for type_, raw in reversed(PIPELINE):
        factory = registry().get(Kind.PROCESSOR, type_)
        config, errors = decode_config(factory.config_class, raw)
        assert not errors, errors
        settings = Settings(ComponentID(type_), Kind.PROCESSOR, telemetry, logging.getLogger(f"llmtap.test.{type_}"))
        next_consumer = factory.create(settings, config, Signal.TRACES, next_consumer)
        chain.insert(0, next_consumer)

    async def go():
        for p in chain:
            await p.start(_Host())
        for request in requests:
            await chain[0].consume(Signal.TRACES, request)
        for p in chain:
            await p.shutdown()

    asyncio.run(go())
    spans = [OutSpan(s, attributes(s.attributes)) for r in sink.received for rs in r.resource_spans
             for ss in rs.scope_spans for s in ss.spans]
    for s in spans:
        assert "llmtap.session.error" not in s.attrs, s.attrs["llmtap.session.error"]
    return spans, telemetry


@dataclass
class Session:
    """The spans of one agent session trace, sorted out."""
    trace_id: bytes
    spans: list[OutSpan]

    @property
    def root(self) -> OutSpan:
        [root] = [s for s in self.spans if s.attrs.get("gen_ai.operation.name") == "invoke_agent"]
        return root

    @property
    def llm_calls(self) -> list[OutSpan]:
        calls = [s for s in self.spans if s.attrs.get("gen_ai.operation.name") in ("chat", "generate_content")]
        return sorted(calls, key=lambda s: s.span.start_time_unix_nano)

    @property
    def tools(self) -> list[OutSpan]:
        tools = [s for s in self.spans if s.attrs.get("gen_ai.operation.name") == "execute_tool"]
        return sorted(tools, key=lambda s: s.span.start_time_unix_nano)

    def process(self, pid: int) -> OutSpan:
        found = [s for s in self.spans if s.attrs.get("process.pid") == pid and s.name.startswith("exec ")]
        assert len(found) == 1, f"{len(found)} process spans for pid {pid}: {[s.name for s in self.spans]}"
        return found[0]

    def processes(self, executable: str) -> list[OutSpan]:
        return [s for s in self.spans if s.name == f"exec {executable}"]


def session_of(spans: list[OutSpan], agent_pid: int) -> Session:
    """The one trace that holds the agent's spans; every span of the agent is in it."""
    mine = [s for s in spans if s.attrs.get(AGENT_PID) == agent_pid]
    assert mine, f"no span of agent {agent_pid} came out"
    traces = {s.span.trace_id for s in mine}
    assert len(traces) == 1, f"the agent's spans are in {len(traces)} traces"
    [trace] = traces
    return Session(trace, [s for s in spans if s.span.trace_id == trace])


def tool_call_ids(server: LlmServer, marker: str) -> list[str]:
    """The tool call ids the server sent in this conversation, in order of the responses."""
    ids: list[str] = []
    for e in sorted(server.exchanges(), key=lambda e: e.started):
        if marker.encode() in e.request_body:
            ids += [i for i in dict.fromkeys(TOOL_CALL_ID_RE.findall(e.response_body.decode(errors="replace")))]
    return ids


def genai_session_ids(pid: int, start_ns: int):
    from llmtap.processors.agent_session import ids
    key = ids.agent_key(pid, start_ns)
    return key, ids.trace_id(key), ids.root_span_id(key), ids


# --- the tests ------------------------------------------------------------------------------


def test_openai_agents_sdk_session(ebpf, server, tmp_path, api="responses", stream=True):
    """The issue's first scenario: a real agent framework's shell tool runs `ls` and `curl`;
    one trace: the invoke_agent root, the LLM calls, an execute_tool span per tool call linked
    to the LLM call that asked for it and to the process that carried it out, and the process
    spans with their arguments and exit codes."""
    (tmp_path / "notes.txt").write_text("hello\n")
    ls, curl = f"ls -la {tmp_path}", curl_command(server)
    marker = server.add_script(f"sdk-{api}", [
        {"tool_calls": [{"name": "run_shell", "arguments": {"command": ls}}]},
        {"text": "Now the server.", "tool_calls": [{"name": "run_shell", "arguments": {"command": curl}}]},
        {"text": "The folder holds notes.txt and the server answered ok."}])
    run = run_sdk_agent(server, f"Look at the folder, then check the server. {marker}", api=api, stream=stream)
    assert run.summary["final_output"] == "The folder holds notes.txt and the server answered ok."
    ls_run, curl_run = run.summary["runs"]
    assert (ls_run["command"], ls_run["exit_code"]) == (ls, 0) and "notes.txt" in ls_run["output"]
    assert (curl_run["command"], curl_run["exit_code"], curl_run["output"]) == (curl, 0, "ok\n")

    wait_for_agent(ebpf, run.pid)
    spans, telemetry = through_pipeline(captured(ebpf, of_agents(run.pid)))
    session = session_of(spans, run.pid)

    root = session.root
    start = root.attrs[PROCESS_START]
    key, trace_id, root_id, ids = genai_session_ids(run.pid, start)
    assert session.trace_id == trace_id and root.id == root_id and not root.parent
    assert root.name == "invoke_agent openai_agent"
    assert root.attrs["gen_ai.agent.name"] == "openai_agent"
    assert root.attrs["gen_ai.provider.name"] == "openai"
    assert root.attrs["process.pid"] == run.pid and root.attrs["process.executable.name"].startswith("python")

    llm = session.llm_calls
    assert len(llm) == 3 and all(s.parent == root_id for s in llm)
    assert all(s.attrs["gen_ai.request.model"] == "gpt-4o-mini" for s in llm)
    assert [marker in s.attrs["gen_ai.input.messages"] for s in llm] == [True] * 3

    call_ids = tool_call_ids(server, marker)
    assert len(call_ids) == 2
    for i, (one, argv, executable) in enumerate([(ls_run, shlex.split(ls), "ls"), (curl_run, shlex.split(curl), "curl")]):
        process = session.process(one["pid"])
        # `bash -c "ls -la DIR"` execs ls in place: the process is ls.
        assert process.name == f"exec {executable}" and process.attrs["process.executable.name"] == executable
        assert process.attrs["process.command_args"] == argv
        assert process.attrs["process.exit.code"] == one["exit_code"] == 0
        assert process.attrs["process.parent_pid"] == run.pid and process.parent == root_id
        assert process.id == ids.process_span_id(one["pid"], process.attrs[PROCESS_START])
        assert process.attrs["llmtap.tool.call.id"] == call_ids[i]

        [tool] = [t for t in session.tools if t.attrs["gen_ai.tool.call.id"] == call_ids[i]]
        assert tool.name == "execute_tool run_shell" and tool.parent == root_id
        assert tool.id == ids.tool_span_id(key, call_ids[i])
        assert tool.attrs["gen_ai.tool.name"] == "run_shell" and tool.attrs["gen_ai.tool.type"] == "function"
        assert (tool.span.start_time_unix_nano, tool.span.end_time_unix_nano) == \
            (process.span.start_time_unix_nano, process.span.end_time_unix_nano)
        # linked to the LLM call whose answer asked for it (the i-th), and to the process
        assert tool.links_to() == {llm[i].id, process.id}
    assert len(session.tools) == 2
    assert telemetry.value("llmtap_processor_agent_session_tool_executions_total", processor="agent_session") == 2


def test_two_agents_at_the_same_time_never_mix(ebpf, server, tmp_path):
    """Two SDK agents run at once, each with its own conversation and commands: each gets its
    own trace, and no span of one lands in the other's. (Between this test, the one above and
    the tool loop, the SDK speaks Responses and Chat Completions, streamed and not.)"""
    dirs = []
    for name in ("alpha", "beta"):
        d = tmp_path / name
        d.mkdir()
        (d / f"{name}.txt").write_text(name)
        dirs.append(d)
    markers = [server.add_script(f"pair-{d.name}", [
        {"tool_calls": [{"name": "run_shell", "arguments": {"command": f"ls {d}"}}]},
        {"tool_calls": [{"name": "run_shell", "arguments": {"command": f"cat {d}/{d.name}.txt"}}]},
        {"text": f"done with {d.name}"}]) for d in dirs]
    procs = [start_sdk_agent(server, f"Inspect {d.name}. {m}", api=api, stream=stream)
             for d, m, (api, stream) in zip(dirs, markers, [("chat", True), ("responses", False)])]
    runs = [finish(p) for p in procs]
    for run in runs:
        wait_for_agent(ebpf, run.pid)
    spans, _ = through_pipeline(captured(ebpf, of_agents(*(r.pid for r in runs))))

    sessions = [session_of(spans, r.pid) for r in runs]
    assert sessions[0].trace_id != sessions[1].trace_id
    for run, session, marker, other in zip(runs, sessions, markers, reversed(markers)):
        pids = {run.pid} | {one["pid"] for one in run.summary["runs"]}
        for s in session.spans:
            if s.attrs.get("gen_ai.operation.name") in ("invoke_agent", "execute_tool"):
                continue
            assert s.attrs[AGENT_PID] == run.pid, s.name
        processes = [s for s in session.spans if s.name.startswith("exec ")]
        # the tool runs, and whatever else the agent started (Python's platform module runs `uname -p`):
        # all children of this agent, none of the other's
        assert pids - {run.pid} <= {s.attrs["process.pid"] for s in processes}
        assert all(s.attrs["process.parent_pid"] == run.pid for s in processes)
        assert len(session.llm_calls) == 3
        for call in session.llm_calls:
            assert marker in call.attrs["gen_ai.input.messages"] and other not in call.attrs["gen_ai.input.messages"]
        assert len(session.tools) == 2
        assert {t.attrs["gen_ai.tool.call.id"] for t in session.tools} == set(tool_call_ids(server, marker))
    assert len({s.span.trace_id for s in spans}) == 2


def test_a_tool_loop_raises_tool_loop_once(ebpf, server):
    """The model asks for the same tool call 10 times: `tool_loop` is raised once, on the LLM
    span whose answer crossed the threshold, and counted once."""
    call = {"name": "run_shell", "arguments": {"command": "echo still-checking"}}
    marker = server.add_script("loop", [{"tool_calls": [call]}] * 10 + [{"text": "Giving up."}])
    run = run_sdk_agent(server, f"Check until it works. {marker}", api="chat", max_turns=15)
    assert run.summary["final_output"] == "Giving up." and len(run.summary["runs"]) == 10

    wait_for_agent(ebpf, run.pid)
    spans, telemetry = through_pipeline(captured(ebpf, of_agents(run.pid)))
    session = session_of(spans, run.pid)
    assert len(session.llm_calls) == 11
    raised = [(s, a) for s in session.spans for a in s.anomalies() if a["llmtap.anomaly.kind"] == "tool_loop"]
    assert len(raised) == 1
    span, anomaly = raised[0]
    threshold = anomaly["llmtap.anomaly.threshold"]
    assert anomaly["llmtap.anomaly.count"] == threshold
    # on the LLM call whose answer made the threshold-th identical tool call
    assert span.id == session.llm_calls[threshold - 1].id
    assert telemetry.value("llmtap_processor_agent_session_anomalies_total", processor="agent_session",
                           kind="tool_loop") == 1


def gemini_env(server: LlmServer, home: Path) -> dict[str, str]:
    # Gemini CLI 0.61 picks the "gateway" auth type when GOOGLE_GEMINI_BASE_URL is set and then
    # rejects it as invalid; an API-key auth type chosen in settings keeps the base URL.
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "telemetry": {"enabled": False}, "privacy": {"usageStatisticsEnabled": False}}))
    env = client_env(server)
    env.update(HOME=str(home), GEMINI_API_KEY="test-gemini-key", GOOGLE_GEMINI_BASE_URL=server.base_url,
               NO_COLOR="1", TERM="dumb")
    return env


def test_gemini_cli_session(ebpf, server, node_agents, tmp_path):
    """A real agent CLI from npm: Gemini CLI, non-interactive and auto-approving (-p, --yolo),
    runs one tool-using turn: its LLM calls and the commands it ran are in one session trace."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "README.md").write_text("# demo\n")
    curl = curl_command(server)
    marker = server.add_script("gemini", [
        {"tool_calls": [{"name": "run_shell_command", "arguments": {"command": "ls -la", "description": "list"}}]},
        {"tool_calls": [{"name": "run_shell_command", "arguments": {"command": curl, "description": "health"}}]},
        {"text": "The workspace has README.md and the server is healthy."}])
    proc = subprocess.Popen(
        [shutil.which("node") or "/usr/bin/node", str(GEMINI_JS), "-p", f"List the files, check the server. {marker}",
         "--yolo", "--skip-trust", "-m", "gemini-2.5-flash", "-o", "json"],
        cwd=workspace, env=gemini_env(server, tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out)
    assert result["response"] == "The workspace has README.md and the server is healthy."
    assert result["stats"]["tools"]["byName"]["run_shell_command"]["success"] == 2

    # The CLI relaunches itself: the root process is the child node that made the LLM calls.
    llm = ebpf.wait_for(3, lambda s: marker in s.attrs.get("llmtap.http.request.body", ""))
    agent_pid = llm[0].attrs[AGENT_PID]
    assert {s.attrs[AGENT_PID] for s in llm} == {agent_pid}
    wait_for_agent(ebpf, agent_pid)
    spans, _ = through_pipeline(captured(ebpf, of_agents(agent_pid)))
    session = session_of(spans, agent_pid)
    assert session.root.name == "invoke_agent gemini"
    assert session.root.attrs["gen_ai.provider.name"] == "gcp.gen_ai"
    assert len(session.llm_calls) >= 3
    assert all(s.attrs["gen_ai.request.model"] == "gemini-2.5-flash" for s in session.llm_calls)
    [ls] = session.processes("ls")
    assert ls.attrs["process.command_args"][:2] == ["ls", "-la"] and ls.attrs["process.exit.code"] == 0
    [curl_span] = [s for s in session.processes("curl") if s.attrs["process.command_args"] == shlex.split(curl)]
    assert curl_span.attrs["process.exit.code"] == 0
    # every process of the tree hangs under the root, through its parents (node → bash → ls)
    by_id = {s.id: s for s in session.spans}
    for s in (ls, curl_span):
        hops, at = 0, s
        while at.parent and at.parent != session.root.id and hops < 10:
            at, hops = by_id[at.parent], hops + 1
        assert at.parent == session.root.id
    # Gemini sends function calls without ids, so the tool spans have none (the CLI makes up its
    # own for the functionResponse); they are matched by command all the same: the CLI's bash
    # wrapper script contains the command, and the command's own process equals it.
    tools = session.tools
    assert [t.name for t in tools] == ["execute_tool run_shell_command"] * 2
    for tool, call, process in zip(tools, session.llm_calls, (ls, curl_span)):
        assert {call.id, process.id} <= tool.links_to() and tool.parent == session.root.id


# --- Claude Code: BoringSSL inside a stripped Bun binary ------------------------------------------


def test_claude_code_tls_is_captured_at_the_functions_the_receiver_found(ebpf, server, node_agents, tmp_path):
    """Claude Code's native binary exports no SSL symbols; the receiver, seeing it exec, finds
    BoringSSL's SSL_write and SSL_read in it by their error sites (receiver/ebpf/boringssl.py) and
    attaches there: its HTTP exchanges are captured in plaintext, and its LLM calls and its
    commands make one session."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    curl = curl_command(server)
    marker = server.add_script("claude", [
        {"text": "Listing.", "tool_calls": [{"name": "Bash", "arguments": {"command": "ls -la", "description": "List"}}]},
        {"tool_calls": [{"name": "Bash", "arguments": {"command": curl, "description": "Health"}}]},
        {"text": "Listed and the server is healthy."}])
    env = client_env(server)
    env.update(HOME=str(tmp_path / "home"), ANTHROPIC_BASE_URL=server.base_url, DISABLE_TELEMETRY="1",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
               IS_SANDBOX="1")  # root may skip permission prompts only in a sandbox
    proc = subprocess.run([str(CLAUDE_BIN), "-p", f"List files, then check the server. {marker}",
                           "--dangerously-skip-permissions", "--output-format", "json",
                           "--model", "claude-sonnet-4-5-20250929"],
                          cwd=workspace, env=env, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert json.loads(proc.stdout)["result"] == "Listed and the server is healthy."

    llm = ebpf.wait_for(3, lambda s: marker in s.attrs.get("llmtap.http.request.body", ""))
    assert len(llm) == 3 and {s.pid for s in llm} == {llm[0].pid}
    agent_pid = llm[0].pid
    assert llm[0].attrs["process.executable.name"] == "claude"
    [claude] = [lib for lib in ebpf.receiver.probes.attached if lib.display_path == str(CLAUDE_BIN)]
    assert set(claude.addresses) == {"SSL_write", "SSL_read"} and not claude.symbols
    wait_for_agent(ebpf, agent_pid)
    spans, _ = through_pipeline(captured(ebpf, of_agents(agent_pid)))
    session = session_of(spans, agent_pid)
    assert session.root.name == "invoke_agent claude"
    calls = session.llm_calls
    assert len(calls) == 3 and all(c.attrs["gen_ai.provider.name"] == "anthropic" for c in calls)
    assert [c.attrs["gen_ai.response.finish_reasons"] for c in calls] == \
        [["tool_use"], ["tool_use"], ["end_turn"]]
    # Claude Code's Bash tool runs `bash -c -l "source SNAPSHOT … && eval 'ls -la' …"`; the
    # command's own process matches the tool call exactly.
    call_ids = tool_call_ids(server, marker)
    [ls] = session.processes("ls")
    [curl_span] = [s for s in session.processes("curl") if s.attrs["process.command_args"] == shlex.split(curl)]
    assert ls.attrs["process.exit.code"] == 0 == curl_span.attrs["process.exit.code"]
    assert [t.name for t in session.tools] == ["execute_tool Bash"] * 2
    for tool, call, process, call_id in zip(session.tools, calls, (ls, curl_span), call_ids):
        assert tool.attrs["gen_ai.tool.call.id"] == call_id == process.attrs["llmtap.tool.call.id"]
        assert {call.id, process.id} <= tool.links_to()
