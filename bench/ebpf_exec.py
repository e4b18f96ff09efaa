"""Exec-heavy benchmark: what process capture costs an agent that runs many short
commands, and how many process events the `ebpf` receiver handles without loss.

  overhead  an agent process (this file run as `ebpf_exec.py _agent SPEC`, under the
            name llmtap-bench-agent) makes one LLM call over TLS to the local test
            server (tests/llm_server.py) — with capture on, that makes it an agent,
            so every command it runs becomes a process span — and then runs N short
            commands (`/bin/true` through subprocess.run, as an agent's shell tool
            does: fork + exec + wait). The figure is the wall time of those N, in
            three modes whose order rotates from round to round:
              off        no llmtap: no probe in the kernel
              exec_only  `llmtap run` with the ebpf receiver, processes.enabled: false
                         (exec and exit are still watched, to attach to new programs;
                         no argv, no forks, no process spans)
              on         processes.enabled: true (the default): argv copied, forks
                         reported, one process span per command
            Reported per mode: the median over rounds, and on/off, exec_only/off as
            overhead. For every `on` window, zero loss is checked: no process event
            lost in the kernel (llmtap_receiver_ebpf_process_events_lost_total), and
            exactly N `exec true` spans with the agent as root in llmtap's output.
            Windows during which another process holds BPF probes (another
            llmtap: it taxes `off` too) are flagged (`contaminated`).
            The probes' own time in the kernel is read from the kernel
            (kernel.bpf_stats_enabled, on for the run): mean ns per program run,
            times the runs a command makes (exec, exit, fork), against the command.
            With --pin (the default), agents run on CPU 0 and llmtap on the others,
            as a sidecar with a core of its own; --no-pin lets them share.
  capacity  P agents at once (P = 1, 2, 4, 8), each spawning /bin/true in a tight loop
            (posix_spawn + waitpid) for --capacity-seconds, nothing pinned: process
            events handled per second (exec + fork + exit, from llmtap's counters),
            events lost, whether every command became a span (and how long the last
            took to arrive), llmtap's CPU. The result is the highest rate with zero
            loss.

llmtap runs as `llmtap run` with `ebpf → batch → file` (OTLP protobuf), its TLS
capture restricted to the bench's agents (`include`), its self-metrics on a port
of its own. Needs root and bcc, as the receiver does. Usage:

    .venv/bin/python bench/ebpf_exec.py [--commands 2000] [--rounds 4] [--runs 3] [--no-pin]
                                        [--capacity-seconds 3] [--skip overhead|capacity]

(about 2.5 minutes). Each llmtap window runs the agent `--runs` times; the
medians are over all runs of a mode.

Prints one JSON object on stdout, a summary on stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import resource
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AGENT_NAME = "llmtap-bench-agent"
COMMAND = "/bin/true"
MODES = ("off", "exec_only", "on")


# =============================================================================
# The agents: this file run as `ebpf_exec.py _agent SPEC` / `_spawner SPEC`.

def _llm_call(spec: dict) -> None:
    """One chat completion over TLS: the captured LLM exchange that makes this process an agent."""
    host, port = spec["host"], spec["port"]
    conn = http.client.HTTPSConnection(host, port, context=ssl.create_default_context(cafile=spec["ca"]))
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "run the build"}]})
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"the test server answered {response.status}")


def _cpu_seconds() -> float:
    """CPU of this process and of its waited-for children (the commands)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def agent_main(spec: dict) -> dict:
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    _llm_call(spec)
    argv = [COMMAND]
    runs = []
    for _ in range(spec.get("runs", 1)):
        began, cpu = time.perf_counter(), _cpu_seconds()
        for _ in range(spec["commands"]):
            subprocess.run(argv, check=True)
        runs.append({"seconds": time.perf_counter() - began, "cpu_seconds": _cpu_seconds() - cpu})
    return {"runs": runs, "commands": spec["commands"] * len(runs)}


