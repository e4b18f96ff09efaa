"""Process capture, for real: the probes in the kernel, an agent in its own process
that makes a real LLM call over TLS (the openai SDK against tests/llm_server.py)
and runs real commands (ls, curl, bash pipelines, a process it kills), and the
process spans the receiver makes of them.

The agent is a script (`scripted_agent.py`, written to a temporary directory)
that follows a plan given as JSON: run a command, call the model, run a shell
line, start a command and kill it, pause. It prints the pids of what it ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ebpf_support import Capture, CapturedSpan, require_ebpf
from llm_server import LlmServer
from llm_traffic import client_env
from llmtap.receiver.ebpf.processes import process_span_id

WINDOW_S = 2
CONFIG = {"extra_endpoints": [{"host": "localhost", "path": "/v1/*"}],
          "processes": {"window": f"{WINDOW_S}s"}}

AGENT = textwrap.dedent('''
    """An agent whose model and tools are scripted: argv[1] is the base URL, argv[2] the plan."""
    import json, os, subprocess, sys, time
    import openai

    base_url, plan = sys.argv[1], json.loads(sys.argv[2])
    ran = []
    client = None
    for step in plan:
        if "llm" in step:
            client = client or openai.OpenAI(base_url=base_url + "/v1", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": step["llm"]}])
        elif "run" in step:
            done = subprocess.run(step["run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ran.append({"argv": step["run"], "pid": None, "returncode": done.returncode})
        elif "shell" in step:
            proc = subprocess.Popen(["bash", "-c", step["shell"]], stdout=subprocess.DEVNULL)
            ran.append({"argv": ["bash", "-c", step["shell"]], "pid": proc.pid, "returncode": proc.wait()})
        elif "kill" in step:
            proc = subprocess.Popen(step["kill"])
            time.sleep(0.3)
            proc.kill()
            ran.append({"argv": step["kill"], "pid": proc.pid, "returncode": proc.wait()})
        elif "pause" in step:
            time.sleep(step["pause"])
    print(json.dumps({"pid": os.getpid(), "ran": ran}))
''')


@pytest.fixture(scope="module")
def capture():
    require_ebpf()
    with Capture(CONFIG) as cap:
        yield cap


@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s


@pytest.fixture(scope="module")
def agent_script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("agent") / "scripted_agent.py"
    path.write_text(AGENT)
    return path


def start_agent(agent_script, server, plan) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(agent_script), server.base_url, json.dumps(plan)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client_env(server), text=True)


def finish_agent(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def process_spans(capture, agent_pid: int, timeout: float = 20) -> list[CapturedSpan]:
    """The process spans whose agent root is `agent_pid` (which has exited), once the agent's own has
    come: it exited last, and the receiver reports processes in the order they exit."""
    def in_session(s):
        return s.span.name.startswith("exec ") and s.attrs.get("llmtap.agent.pid") == agent_pid

    capture.wait_for(1, lambda s: in_session(s) and s.attrs["process.pid"] == agent_pid, timeout, settle=0)
    return capture.spans(in_session)


def by_name(spans: list[CapturedSpan], name: str) -> list[CapturedSpan]:
    return [s for s in spans if s.attrs["process.executable.name"] == name]


@pytest.fixture(scope="module")
def container_cgroup(capture):
    """A cgroup named as docker names a container's, or None where cgroups cannot be made."""
    container = uuid.uuid4().hex + uuid.uuid4().hex
    cgroup = Path(capture.receiver.processes.cgroups.root) / f"docker-{container}.scope"
    try:
        cgroup.mkdir()
    except OSError:
        yield None
        return
    yield container, cgroup
    cgroup.rmdir()


