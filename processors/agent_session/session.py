"""What agent_session remembers per session, and the bounded table that holds it.

Structure (trace and parent ids) needs no state: it is computed from each span (ids.py).
State serves only what spans cannot tell alone, and every part of it is bounded:

- tool calls awaiting their process (`ToolMatcher`): the last MAX_PENDING_CALLS tool calls
  that name a command, and the last MAX_RECENT_PROCESSES process spans that matched none
  (for a process span that arrives before the LLM span that asked for it); a match needs the
  process to start within [LLM span start, LLM span end + match_window];
- the loop windows (loops.py) and the once-per-kind flags of the anomalies;
- the session's totals for its root span: model calls, cost, provider and model when all
  calls share one, the conversation id, the time extent;
- start times of the session's processes by pid (MAX_KNOWN_PROCESSES), to parent a span whose
  parent's start time the span does not carry.

`SessionTable` keeps at most `max_sessions` sessions: a session idle for `ttl` is dropped,
and so is the least recently active one when a new session would exceed the limit. An agent
session whose root process span came (the agent exited) is kept only `end_grace` longer, for
late spans of its children. Dropped sessions are handed to the caller (`take_dropped`): a
conversation session's root span is emitted then. Memory: max_sessions × (the bounds above).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from llmtap.processors.agent_session.commands import Match, Tokens, best_match
from llmtap.processors.agent_session.loops import RepetitionWindow

MAX_PENDING_CALLS = 64
MAX_RECENT_PROCESSES = 64
MAX_KNOWN_PROCESSES = 1024

SessionKind = Literal["agent", "conversation"]


@dataclass(eq=False)
class ToolCall:
    """A tool call from an LLM span's output that named a command."""

    call_id: str | None  # the provider's id (Gemini and Ollama give none)
    name: str
    commands: list[Tokens]
    span_id: bytes  # of its execute_tool span
    llm_trace_id: bytes
    llm_span_id: bytes
    llm_start: int
    llm_end: int
    emitted: bool = False  # its execute_tool span left in an earlier request


@dataclass(eq=False)
class ProcessRef:
    """A process span, as much as matching and linking need."""

    trace_id: bytes
    span_id: bytes
    start: int
    end: int
    commands: list[Tokens]


class ToolMatcher:
    def __init__(self, window_ns: int):
        self.window_ns = window_ns
        self._calls: deque[ToolCall] = deque(maxlen=MAX_PENDING_CALLS)
        self._unmatched: deque[ProcessRef] = deque(maxlen=MAX_RECENT_PROCESSES)

    def _score(self, call: ToolCall, proc: ProcessRef) -> tuple | None:
        if not call.llm_start <= proc.start <= call.llm_end + self.window_ns:
            return None
        match = best_match(call.commands, proc.commands)
        if match is None:
            return None
        # An exact command first; then a call whose response had ended when the process
        # started; then the most recent call: in a loop of identical calls, each run belongs
        # to the response just before it.
        return (match == "exact", call.llm_end <= proc.start, call.llm_end), match

    def match_process(self, proc: ProcessRef) -> tuple[ToolCall, Match] | None:
        best = None
        for call in self._calls:
            scored = self._score(call, proc)
            if scored is not None and (best is None or scored[0] > best[0]):
                best = (scored[0], call, scored[1])
        if best is None:
            self._unmatched.append(proc)
            return None
        return best[1], best[2]

    def add_calls(self, calls: list[ToolCall]) -> list[tuple[ToolCall, ProcessRef, Match]]:
        """Remember the calls; return the earlier process spans they explain."""
        self._calls.extend(calls)
        found = []
        for proc in list(self._unmatched):
            best = None
            for call in calls:
                scored = self._score(call, proc)
                if scored is not None and (best is None or scored[0] > best[0]):
                    best = (scored[0], call, scored[1])
            if best is not None:
                self._unmatched.remove(proc)
                found.append((best[1], proc, best[2]))
        return found


