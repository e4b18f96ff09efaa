"""ProcessTable: exec, fork and exit events in, the processes to report out — with no kernel.

Events are what the probes send (events.Event with an encoded ProcessEvent), for
made-up process trees: `Machine` keeps pids, start times and the clock as the
kernel would. Processes that began before the capture come from a stand-in for
/proc (a dict), since their pids are made up too.
"""

from __future__ import annotations

import hashlib

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ebpf_support import attributes
from llmtap.receiver.ebpf import events
from llmtap.receiver.ebpf.agents import AgentPatterns
from llmtap.receiver.ebpf.cgroups import CgroupPaths
from llmtap.receiver.ebpf.events import Event, Kind, ProcessEvent
from llmtap.receiver.ebpf.processes import TICK_NS, ProcessTable, process_span_id, split_args
from llmtap.receiver.ebpf.span import traces_request

BOOT_TO_UNIX = 1_760_000_000 * 10**9
SECOND = 10**9
SHELL = 100          # the user's shell: began before the capture, known only to /proc


class FakeProc:
    """/proc for processes that began before the capture: pid → what /proc/<pid> would say."""

    def __init__(self):
        self.entries = {SHELL: {"comm": "bash", "ppid": 1, "start": 5 * SECOND, "argv": ["-bash"],
                                "args_truncated": False, "path": "/usr/bin/bash", "uid": 1000}}
        self.reads = []

    def read(self, pid):
        self.reads.append(pid)
        return self.entries.get(pid)


class FakeCgroups(CgroupPaths):
    def __init__(self, paths=None):
        super().__init__(root="/nonexistent")
        self.paths = paths or {}

    def path(self, cgroup_id, pid=0):
        return self.paths.get(cgroup_id, "")

    def of_process(self, pid):
        return ""


class Machine:
    """The events of a made-up process tree, each process with its own start time, on one clock."""

    def __init__(self):
        self.ts = 10 * SECOND
        self.starts = {SHELL: 5 * SECOND}
        self.parents = {}
        self.comms = {SHELL: "bash"}

    def _event(self, kind, pid, data: ProcessEvent) -> Event:
        self.ts += 1_000_000
        return Event(kind, pid, pid, 0, 0, self.ts, 0, 0, self.comms.get(pid, "x"), events.encode_process(data))

    def _ids(self, pid, **kw) -> ProcessEvent:
        ppid = self.parents.get(pid, 1)
        return ProcessEvent(ppid, kw.pop("uid", 1000), self.starts[pid], self.starts.get(ppid, 0),
                            kw.pop("cgroup_id", 7), **kw)

    def fork(self, parent: int, pid: int) -> Event:
        self.ts += 20_000_000  # 20 ms: two starts never share a clock tick
        self.starts[pid] = self.ts + 123_456
        self.parents[pid] = parent
        self.comms[pid] = self.comms.get(parent, "x")
        return self._event(Kind.PROC_FORK, pid, self._ids(pid))

    def exec(self, pid: int, argv: list[str], path: str | None = None, *, total: int | None = None,
             **kw) -> Event:
        path = path or f"/usr/bin/{argv[0]}"
        self.comms[pid] = path.rsplit("/", 1)[-1][:15]
        raw = b"".join(a.encode() + b"\0" for a in argv)
        return self._event(Kind.PROC_EXEC, pid, self._ids(pid, path=path, args=raw, args_total=total or len(raw), **kw))

    def exit(self, pid: int, status: int = 0, signal: int = 0) -> Event:
        return self._event(Kind.PROC_EXIT, pid, self._ids(pid, exit_code=(status << 8) | signal))

    def spawn(self, parent: int, pid: int, argv: list[str], **kw) -> list[Event]:
        return [self.fork(parent, pid), self.exec(pid, argv, **kw)]


def make_table(agents=(), **kw) -> ProcessTable:
    return ProcessTable(agents=AgentPatterns(list(agents)), proc=kw.pop("proc", FakeProc()),
                        cgroups=kw.pop("cgroups", FakeCgroups()), boot_to_unix_ns=BOOT_TO_UNIX,
                        boot_to_monotonic_ns=0, **kw)


def feed(table, *evs):
    for ev in evs:
        if isinstance(ev, list):
            feed(table, *ev)
        else:
            table.handle(ev)
    return table


@pytest.fixture
def machine():
    return Machine()


def reported(table) -> dict[int, object]:
    return {f.process.pid: f for f in table.take_finished()}