def spawner_main(spec: dict) -> dict:
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    _llm_call(spec)
    deadline = time.monotonic() + spec["seconds"]
    began, n = time.perf_counter(), 0
    while time.monotonic() < deadline:
        pid = os.posix_spawn(COMMAND, [COMMAND], os.environ)
        os.waitpid(pid, 0)
        n += 1
    return {"seconds": time.perf_counter() - began, "commands": n}


# =============================================================================
# The driver.

BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
PROCESS_PROG_TYPES = {"5": "tracepoint", "17": "raw_tracepoint"}  # exec/exit, fork (uprobes are type 2)
RUNS_PER_COMMAND = {"tracepoint": 2, "raw_tracepoint": 1}           # exec + exit; fork


def bpf_program_stats(pid: int) -> dict[str, list[int]]:
    """Runs and ns spent in the process probes of process `pid`, by program type: the kernel's own count
    (kernel.bpf_stats_enabled), exact where wall time is noisy."""
    out: dict[str, list[int]] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        except OSError:
            continue
        kind = PROCESS_PROG_TYPES.get(info.get("prog_type", ""))
        if kind:
            runs = out.setdefault(kind, [0, 0])
            runs[0] += int(info.get("run_cnt", 0))
            runs[1] += int(info.get("run_time_ns", 0))
    return out


def foreign_probe_holders(mine: set[int]) -> dict[int, str]:
    """Other processes holding uprobe, tracepoint or raw-tracepoint BPF programs: {pid: command line}.
    Another llmtap (a test next door) taxes every exec in every mode, `off` included."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") != "anon_inode:bpf-prog":
                    continue
                with open(f"/proc/{name}/fdinfo/{fd}") as f:
                    info = f.read()
                if not any(f"prog_type:\t{t}\n" in info for t in ("2", "5", "17")):
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    found[int(name)] = f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
                break
            except OSError:
                continue
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """
receivers:
  ebpf:
    extra_endpoints: [{{host: localhost, path: "/v1/*"}}]
    include: {{executables: ["{agent}"]}}
    processes: {{enabled: {enabled}}}
processors:
  batch: {{}}
exporters:
  file:
    path: "{out}"
    format: proto
    flush_interval: 200ms
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics_port}"}}, logs: {{level: info}}}}
  pipelines:
    traces: {{receivers: [ebpf], processors: [batch], exporters: [file]}}