@pytest.fixture(scope="module")
def bystanders(capture):
    """Processes pytest runs (pytest is no agent), before the agents: (pids, seen while in the window,
    when they had all exited, the not_agent count before them)."""
    before = capture.metric("llmtap_receiver_ebpf_processes_not_emitted_total", reason="not_agent")
    procs = [subprocess.Popen(["/bin/true"]) for _ in range(5)]
    assert all(p.wait() == 0 for p in procs)
    exited = time.monotonic()
    pids = {p.pid for p in procs}
    time.sleep(0.3)
    table = capture.receiver.processes
    seen = {pid for pid in pids if table.lookup(pid) is not None and table.lookup(pid).ended_ns is not None}
    return pids, seen, exited, before


@pytest.fixture(scope="module")
def agent_run(capture, server, agent_script, container_cgroup, bystanders):
    """Two agent sessions at the same time. The first runs ls before its first LLM call, then the
    tools; the second a pipeline, and a shell that moves into a container's cgroup and becomes ls."""
    ca = server.ca_file
    secret = "sk-test-" + uuid.uuid4().hex
    plan = [{"run": ["ls", "-la", "/"]},
            {"llm": "list the files, then fetch the health page"},
            {"run": ["curl", "-sS", "--cacert", ca, "-H", f"Authorization: Bearer {secret}", "-o", "/dev/null",
                     f"{server.base_url}/healthz"]},
            {"shell": "ls / | wc -l; (exit 3); ls /nonexistent-llmtap || true"},
            {"run": ["/bin/echo", "x" * 10_000]},
            {"kill": ["sleep", "30"]}]
    other_plan = [{"llm": "go"}, {"run": ["ls", "/"]}, {"pause": 0.3}, {"shell": "ls / | wc -l"}]
    if container_cgroup:
        other_plan.append({"shell": f"echo $$ > {container_cgroup[1]}/cgroup.procs && exec ls /"})
    first, second = start_agent(agent_script, server, plan), start_agent(agent_script, server, other_plan)
    result, other = finish_agent(first), finish_agent(second)
    return result, process_spans(capture, result["pid"]), secret, other, process_spans(capture, other["pid"])


def test_the_agent_s_commands_become_process_spans_with_args_and_exit_codes(agent_run):
    result, spans, *_ = agent_run
    agent_pid = result["pid"]
    (ls,) = [s for s in by_name(spans, "ls") if s.attrs["process.parent_pid"] == agent_pid]
    assert ls.span.name == "exec ls" and ls.span.kind == ls.span.SPAN_KIND_INTERNAL
    assert ls.attrs["process.command_args"] == ["ls", "-la", "/"]
    assert ls.attrs["process.executable.path"].endswith("/ls")
    assert ls.attrs["process.exit.code"] == 0
    assert ls.attrs["process.user.id"] == os.geteuid() and ls.attrs["process.owner"] == "root"
    assert ls.span.start_time_unix_nano <= ls.span.end_time_unix_nano
    (curl,) = by_name(spans, "curl")
    assert curl.attrs["process.parent_pid"] == agent_pid and curl.attrs["process.exit.code"] == 0
    assert curl.attrs["process.command_args"][0] == "curl"
    for span in spans:
        assert span.attrs["llmtap.agent.pid"] == agent_pid
        assert span.attrs["llmtap.agent.name"] == "scripted_agent"


def test_a_command_run_before_the_first_llm_call_is_in_the_session(agent_run, capture):
    result, spans, *_ = agent_run
    (ls,) = [s for s in by_name(spans, "ls") if s.attrs["process.command_args"] == ["ls", "-la", "/"]]
    (llm_call,) = capture.spans(lambda s: s.pid == result["pid"] and s.span.name == "POST /v1/chat/completions")
    assert ls.span.end_time_unix_nano < llm_call.span.start_time_unix_nano
    assert llm_call.attrs["llmtap.agent.pid"] == result["pid"]


