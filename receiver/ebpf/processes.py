"""The process tree, from exec, fork and exit events, and which processes are
reported: agent processes and their descendants.

`ProcessTable` is sans-IO like the connection tracker: feed it the PROC_* events
in ring-buffer order, tell it which processes made a captured LLM request, and
take the finished processes to report. It reads /proc only for processes that
began before the capture (an agent started before llmtap, a parent shell), once
each, when one of them is asked about.

A process is (pid, start): its start is the kernel's start time of the thread
group, CLOCK_BOOTTIME, cut to the clock tick (10 ms) so that a process found in
/proc (which reports ticks) and one seen forking get the same identity. That
identity, in Unix time (`llmtap.process.start_time_unix_nano`), names its span:
`process_span_id(pid, start)`.

One record per process lifetime (fork → exit). An exec replaces its program
(`bash -c ls` execs `ls` in place: the record then is `ls`); a process that
forked and never exec'd (a subshell, a worker) runs its parent's program.

Which are reported (`scope: agents`): a process whose nearest agent
ancestor-or-self exists, where an agent is a process that made a captured LLM
request or matches `processes.agents`. Resolved when the process exits; a
finished process with no agent above it waits `window` (from its exit) in case
an ancestor's first LLM call comes later, and is then counted, not reported.
Processes still running at shutdown are reported as running.

Bounds: at most `max_tracked` records by pid (running, and finished within the
window) and as many finished ones waiting; past that the oldest finished, then
the oldest running, are dropped and counted. A record a child still points at
stays in memory through that child (ancestry outlives the table entry), one
chain per living process. Walks up the tree stop after MAX_DEPTH ancestors.

Cost per event: O(1) dict work, plus the agent-pattern match at exec; at exit,
a walk up to the nearest agent (depth of the tree); when a process first
becomes an agent, one pass over the finished processes waiting in the window.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from llmtap.receiver.ebpf.agents import AgentPatterns, agent_name
from llmtap.receiver.ebpf.cgroups import CgroupPaths
from llmtap.receiver.ebpf.events import Event, Kind, ProcessEvent, decode_process
from llmtap.receiver.ebpf.tracker import ProcessInfo

TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
MAX_DEPTH = 64


def process_span_id(pid: int, start_time_unix_nano: int) -> bytes:
    """The span id of a process span: sha256(b"proc" + pid (4 bytes) + start (8 bytes), big-endian)[:8]."""
    return hashlib.sha256(b"proc" + pid.to_bytes(4, "big") + start_time_unix_nano.to_bytes(8, "big")).digest()[:8]


def split_args(raw: bytes) -> list[str]:
    """The kernel's argument area (NUL-terminated strings, possibly cut mid-string) as argv."""
    if not raw:
        return []
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts]


@dataclass(eq=False, slots=True)
class Process:
    pid: int
    start: int                     # identity: CLOCK_BOOTTIME ns, cut to the tick
    ppid: int = 0
    parent_start: int = 0          # the parent's identity start (0: unknown)
    parent: Process | None = None
    comm: str = ""
    executable_path: str = ""
    argv: list[str] = field(default_factory=list)
    args_truncated: bool = False
    uid: int = -1
    cgroup_id: int = 0
    began_ns: int = 0              # CLOCK_MONOTONIC: first exec, else fork (span start)
    ended_ns: int | None = None    # CLOCK_MONOTONIC: exit
    exit_code: int | None = None   # the kernel's (status << 8) | signal
    execs: int = 0
    from_proc: bool = False        # began before the capture; found in /proc
    llm: bool = False              # made a captured LLM request
    configured_agent: str | None = None   # the name, when `processes.agents` selects it
    emitted: bool = False
    settled: bool = False          # emitted or counted: nothing more to decide
    parent_unknown: bool = False   # looked for and not found

    @property
    def executable_name(self) -> str:
        return os.path.basename(self.executable_path) if self.executable_path else self.comm

    @property
    def is_agent(self) -> bool:
        return self.llm or self.configured_agent is not None

    @property
    def agent_name(self) -> str:
        return self.configured_agent or agent_name(self.executable_name, self.argv)

    @property
    def exit_status(self) -> int | None:
        return None if self.exit_code is None else (self.exit_code >> 8) & 0xFF

    @property
    def exit_signal(self) -> int:
        return 0 if self.exit_code is None else self.exit_code & 0x7F