def test_an_agent_s_children_are_reported_at_their_exit_with_the_agent_as_root(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]))
    table.llm_request(200)
    feed(table, machine.spawn(200, 201, ["ls", "-la"]), machine.exit(201))
    (ls,) = table.take_finished()
    assert ls.process.argv == ["ls", "-la"] and ls.process.exit_status == 0
    assert ls.agent.pid == 200 and ls.agent.agent_name == "agent"
    assert table.parent_of(ls.process).pid == 200


def test_a_child_run_before_its_parent_s_first_llm_call_is_reported_when_the_call_comes(machine):
    table = make_table(window_s=30)
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]), machine.spawn(200, 201, ["ls"]),
         machine.exit(201))
    assert table.take_finished() == []  # nothing says yet that 200 is an agent
    table.llm_request(200)
    (ls,) = table.take_finished()
    assert ls.process.pid == 201 and ls.agent.pid == 200
    table.llm_request(200)  # later requests change nothing
    assert table.take_finished() == []


def test_a_process_in_no_agent_s_tree_is_counted_once_the_window_has_passed(machine):
    table = make_table(window_s=30)
    feed(table, machine.spawn(SHELL, 300, ["make"]), machine.exit(300))
    table.expire(machine.ts + 29 * SECOND)
    assert table.not_emitted["not_agent"] == 0
    table.expire(machine.ts + 31 * SECOND)
    assert table.not_emitted["not_agent"] == 1
    table.llm_request(SHELL)  # too late: it is gone
    assert table.take_finished() == []
    assert table.events == {"fork": 1, "exec": 1, "exit": 1}


def test_a_configured_agent_is_one_from_its_exec(machine):
    table = make_table(["claude", "gemini", "python:my_agent.py"])
    feed(table, machine.spawn(SHELL, 200, ["claude", "-p", "fix the tests"], path="/usr/local/bin/claude"),
         machine.spawn(200, 201, ["git", "status"]), machine.exit(201),
         machine.spawn(SHELL, 300, ["node", "/usr/local/bin/gemini", "--yolo"]),
         machine.spawn(300, 301, ["ls"]), machine.exit(301),
         machine.spawn(SHELL, 400, ["python3.11", "-u", "/home/me/my_agent.py"], path="/usr/bin/python3.11"),
         machine.spawn(400, 401, ["pytest"]), machine.exit(401),
         machine.spawn(SHELL, 500, ["python3.11", "other.py"]), machine.spawn(500, 501, ["ls"]), machine.exit(501))
    roots = {pid: (f.agent.pid, f.agent.agent_name) for pid, f in reported(table).items()}
    assert roots == {201: (200, "claude"), 301: (300, "gemini"), 401: (400, "my_agent")}


def test_the_nearest_agent_ancestor_is_the_root(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 200, ["python3", "orchestrator.py"]),
         machine.spawn(200, 210, ["python3", "subagent.py"]), machine.spawn(210, 211, ["ls"]),
         machine.spawn(200, 220, ["bash", "-c", "ls | wc -l"]), machine.spawn(220, 221, ["ls"]))
    table.llm_request(200)
    table.llm_request(210)
    feed(table, machine.exit(211), machine.exit(221), machine.exit(220))
    roots = {pid: f.agent.pid for pid, f in reported(table).items()}
    assert roots == {211: 210, 221: 200, 220: 200}


def test_an_exec_replaces_the_program_and_a_fork_runs_its_parent_s(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]))
    table.llm_request(200)
    # `bash -c "ls -la"` execs ls in place; `( … )` forks a subshell that never execs.
    feed(table, machine.spawn(200, 201, ["bash", "-c", "ls -la"]), machine.exec(201, ["ls", "-la"]),
         machine.spawn(200, 202, ["bash", "-c", "(exit 3); true"]), machine.fork(202, 203),
         machine.exit(201), machine.exit(203, status=3), machine.exit(202))
    done = reported(table)
    assert done[201].process.executable_name == "ls" and done[201].process.argv == ["ls", "-la"]
    assert done[201].process.execs == 2
    subshell = done[203].process
    assert subshell.execs == 0 and subshell.executable_name == "bash"
    assert subshell.argv == ["bash", "-c", "(exit 3); true"] and subshell.exit_status == 3
    assert table.parent_of(subshell).pid == 202