def test_a_pipeline_s_processes_are_children_of_its_shell(agent_run):
    result, spans, *_ = agent_run
    (bash,) = [s for s in by_name(spans, "bash") if s.attrs["process.parent_pid"] == result["pid"]]
    shell = bash.attrs["process.pid"]
    assert bash.attrs["process.command_args"][:2] == ["bash", "-c"] and bash.attrs["process.parent_pid"] == result["pid"]
    children = [s for s in spans if s.attrs["process.parent_pid"] == shell]
    assert sorted(s.attrs["process.executable.name"] for s in children) == ["bash", "ls", "ls", "wc"]
    (subshell,) = by_name(children, "bash")  # `(exit 3)`: a fork that never exec'd
    assert subshell.attrs["llmtap.process.fork_only"] is True and subshell.attrs["process.exit.code"] == 3
    (failed,) = [s for s in children if s.attrs.get("process.command_args") == ["ls", "/nonexistent-llmtap"]]
    assert failed.attrs["process.exit.code"] == 2 and failed.span.status.code == failed.span.status.STATUS_CODE_ERROR
    for child in children:
        assert child.attrs["llmtap.process.parent_start_time_unix_nano"] == bash.attrs["llmtap.process.start_time_unix_nano"]


def test_a_killed_process_reports_the_signal(agent_run):
    _, spans, *_ = agent_run
    (sleep,) = by_name(spans, "sleep")
    assert sleep.attrs["llmtap.process.exit.signal"] == 9 and sleep.attrs["process.exit.code"] == 137
    assert sleep.span.status.code == sleep.span.status.STATUS_CODE_ERROR and sleep.attrs["error.type"] == "SIGKILL"


def test_long_arguments_are_cut_at_max_args_bytes_and_marked(agent_run):
    _, spans, *_ = agent_run
    (echo,) = by_name(spans, "echo")
    args = echo.attrs["process.command_args"]
    assert args[0] == "/bin/echo" and set(args[1]) == {"x"}
    assert len("\0".join(args)) <= 4096 and echo.attrs["llmtap.process.command_args.truncated"] is True


def test_secret_arguments_never_leave(agent_run, capture):
    _, spans, secret, *_ = agent_run
    (curl,) = by_name(spans, "curl")
    assert "Authorization: Bearer <REDACTED>" in curl.attrs["process.command_args"]
    with capture.sink.lock:
        assert not any(secret.encode() in r.SerializeToString() for r in capture.sink.requests)


def test_the_agent_s_own_span_and_its_llm_call_carry_the_same_identity(agent_run, capture):
    result, spans, *_ = agent_run
    agent_pid = result["pid"]
    (own,) = [s for s in spans if s.attrs["process.pid"] == agent_pid]
    start = own.attrs["llmtap.process.start_time_unix_nano"]
    assert own.span.span_id == process_span_id(agent_pid, start)
    assert own.attrs["llmtap.agent.start_time_unix_nano"] == start
    assert own.attrs["process.parent_pid"] == os.getpid()
    assert own.attrs["process.command_args"][1].endswith("scripted_agent.py")
    (llm_call,) = capture.spans(lambda s: s.pid == agent_pid and s.span.kind == s.span.SPAN_KIND_CLIENT)
    assert llm_call.attrs["llmtap.process.start_time_unix_nano"] == start
    assert llm_call.attrs["process.parent_pid"] == os.getpid()
    assert llm_call.attrs["llmtap.agent.name"] == "scripted_agent"
    for child in spans:
        if child.attrs["process.parent_pid"] == agent_pid:
            assert child.attrs["llmtap.process.parent_start_time_unix_nano"] == start


def test_two_agents_at_once_have_their_own_roots(agent_run):
    result, spans, _, other, other_spans = agent_run
    sessions = {result["pid"]: spans, other["pid"]: other_spans}
    for pid, session in sessions.items():
        mine = {s.attrs["process.pid"] for s in session}
        direct = [s for s in session if s.attrs["process.parent_pid"] == pid]
        assert {"ls", "bash"} <= {s.attrs["process.executable.name"] for s in direct}
        # Every process naming this agent as root is the agent or under it.
        for span in session:
            assert span.attrs["process.parent_pid"] in mine | {os.getpid()}
    first_pids, second_pids = ({s.attrs["process.pid"] for s in session} for session in sessions.values())
    assert first_pids and second_pids and not first_pids & second_pids


