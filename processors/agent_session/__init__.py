"""`agent_session` processor: one trace per agent session, from the LLM calls an agent made to
the processes it ran (docs/genai.md, `agent_session`).

A session is the lifetime of an agent root process (the span carries llmtap.agent.pid and
llmtap.agent.start_time_unix_nano, as the eBPF receiver stamps them), or, for a span with no
agent root, its gen_ai.conversation.id (OTLP from instrumented apps). Per span:

- structure, computed from the span alone (ids.py): the session's trace id; a process span's
  id from its pid and start time and its parent from its parent process (the session root for
  the agent's children); the agent root's own process span becomes the `invoke_agent {name}`
  root; an LLM span (or any other span of the session) is the child of the process that made
  it. A conversation session takes whole traces along: the spans of a trace that carried the
  conversation id keep their parents, and its local roots become children of a root span that
  is synthesized once the session is dropped (idle for session_ttl, evicted, or at shutdown);
- tool calls in an LLM span's gen_ai.output.messages that name a command are matched with the
  session's process spans (commands.py, session.ToolMatcher); a match makes one
  `execute_tool {tool}` span per tool call, in the request and resource of the span that
  completed the match, linked to the LLM span and to the process spans;
- loops and cost (loops.py): a span event `llmtap.anomaly` on the LLM span that crosses a
  threshold, once per session and kind, counted in self-telemetry (selfmetrics.py).

No span waits for another and no span is dropped; a span the processor cannot read is marked
`llmtap.session.error` and passed on. Cost per span: one pass over its attributes; for an LLM
span, one JSON parse of its input and output messages and a fingerprint of each.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from llmtap import __version__, attributes
from llmtap.component import Consumer, Factory, Host, Kind, Processor, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.pdata import count_items
from llmtap.processors.agent_session import ids
from llmtap.processors.agent_session.commands import Match, process_commands, tool_commands
from llmtap.processors.agent_session.loops import prompt_fingerprint, tool_call_fingerprint
from llmtap.processors.agent_session.selfmetrics import metrics_for
from llmtap.processors.agent_session.session import ProcessRef, Session, SessionTable, ToolCall

SCOPE_NAME = "llmtap.processors.agent_session"

AGENT_PID, AGENT_START, AGENT_NAME = "llmtap.agent.pid", "llmtap.agent.start_time_unix_nano", "llmtap.agent.name"
PID, PARENT_PID = "process.pid", "process.parent_pid"
PROCESS_START = "llmtap.process.start_time_unix_nano"
PARENT_START = "llmtap.process.parent_start_time_unix_nano"  # optional: else the session's memory
EXECUTABLE, COMMAND_ARGS = "process.executable.name", "process.command_args"
ARGS_TRUNCATED = "llmtap.process.command_args.truncated"  # the receiver cut argv at max_args_bytes
OPERATION, PROVIDER, REQUEST_MODEL = "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"
CONVERSATION, GENAI_AGENT_NAME = "gen_ai.conversation.id", "gen_ai.agent.name"
INPUT_MESSAGES, OUTPUT_MESSAGES, COST = "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.usage.cost"
ERROR_MARKER = "llmtap.session.error"  # why a span could not be (fully) placed or read
SESSION_KEY = "llmtap.session.key"
TOOL_CALL_ID = "llmtap.tool.call.id"
ANOMALY_EVENT = "llmtap.anomaly"
# Spans that describe an agent's own work, not a model call: never counted as calls, never priced.
NOT_MODEL_CALLS = frozenset({"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"})
_READ = frozenset({AGENT_PID, AGENT_START, AGENT_NAME, PID, PARENT_PID, PROCESS_START, PARENT_START,
                   EXECUTABLE, COMMAND_ARGS, ARGS_TRUNCATED, OPERATION, PROVIDER, REQUEST_MODEL, CONVERSATION,
                   GENAI_AGENT_NAME, COST})


@dataclass
class Config:
    match_window: Duration = field(default=Duration(120), metadata=doc(
        "How long after an LLM response ended a process may start and still be matched with a tool call of "
        "that response (2m: long enough for an agent that asks a human before it runs a command)."))
    session_ttl: Duration = field(default=Duration(1800), metadata=doc(
        "A session's state (pending tool calls, loop counters, cost) is dropped after this long without a "
        "span; a conversation session's root span is emitted then. Late spans still join the trace."))
    max_sessions: int = field(default=4096, metadata=doc(
        "Most sessions whose state is held; beyond, the least recently active one is dropped."))
    agent_names: dict[str, str] = field(default_factory=dict, metadata=doc(
        "gen_ai.agent.name for an agent root, by llmtap.agent.name or executable name (or, for a conversation "
        "session, by gen_ai.agent.name or service.name), e.g. {claude: claude-code}. Absent: the name as it is."))
    tool_loop_threshold: int = field(default=5, metadata=doc(
        "Raise tool_loop when the same tool call (name and arguments) occurs this many times among the "
        "session's last loop_window tool calls. 0: off."))
    prompt_loop_threshold: int = field(default=5, metadata=doc(
        "Raise prompt_loop when the same prompt (what is new since the last assistant message, normalized) "
        "occurs this many times among the session's last loop_window prompts. 0: off."))
    loop_window: int = field(default=20, metadata=doc(
        "How many of a session's most recent tool calls, and prompts, the loop thresholds count over."))
    runaway_cost_usd: float = field(default=0.0, metadata=doc(
        "Raise runaway_cost when a session's model calls (gen_ai.usage.cost) add up to more than this many "
        "USD. 0: off."))

    def validate(self) -> list[str]:
        errors = []
        if self.match_window <= 0:
            errors.append("match_window: must be greater than 0")
        if self.session_ttl <= 0:
            errors.append("session_ttl: must be greater than 0")
        if self.max_sessions < 1:
            errors.append(f"max_sessions: must be at least 1; got {self.max_sessions}")
        if self.loop_window < 2:
            errors.append(f"loop_window: must be at least 2; got {self.loop_window}")
        for key in ("tool_loop_threshold", "prompt_loop_threshold"):
            value = getattr(self, key)
            if value != 0 and not 2 <= value <= max(self.loop_window, 2):
                errors.append(f"{key}: must be 0 (off) or between 2 and loop_window ({self.loop_window}); "
                              f"got {value}")
        if not math.isfinite(self.runaway_cost_usd) or self.runaway_cost_usd < 0:
            errors.append(f"runaway_cost_usd: must be 0 (off) or a positive number of USD; got {self.runaway_cost_usd}")
        errors += [f"agent_names.{k}: must not be empty" for k, v in self.agent_names.items() if not v.strip()]
        return errors


def _read(kvs: Iterable, keys: frozenset[str]) -> dict[str, Any]:
    """Only the attributes we use: converting a content attribute would copy a large string."""
    return {kv.key: attributes.to_python(kv.value) for kv in kvs if kv.key in keys}


def _int(value: Any, bits: int = 64) -> int | None:
    """A start time (ns), or with bits=32 a pid: a non-negative integer that fits the ids' encoding."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << bits:
        return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