def test_a_reused_pid_is_another_process(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]))
    table.llm_request(200)
    feed(table, machine.spawn(200, 201, ["sleep", "1"]), machine.spawn(201, 202, ["true"]),
         machine.exit(201), machine.spawn(SHELL, 201, ["make"]), machine.exit(202))
    done = reported(table)
    assert done[201].process.argv == ["sleep", "1"]
    # 202's parent is the sleep that forked it, not the make that now has its pid.
    assert table.parent_of(done[202].process).argv == ["sleep", "1"]
    feed(table, machine.exit(201))
    assert table.take_finished() == []  # make is no agent's
    assert table.lookup(201).argv == ["make"]


def test_an_agent_that_began_before_the_capture_is_found_in_proc(machine):
    proc = FakeProc()
    proc.entries[150] = {"comm": "node", "ppid": SHELL, "start": 8 * SECOND, "argv": ["node", "/usr/local/bin/gemini"],
                         "args_truncated": False, "path": "/usr/bin/node", "uid": 1000}
    machine.starts[150] = 8 * SECOND
    table = make_table(["gemini"], proc=proc)
    feed(table, machine.spawn(150, 151, ["ls"]), machine.exit(151))
    (ls,) = table.take_finished()
    assert ls.agent.pid == 150 and ls.agent.from_proc and ls.agent.agent_name == "gemini"
    assert proc.reads.count(150) == 1
    attrs = table.exchange_attributes(150)
    assert attrs["llmtap.agent.pid"] == 150 and attrs["process.parent_pid"] == SHELL
    assert attrs["llmtap.process.start_time_unix_nano"] == 8 * SECOND + BOOT_TO_UNIX


def test_identity_is_the_start_time_cut_to_the_clock_tick_as_proc_reports_it(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]))
    p = table.lookup(200)
    assert p.start == machine.starts[200] - machine.starts[200] % TICK_NS
    start = BOOT_TO_UNIX + p.start
    assert table.start_time_unix_nano(p) == start
    expected = hashlib.sha256(b"proc" + (200).to_bytes(4, "big") + start.to_bytes(8, "big")).digest()[:8]
    assert table.span_id(p) == process_span_id(200, start) == expected


def test_the_table_stays_within_max_tracked_and_counts_what_it_forgets(machine):
    table = make_table(max_tracked=16)
    for pid in range(1000, 1040):
        feed(table, machine.spawn(SHELL, pid, ["true"]), machine.exit(pid))
    assert table.tracked <= 16
    assert table.not_emitted["table_full"] == 40 - 16
    for pid in range(2000, 2040):  # running ones: the oldest go first
        feed(table, machine.spawn(SHELL, pid, ["sleep", "100"]))
    assert table.tracked <= 16 and table.lookup(2039) is not None


def test_a_lost_exit_is_counted_when_its_pid_comes_back(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 300, ["make"]), machine.spawn(SHELL, 300, ["make"]))
    assert table.not_emitted["exit_lost"] == 1


def test_shutdown_reports_running_agent_processes_and_counts_the_rest(machine):
    table = make_table()
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]), machine.spawn(200, 201, ["sleep", "60"]),
         machine.spawn(SHELL, 300, ["vim"]), machine.spawn(SHELL, 301, ["true"]), machine.exit(301))
    table.llm_request(200)
    done = {f.process.pid: f for f in table.close()}
    assert set(done) == {200, 201} and all(f.running for f in done.values())
    assert table.not_emitted["not_agent"] == 2  # vim, still running, and true, in the window


def test_scope_all_reports_every_process_and_off_reports_none(machine):
    table = make_table(scope="all")
    feed(table, machine.spawn(SHELL, 300, ["make"]), machine.exit(300))
    (make,) = table.take_finished()
    assert make.agent is None
    off = make_table(scope="off")
    feed(off, machine.spawn(SHELL, 400, ["python3", "agent.py"]))
    off.llm_request(400)
    feed(off, machine.spawn(400, 401, ["ls"]), machine.exit(401))
    assert off.take_finished() == [] and off.close() == []
    assert off.exchange_attributes(400)["llmtap.agent.pid"] == 400  # the tree is still known
    assert off.not_emitted == {}
    off.tree_known = False  # a kernel without BTF: no parents, no start times
    assert off.exchange_attributes(400) == {}


def test_malformed_process_events_are_refused():
    table = make_table()
    with pytest.raises(ValueError, match="shorter than"):
        table.handle(Event(Kind.PROC_EXIT, 1, 1, 0, 0, 1, 0, 0, "x", b"\0" * 10))
    data = events.encode_process(ProcessEvent(1, 0, 1, 1, 1, path="/bin/ls", args=b"ls\0"))
    with pytest.raises(ValueError, match="argument bytes"):
        table.handle(Event(Kind.PROC_EXEC, 1, 1, 0, 0, 1, 0, 0, "x", data[:-2]))


