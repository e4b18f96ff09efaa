"""agent_session: an agent's LLM calls and the processes it ran become one trace per session.

The input is what the pipeline really hands the processor: exchange spans as the eBPF receiver
writes them (raw OpenAI / Anthropic bodies, stamped with the process and its agent root per the
contract in docs/genai.md) mapped by the real genai_semconv (and priced by cost_attribution
where cost matters), process spans as the receiver emits them at exit (random ids, INTERNAL,
`exec {name}`), and OTLP spans of an instrumented app that only carry gen_ai.conversation.id.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap import attributes
from llmtap.component import ComponentID, Consumer, Kind, Settings, Signal
from llmtap.configtypes import decode_config
from llmtap.processors import agent_session, cost_attribution, genai_semconv
from llmtap.processors.agent_session import AgentSessionProcessor, ids
from llmtap.telemetry import SelfTelemetry

T0 = 1_717_000_000_000_000_000  # ns since the epoch
S = 1_000_000_000
MS = 1_000_000
_next_id = itertools.count(1)


# ---- what the receiver emits ---------------------------------------------------------------

@dataclass
class Proc:
    """A process as the eBPF receiver knows it; `agent` is its agent root (None: itself)."""

    pid: int
    ppid: int
    argv: list[str]
    start: int
    end: int = 0
    agent: Proc | None = None
    exit_code: int = 0
    path: str = ""
    parent_start: int = 0  # the parent's start time, when the receiver knows it
    name: str = ""  # an agent's llmtap.agent.name: its script's name for an interpreter, as the receiver names it

    @property
    def exe(self) -> str:
        return os.path.basename(self.path or self.argv[0])

    @property
    def root(self) -> Proc:
        return self.agent or self

    def stamp(self) -> dict[str, Any]:
        """What the receiver stamps on every span it emits for this process."""
        parent = {"llmtap.process.parent_start_time_unix_nano": self.parent_start} if self.parent_start else {}
        return {**parent, "process.pid": self.pid, "process.parent_pid": self.ppid, "process.executable.name": self.exe,
                "process.executable.path": self.path or f"/usr/bin/{self.exe}",
                "llmtap.process.start_time_unix_nano": self.start,
                "llmtap.agent.pid": self.root.pid, "llmtap.agent.start_time_unix_nano": self.root.start,
                "llmtap.agent.name": self.root.name or self.root.exe}


def random_ids(span: Span) -> None:
    n = next(_next_id)
    span.trace_id = hashlib.md5(b"t%d" % n).digest()
    span.span_id = hashlib.md5(b"s%d" % n).digest()[:8]


def process_span(proc: Proc) -> tuple[Proc, Span]:
    """The process span at exit: INTERNAL, `exec {name}`, the receiver's random ids."""
    span = Span(name=f"exec {proc.exe}", kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=proc.start,
                end_time_unix_nano=proc.end)
    random_ids(span)
    attributes.add(span.attributes, {**proc.stamp(), "process.command_args": proc.argv,
                                     "process.exit.code": proc.exit_code, "process.owner": "dev",
                                     "process.user.id": 1000, "llmtap.process.cgroup_id": 4242})
    return proc, span


def exchange_span(proc: Proc, start: int, end: int, url: str, request_body: dict,
                  response_body: dict) -> tuple[Proc, Span]:
    """A captured HTTP exchange, as receiver/ebpf/span.py writes it, plus the process stamp."""
    host = url.split("/")[2]
    span = Span(name="POST " + "/" + url.split("/", 3)[3], kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start, end_time_unix_nano=end)
    random_ids(span)
    body, reply = json.dumps(request_body), json.dumps(response_body)
    attributes.add(span.attributes, {
        "http.request.method": "POST", "url.full": url, "server.address": host, "server.port": 443,
        "network.protocol.name": "http", "network.protocol.version": "1.1", **proc.stamp(), "thread.id": proc.pid,
        "http.response.status_code": 200,
        "llmtap.http.request.header.content-type": ["application/json"],
        "llmtap.http.response.header.content-type": ["application/json"],
        "llmtap.http.request.body": body, "llmtap.http.request.body.size": len(body),
        "llmtap.http.response.body": reply, "llmtap.http.response.body.size": len(reply)})
    return proc, span