class FirstValue:
    """The value every observation shared, or None once two differed."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.mixed = False

    def add(self, value: object) -> None:
        if not isinstance(value, str) or not value or self.mixed:
            return
        if self.value is None:
            self.value = value
        elif value != self.value:
            self.value, self.mixed = None, True


@dataclass(eq=False)
class Session:
    key: str
    kind: SessionKind
    tools: ToolMatcher
    tool_calls: RepetitionWindow
    prompts: RepetitionWindow
    last_seen: float = 0.0
    deadline: float = 0.0  # for an ended session: when it is dropped
    ended: bool = False  # the agent root's process span came
    root_emitted: bool = False  # a conversation session's root span already left
    raised: set[str] = field(default_factory=set)  # anomaly kinds already reported
    llm_calls: int = 0
    cost: float = 0.0
    priced_calls: int = 0
    provider: FirstValue = field(default_factory=FirstValue)
    model: FirstValue = field(default_factory=FirstValue)
    conversation_id: str | None = None
    agent_name: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    resource: Resource | None = None  # a conversation session's first span's, for its root
    processes: OrderedDict[int, int] = field(default_factory=OrderedDict)  # pid -> start time

    def extend(self, start: int, end: int) -> None:
        if start and (not self.start_ns or start < self.start_ns):
            self.start_ns = start
        self.end_ns = max(self.end_ns, end, start)

    def know_process(self, pid: int, start: int) -> None:
        self.processes[pid] = start
        self.processes.move_to_end(pid)
        if len(self.processes) > MAX_KNOWN_PROCESSES:
            self.processes.popitem(last=False)


class SessionTable:
    def __init__(self, *, max_sessions: int, ttl: float, end_grace: float, window_ns: int, loop_window: int):
        self.max_sessions = max_sessions
        self.ttl = ttl
        self.end_grace = end_grace
        self._window_ns = window_ns
        self._loop_window = loop_window
        self._active: OrderedDict[str, Session] = OrderedDict()  # least recently active first
        self._ending: OrderedDict[str, Session] = OrderedDict()  # earliest deadline first
        self._finished: OrderedDict[str, None] = OrderedDict()  # conversations whose root left
        self._dropped: list[Session] = []
        self.evicted = 0  # sessions dropped for room, not for age

    def __len__(self) -> int:
        return len(self._active) + len(self._ending)

    def get(self, key: str, kind: SessionKind, now: float) -> Session:
        session = self._ending.get(key)
        if session is not None:
            session.last_seen = now
            session.deadline = max(session.deadline, now + self.end_grace)
            self._ending.move_to_end(key)
            return session
        session = self._active.get(key)
        if session is not None:
            session.last_seen = now
            self._active.move_to_end(key)
            return session
        while len(self) >= self.max_sessions:
            self._drop_oldest()
        session = Session(key, kind, ToolMatcher(self._window_ns), RepetitionWindow(self._loop_window),
                          RepetitionWindow(self._loop_window), last_seen=now, root_emitted=key in self._finished)
        self._active[key] = session
        return session

    def end(self, session: Session, now: float) -> None:
        """The agent exited: keep its state only for late spans of its children."""
        if session.ended:
            return
        session.ended = True
        session.deadline = now + self.end_grace
        if self._active.pop(session.key, None) is not None:
            self._ending[session.key] = session

    def _drop_oldest(self) -> None:
        table = self._ending if self._ending else self._active
        _, session = table.popitem(last=False)
        self.evicted += 1
        self._drop(session)

    def _drop(self, session: Session) -> None:
        self._dropped.append(session)
        if session.kind == "conversation":
            self._finished[session.key] = None
            self._finished.move_to_end(session.key)
            # Keys only (tens of bytes each): enough to never send a root twice within a much
            # longer span of time than the sessions themselves are kept.
            if len(self._finished) > 4 * self.max_sessions:
                self._finished.popitem(last=False)

    def expire(self, now: float) -> None:
        while self._ending:
            key, session = next(iter(self._ending.items()))
            if session.deadline > now:
                break
            del self._ending[key]
            self._drop(session)
        while self._active:
            key, session = next(iter(self._active.items()))
            if session.last_seen + self.ttl > now:
                break
            del self._active[key]
            self._drop(session)

    def drain(self) -> None:
        """Drop every session (shutdown)."""
        for table in (self._ending, self._active):
            while table:
                self._drop(table.popitem(last=False)[1])

    def take_dropped(self) -> list[Session]:
        dropped, self._dropped = self._dropped, []
        return dropped