def test_process_events_round_trip():
    for p in (ProcessEvent(1, 2, 3, 4, 5, 0, "/bin/ls", b"ls\0-la\0", 7), ProcessEvent(1, 2, 3, 4, 5, 9)):
        assert events.decode_process(events.encode_process(p)) == p
    assert split_args(b"ls\0-la\0") == ["ls", "-la"]
    assert split_args(b"echo\0abc") == ["echo", "abc"]  # cut mid-argument


# --- the spans ------------------------------------------------------------------------


def span_of(request, pid: int, kind=Span.SPAN_KIND_INTERNAL):
    for rs in request.resource_spans:
        for span in rs.scope_spans[0].spans:
            attrs = attributes(span.attributes)
            if span.kind == kind and attrs["process.pid"] == pid:
                return span, attrs, attributes(rs.resource.attributes)
    raise AssertionError(f"no span of pid {pid}")


def test_a_process_span_carries_the_process_its_parent_and_its_agent(machine):
    table = make_table(cgroups=FakeCgroups({7: "/system.slice/docker-" + "ab" * 32 + ".scope"}))
    feed(table, machine.spawn(SHELL, 200, ["python3", "agent.py"]))
    table.llm_request(200)
    feed(table, machine.spawn(200, 201, ["curl", "-H", "Authorization: Bearer sk-live0123456789abcdef", "-o",
                                         "/dev/null", "https://example.com/" + "x" * 40], total=5000),
         machine.exit(201, status=6))
    request = traces_request([], 0, processes=table.take_finished(), table=table, now_ns=machine.ts)
    span, attrs, resource = span_of(request, 201)
    agent = table.lookup(200)
    assert span.name == "exec curl" and span.kind == Span.SPAN_KIND_INTERNAL
    assert span.span_id == process_span_id(201, BOOT_TO_UNIX + table.lookup(201).start)
    assert span.start_time_unix_nano < span.end_time_unix_nano == machine.ts
    assert attrs["process.parent_pid"] == 200
    assert attrs["llmtap.process.parent_start_time_unix_nano"] == table.start_time_unix_nano(agent)
    assert attrs["process.executable.path"] == "/usr/bin/curl"
    assert attrs["process.command_args"][:3] == ["curl", "-H", "Authorization: Bearer <REDACTED>"]
    assert attrs["llmtap.process.command_args.truncated"] is True
    assert attrs["process.exit.code"] == 6
    assert span.status.code == Status.STATUS_CODE_ERROR and attrs["error.type"] == "6"
    assert attrs["process.user.id"] == 1000
    assert attrs["container.id"] == "ab" * 32 and attrs["llmtap.process.cgroup_id"] == 7
    assert attrs["llmtap.agent.pid"] == 200 and attrs["llmtap.agent.name"] == "agent"
    assert attrs["llmtap.agent.start_time_unix_nano"] == table.start_time_unix_nano(agent)
    assert resource["service.name"] == "curl"
    assert "llmtap.process.running" not in attrs and "llmtap.process.fork_only" not in attrs


def test_a_killed_process_reports_its_signal_as_a_shell_would(machine):
    table = make_table(scope="all")
    feed(table, machine.spawn(SHELL, 300, ["sleep", "60"]), machine.exit(300, signal=9))
    request = traces_request([], 0, processes=table.take_finished(), table=table)
    span, attrs, _ = span_of(request, 300)
    assert attrs["process.exit.code"] == 137 and attrs["llmtap.process.exit.signal"] == 9
    assert attrs["error.type"] == "SIGKILL" and span.status.message == "killed by SIGKILL"


def test_a_running_process_span_ends_at_shutdown(machine):
    table = make_table(["claude"])
    feed(table, machine.spawn(SHELL, 200, ["claude"]), machine.fork(200, 201))
    request = traces_request([], 0, processes=table.close(), table=table, now_ns=machine.ts + SECOND)
    span, attrs, _ = span_of(request, 201)
    assert attrs["llmtap.process.running"] is True and attrs["llmtap.process.fork_only"] is True
    assert span.end_time_unix_nano == machine.ts + SECOND and "process.exit.code" not in attrs
    assert span_of(request, 200)[1]["llmtap.agent.pid"] == 200