"""


class Llmtap:
    """One `llmtap run`, started and stopped around a window; its output file read as it grows."""

    def __init__(self, workdir: Path, name: str, processes: bool, cpus: set[int] | None = None):
        self.metrics_port = free_port()
        self.out = workdir / f"{name}.otlp"
        config = workdir / f"{name}.yaml"
        config.write_text(CONFIG.format(agent=AGENT_NAME, enabled=str(processes).lower(), out=self.out,
                                        metrics_port=self.metrics_port))
        self.log = open(workdir / f"{name}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "llmtap.cli", "run", "--config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=self.log, stdin=subprocess.DEVNULL, cwd=REPO,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self._offset = 0
        self.spans_by_agent: dict[int, int] = {}
        self._wait_ready()
        import psutil
        self.ps = psutil.Process(self.proc.pid)

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llmtap exited: {Path(self.log.name).read_text()[-3000:]}")
            text = Path(self.log.name).read_text(errors="replace")
            if "eBPF TLS capture attached" in text and "everything is ready" in text:
                return
            time.sleep(0.1)
        raise RuntimeError("llmtap did not get ready")

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def metrics(self) -> dict[str, float]:
        """Self-metrics by sample name (summed over label sets), and by name[label value] for a few."""
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue
                out[s.name] = out.get(s.name, 0.0) + s.value
                for label in ("reason", "kind"):
                    if label in s.labels:
                        key = f"{s.name}[{s.labels[label]}]"
                        out[key] = out.get(key, 0.0) + s.value
        return out

    def read_spans(self) -> None:
        """Count `exec true` spans by their agent root, from the requests the file exporter wrote
        (length-prefixed OTLP protobuf) since last time."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        if not self.out.exists():
            return
        with open(self.out, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        pos = 0
        while pos + 4 <= len(data):
            size = int.from_bytes(data[pos:pos + 4], "big")
            if pos + 4 + size > len(data):
                break
            request = ExportTraceServiceRequest.FromString(data[pos + 4:pos + 4 + size])
            pos += 4 + size
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        if span.name != "exec true":
                            continue
                        agent = next((a.value.int_value for a in span.attributes if a.key == "llmtap.agent.pid"), 0)
                        self.spans_by_agent[agent] = self.spans_by_agent.get(agent, 0) + 1
        self._offset += pos

    def wait_spans(self, agents: dict[int, int], timeout: float = 60) -> float | None:
        """Seconds until every agent's `exec true` spans are in the file (None: some never came)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            self.read_spans()
            if all(self.spans_by_agent.get(pid, 0) >= n for pid, n in agents.items()):
                return time.monotonic() - began
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Rig:
    """The test server, the agent launcher, and the CPUs: with `pin`, agents run on CPU 0 and llmtap on
    the others, as a sidecar with a core of its own (else the scheduler places both)."""

    def __init__(self, workdir: Path, pin: bool):
        sys.path.insert(0, str(REPO / "tests"))
        from llm_server import LlmServer
        cpus = sorted(os.sched_getaffinity(0))
        self.agent_cpus = [cpus[0]] if pin and len(cpus) > 1 else None
        self.llmtap_cpus = set(cpus[1:]) if self.agent_cpus else None
        self.workdir = workdir
        self.server = LlmServer()
        self.server.__enter__()
        (workdir / AGENT_NAME).symlink_to(os.path.realpath(sys.executable))

    def start(self, role: str, spec: dict) -> subprocess.Popen:
        spec = {"host": "localhost", "port": self.server.port, "ca": self.server.ca_file, "cpus": self.agent_cpus,
                **spec}
        return subprocess.Popen([str(self.workdir / AGENT_NAME), str(Path(__file__).resolve()), role,
                                 json.dumps(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = 600) -> dict:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"bench agent exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
        return {"pid": proc.pid, **json.loads(out.decode().strip().splitlines()[-1])}

    def stop(self) -> None:
        self.server.__exit__(None, None, None)


def _delta(after: dict, before: dict, key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def run_window(rig: Rig, mode: str, commands: int, runs: int) -> list[dict]:
    """`runs` agent runs of `commands` each, in one agent process, under one llmtap (or none)."""
    llmtap = None
    if mode != "off":
        llmtap = Llmtap(rig.workdir, f"{mode}-{time.monotonic_ns()}", processes=mode == "on", cpus=rig.llmtap_cpus)
    try:
        foreign = foreign_probe_holders({os.getpid()} | ({llmtap.proc.pid} if llmtap else set()))
        if foreign:
            log(f"  CONTAMINATED: other processes hold probes: {foreign}")
        before = llmtap.metrics() if llmtap else {}
        cpu0 = llmtap.cpu_seconds() if llmtap else 0.0
        bpf0 = bpf_program_stats(llmtap.proc.pid) if llmtap else {}
        result = rig.finish(rig.start("_agent", {"commands": commands, "runs": runs}))
        out = [{"mode": mode, "commands": commands, "foreign_probes": sorted(foreign), **run}
               for run in result["runs"]]
        if llmtap is None:
            return out
        # The programs run for every process on the machine: their mean time per run, times the runs a
        # command makes, is the command's share.
        bpf1 = bpf_program_stats(llmtap.proc.pid)
        ns_per_run = {k: (bpf1[k][1] - bpf0.get(k, [0, 0])[1]) / max(1, bpf1[k][0] - bpf0.get(k, [0, 0])[0])
                      for k in bpf1}
        drain = llmtap.wait_spans({result["pid"]: result["commands"]}, timeout=60) if mode == "on" else 0.0
        time.sleep(1.2)  # the receiver reports its counters every second
        after = llmtap.metrics()
        events = sum(_delta(after, before, f"llmtap_receiver_ebpf_process_events_total[{k}]")
                     for k in ("exec", "fork", "exit"))
        seconds = sum(run["seconds"] for run in result["runs"])
        window = {"llmtap_cpu_ms_per_command": (llmtap.cpu_seconds() - cpu0) / result["commands"] * 1e3,
                  "probe_us_per_command": sum(ns * RUNS_PER_COMMAND[k] for k, ns in ns_per_run.items()) / 1e3,
                  "probe_ns_per_run": ns_per_run,
                  "events_per_s": events / seconds,
                  "events_lost": _delta(after, before, "llmtap_receiver_ebpf_process_events_lost_total"),
                  "lost_events_all_kinds": _delta(after, before, "llmtap_receiver_ebpf_lost_events_total")}
        if mode == "on":
            window["spans"] = llmtap.spans_by_agent.get(result["pid"], 0)
            window["drain_s"] = drain
            window["zero_loss"] = (window["events_lost"] == 0 and window["lost_events_all_kinds"] == 0
                                   and window["spans"] == result["commands"])
        for run in out:
            run.update(window)
        return out
    finally:
        if llmtap is not None:
            llmtap.stop()


def overhead(rig: Rig, commands: int, rounds: int, runs: int) -> dict:
    rig.finish(rig.start("_agent", {"commands": min(commands, 200)}))  # warm-up: page cache, server
    windows: list[dict] = []
    for r in range(rounds):
        order = MODES[r % 3:] + MODES[:r % 3]
        for mode in order:
            got = run_window(rig, mode, commands, runs)
            windows += got
            log(f"  round {r + 1} {mode:9s} " + " ".join(f"{w['seconds']:.3f}" for w in got) + " s"
                + (f"  spans {got[0].get('spans')}  lost {got[0].get('events_lost'):.0f}" if mode == "on" else ""))

    def median(mode: str, key: str) -> float:
        return statistics.median(w[key] for w in windows if w["mode"] == mode)

    wall = {m: median(m, "seconds") for m in MODES}
    cpu = {m: median(m, "cpu_seconds") for m in MODES}
    on = [w for w in windows if w["mode"] == "on"]
    return {
        "commands": commands, "rounds": rounds, "runs_per_window": runs, "pinned": rig.agent_cpus is not None,
        "windows": windows,
        "median_seconds": wall,
        "spread_seconds": {m: [min(w["seconds"] for w in windows if w["mode"] == m),
                               max(w["seconds"] for w in windows if w["mode"] == m)] for m in MODES},
        "ms_per_command": {m: wall[m] / commands * 1e3 for m in MODES},
        "overhead_on": wall["on"] / wall["off"] - 1,
        "overhead_exec_only": wall["exec_only"] / wall["off"] - 1,
        "agent_cpu_ms_per_command": {m: cpu[m] / commands * 1e3 for m in MODES},
        "zero_loss": all(w["zero_loss"] for w in on),
        "contaminated": any(w["foreign_probes"] for w in windows),
        "events_per_s_on": median("on", "events_per_s"),
        "llmtap_cpu_ms_per_command": {m: median(m, "llmtap_cpu_ms_per_command") for m in ("exec_only", "on")},
        # The probes' own time in the kernel (exec, exit, fork; measured by the kernel), against a command.
        "probe_us_per_command": {m: median(m, "probe_us_per_command") for m in ("exec_only", "on")},
        "probe_share_of_command": {m: median(m, "probe_us_per_command") / 1e3 / (wall["off"] / commands * 1e3)
                                   for m in ("exec_only", "on")},
    }


def capacity(rig: Rig, seconds: float, steps: list[int]) -> dict:
    # Unpinned: the agents need every CPU to offer llmtap more than it can take.
    llmtap = Llmtap(rig.workdir, "capacity", processes=True)
    results = []
    try:
        for parallel in steps:
            before, cpu0, t0 = llmtap.metrics(), llmtap.cpu_seconds(), time.monotonic()
            procs = [rig.start("_spawner", {"seconds": seconds, "cpus": None}) for _ in range(parallel)]
            done = [rig.finish(p) for p in procs]
            wall = time.monotonic() - t0
            commands = {d["pid"]: d["commands"] for d in done}
            drain = llmtap.wait_spans(commands, timeout=120)
            time.sleep(1.2)
            after = llmtap.metrics()
            events = sum(_delta(after, before, f"llmtap_receiver_ebpf_process_events_total[{k}]")
                         for k in ("exec", "fork", "exit"))
            spans = sum(llmtap.spans_by_agent.get(pid, 0) for pid in commands)
            step = {"parallel": parallel, "commands": sum(commands.values()),
                    "commands_per_s": sum(commands.values()) / seconds, "events": events,
                    "events_per_s": events / seconds,
                    "events_lost": _delta(after, before, "llmtap_receiver_ebpf_process_events_lost_total"),
                    "spans": spans, "drain_s": drain,
                    "llmtap_cpu_percent": 100 * (llmtap.cpu_seconds() - cpu0) / wall}
            step["zero_loss"] = step["events_lost"] == 0 and spans == step["commands"] and drain is not None
            results.append(step)
            log(f"  {parallel} agents: {step['events_per_s']:.0f} events/s, lost {step['events_lost']:.0f}, "
                f"spans {spans}/{step['commands']}, last span after {drain if drain is None else round(drain, 2)} s, "
                f"llmtap CPU {step['llmtap_cpu_percent']:.0f}%")
    finally:
        llmtap.stop()
    lossless = [s for s in results if s["zero_loss"]]
    return {"steps": results, "max_events_per_s_zero_loss": max((s["events_per_s"] for s in lossless), default=0.0)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=2000, help="commands per agent run (overhead)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the three modes (overhead)")
    parser.add_argument("--runs", type=int, default=3, help="agent runs per llmtap window (overhead)")
    parser.add_argument("--no-pin", action="store_true", help="let agents and llmtap share every CPU")
    parser.add_argument("--capacity-seconds", type=float, default=3.0, help="seconds per capacity step")
    parser.add_argument("--capacity-steps", default="1,2,4,8", help="parallel agents per capacity step")
    parser.add_argument("--skip", action="append", default=[], choices=["overhead", "capacity"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (the ebpf receiver does)")
    result: dict = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                                "load_average": os.getloadavg()}}
    with open(BPF_STATS) as f:
        stats_were = f.read().strip()
    with open(BPF_STATS, "w") as f:  # the kernel times every BPF program run (~20 ns each) while on
        f.write("1")
    with tempfile.TemporaryDirectory(prefix="llmtap-bench-exec-") as tmp:
        rig = Rig(Path(tmp), pin=not args.no_pin)
        try:
            if "overhead" not in args.skip:
                log(f"overhead: {args.commands} × {COMMAND}, {args.rounds} rounds of {', '.join(MODES)}")
                o = result["overhead"] = overhead(rig, args.commands, args.rounds, args.runs)
                log(f"  median: off {o['median_seconds']['off']:.3f} s, exec_only "
                    f"{o['median_seconds']['exec_only']:.3f} s ({o['overhead_exec_only']:+.1%}), on "
                    f"{o['median_seconds']['on']:.3f} s ({o['overhead_on']:+.1%}); zero loss: {o['zero_loss']}; "
                    f"{o['events_per_s_on']:.0f} events/s; llmtap CPU per command "
                    f"{o['llmtap_cpu_ms_per_command']['exec_only']:.2f} ms (exec_only), "
                    f"{o['llmtap_cpu_ms_per_command']['on']:.2f} ms (on); probes in the kernel "
                    f"{o['probe_us_per_command']['on']:.1f} µs per command "
                    f"({o['probe_share_of_command']['on']:.2%} of one)")
            if "capacity" not in args.skip:
                log(f"capacity: agents spawning {COMMAND} in a loop, {args.capacity_seconds} s per step")
                steps = [int(s) for s in args.capacity_steps.split(",")]
                result["capacity"] = capacity(rig, args.capacity_seconds, steps)
                log(f"  highest rate with zero loss: {result['capacity']['max_events_per_s_zero_loss']:.0f} events/s")
        finally:
            rig.stop()
            with open(BPF_STATS, "w") as f:
                f.write(stats_were)
    result["machine"]["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("_agent", "_spawner"):
        spec = json.loads(sys.argv[2])
        out = agent_main(spec) if sys.argv[1] == "_agent" else spawner_main(spec)
        print(json.dumps(out), flush=True)
    else:
        main()