def test_processes_in_no_agent_s_tree_are_counted_not_reported(capture, bystanders, agent_run):
    pids, seen, exited, before = bystanders
    assert seen == pids  # tracked, and waiting in the window in case an ancestor became an agent
    time.sleep(max(0.0, exited + WINDOW_S + 1.5 - time.monotonic()))  # past it, and the next counter report
    table = capture.receiver.processes
    assert all(table.lookup(pid) is None for pid in pids)  # forgotten
    assert capture.metric("llmtap_receiver_ebpf_processes_not_emitted_total", reason="not_agent") >= before + 5
    assert capture.spans(lambda s: s.attrs.get("process.pid") in pids) == []
    assert capture.metric("llmtap_receiver_ebpf_process_events_total", kind="exec") > 0
    assert capture.metric("llmtap_receiver_ebpf_process_events_lost_total", reason="ring_full") == 0


def test_a_container_s_id_comes_from_its_cgroup(agent_run, container_cgroup):
    if container_cgroup is None:
        pytest.skip("cannot make a cgroup here")
    container, cgroup = container_cgroup
    *_, other_spans = agent_run
    (ls,) = [s for s in other_spans if s.attrs.get("container.id")]
    assert ls.attrs["process.executable.name"] == "ls" and ls.attrs["container.id"] == container
    assert ls.attrs["llmtap.process.cgroup_id"] == os.stat(cgroup).st_ino


KERNEL_ONLY = textwrap.dedent('''
    """Load the probes as processes.enabled: false compiles them, and as a kernel without BTF gets them;
    run `sh -c "exit 7"` under each; print its events."""
    import json, os, subprocess
    from unittest import mock
    from llmtap.receiver.ebpf import btf, events, probes

    def run():
        seen = []
        loaded = probes.TlsProbes(1 << 20, seen.append, print, args_bytes=0, forks=False)
        child = subprocess.Popen(["/bin/sh", "-c", "exit 7"])
        child.wait()
        loaded.poll(100)
        loaded.close()
        mine = [(e.kind, events.decode_process(e.data)) for e in seen if e.pid == child.pid]
        return {"problem": loaded.process_tree_problem, "events": [
            {"kind": events.Kind(kind).name, "path": d.path, "args": d.args.hex(), "ppid": d.ppid,
             "exit_code": d.exit_code} for kind, d in mine]}

    def no_btf():
        raise btf.BtfError("the kernel's BTF is gone")

    report = {"me": os.getpid(), "btf": run()}
    with mock.patch.object(probes, "process_field_offsets", no_btf):
        report["no_btf"] = run()
    print(json.dumps(report))
''')


def test_without_process_capture_the_kernel_sends_exec_and_exit_only_and_needs_no_network():
    """processes.enabled: false compiles the probes without argument copies and fork reports; a kernel
    without BTF gets exec and exit with no parent or exit code, and TLS capture still loads. Neither
    needs the network (run in a network namespace of its own)."""
    require_ebpf()
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", KERNEL_ONLY], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    exec_event, exit_event = report["btf"]["events"]
    assert exec_event == {"kind": "PROC_EXEC", "path": "/bin/sh", "args": "", "ppid": report["me"], "exit_code": 0}
    assert exit_event["kind"] == "PROC_EXIT" and exit_event["exit_code"] == 7 << 8
    assert report["btf"]["problem"] == ""
    assert report["no_btf"]["problem"] == "the kernel's BTF is gone"
    exec_event, exit_event = report["no_btf"]["events"]
    assert exec_event == {"kind": "PROC_EXEC", "path": "/bin/sh", "args": "", "ppid": 0, "exit_code": 0}
    assert exit_event["kind"] == "PROC_EXIT"