@dataclass
class Finished:
    """A process to report, with its agent root as resolved when it was decided."""
    process: Process
    agent: Process | None
    running: bool = False


def _clock_ns(clock: int) -> int:
    return time.clock_gettime_ns(clock)


class ProcfsReader:
    """What /proc says of a live process (for those that began before the capture)."""

    def __init__(self, max_args_bytes: int):
        self.max_args_bytes = max_args_bytes

    def read(self, pid: int) -> dict | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return None
        head, _, rest = stat.rpartition(b")")
        fields = rest.split()
        if len(fields) < 20:
            return None
        info = {"comm": head.partition(b"(")[2].decode("utf-8", "replace")[:15], "ppid": int(fields[1]),
                "start": int(fields[19]) * TICK_NS}
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read(self.max_args_bytes + 1)
            info["argv"] = split_args(raw[:self.max_args_bytes])
            info["args_truncated"] = len(raw) > self.max_args_bytes
        except OSError:
            info["argv"], info["args_truncated"] = [], False
        try:
            info["path"] = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        except OSError:
            info["path"] = ""
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
                uid_line = next((line for line in f if line.startswith("Uid:")), "")
            info["uid"] = int(uid_line.split()[2]) if uid_line else -1
        except (OSError, IndexError, ValueError):
            info["uid"] = -1
        return info