@dataclass(eq=False)
class _Item:
    """One span of the request with the attributes the processor reads."""

    rs: ResourceSpans
    span: Span
    attrs: dict[str, Any]
    session: Session | None = None

    @property
    def operation(self) -> str | None:
        return _text(self.attrs.get(OPERATION))

    def is_model_call(self) -> bool:
        return self.operation is not None and self.operation not in NOT_MODEL_CALLS

    def is_process(self) -> bool:
        return (self.operation is None and self.span.kind == Span.SPAN_KIND_INTERNAL
                and _int(self.attrs.get(PID), 32) is not None and _int(self.attrs.get(PROCESS_START)) is not None)


@dataclass(eq=False)
class _Execution:
    """An execute_tool span being made in this request."""

    call: ToolCall
    session: Session
    rs: ResourceSpans
    start: int
    end: int
    match: Match
    processes: list[ProcessRef] = field(default_factory=list)


def _content(span: Span, key: str, marks: list[str]) -> Any:
    value = attributes.get(span.attributes, key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            marks.append(f"{key} is not valid JSON")
            return None
    return value


def _tool_call_parts(output: Any) -> list[dict]:
    if not isinstance(output, list):
        return []
    return [part for message in output if isinstance(message, dict) and isinstance(message.get("parts"), list)
            for part in message["parts"] if isinstance(part, dict) and part.get("type") == "tool_call"]


class AgentSessionProcessor(Processor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer,
                 *, clock: Callable[[], float] = time.monotonic):
        super().__init__(settings, config, signal, next)
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        self._metrics = metrics_for(settings.telemetry)
        self._clock = clock
        window_ns = int(config.match_window * 1e9)
        self._table = SessionTable(max_sessions=config.max_sessions, ttl=float(config.session_ttl),
                                   end_grace=float(config.match_window), window_ns=window_ns,
                                   loop_window=config.loop_window)
        self._evicted_seen = 0
        # Original trace id -> conversation key: the spans of a trace that carried a conversation
        # id follow it into the session's trace, also when they come in a later request.
        self._trace_sessions: dict[bytes, str] = {}
        self._trace_sessions_max = 16 * config.max_sessions
        self._timer: asyncio.Task | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self._timer = asyncio.create_task(self._expire_loop(), name=f"{self.id} session expiry")

    async def _expire_loop(self) -> None:
        tick = min(1.0, max(0.01, float(self.config.session_ttl) / 4))
        while True:
            await asyncio.sleep(tick)
            await self.expire_sessions()

    async def expire_sessions(self) -> None:
        """Drop the sessions idle for session_ttl and send their root spans (the timer calls this)."""
        self._table.expire(self._clock())
        await self._send_roots()

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            try:
                await self._timer
            except asyncio.CancelledError:
                pass
            self._timer = None
        self._table.drain()
        await self._send_roots()

    async def _send_roots(self) -> None:
        request = ExportTraceServiceRequest()
        self._append_roots(request)
        self._metrics.sessions.labels(self._label).set(len(self._table))
        if not request.resource_spans:
            return
        n = count_items(Signal.TRACES, request)
        self._telemetry.count("processor", "outgoing", Signal.TRACES, n, processor=self._label)
        try:
            await self.next.consume(Signal.TRACES, request)
        except Exception as e:  # nobody upstream to hand it back to: a timer sent it
            self.logger.error("cannot pass session root spans on; they are lost: %s", e,
                              extra={"fields": {"processor": self._label, "spans": n}})

    # ---- the work --------------------------------------------------------------------------

    async def consume(self, signal: Signal, data: Message) -> None:
        n = count_items(signal, data)
        self._telemetry.count("processor", "incoming", signal, n, processor=self._label)
        if signal == Signal.TRACES:
            self._process(data, self._clock())
            self._metrics.sessions.labels(self._label).set(len(self._table))
            n = count_items(signal, data)
        self._telemetry.count("processor", "outgoing", signal, n, processor=self._label)
        await self.next.consume(signal, data)

    def _process(self, request: ExportTraceServiceRequest, now: float) -> None:
        self._table.expire(now)
        items = [_Item(rs, span, _read(span.attributes, _READ))
                 for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
        for item in items:
            if _text(item.attrs.get(CONVERSATION)) and self._agent(item) is None and item.span.trace_id:
                self._follow_trace(item.span.trace_id, ids.conversation_key(item.attrs[CONVERSATION]))
        # Model calls first, so that a process span finds the tool call made in the same request;
        # each kind in time order, so that a threshold is crossed by the span that crossed it.
        by_start = sorted(items, key=lambda it: it.span.start_time_unix_nano)
        model_calls = [it for it in by_start if it.is_model_call()]
        processes = [it for it in by_start if it.is_process()]
        others = [it for it in by_start if not it.is_model_call() and not it.is_process()]
        executions: dict[int, _Execution] = {}
        for item in model_calls + others + processes:
            try:
                self._place(item, now)
                if item.session is None:
                    continue
                if item.is_model_call():
                    self._observe_model_call(item, executions)
                elif item.is_process() and item.session.kind == "agent":
                    self._observe_process(item, executions)
            except Exception as e:  # one bad span must not cost the batch
                self.logger.warning("cannot place span %r in its session: %s: %s", item.span.name,
                                    type(e).__name__, e)
                attributes.update(item.span.attributes, {ERROR_MARKER: f"internal error: {type(e).__name__}: {e}"})
        made: dict[int, tuple[ResourceSpans, list[Span]]] = {}
        for execution in executions.values():
            made.setdefault(id(execution.rs), (execution.rs, []))[1].append(self._execute_tool_span(execution))
        for rs, spans in made.values():
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = SCOPE_NAME, __version__
            ss.spans.extend(spans)
        self._append_roots(request)

    def _follow_trace(self, trace_id: bytes, key: str) -> None:
        if trace_id in self._trace_sessions:
            return
        if len(self._trace_sessions) >= self._trace_sessions_max:
            del self._trace_sessions[next(iter(self._trace_sessions))]  # the oldest trace first
        self._trace_sessions[trace_id] = key

    # ---- structure -------------------------------------------------------------------------

    def _agent(self, item: _Item) -> tuple[int, int] | None:
        pid, start = item.attrs.get(AGENT_PID), item.attrs.get(AGENT_START)
        if pid is None and start is None:
            return None
        if _int(pid, 32) is None or _int(start) is None:
            attributes.update(item.span.attributes, {ERROR_MARKER: (
                f"no agent session: {AGENT_PID} and {AGENT_START} must both be integers, got {pid!r} and {start!r}")})
            return None
        return pid, start

    def _place(self, item: _Item, now: float) -> None:
        span, attrs = item.span, item.attrs
        agent = self._agent(item)
        if agent is not None:
            key = ids.agent_key(*agent)
            item.session = session = self._table.get(key, "agent", now)
            self._place_in_agent_session(item, session, agent, now)
            return
        conversation = _text(attrs.get(CONVERSATION))
        key = ids.conversation_key(conversation) if conversation else self._trace_sessions.get(span.trace_id)
        if key is None:
            return  # not part of any session: left as it came
        item.session = session = self._table.get(key, "conversation", now)
        root = ids.root_span_id(key)
        span.trace_id = ids.trace_id(key)
        if not span.parent_span_id and span.span_id != root:
            span.parent_span_id = root
        session.extend(span.start_time_unix_nano, span.end_time_unix_nano)
        if session.resource is None:
            session.resource = Resource()
            session.resource.CopyFrom(item.rs.resource)
        session.conversation_id = session.conversation_id or conversation
        session.agent_name = session.agent_name or _text(attrs.get(GENAI_AGENT_NAME))

    def _place_in_agent_session(self, item: _Item, session: Session, agent: tuple[int, int], now: float) -> None:
        span, attrs = item.span, item.attrs
        span.trace_id = ids.trace_id(session.key)
        pid, start = _int(attrs.get(PID), 32), _int(attrs.get(PROCESS_START))
        session.extend(span.start_time_unix_nano, span.end_time_unix_nano)
        if pid is not None and start is not None:
            session.know_process(pid, start)
        if not item.is_process():
            span.parent_span_id = self._span_of_process(session, agent, pid, start)
            return
        if (pid, start) == agent:
            self._become_root(item, session, now)
            return
        span.span_id = ids.process_span_id(pid, start)
        span.parent_span_id = self._span_of_process(session, agent, _int(attrs.get(PARENT_PID), 32),
                                                    _int(attrs.get(PARENT_START)))

    @staticmethod
    def _span_of_process(session: Session, agent: tuple[int, int], pid: int | None, start: int | None) -> bytes:
        """The span of the process (pid, start); the root for the agent itself, and for a process
        the span cannot name (its span is then placed directly under the session)."""
        if pid is None or (pid == agent[0] and start in (None, agent[1])):
            return ids.root_span_id(session.key)
        if start is None:
            start = session.processes.get(pid)
        return ids.root_span_id(session.key) if start is None else ids.process_span_id(pid, start)

    def _agent_name(self, *candidates: Any) -> str | None:
        names = [c for c in candidates if _text(c)]
        for name in names:
            if name in self.config.agent_names:
                return self.config.agent_names[name]
        return names[0] if names else None

    def _root_attributes(self, session: Session, name: str | None) -> dict[str, Any]:
        updates: dict[str, Any] = {OPERATION: "invoke_agent", GENAI_AGENT_NAME: name,
                                   PROVIDER: session.provider.value, REQUEST_MODEL: session.model.value,
                                   CONVERSATION: session.conversation_id, SESSION_KEY: session.key,
                                   "llmtap.session.llm_calls": session.llm_calls}
        if session.priced_calls:
            updates["llmtap.session.cost"] = session.cost
        return updates

    def _become_root(self, item: _Item, session: Session, now: float) -> None:
        span = item.span
        span.span_id = ids.root_span_id(session.key)
        span.parent_span_id = b""
        name = self._agent_name(item.attrs.get(AGENT_NAME), item.attrs.get(EXECUTABLE))
        span.name = f"invoke_agent {name}" if name else "invoke_agent"
        attributes.update(span.attributes, self._root_attributes(session, name))
        self._table.end(session, now)

    def _append_roots(self, request: ExportTraceServiceRequest) -> None:
        """Root spans of the conversation sessions dropped since the last call."""
        if self._table.evicted != self._evicted_seen:
            self._metrics.evicted_sessions.labels(self._label).inc(self._table.evicted - self._evicted_seen)
            self._evicted_seen = self._table.evicted
        for session in self._table.take_dropped():
            if session.kind != "conversation" or session.root_emitted or not session.start_ns:
                continue
            session.root_emitted = True
            rs = request.resource_spans.add()
            if session.resource is not None:
                rs.resource.CopyFrom(session.resource)
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = SCOPE_NAME, __version__
            service = attributes.get(rs.resource.attributes, "service.name")
            name = self._agent_name(session.agent_name, service)
            span = ss.spans.add(trace_id=ids.trace_id(session.key), span_id=ids.root_span_id(session.key),
                                name=f"invoke_agent {name}" if name else "invoke_agent",
                                kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=session.start_ns,
                                end_time_unix_nano=session.end_ns)
            attributes.update(span.attributes, {**self._root_attributes(session, name),
                                                "llmtap.session.synthesized": True})

    # ---- model calls: tool calls, loops, cost -----------------------------------------------

    def _observe_model_call(self, item: _Item, executions: dict[int, _Execution]) -> None:
        span, attrs, session = item.span, item.attrs, item.session
        session.llm_calls += 1
        session.provider.add(attrs.get(PROVIDER))
        session.model.add(attrs.get(REQUEST_MODEL))
        session.conversation_id = session.conversation_id or _text(attrs.get(CONVERSATION))
        marks: list[str] = []
        output = _content(span, OUTPUT_MESSAGES, marks)
        inputs = _content(span, INPUT_MESSAGES, marks)
        if marks:
            attributes.update(span.attributes, {ERROR_MARKER: "; ".join(marks)})
        calls = []
        for index, part in enumerate(_tool_call_parts(output)):
            name = part.get("name") if isinstance(part.get("name"), str) else ""
            arguments = part.get("arguments")
            self._count_tool_call(item, name, arguments)
            commands = tool_commands(arguments)
            if commands and session.kind == "agent":
                call_id = part.get("id") if isinstance(part.get("id"), str) and part.get("id") else None
                calls.append(ToolCall(call_id, name, commands,
                                      ids.tool_span_id(session.key, call_id or f"{span.span_id.hex()}/{index}"),
                                      span.trace_id, span.span_id, span.start_time_unix_nano,
                                      span.end_time_unix_nano or span.start_time_unix_nano))
        if (fingerprint := prompt_fingerprint(inputs)) is not None and self.config.prompt_loop_threshold:
            count = session.prompts.add(fingerprint)
            if count >= self.config.prompt_loop_threshold:
                self._raise(item, "prompt_loop", count, self.config.prompt_loop_threshold)
        self._add_cost(item)
        if calls:
            for call, proc, match in session.tools.add_calls(calls):
                self._executed(call, proc, match, item, executions)

    def _count_tool_call(self, item: _Item, name: str, arguments: Any) -> None:
        threshold = self.config.tool_loop_threshold
        if not threshold:
            return
        count = item.session.tool_calls.add(tool_call_fingerprint(name, arguments))
        if count >= threshold:
            self._raise(item, "tool_loop", count, threshold, {"gen_ai.tool.name": name})

    def _add_cost(self, item: _Item) -> None:
        cost, session = item.attrs.get(COST), item.session
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0:
            return
        session.cost += cost
        session.priced_calls += 1
        limit = self.config.runaway_cost_usd
        if limit and session.cost > limit:
            self._raise(item, "runaway_cost", session.llm_calls, limit, {"llmtap.anomaly.cost_usd": session.cost})

    def _raise(self, item: _Item, kind: str, count: int, threshold: float, extra: dict | None = None) -> None:
        session, span = item.session, item.span
        if kind in session.raised:
            return
        session.raised.add(kind)
        event = span.events.add(time_unix_nano=span.end_time_unix_nano or span.start_time_unix_nano,
                                name=ANOMALY_EVENT)
        attributes.add(event.attributes, {"llmtap.anomaly.kind": kind, "llmtap.anomaly.count": count,
                                          "llmtap.anomaly.threshold": threshold, SESSION_KEY: session.key,
                                          **(extra or {})})
        self._metrics.anomalies.labels(self._label, kind).inc()
        self.logger.warning("agent session anomaly %s: %s (count %s, threshold %s)", kind, session.key, count,
                            threshold, extra={"fields": {"processor": self._label, "kind": kind,
                                                         "session": session.key, "count": count,
                                                         "threshold": threshold, **(extra or {})}})

    # ---- processes: execute_tool ----------------------------------------------------------

    def _observe_process(self, item: _Item, executions: dict[int, _Execution]) -> None:
        span, session = item.span, item.session
        if span.span_id == ids.root_span_id(session.key):
            return  # the agent itself carries out no tool call
        commands = process_commands(item.attrs.get(COMMAND_ARGS), item.attrs.get(ARGS_TRUNCATED) is True)
        if not commands:
            return
        proc = ProcessRef(span.trace_id, span.span_id, span.start_time_unix_nano,
                          span.end_time_unix_nano or span.start_time_unix_nano, commands)
        found = session.tools.match_process(proc)
        if found is None:
            return
        call, match = found
        if call.call_id:
            attributes.update(span.attributes, {TOOL_CALL_ID: call.call_id})
        if call.emitted:
            # Its execute_tool span already left, linked to the processes known then: this
            # one links to it instead.
            link = span.links.add(trace_id=span.trace_id, span_id=call.span_id)
            attributes.add(link.attributes, {"llmtap.link.role": "tool_execution"})
            return
        self._executed(call, proc, match, item, executions)

    @staticmethod
    def _executed(call: ToolCall, proc: ProcessRef, match: Match, item: _Item,
                  executions: dict[int, _Execution]) -> None:
        execution = executions.get(id(call))
        if execution is None:
            executions[id(call)] = execution = _Execution(call, item.session, item.rs, proc.start, proc.end, match)
        execution.start = min(execution.start, proc.start)
        execution.end = max(execution.end, proc.end)
        execution.match = "exact" if "exact" in (execution.match, match) else match
        execution.processes.append(proc)

    def _execute_tool_span(self, execution: _Execution) -> Span:
        call, key = execution.call, execution.session.key
        call.emitted = True
        span = Span(trace_id=ids.trace_id(key), span_id=call.span_id, parent_span_id=ids.root_span_id(key),
                    name=f"execute_tool {call.name}" if call.name else "execute_tool", kind=Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=execution.start, end_time_unix_nano=execution.end)
        attributes.add(span.attributes, {OPERATION: "execute_tool", "gen_ai.tool.name": call.name,
                                         "gen_ai.tool.type": "function", "llmtap.tool.match": execution.match})
        if call.call_id:
            attributes.add(span.attributes, {"gen_ai.tool.call.id": call.call_id})
        link = span.links.add(trace_id=call.llm_trace_id, span_id=call.llm_span_id)
        attributes.add(link.attributes, {"llmtap.link.role": "tool_call"})
        for proc in execution.processes:
            link = span.links.add(trace_id=proc.trace_id, span_id=proc.span_id)
            attributes.add(link.attributes, {"llmtap.link.role": "execution"})
        self._metrics.tool_executions.labels(self._label).inc()
        return span


factory = Factory(
    type="agent_session",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=AgentSessionProcessor,
    signals=frozenset({Signal.TRACES}),
    stability=Stability.ALPHA,
    description="Groups an agent's LLM calls and the processes it ran into one trace per session under an "
                "invoke_agent root, makes execute_tool spans from tool calls matched with processes, and "
                "flags tool loops, prompt loops and runaway cost",
)