SHELL_TOOL = {"type": "function", "function": {
    "name": "shell", "description": "Run a shell command",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}


def openai_chat(proc: Proc, start: int, end: int, messages: list[dict], *, tool_calls: list[tuple] = (),
                text: str | None = None, usage: tuple[int, int] = (120, 20)) -> tuple[Proc, Span]:
    """One Chat Completions call; tool_calls: (id, name, arguments dict)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                                 for i, n, a in tool_calls]
    response_body = {"id": f"chatcmpl-{next(_next_id)}", "object": "chat.completion", "created": 1717000000,
                     "model": "gpt-4o-2024-08-06",
                     "choices": [{"index": 0, "message": message, "logprobs": None,
                                  "finish_reason": "tool_calls" if tool_calls else "stop"}],
                     "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                               "total_tokens": usage[0] + usage[1]}}
    request_body = {"model": "gpt-4o", "messages": messages, "tools": [SHELL_TOOL]}
    return exchange_span(proc, start, end, "https://api.openai.com/v1/chat/completions", request_body,
                         response_body)


def assistant_tool_call(call_id: str, command: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": "shell", "arguments": json.dumps({"command": command})}}]}


def tool_result(call_id: str, output: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def request(*items: tuple[Proc | dict, Span]) -> ExportTraceServiceRequest:
    """One export request, one ResourceSpans per process (service.name = its executable), as the receiver sends."""
    out = ExportTraceServiceRequest()
    groups: dict[Any, Any] = {}
    for owner, span in items:
        key = id(owner)
        if key not in groups:
            rs = out.resource_spans.add()
            resource = owner if isinstance(owner, dict) else {"service.name": owner.exe, "host.name": "devbox"}
            attributes.add(rs.resource.attributes, resource)
            ss = rs.scope_spans.add()
            ss.scope.name = ("llmtap.receiver.ebpf" if isinstance(owner, Proc)
                             else "opentelemetry.instrumentation.openai_v2")
            groups[key] = ss
        groups[key].spans.add().CopyFrom(span)
    return out


# ---- the pipeline under test -----------------------------------------------------------------

class Sink(Consumer):
    def __init__(self) -> None:
        self.received: list[ExportTraceServiceRequest] = []

    async def consume(self, signal: Signal, data) -> None:
        self.received.append(data)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """genai_semconv [→ cost_attribution] → agent_session → sink, on one event loop, with a clock
    the test moves."""

    def __init__(self, *, cost: bool = False, **config):
        self.telemetry = SelfTelemetry()
        self.clock = FakeClock()
        self.sink = Sink()
        parsed, errors = decode_config(agent_session.Config, config)
        assert not errors, errors
        self.processor = AgentSessionProcessor(self._settings("agent_session"), parsed, Signal.TRACES, self.sink,
                                               clock=self.clock)
        head: Consumer = self.processor
        upstream = [genai_semconv.factory] + ([cost_attribution.factory] if cost else [])
        for factory in reversed(upstream):
            cfg, errors = decode_config(factory.config_class, {})
            assert not errors
            head = factory.create(self._settings(factory.type), cfg, Signal.TRACES, head)
        self.head = head
        self.loop = asyncio.new_event_loop()

    def _settings(self, type_: str) -> Settings:
        return Settings(ComponentID(type_), Kind.PROCESSOR, self.telemetry, logging.getLogger(f"llmtap.test.{type_}"))

    def send(self, *items: tuple[Any, Span]) -> list[Span]:
        before = len(self.sink.received)
        self.loop.run_until_complete(self.head.consume(Signal.TRACES, request(*items)))
        return [s for r in self.sink.received[before:] for s in spans_of(r)]

    def expire(self, after_seconds: float) -> list[Span]:
        before = len(self.sink.received)
        self.clock.now += after_seconds
        self.loop.run_until_complete(self.processor.expire_sessions())
        return [s for r in self.sink.received[before:] for s in spans_of(r)]

    def shutdown(self) -> list[Span]:
        before = len(self.sink.received)
        self.loop.run_until_complete(self.processor.shutdown())
        return [s for r in self.sink.received[before:] for s in spans_of(r)]

    def spans(self) -> list[Span]:
        return [s for r in self.sink.received for s in spans_of(r)]

    def anomalies(self, kind: str) -> float:
        return self.telemetry.value("llmtap_processor_agent_session_anomalies_total",
                                    processor="agent_session", kind=kind)

    def close(self) -> None:
        self.loop.close()


@pytest.fixture
def rig_factory():
    made = []

    def make(**config) -> Rig:
        made.append(Rig(**config))
        return made[-1]

    yield make
    for rig in made:
        rig.close()


def spans_of(req: ExportTraceServiceRequest) -> list[Span]:
    return [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]


def attrs(span: Span) -> dict[str, Any]:
    return attributes.as_dict(span.attributes)


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.name == name]


def only(spans: list[Span], name: str) -> Span:
    found = named(spans, name)
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def links(span: Span) -> dict[str, list[tuple[bytes, bytes]]]:
    out: dict[str, list] = {}
    for link in span.links:
        out.setdefault(attributes.get(link.attributes, "llmtap.link.role"), []).append((link.trace_id, link.span_id))
    return out


def anomaly_events(spans: list[Span], kind: str | None = None) -> list[tuple[Span, dict]]:
    return [(s, attributes.as_dict(e.attributes)) for s in spans for e in s.events
            if e.name == "llmtap.anomaly"
            and (kind is None or attributes.get(e.attributes, "llmtap.anomaly.kind") == kind)]


# ---- the spec's story: LLM call → tool call `ls -la` → bash -c "ls -la" → ls --------------------

def agent_story():
    agent = Proc(4100, 4000, ["python3", "agent.py"], T0, T0 + 5 * S, path="/usr/bin/python3", name="agent")
    bash = Proc(4101, 4100, ["/bin/bash", "-c", "ls -la"], T0 + 2100 * MS, T0 + 2300 * MS, agent=agent,
                parent_start=T0)
    ls = Proc(4102, 4101, ["ls", "-la"], T0 + 2150 * MS, T0 + 2250 * MS, agent=agent, path="/usr/bin/ls",
              parent_start=T0 + 2100 * MS)
    history = [{"role": "system", "content": "You are a helpful ops agent."},
               {"role": "user", "content": "What is in this directory?"}]
    first = openai_chat(agent, T0 + 1 * S, T0 + 2 * S, history,
                        tool_calls=[("call_Ab12", "shell", {"command": "ls -la"})])
    listing = "total 8\ndrwxr-xr-x 2 dev dev 4096 .\n-rw-r--r-- 1 dev dev 12 notes.txt"
    second = openai_chat(agent, T0 + 2500 * MS, T0 + 3 * S,
                         history + [assistant_tool_call("call_Ab12", "ls -la"), tool_result("call_Ab12", listing)],
                         text="One file: notes.txt.")
    return agent, bash, ls, first, second


def test_one_session_one_trace_with_invoke_agent_root_execute_tool_and_the_process_tree(rig_factory):
    rig = rig_factory(agent_names={"agent": "ops-agent"})
    agent, bash, ls, first, second = agent_story()
    rig.send(first)
    rig.send(process_span(ls), process_span(bash))  # ls exits first; both in one flush
    rig.send(second)
    rig.send(process_span(agent))
    spans = rig.spans()

    key = f"agent:4100:{T0}"
    trace = hashlib.sha256(b"session" + key.encode()).digest()[:16]
    root_id = hashlib.sha256(b"root" + key.encode()).digest()[:8]
    assert {s.trace_id for s in spans} == {trace}
    assert len(spans) == 6  # 2 LLM calls, 3 processes (one the root), 1 execute_tool

    root = only(spans, "invoke_agent ops-agent")
    assert (root.span_id, root.parent_span_id, root.kind) == (root_id, b"", Span.SPAN_KIND_INTERNAL)
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (T0, T0 + 5 * S)
    root_attrs = attrs(root)
    assert {k: root_attrs.get(k) for k in ("gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.provider.name",
                                           "gen_ai.request.model", "llmtap.session.key", "llmtap.session.llm_calls",
                                           "process.pid", "process.command_args")} == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "ops-agent", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o", "llmtap.session.key": key, "llmtap.session.llm_calls": 2,
        "process.pid": 4100, "process.command_args": ["python3", "agent.py"]}

    llm_calls = sorted(named(spans, "chat gpt-4o"), key=lambda s: s.start_time_unix_nano)
    assert [s.parent_span_id for s in llm_calls] == [root_id, root_id]  # the agent root made them
    bash_span, ls_span = only(spans, "exec bash"), only(spans, "exec ls")
    bash_id = hashlib.sha256(b"proc" + (4101).to_bytes(4, "big") + bash.start.to_bytes(8, "big")).digest()[:8]
    assert (bash_span.span_id, bash_span.parent_span_id) == (bash_id, root_id)
    assert (ls_span.span_id, ls_span.parent_span_id) == (ids.process_span_id(4102, ls.start), bash_id)

    tool = only(spans, "execute_tool shell")
    assert (tool.parent_span_id, tool.kind) == (root_id, Span.SPAN_KIND_INTERNAL)
    assert tool.span_id == hashlib.sha256(b"tool" + key.encode() + b"/call_Ab12").digest()[:8]
    assert (tool.start_time_unix_nano, tool.end_time_unix_nano) == (bash.start, bash.end)  # the outermost process
    assert attrs(tool) == {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "shell",
                           "gen_ai.tool.call.id": "call_Ab12", "gen_ai.tool.type": "function",
                           "llmtap.tool.match": "exact"}
    assert links(tool) == {"tool_call": [(trace, llm_calls[0].span_id)],
                           "execution": [(trace, bash_span.span_id), (trace, ls_span.span_id)]}
    assert attrs(bash_span)["llmtap.tool.call.id"] == attrs(ls_span)["llmtap.tool.call.id"] == "call_Ab12"
    assert "llmtap.tool.call.id" not in attrs(root)
    assert rig.telemetry.value("llmtap_processor_agent_session_tool_executions_total",
                               processor="agent_session") == 1


def test_execute_tool_goes_out_with_the_process_span_that_completed_the_match(rig_factory):
    rig = rig_factory()
    agent, bash, ls, first, second = agent_story()
    rig.send(first)
    out = rig.send(process_span(ls))
    tool = only(out, "execute_tool shell")
    [req] = rig.sink.received[-1:]
    [rs_with_tool] = [rs for rs in req.resource_spans if any(s.name == "execute_tool shell"
                                                              for ss in rs.scope_spans for s in ss.spans)]
    assert attributes.as_dict(rs_with_tool.resource.attributes)["service.name"] == "ls"  # the process span's resource
    assert [ss.scope.name for ss in rs_with_tool.scope_spans] == ["llmtap.receiver.ebpf",
                                                                  "llmtap.processors.agent_session"]
    # bash exits later, in another request: its execute_tool span already left, so it links to it.
    out = rig.send(process_span(bash))
    assert named(out, "execute_tool shell") == []
    bash_span = only(out, "exec bash")
    assert links(bash_span) == {"tool_execution": [(tool.trace_id, tool.span_id)]}
    assert attrs(bash_span)["llmtap.tool.call.id"] == "call_Ab12"


def test_a_child_that_arrives_before_its_parent_is_still_its_child(rig_factory):
    rig = rig_factory()
    agent, bash, ls, first, _ = agent_story()
    out = rig.send(process_span(ls))
    assert only(out, "exec ls").parent_span_id == ids.process_span_id(4101, bash.start)
    # Without its parent's start time, a span is placed under the parent the session has seen
    # with that pid, else directly under the root.
    orphan = Proc(4103, 4101, ["wc", "-l"], T0 + 2160 * MS, T0 + 2170 * MS, agent=agent)
    assert only(rig.send(process_span(orphan)), "exec wc").parent_span_id == ids.root_span_id(f"agent:4100:{T0}")
    rig.send(process_span(bash))
    late = Proc(4104, 4101, ["head"], T0 + 2170 * MS, T0 + 2180 * MS, agent=agent)
    assert only(rig.send(process_span(late)), "exec head").parent_span_id == ids.process_span_id(4101, bash.start)


def test_process_spans_that_come_before_their_llm_span_are_matched_when_it_comes(rig_factory):
    rig = rig_factory()
    agent, bash, ls, first, second = agent_story()
    rig.send(process_span(ls), process_span(bash))
    out = rig.send(first)
    tool = only(out, "execute_tool shell")
    llm = only(out, "chat gpt-4o")
    assert links(tool)["tool_call"] == [(llm.trace_id, llm.span_id)]
    assert {span_id for _, span_id in links(tool)["execution"]} == {ids.process_span_id(4101, bash.start),
                                                                    ids.process_span_id(4102, ls.start)}
    assert (tool.start_time_unix_nano, tool.end_time_unix_nano) == (bash.start, bash.end)


def test_anthropic_tool_use_and_the_limits_of_matching(rig_factory):
    """Claude's Bash tool; env expansion means the child's argv is no longer the command the model wrote."""
    rig = rig_factory()
    agent = Proc(7000, 1, ["claude"], T0, T0 + 9 * S, path="/usr/local/bin/claude")
    request_body = {"model": "claude-sonnet-4-5", "max_tokens": 4096,
                    "messages": [{"role": "user", "content": "Show my notes"}]}
    response_body = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                     "model": "claude-sonnet-4-5-20250929", "stop_reason": "tool_use", "stop_sequence": None,
                     "content": [{"type": "text", "text": "I'll read the notes."},
                                 {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "Bash",
                                  "input": {"command": "cat $HOME/notes.txt", "description": "Read notes"}}],
                     "usage": {"input_tokens": 2095, "output_tokens": 503}}
    llm = exchange_span(agent, T0 + S, T0 + 2 * S, "https://api.anthropic.com/v1/messages", request_body,
                        response_body)
    shell = Proc(7001, 7000, ["/bin/zsh", "-c", "-l", "cat $HOME/notes.txt"], T0 + 2100 * MS, T0 + 2200 * MS,
                 agent=agent)
    cat = Proc(7002, 7001, ["cat", "/home/dev/notes.txt"], T0 + 2110 * MS, T0 + 2190 * MS, agent=agent)
    git = Proc(7003, 7000, ["git", "rev-parse", "--show-toplevel"], T0 + 2120 * MS, T0 + 2130 * MS, agent=agent)
    rig.send(llm)
    out = rig.send(process_span(cat), process_span(git), process_span(shell))
    tool = only(out, "execute_tool Bash")
    assert attrs(tool)["gen_ai.tool.call.id"] == "toolu_01A09q90qw90lq917835lq9"
    assert [span_id for _, span_id in links(tool)["execution"]] == [ids.process_span_id(7001, shell.start)]
    for name in ("exec cat", "exec git"):  # the expanded path, and the agent's own housekeeping: no tool call
        assert "llmtap.tool.call.id" not in attrs(only(out, name))
    assert only(out, "exec git").parent_span_id == ids.root_span_id(f"agent:7000:{T0}")


def test_a_process_after_the_match_window_is_not_a_tool_execution(rig_factory):
    rig = rig_factory(match_window="30s")
    agent, bash, ls, first, _ = agent_story()
    late = Proc(4101, 4100, ["/bin/bash", "-c", "ls -la"], first[1].end_time_unix_nano + 31 * S,
                first[1].end_time_unix_nano + 32 * S, agent=agent)
    rig.send(first)
    out = rig.send(process_span(late))
    assert named(out, "execute_tool shell") == []
    assert only(out, "exec bash").parent_span_id == ids.root_span_id(f"agent:4100:{T0}")


# ---- sessions never mix ---------------------------------------------------------------------------

def test_two_agents_at_the_same_time_never_share_a_span(rig_factory):
    rig = rig_factory()
    a = Proc(4100, 1, ["python3", "agent_a.py"], T0, T0 + 9 * S, name="agent_a")
    b = Proc(5200, 1, ["node", "agent_b.js"], T0 + 10 * MS, T0 + 9 * S, name="agent_b")
    procs = {}
    for agent, offset in ((a, 0), (b, 30 * MS)):
        procs[agent.pid] = [
            openai_chat(agent, T0 + S + offset, T0 + 2 * S + offset, [{"role": "user", "content": "list files"}],
                        tool_calls=[(f"call_{agent.pid}", "shell", {"command": "ls -la"})]),
            process_span(Proc(agent.pid + 1, agent.pid, ["bash", "-c", "ls -la"], T0 + 2100 * MS + offset,
                              T0 + 2300 * MS + offset, agent=agent)),
            process_span(Proc(agent.pid + 2, agent.pid + 1, ["ls", "-la"], T0 + 2150 * MS + offset,
                              T0 + 2250 * MS + offset, agent=agent)),
        ]
    # Interleaved, as one receiver flush would carry them.
    rig.send(procs[4100][0], procs[5200][0])
    rig.send(procs[5200][2], procs[4100][2], procs[4100][1], procs[5200][1])
    rig.send(process_span(b), process_span(a))
    spans = rig.spans()
    for agent in (a, b):
        key = f"agent:{agent.pid}:{agent.start}"
        mine = [s for s in spans if s.trace_id == ids.trace_id(key)]
        assert sorted(s.name for s in mine) == sorted(["chat gpt-4o", "exec bash", "exec ls", "execute_tool shell",
                                                       f"invoke_agent {agent.name}"])
        tool = only(mine, "execute_tool shell")
        assert attrs(tool)["gen_ai.tool.call.id"] == f"call_{agent.pid}"
        offset = 30 * MS if agent is b else 0
        assert {link.trace_id for link in tool.links} == {ids.trace_id(key)}
        assert links(tool)["execution"] == [
            (ids.trace_id(key), ids.process_span_id(agent.pid + 1, T0 + 2100 * MS + offset)),
            (ids.trace_id(key), ids.process_span_id(agent.pid + 2, T0 + 2150 * MS + offset))]
    assert len(spans) == 10


# ---- loops and cost -----------------------------------------------------------------------------

def looping_agent(n: int, command: str = "ls", output: str = "notes.txt"):
    """The model asks for the same tool call n times; the agent runs it each time."""
    agent = Proc(4100, 1, ["python3", "agent.py"], T0, T0 + 600 * S, name="agent")
    history: list[dict] = [{"role": "user", "content": "Find the notes file"}]
    rounds = []
    for i in range(n):
        start = T0 + (10 * i + 1) * S
        call_id = f"call_{i:02d}"
        llm = openai_chat(agent, start, start + S, list(history), tool_calls=[(call_id, "shell", {"command": command})])
        proc = process_span(Proc(4200 + i, 4100, ["bash", "-c", command], start + 2 * S, start + 3 * S, agent=agent))
        rounds.append((llm, proc))
        history += [assistant_tool_call(call_id, command), tool_result(call_id, output)]
    return agent, rounds


def test_ten_identical_tool_calls_raise_tool_loop_once_on_the_call_that_crossed_the_threshold(rig_factory):
    rig = rig_factory(tool_loop_threshold=5, prompt_loop_threshold=0)
    agent, rounds = looping_agent(10)
    for llm, proc in rounds:
        rig.send(llm)
        rig.send(proc)
    events = anomaly_events(rig.spans(), "tool_loop")
    assert len(events) == 1
    span, event = events[0]
    llm_calls = sorted(named(rig.spans(), "chat gpt-4o"), key=lambda s: s.start_time_unix_nano)
    assert span.span_id == llm_calls[4].span_id  # the fifth identical call
    assert event == {"llmtap.anomaly.kind": "tool_loop", "llmtap.anomaly.count": 5, "llmtap.anomaly.threshold": 5,
                     "llmtap.session.key": f"agent:4100:{T0}", "gen_ai.tool.name": "shell"}
    assert span.events[0].time_unix_nano == span.end_time_unix_nano
    assert rig.anomalies("tool_loop") == 1
    # Each run is its own execution, of the call just before it.
    tools = named(rig.spans(), "execute_tool shell")
    assert sorted(attrs(t)["gen_ai.tool.call.id"] for t in tools) == [f"call_{i:02d}" for i in range(10)]


def test_the_same_command_and_result_over_and_over_is_a_prompt_loop_too(rig_factory):
    rig = rig_factory()
    agent, rounds = looping_agent(10)
    rig.send(*[llm for llm, _ in rounds])
    assert [e["llmtap.anomaly.kind"] for _, e in anomaly_events(rig.spans())] == ["tool_loop", "prompt_loop"]
    # The first prompt ends with the user's question, the next nine with the same tool result:
    # the sixth call's prompt is the fifth with that ending.
    [(span, event)] = anomaly_events(rig.spans(), "prompt_loop")
    assert span.start_time_unix_nano == T0 + 51 * S and event["llmtap.anomaly.count"] == 5


def test_near_identical_prompts_raise_prompt_loop(rig_factory):
    """A client that keeps resending the same request, differing only in case, spacing and numbers."""
    rig = rig_factory(prompt_loop_threshold=4)
    client = Proc(8100, 1, ["python3", "summarize.py"], T0, T0 + 60 * S, name="summarize")
    prompts = ["Summarize ticket #1234 as JSON.", "summarize ticket #1235 as  JSON.",
               "Summarize ticket #1236\nas JSON.",
               "SUMMARIZE TICKET #1237 AS JSON.", "Summarize ticket #1238 as JSON."]
    for i, prompt in enumerate(prompts):
        rig.send(openai_chat(client, T0 + i * S, T0 + i * S + 500 * MS,
                             [{"role": "system", "content": "Reply with JSON only."},
                              {"role": "user", "content": prompt}],
                             text="Sure! Here it is: {"))
    [(span, event)] = anomaly_events(rig.spans())
    assert event["llmtap.anomaly.kind"] == "prompt_loop" and event["llmtap.anomaly.count"] == 4
    assert span.start_time_unix_nano == T0 + 3 * S
    assert rig.anomalies("prompt_loop") == 1


def test_a_working_agent_raises_nothing(rig_factory):
    """Different commands with different results, and a history that grows: no loop."""
    rig = rig_factory()
    agent = Proc(4100, 1, ["python3", "agent.py"], T0, T0 + 600 * S, name="agent")
    history: list[dict] = [{"role": "user", "content": "Fix the failing test"}]
    commands = ["ls", "cat tests/test_x.py", "pytest -x", "sed -i s/1/2/ x.py", "pytest -x", "git diff", "ls -la"]
    outputs = ["tests x.py", "def test(): ...", "1 failed", "", "1 passed", "diff --git a/x.py", "total 2"]
    for i, (command, output) in enumerate(zip(commands, outputs)):
        start = T0 + (10 * i + 1) * S
        rig.send(openai_chat(agent, start, start + S, list(history),
                             tool_calls=[(f"c{i}", "shell", {"command": command})]))
        history += [assistant_tool_call(f"c{i}", command), tool_result(f"c{i}", output)]
    assert anomaly_events(rig.spans()) == []


def test_runaway_cost_is_raised_once_when_the_session_spend_goes_above_the_limit(rig_factory):
    rig = rig_factory(cost=True, runaway_cost_usd=1.0)
    agent = Proc(4100, 1, ["python3", "agent.py"], T0, T0 + 600 * S, name="agent")
    for i in range(8):
        rig.send(openai_chat(agent, T0 + (i + 1) * S, T0 + (i + 1) * S + 500 * MS,
                             [{"role": "user", "content": f"step {i}: " + "context " * 50}],
                             text="ok", usage=(100_000, 200)))
    calls = sorted(named(rig.spans(), "chat gpt-4o"), key=lambda s: s.start_time_unix_nano)
    costs = [attrs(s)["gen_ai.usage.cost"] for s in calls]
    running = list(itertools.accumulate(costs))
    crossing = next(i for i, total in enumerate(running) if total > 1.0)
    assert 0 < crossing < 7
    [(span, event)] = anomaly_events(rig.spans(), "runaway_cost")
    assert span.span_id == calls[crossing].span_id
    assert event["llmtap.anomaly.threshold"] == 1.0
    assert event["llmtap.anomaly.count"] == crossing + 1
    assert event["llmtap.anomaly.cost_usd"] == pytest.approx(running[crossing])
    assert rig.anomalies("runaway_cost") == 1
    rig.send(process_span(agent))
    root = only(rig.spans(), "invoke_agent agent")
    assert attrs(root)["llmtap.session.cost"] == pytest.approx(running[-1])


# ---- late spans ----------------------------------------------------------------------------------

def test_spans_after_the_root_left_still_join_the_session(rig_factory):
    rig = rig_factory(session_ttl="10m", match_window="30s")
    agent, bash, ls, first, second = agent_story()
    daemon = Proc(4150, 4100, ["sleep", "3600"], T0 + 1500 * MS, T0 + 3700 * S, agent=agent)
    rig.send(first, second)
    rig.send(process_span(agent))  # the agent exits; its child keeps running
    key = f"agent:4100:{T0}"
    # Well after the root left, and after the session's state was dropped.
    rig.expire(3600)
    out = rig.send(process_span(bash), process_span(ls), process_span(daemon))
    assert {s.trace_id for s in out} == {ids.trace_id(key)}
    assert only(out, "exec sleep").parent_span_id == ids.root_span_id(key)
    assert only(out, "exec ls").parent_span_id == ids.process_span_id(4101, bash.start)
    assert named(out, "execute_tool shell") == []  # the pending tool call went with the state


# ---- sessions by conversation id -------------------------------------------------------------------

APP = {"service.name": "support-bot", "service.version": "2.3.0", "telemetry.sdk.language": "python"}


def app_span(trace: bytes, span_id: bytes, parent: bytes, name: str, start: int, end: int,
             **attrs: Any) -> tuple[dict, Span]:
    span = Span(trace_id=trace, span_id=span_id, parent_span_id=parent, name=name, start_time_unix_nano=start,
                end_time_unix_nano=end, kind=Span.SPAN_KIND_CLIENT if name.startswith(("chat", "POST")) else
                Span.SPAN_KIND_INTERNAL)
    attributes.add(span.attributes, attrs)
    return APP, span


def conversation_turn(turn: int, conversation: str = "conv_68d1a2"):
    trace = hashlib.md5(b"turn%d" % turn).digest()
    base = T0 + turn * 60 * S
    agent = app_span(trace, b"A%07d" % turn, b"", "invoke_agent support", base, base + 5 * S,
                     **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support",
                        "gen_ai.provider.name": "openai", "gen_ai.conversation.id": conversation})
    chat = app_span(trace, b"C%07d" % turn, b"A%07d" % turn, "chat gpt-4o-mini", base + S, base + 4 * S,
                    **{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                       "gen_ai.request.model": "gpt-4o-mini", "gen_ai.conversation.id": conversation,
                       "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                           {"type": "text", "content": f"question {turn}"}]}])})
    http = app_span(trace, b"H%07d" % turn, b"C%07d" % turn, "POST", base + S, base + 4 * S,
                    **{"http.request.method": "POST", "url.full": "https://api.openai.com/v1/responses"})
    return trace, agent, chat, http


def test_conversation_sessions_move_whole_traces_and_get_a_root_when_they_go_idle(rig_factory):
    rig = rig_factory(session_ttl="5m")
    key = "conversation:conv_68d1a2"
    trace1, agent1, chat1, http1 = conversation_turn(1)
    trace2, agent2, chat2, http2 = conversation_turn(2)
    out = rig.send(http1, chat1, agent1)  # a batch span processor's order: children end first
    rig.send(http2, chat2)  # turn 2's HTTP span carries no conversation id: it follows its trace
    rig.send(agent2)  # the turn's own root comes in a later batch
    spans = rig.spans()
    assert {s.trace_id for s in spans} == {ids.trace_id(key)}
    parents = {s.span_id: s.parent_span_id for s in spans}
    root_id = ids.root_span_id(key)
    assert parents == {b"A%07d" % 1: root_id, b"C%07d" % 1: b"A%07d" % 1, b"H%07d" % 1: b"C%07d" % 1,
                       b"A%07d" % 2: root_id, b"C%07d" % 2: b"A%07d" % 2, b"H%07d" % 2: b"C%07d" % 2}
    assert rig.expire(60) == []  # not idle long enough
    [root] = rig.expire(301)
    assert (root.trace_id, root.span_id, root.parent_span_id) == (ids.trace_id(key), root_id, b"")
    assert root.name == "invoke_agent support"
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (T0 + 60 * S, T0 + 125 * S)
    assert {k: v for k, v in attrs(root).items()} == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.conversation.id": "conv_68d1a2", "llmtap.session.key": key,
        "llmtap.session.llm_calls": 2, "llmtap.session.synthesized": True}
    [req] = rig.sink.received[-1:]
    assert attributes.as_dict(req.resource_spans[0].resource.attributes) == APP

    # A third turn after the root left: same trace, same root id, and no second root span.
    trace3, agent3, chat3, http3 = conversation_turn(3)
    out = rig.send(agent3, chat3)
    assert {s.trace_id for s in out} == {ids.trace_id(key)} and agent3[1].name in [s.name for s in out]
    assert only(out, "invoke_agent support").parent_span_id == root_id
    assert rig.expire(301) == [] and rig.shutdown() == []


def test_open_conversation_sessions_get_their_root_at_shutdown(rig_factory):
    rig = rig_factory()
    _, agent1, chat1, http1 = conversation_turn(1, conversation="conv_shutdown")
    rig.send(http1, chat1, agent1)
    [root] = rig.shutdown()
    assert root.span_id == ids.root_span_id("conversation:conv_shutdown")
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (T0 + 60 * S, T0 + 65 * S)


def test_the_timer_sends_the_root_of_an_idle_conversation():
    """Real time, real timer task: started in start(), cancelled in shutdown()."""
    async def go():
        sink = Sink()
        config, errors = decode_config(agent_session.Config, {"session_ttl": "50ms"})
        assert not errors
        settings = Settings(ComponentID("agent_session"), Kind.PROCESSOR, SelfTelemetry(), logging.getLogger("t"))
        processor = agent_session.factory.create(settings, config, Signal.TRACES, sink)
        await processor.start(None)
        _, agent1, chat1, _ = conversation_turn(1, conversation="conv_timer")
        await processor.consume(Signal.TRACES, request(chat1, agent1))
        for _ in range(500):
            if len(sink.received) > 1:
                break
            await asyncio.sleep(0.01)
        await processor.shutdown()
        return sink.received

    received = asyncio.run(go())
    assert len(received) == 2
    [root] = spans_of(received[1])
    assert root.span_id == ids.root_span_id("conversation:conv_timer")


async def test_in_a_service_the_roots_left_at_shutdown_pass_the_batch_behind(service_from_yaml, feed_receivers,
                                                                            capture_exporters):
    service = service_from_yaml("""
receivers: {feed: {}}
processors:
  agent_session: {session_ttl: 1h}
  batch: {timeout: 10s}
exporters: {capture: {}}
service:
  pipelines:
    traces: {receivers: [feed], processors: [agent_session, batch], exporters: [capture]}
""", agent_session.factory)
    await service.start()
    _, agent1, chat1, http1 = conversation_turn(1, conversation="conv_service")
    await feed_receivers["feed"].consumers[Signal.TRACES].consume(Signal.TRACES, request(http1, chat1, agent1))
    await service.shutdown()
    spans = [s for r in capture_exporters["capture"].sink.requests(Signal.TRACES) for s in spans_of(r)]
    assert len(spans) == 4
    assert {s.trace_id for s in spans} == {ids.trace_id("conversation:conv_service")}
    [root] = [s for s in spans if attrs(s).get("llmtap.session.synthesized")]
    assert root.span_id == ids.root_span_id("conversation:conv_service") and root.name == "invoke_agent support"


def test_an_agent_root_wins_over_a_conversation_id_which_goes_on_the_root(rig_factory):
    rig = rig_factory()
    agent = Proc(4100, 1, ["python3", "agent.py"], T0, T0 + 60 * S, name="agent")
    request_body = {"model": "gpt-4.1", "input": "hello",
                    "conversation": "conv_689667905b048191b4740501625afd940c7533ace33a2dab"}
    response_body = {"id": "resp_1", "object": "response", "created_at": 1717000000, "status": "completed",
                     "model": "gpt-4.1-2025-04-14", "conversation": {"id": request_body["conversation"]},
                     "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                                 "content": [{"type": "output_text", "text": "Hi!", "annotations": []}]}],
                     "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}
    out = rig.send(exchange_span(agent, T0 + S, T0 + 2 * S, "https://api.openai.com/v1/responses", request_body,
                                 response_body))
    key = f"agent:4100:{T0}"
    [llm] = out
    assert attrs(llm)["gen_ai.conversation.id"] == request_body["conversation"]
    assert (llm.trace_id, llm.parent_span_id) == (ids.trace_id(key), ids.root_span_id(key))
    rig.send(process_span(agent))
    root = only(rig.spans(), "invoke_agent agent")
    assert attrs(root)["gen_ai.conversation.id"] == request_body["conversation"]
    assert rig.shutdown() == []  # no conversation session, no synthesized root


# ---- bounded state -----------------------------------------------------------------------------

def test_max_sessions_drops_the_least_recently_active_session(rig_factory):
    rig = rig_factory(max_sessions=2)
    turns = [conversation_turn(1, conversation=f"conv_{c}") for c in "abc"]
    rig.send(turns[0][2])
    rig.send(turns[1][2])
    out = rig.send(turns[2][2])  # a third session: conv_a's state goes, and its root with this request
    roots = [s for s in out if attrs(s).get("llmtap.session.synthesized")]
    assert roots[0].name == "invoke_agent support-bot"  # no gen_ai.agent.name seen: the service's name
    assert [r.span_id for r in roots] == [ids.root_span_id("conversation:conv_a")]
    assert rig.telemetry.value("llmtap_processor_agent_session_evicted_sessions_total", processor="agent_session") == 1
    assert rig.telemetry.value("llmtap_processor_agent_session_sessions", processor="agent_session") == 2
    # An agent session evicted with a tool call pending loses the match, never the structure.
    agent, bash, ls, first, _ = agent_story()
    rig.send(first)
    rig.send(turns[0][2])
    rig.send(turns[1][2])
    out = rig.send(process_span(bash))
    assert named(out, "execute_tool shell") == []
    assert only(out, "exec bash").parent_span_id == ids.root_span_id(f"agent:4100:{T0}")


def test_an_exited_agent_keeps_its_state_only_for_the_match_window(rig_factory):
    rig = rig_factory(match_window="30s", session_ttl="1h")
    agent, bash, ls, first, _ = agent_story()
    rig.send(first)
    rig.send(process_span(agent))
    assert rig.telemetry.value("llmtap_processor_agent_session_sessions", processor="agent_session") == 1
    rig.expire(31)
    assert rig.telemetry.value("llmtap_processor_agent_session_sessions", processor="agent_session") == 0


# ---- bad input -------------------------------------------------------------------------------

def test_bad_input_is_marked_and_passed_on_never_raised(rig_factory):
    rig = rig_factory()
    agent = Proc(4100, 1, ["python3", "agent.py"], T0, T0 + 60 * S, name="agent")
    stamp = agent.stamp()

    def span(name: str, kind=Span.SPAN_KIND_INTERNAL, **attrs: Any) -> tuple[Proc, Span]:
        s = Span(name=name, kind=kind, start_time_unix_nano=T0 + S, end_time_unix_nano=T0 + 2 * S)
        random_ids(s)
        attributes.add(s.attributes, attrs)
        return agent, s

    garbage_output = span("chat gpt-4o", Span.SPAN_KIND_CLIENT, **stamp, **{
        "gen_ai.operation.name": "chat", "gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [",
        "gen_ai.input.messages": "not json at all", "gen_ai.usage.cost": "a lot"})
    odd_parts = span("chat gpt-4o", Span.SPAN_KIND_CLIENT, **stamp, **{
        "gen_ai.operation.name": "chat", "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "tool_call", "name": 42, "arguments": [1, {"command": None}]},
                                             {"type": "tool_call"}, "part", None]}, 7, {"parts": "x"}]),
        "gen_ai.input.messages": json.dumps({"role": "user"})})
    half_agent = span("chat gpt-4o", Span.SPAN_KIND_CLIENT, **{"gen_ai.operation.name": "chat",
                                                              "llmtap.agent.pid": "4100"})
    huge_pid = span("exec x", **{**stamp, "process.pid": 1 << 40, "process.command_args": ["x"]})
    child = Proc(4101, 4100, ["ls"], T0 + S, T0 + 2 * S, agent=agent).stamp()
    bad_process = span("exec ls", **{**child, "process.command_args": "ls -la", "process.parent_pid": -3})
    no_attributes = span("something")
    [good] = [openai_chat(agent, T0 + 3 * S, T0 + 4 * S, [{"role": "user", "content": "hi"}], text="hello")]
    items = [garbage_output, odd_parts, half_agent, bad_process, huge_pid, no_attributes, good]
    out = rig.send(*items)
    assert len(out) == len(items), [x.name for x in out]
    by_name = {s.name: s for s in out}
    # The three hand-made model calls, in the order sent (the good one, mapped by genai_semconv, last).
    marks = [attrs(s).get("llmtap.session.error") for s in out if s.name == "chat gpt-4o"][:3]
    assert marks[0] == "gen_ai.output.messages is not valid JSON; gen_ai.input.messages is not valid JSON"
    assert marks[1] is None
    assert marks[2] == ("no agent session: llmtap.agent.pid and llmtap.agent.start_time_unix_nano must both be "
                        "integers, got '4100' and None")
    key = f"agent:4100:{T0}"
    in_session = [s for s in out if s.trace_id == ids.trace_id(key)]
    assert len(in_session) == 5  # garbage, odd parts, the bad process, the huge pid, the good call
    assert by_name["exec x"].parent_span_id == ids.root_span_id(key)  # a pid no process has: under the root
    assert "llmtap.session.error" not in attrs(by_name["exec x"])
    assert by_name["exec ls"].parent_span_id == ids.root_span_id(key)  # no usable parent: under the root
    assert by_name["something"].trace_id != ids.trace_id(key)  # no session: untouched
    assert rig.shutdown() == []


def test_an_internal_error_marks_only_the_span_it_happened_on(rig_factory, monkeypatch):
    rig = rig_factory()
    agent, bash, ls, first, second = agent_story()
    import llmtap.processors.agent_session as module

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "process_commands", broken)
    out = rig.send(first, process_span(bash), second)
    assert len(out) == 3
    assert attrs(only(out, "exec bash"))["llmtap.session.error"] == "internal error: RuntimeError: boom"
    assert all("llmtap.session.error" not in attrs(s) for s in out if s.name != "exec bash")


# ---- config and ids -----------------------------------------------------------------------------

def test_config_defaults_and_validation():
    config = agent_session.Config()
    assert (config.match_window, config.session_ttl, config.max_sessions, config.tool_loop_threshold,
            config.prompt_loop_threshold, config.loop_window, config.runaway_cost_usd) == (120, 1800, 4096, 5, 5, 20, 0)
    _, errors = decode_config(agent_session.Config, {
        "match_window": "0s", "max_sessions": 0, "tool_loop_threshold": 1, "prompt_loop_threshold": 30,
        "loop_window": 20, "runaway_cost_usd": -2.5, "agent_names": {"claude": " "}})
    assert errors == [
        "match_window: must be greater than 0",
        "max_sessions: must be at least 1; got 0",
        "tool_loop_threshold: must be 0 (off) or between 2 and loop_window (20); got 1",
        "prompt_loop_threshold: must be 0 (off) or between 2 and loop_window (20); got 30",
        "runaway_cost_usd: must be 0 (off) or a positive number of USD; got -2.5",
        "agent_names.claude: must not be empty"]


def test_ids_follow_the_contract():
    key = ids.agent_key(4100, T0)
    assert key == f"agent:4100:{T0}" and ids.conversation_key("c1") == "conversation:c1"
    assert ids.trace_id(key) == hashlib.sha256(b"session" + key.encode()).digest()[:16]
    assert ids.root_span_id(key) == hashlib.sha256(b"root" + key.encode()).digest()[:8]
    assert ids.process_span_id(4100, T0) == hashlib.sha256(b"proc" + bytes.fromhex("00001004")
                                                           + T0.to_bytes(8, "big")).digest()[:8]
    assert ids.tool_span_id(key, "call_1") == hashlib.sha256(b"tool" + key.encode() + b"/call_1").digest()[:8]
    assert len({ids.trace_id(k) for k in (key, ids.agent_key(4100, T0 + 1), ids.conversation_key("x"))}) == 3


def test_process_span_ids_are_the_ones_the_receiver_gives():
    from llmtap.receiver.ebpf import processes
    for pid, start in ((1, 0), (4100, T0), ((1 << 22) - 1, (1 << 64) - 1)):
        assert ids.process_span_id(pid, start) == processes.process_span_id(pid, start)


@pytest.mark.parametrize(("arguments", "argv", "expected"), [
    ({"command": "ls -la"}, ["ls", "-la"], "exact"),
    ({"command": "ls   -la "}, ["/usr/bin/ls", "-la"], "exact"),
    ({"command": "echo 'hello world'"}, ["echo", "hello world"], "exact"),
    ({"command": ["bash", "-lc", "npm test"]}, ["bash", "-lc", "npm test"], "exact"),  # Codex's argv form
    ({"commands": ["pwd", "ls"]}, ["ls"], "exact"),  # LangChain's shell tool
    ({"action": {"command": ["ls", "-la"]}}, ["ls", "-la"], "exact"),
    ({"command": "cd /repo && ls -la | head"}, ["ls", "-la"], "contains"),
    ({"command": "ls"}, ["ls", "--color=auto"], "contains"),
    ({"command": "ls -la"}, ["bash", "-o", "pipefail", "-c", "ls -la"], "exact"),
    ({"command": "bash deploy.sh"}, ["bash", "deploy.sh"], "exact"),
    ({"command": "bash -c 'ls'"}, ["bash"], None),  # a bare shell reading stdin is no evidence
    ({"command": "cat $HOME/x"}, ["cat", "/home/dev/x"], None),  # expanded by the shell
    ({"command": "./deploy.sh"}, ["bash", "/repo/deploy.sh"], None),  # a script file runs what it holds
    ({"location": "Paris"}, ["ls"], None),  # not a command-running tool
    ("git status", ["git", "status"], "exact"),  # a free-form (non-JSON) input
    ({"command": "echo 'unbalanced"}, ["echo", "'unbalanced"], "exact"),
    # A secret the receiver scrubbed from argv, or pii_redaction from the tool call, matches anything.
    ({"command": "curl -sH 'Authorization: Bearer sk-proj-Xq3v9LmN2pR7tY1wZ8kB' https://api.example.com/v1"},
     ["bash", "-c", "curl -sH 'Authorization: Bearer <REDACTED>' https://api.example.com/v1"], "exact"),
    ({"command": "deploy --token <API_KEY:0123456789abcdef>"}, ["deploy", "--token", "<REDACTED>"], "exact"),
    ({"command": "deploy --token abc"}, ["deploy", "--token", "<REDACTED>", "--force"], "contains"),
])
def test_command_matching_rule(arguments, argv, expected):
    from llmtap.processors.agent_session.commands import best_match, process_commands, tool_commands
    assert best_match(tool_commands(arguments), process_commands(argv)) == expected


def test_an_argv_the_receiver_cut_short_matches_by_containment_only():
    from llmtap.processors.agent_session.commands import best_match, process_commands, tool_commands
    command = "python3 -c 'print(1)' " + "x" * 50
    cut = ["python3", "-c", "print(1)", "xxxxx"]  # the last word cut at max_args_bytes
    assert best_match(tool_commands({"command": command}), process_commands(cut)) is None
    assert best_match(tool_commands({"command": command}), process_commands(cut, truncated=True)) == "contains"


def test_offline_no_network_needed():
    """The processor runs in a network namespace without any interface."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    script = (
        "import asyncio, sys; sys.path.insert(0, 'tests');"
        "import test_agent_session as t;"
        "rig = t.Rig(); a, b, l, f, s = t.agent_story(); rig.send(f); out = rig.send(t.process_span(b));"
        "assert [x.name for x in out].count('execute_tool shell') == 1; print('ok')")
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