class ProcessTable:
    def __init__(self, *, agents: AgentPatterns, window_s: float = 30.0, max_tracked: int = 65536,
                 scope: str = "agents", proc: ProcfsReader | None = None, cgroups: CgroupPaths | None = None,
                 boot_to_unix_ns: int | None = None, boot_to_monotonic_ns: int | None = None):
        self.agents = agents
        self.window_ns = int(window_s * 1e9)
        self.max_tracked = max_tracked
        self.report_all = scope == "all"
        self.reporting = scope != "off"   # off: the tree only, for the attributes of exchange spans
        self.tree_known = True            # false: the kernel reports no parents or start times (no BTF)
        self.proc = proc or ProcfsReader(4096)
        self.cgroups = cgroups or CgroupPaths()
        # Fixed at creation, so that one process's Unix start time is the same on all its spans.
        boot = _clock_ns(time.CLOCK_BOOTTIME)
        self.boot_to_unix_ns = boot_to_unix_ns if boot_to_unix_ns is not None else time.time_ns() - boot
        self.boot_to_monotonic_ns = (boot_to_monotonic_ns if boot_to_monotonic_ns is not None
                                     else _clock_ns(time.CLOCK_MONOTONIC) - boot)
        self._by_pid: dict[int, Process] = {}
        self._exited: deque[Process] = deque()   # in exit order, for the window
        self._agents: set[Process] = set()       # agents among the tracked records
        self._finished: list[Finished] = []
        # Counted, not reported (reason → processes); events handled, by kind.
        self.not_emitted: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    # --- identities and times -----------------------------------------------------

    def unix_ns(self, boot_ns: int) -> int:
        return boot_ns + self.boot_to_unix_ns

    def start_time_unix_nano(self, p: Process) -> int:
        return self.unix_ns(p.start)

    def span_id(self, p: Process) -> bytes:
        return process_span_id(p.pid, self.start_time_unix_nano(p))

    @property
    def tracked(self) -> int:
        return len(self._by_pid)

    # --- events ---------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """One PROC_EXEC, PROC_FORK or PROC_EXIT event. Raises ValueError on a malformed one."""
        kind = event.kind
        if kind not in (Kind.PROC_EXEC, Kind.PROC_FORK, Kind.PROC_EXIT):
            return
        data = decode_process(event.data)
        if kind == Kind.PROC_EXEC:
            self.events["exec"] += 1
            self._exec(event, data)
        elif kind == Kind.PROC_FORK:
            self.events["fork"] += 1
            self._fork(event, data)
        else:
            self.events["exit"] += 1
            self._exit(event, data)

    def _identity(self, boot_ns: int) -> int:
        return boot_ns - boot_ns % TICK_NS

    def _known(self, pid: int, start: int) -> Process | None:
        p = self._by_pid.get(pid)
        return p if p is not None and p.start == start else None

    def _new(self, event: Event, data: ProcessEvent) -> Process:
        p = Process(event.pid, self._identity(data.start_ns), ppid=data.ppid,
                    parent_start=self._identity(data.parent_start_ns) if data.parent_start_ns else 0,
                    comm=event.comm, uid=data.uid, cgroup_id=data.cgroup_id, began_ns=event.ts_ns)
        parent = self._by_pid.get(p.ppid)
        if parent is not None and parent.start == p.parent_start:
            p.parent = parent
        self._insert(p)
        return p

    def _insert(self, p: Process) -> None:
        old = self._by_pid.pop(p.pid, None)
        if old is not None and old.ended_ns is None and not old.from_proc:
            # Its exit was never seen (a lost event): nothing more will come for it.
            self._count(old, "exit_lost")
        self._by_pid[p.pid] = p
        while len(self._by_pid) > self.max_tracked:
            self._evict()

    def _evict(self) -> None:
        if self._exited:
            p = self._exited.popleft()
            self._count(p, "table_full")
            self._forget(p)
            return
        oldest = next(iter(self._by_pid.values()))
        self._count(oldest, "table_full")
        self._forget(oldest)

    def _forget(self, p: Process) -> None:
        if self._by_pid.get(p.pid) is p:
            del self._by_pid[p.pid]
        self._agents.discard(p)

    def _exec(self, event: Event, data: ProcessEvent) -> None:
        p = self._known(event.pid, self._identity(data.start_ns))
        if p is None:
            p = self._new(event, data)
        if p.execs == 0:
            p.began_ns = event.ts_ns
        p.execs += 1
        p.executable_path = data.path
        p.comm = event.comm
        p.argv = split_args(data.args)
        p.args_truncated = data.args_truncated
        p.uid, p.cgroup_id = data.uid, data.cgroup_id
        was_agent = p.is_agent
        p.configured_agent = self.agents.match(p.executable_name, p.executable_path, p.argv)
        if p.is_agent and not was_agent:
            self._agents.add(p)

    def _fork(self, event: Event, data: ProcessEvent) -> None:
        p = self._new(event, data)
        parent = p.parent
        if parent is not None:  # it runs its parent's program until it execs
            p.executable_path, p.argv, p.args_truncated = parent.executable_path, parent.argv, parent.args_truncated
            p.comm = parent.comm or p.comm

    def _exit(self, event: Event, data: ProcessEvent) -> None:
        p = self._known(event.pid, self._identity(data.start_ns))
        if p is None:  # began before the capture, or its fork was lost: what the exit says of it
            p = self._new(event, data)
            p.began_ns = self._identity(data.start_ns) - self.boot_to_monotonic_ns
            p.from_proc = True
        p.ended_ns = event.ts_ns
        p.exit_code = data.exit_code
        self._exited.append(p)
        while len(self._exited) > self.max_tracked:
            old = self._exited.popleft()
            self._count(old, "table_full")
            self._forget(old)
        self._decide(p)

    def _decide(self, p: Process) -> None:
        """At exit: report it if it is in an agent's tree; else it waits in the window."""
        if not self.reporting:
            p.settled = True
            return
        if self.report_all:
            self._emit(p, self.agent_of(p))
            return
        if self._agents or self.agents:
            agent = self.agent_of(p)
            if agent is not None:
                self._emit(p, agent)

    def _emit(self, p: Process, agent: Process | None, running: bool = False) -> None:
        p.emitted = p.settled = True
        self._finished.append(Finished(p, agent, running))

    def _count(self, p: Process, reason: str) -> None:
        if not p.settled:
            p.settled = True
            self.not_emitted[reason] += 1

    # --- agents ---------------------------------------------------------------------

    def llm_request(self, pid: int) -> None:
        """`pid` sent a captured LLM request: it is an agent from now on, and what it ran before
        (within the window) is reported."""
        p = self.lookup(pid)
        if p is None or p.llm:
            return
        was_agent = p.is_agent
        p.llm = True
        self._agents.add(p)
        if was_agent or not self.reporting:
            return  # its descendants were decided against it already
        for q in self._exited:
            if not q.settled:
                agent = self.agent_of(q)
                if agent is not None:
                    self._emit(q, agent)

    def agent_of(self, p: Process) -> Process | None:
        """The nearest agent among p and its ancestors."""
        q: Process | None = p
        for _ in range(MAX_DEPTH):
            if q is None:
                return None
            if q.is_agent:
                return q
            q = self.parent_of(q)
        return None

    def parent_of(self, p: Process) -> Process | None:
        if p.parent is not None or p.parent_unknown or p.ppid <= 0:
            return p.parent
        candidate = self._by_pid.get(p.ppid)
        if candidate is None or (p.parent_start and candidate.start != p.parent_start):
            candidate = self._from_proc(p.ppid, p.parent_start)
        if candidate is None:
            p.parent_unknown = True
        p.parent = candidate
        return candidate

    # --- lookups ----------------------------------------------------------------------

    def lookup(self, pid: int) -> Process | None:
        """The latest process with this pid: tracked, or found in /proc."""
        return self._by_pid.get(pid) or self._from_proc(pid)

    def _from_proc(self, pid: int, start: int = 0) -> Process | None:
        info = self.proc.read(pid)
        if info is None or (start and info["start"] != start):
            return None
        known = self._known(pid, info["start"])
        if known is not None:
            return known
        p = Process(pid, info["start"], ppid=info["ppid"], comm=info["comm"], executable_path=info["path"],
                    argv=info["argv"], args_truncated=info["args_truncated"], uid=info["uid"],
                    began_ns=info["start"] - self.boot_to_monotonic_ns, from_proc=True)
        p.configured_agent = self.agents.match(p.executable_name, p.executable_path, p.argv)
        if p.is_agent:
            self._agents.add(p)
        self._insert(p)
        return p

    def info(self, pid: int, comm: str = "") -> ProcessInfo:
        """The connection tracker's view of a process (for the include/exclude filters and exchange spans)."""
        p = self.lookup(pid)
        if p is None:
            return ProcessInfo(pid, "", comm, self.cgroups.of_process(pid))
        return ProcessInfo(pid, p.executable_path, p.comm or comm, self.cgroup_path(p))

    def cgroup_path(self, p: Process) -> str:
        if p.cgroup_id:
            return self.cgroups.path(p.cgroup_id, p.pid if p.ended_ns is None else 0)
        return self.cgroups.of_process(p.pid) if p.ended_ns is None else ""

    def exchange_attributes(self, pid: int) -> dict[str, object]:
        """The process tree on a span of process `pid` (an exchange it made)."""
        p = self.lookup(pid) if self.tree_known else None
        if p is None:
            return {}
        attrs: dict[str, object] = {"process.parent_pid": p.ppid,
                                    "llmtap.process.start_time_unix_nano": self.start_time_unix_nano(p)}
        attrs.update(self.agent_attributes(self.agent_of(p)))
        return attrs

    def agent_attributes(self, agent: Process | None) -> dict[str, object]:
        if agent is None:
            return {}
        return {"llmtap.agent.pid": agent.pid, "llmtap.agent.start_time_unix_nano": self.start_time_unix_nano(agent),
                "llmtap.agent.name": agent.agent_name}

    # --- time and shutdown --------------------------------------------------------------

    def expire(self, now_ns: int) -> None:
        """Finished processes older than the window: counted if not reported, and forgotten."""
        limit = now_ns - self.window_ns
        while self._exited and self._exited[0].ended_ns <= limit:
            p = self._exited.popleft()
            self._count(p, "not_agent")
            self._forget(p)

    def take_finished(self) -> list[Finished]:
        out, self._finished = self._finished, []
        return out

    def close(self) -> list[Finished]:
        """Shutdown: running processes in agent trees are reported as running; the rest is counted."""
        if not self.reporting:
            return []
        for p in list(self._by_pid.values()):
            if p.settled or p.ended_ns is not None:
                continue
            agent = self.agent_of(p)
            if self.report_all or agent is not None:
                self._emit(p, agent, running=True)
            elif not p.from_proc:  # one that began before the capture was never ours to count
                self._count(p, "not_agent")
        for p in self._exited:
            self._count(p, "not_agent")
        return self.take_finished()
