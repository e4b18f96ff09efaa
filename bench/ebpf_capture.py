"""eBPF TLS capture benchmark: what the `ebpf` receiver costs the process it traces,
how much it captures without loss, and how long it takes to attach.

Measures, in one run, each figure next to a baseline taken in the same run (the
machine is a noisy shared VM, so only ratios carry over):

  overhead   real TLS client processes streaming chat completions from the local
             test server (tests/llm_server.py), with capture ON (`llmtap run` with
             the ebpf receiver) and OFF (no llmtap, so no probe in the kernel).
             ON and OFF windows alternate (OFF ON ON OFF ...) so that drift hits
             both alike. Per workload: throughput (requests/s), p50/p99 request
             latency (request sent → last SSE byte read) and the client's CPU per
             request (user + system: a uprobe's trap is system time of the traced
             process), each as ON / OFF. One more workload runs in ON windows only:
             the sequential client under a name llmtap is not told to capture (a
             "bystander": probes fire, nothing is parsed), which splits the cost
             into the probes' part and the rest (capture, parsing, CPU contention).
  ssl_call   the same, reduced to one SSL call: SSL_write+SSL_read over memory
             BIOs in one process, on a connection the receiver captures and on one
             it has ruled out (only the kernel counts its bytes). µs added per call.
  probe_sites  why a call costs that much: a no-op uprobe + uretprobe pair on
             SSL_read_ex/SSL_write_ex's entry, against the same pair on the internal
             function each of them calls first, in a private copy of libssl, with
             no llmtap running (see _internal_call_targets).
  capacity   offered load ramps up (1, 2, 4 client processes) in two series:
             realistic SSE streams, and 1 MiB GETs (raw bytes). For each step:
             exchanges/s and captured body MB/s with capture ON, lost bytes, whether
             every exchange became a span and how long the last ones took to arrive,
             llmtap's CPU, the machine's busy cores; and the same step with capture
             OFF (what the same clients reach without it). One llmtap per series;
             the OFF/ON order alternates between series. The result is the highest
             step with zero loss that llmtap kept up with, against the series' best
             OFF rate.
  startup    `llmtap run` start → the "eBPF TLS capture attached" log line (and the
             receiver's own `seconds`: compile, load, attach), against `llmtap run`
             without the ebpf receiver → "everything is ready", and against a bare
             `python -c pass`, started alternately in the same run.

The test server runs on a private copy of libssl (another inode, named so llmtap
does not pick it up): the probes then fire only in the clients, as they would when
the LLM API is remote. Clients run as `llmtap-bench-client` (a symlink to the
interpreter) and llmtap is configured with `include: {executables: [that]}`, so
TLS traffic of anything else on the machine is ruled out at its first bytes and
never counted here. llmtap exports to a file (OTLP protobuf, rotated) through the
batch processor.

Uprobes are per file: another process holding probes on the system libssl (a test
run next door) taxes OFF windows too. Every window records foreign probe holders;
OFF windows wait (up to --wait-clean s) for them to go, and a result measured with
them present is flagged `contaminated`.

Needs root and bcc (as the ebpf receiver does). Usage:

    .venv/bin/python bench/ebpf_capture.py [--rounds 3] [--seconds 3] [--capacity-seconds 2.5]
                                           [--skip overhead|probe-sites|capacity]

(about 3 minutes; more --rounds narrow the overhead ratios on a noisy machine).

Prints one JSON object on stdout, a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIENT_NAME = "llmtap-bench-client"        # included by llmtap's config: its traffic is captured
BYSTANDER_NAME = "llmtap-bench-bystander"  # not included: probes fire, the receiver rules it out at once
CHAT_PATH = "/v1/chat/completions"
ATTACHED_LINE = "eBPF TLS capture attached"
READY_LINE = "everything is ready"
BPF_PROG_KPROBE = 2   # prog_type of uprobe/kprobe programs in /proc/<pid>/fdinfo


# =============================================================================
# The traffic source: this file run as `ebpf_capture.py _client SPEC` under the
# name llmtap-bench-client. Stdlib + httpx only, so that it starts fast.

def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _chat_body(i: int) -> bytes:
    """A chat request of realistic shape (~330 bytes), unique per request."""
    return json.dumps({
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "You are a terse assistant for an eBPF benchmark."},
                     {"role": "user", "content": f"Explain uprobes in one paragraph. Request {os.getpid()}-{i}."}],
    }).encode()


class _Window:
    """Requests completed and CPU used between `open` and `close` (the warm-up is left out)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.sent = self.received = 0
        self.total = 0            # every request, warm-up included: each one is a span with capture on
        self.errors = 0
        self.measuring = False

    def open(self) -> None:
        self.measuring = True
        self.t0, self.cpu0 = time.monotonic(), _cpu()

    def close(self) -> None:
        self.t1, self.cpu1 = time.monotonic(), _cpu()
        self.measuring = False

    def record(self, seconds: float, sent: int, received: int, ok: bool) -> None:
        self.total += 1
        self.errors += not ok
        if self.measuring:
            self.latencies.append(seconds)
            self.sent += sent
            self.received += received

    def result(self) -> dict:
        elapsed = self.t1 - self.t0
        return {"requests": len(self.latencies), "total_requests": self.total, "errors": self.errors,
                "elapsed_s": elapsed, "latencies_ms": [round(s * 1e3, 4) for s in self.latencies],
                "sent_bytes": self.sent, "received_bytes": self.received,
                "cpu_user_s": self.cpu1[0] - self.cpu0[0], "cpu_sys_s": self.cpu1[1] - self.cpu0[1]}


def _knob_headers(spec: dict) -> dict[str, str]:
    headers = {"authorization": "Bearer sk-bench-not-a-secret", "content-type": "application/json"}
    if spec.get("response_bytes"):
        headers["x-test-response-bytes"] = str(spec["response_bytes"])
    if spec.get("event_delay_ms"):
        headers["x-test-event-delay-ms"] = str(spec["event_delay_ms"])
    if spec.get("pieces"):
        headers["x-test-pieces"] = spec["pieces"]
    return headers


def _client_sequential(spec: dict) -> dict:
    """One HTTP/1.1 keep-alive connection, one streamed chat completion after another
    (httpx.Client: CPython's ssl on a socket, SSL_read_ex per socket read)."""
    import httpx
    headers, window = _knob_headers(spec), _Window()
    with httpx.Client(base_url=spec["base_url"], verify=ssl.create_default_context(cafile=spec["ca"]),
                      http2=False, timeout=60, limits=httpx.Limits(max_connections=1)) as client:
        start = time.monotonic()
        opens, closes = start + spec["warmup_s"], start + spec["warmup_s"] + spec["seconds"]
        i = 0
        while True:
            now = time.monotonic()
            if now >= closes:
                break
            if now >= opens and not window.measuring:
                window.open()
            body, received, ok = (b"" if spec.get("get_path") else _chat_body(i)), 0, True
            t = time.perf_counter()
            try:
                with client.stream("GET" if spec.get("get_path") else "POST", spec.get("get_path") or CHAT_PATH,
                                   content=body or None, headers=headers) as response:
                    for part in response.iter_raw():
                        received += len(part)
                    ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            window.record(time.perf_counter() - t, len(body), received, ok)
            i += 1
        window.close()
    return window.result()


def _client_concurrent(spec: dict) -> dict:
    """`streams` chat completions at a time on ONE HTTP/2 connection (httpx.AsyncClient:
    asyncio's memory-BIO SSL, the SSL object has no fd)."""
    import asyncio

    import httpx
    headers, window = _knob_headers(spec), _Window()

    async def main() -> None:
        async with httpx.AsyncClient(base_url=spec["base_url"], http2=True, timeout=60,
                                     verify=ssl.create_default_context(cafile=spec["ca"])) as client:
            start = time.monotonic()
            closes = start + spec["warmup_s"] + spec["seconds"]

            async def worker(k: int) -> None:
                i = k
                while time.monotonic() < closes:
                    body, received, ok = _chat_body(i), 0, True
                    t = time.perf_counter()
                    try:
                        async with client.stream("POST", CHAT_PATH, content=body, headers=headers) as response:
                            async for part in response.aiter_raw():
                                received += len(part)
                            ok = response.status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    # A request counts in the window only if it ends before the window closes.
                    if time.monotonic() <= closes:
                        window.record(time.perf_counter() - t, len(body), received, ok)
                    else:
                        window.total += 1
                    i += spec["streams"]

            async def timer() -> None:
                await asyncio.sleep(spec["warmup_s"])
                window.open()
                await asyncio.sleep(max(0.0, closes - time.monotonic()))
                window.close()

            await asyncio.gather(timer(), *(worker(k) for k in range(spec["streams"])))

    asyncio.run(main())
    return window.result()


def _memory_bio_pair(ca: str, cert: str, key: str):
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context(cafile=ca).wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return client, server, c_out, s_in


def _client_ssl_calls(spec: dict) -> dict:
    """µs per iteration of client SSL_write + server SSL_read, in one process, over memory BIOs
    (no syscalls: what the probes add is all there is besides the crypto).
    `captured`: the client's first bytes open an HTTP/1.1 request to an LLM path with a huge
    Content-Length, so every later write is body the receiver copies and parses; the reading
    side is ruled out as a TLS server after its first read. `ruled_out`: both sides' first
    bytes are not HTTP, so the kernel drops the connection's later bytes, counting them."""
    chunk, n = b"x" * spec["chunk_bytes"], spec["iterations"]
    out = {}
    for name, first in (("captured", b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                                      b"Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"),
                        ("ruled_out", b"\x00\x01 not http\r\n\r\n")):
        client, server, c_out, s_in = _memory_bio_pair(spec["ca"], spec["cert"], spec["key"])
        client.write(first)
        s_in.write(c_out.read())
        server.read(65536)
        for _ in range(200):         # warm up (and let the receiver rule the connection out)
            client.write(chunk)
            s_in.write(c_out.read())
            server.read(65536)
        time.sleep(0.2)
        cpu0, t0 = _cpu(), time.perf_counter()
        for _ in range(n):
            client.write(chunk)
            s_in.write(c_out.read())
            server.read(65536)
        t1, cpu1 = time.perf_counter(), _cpu()
        out[name] = {"us_per_iteration": (t1 - t0) / n * 1e6, "user_us": (cpu1[0] - cpu0[0]) / n * 1e6,
                     "sys_us": (cpu1[1] - cpu0[1]) / n * 1e6}
    return out


def client_main(spec: dict) -> None:
    run = {"sequential": _client_sequential, "concurrent": _client_concurrent,
           "ssl_calls": _client_ssl_calls}[spec["mode"]]
    print(json.dumps({"pid": os.getpid(), **run(spec)}), flush=True)


# =============================================================================
# The orchestrator

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def foreign_probe_holders(mine: set[int]) -> dict[int, str]:
    """Processes other than ours holding uprobe/kprobe BPF programs: {pid: command line}."""
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
                    if f"prog_type:\t{BPF_PROG_KPROBE}\n" not in f.read():
                        continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    found[int(name)] = f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
                break
            except OSError:
                continue
    return found


@dataclass
class Rig:
    """What every phase shares: the work dir, the test PKI, the server, the client launcher."""
    workdir: Path
    ring_buffer_size: str
    ca: str = ""
    cert: str = ""
    key: str = ""
    server: subprocess.Popen | None = None
    port: int = 0
    client_env: dict = field(default_factory=dict)
    llmtap_pids: set[int] = field(default_factory=set)

    def start(self) -> None:
        sys.path.insert(0, str(REPO / "tests"))
        from llm_server import make_test_pki
        self.ca, self.cert, self.key = make_test_pki(self.workdir / "pki")
        # The server's private libssl: the loader finds "libssl.so.3" here first; /proc/<pid>/maps then
        # names the target, whose name has no "ssl" in it, so llmtap neither attaches to it nor probes it.
        peer = self.workdir / "peer"
        peer.mkdir()
        system_libssl = self.system_libssl()
        (peer / "libpeertls.so.3").write_bytes(Path(system_libssl).read_bytes())
        (peer / "libssl.so.3").symlink_to("libpeertls.so.3")
        env = {**os.environ, "LD_LIBRARY_PATH": str(peer)}
        self.server = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "llm_server.py"), "--port", "0", "--log", os.devnull,
             "--cert", self.cert, "--key", self.key],
            stdout=subprocess.PIPE, stderr=open(self.workdir / "server.stderr", "wb"), stdin=subprocess.DEVNULL,
            env=env)
        line = self.server.stdout.readline()
        if not line:
            raise RuntimeError(f"llm_server did not start: {(self.workdir / 'server.stderr').read_text()}")
        self.port = json.loads(line)["port"]
        maps = Path(f"/proc/{self.server.pid}/maps").read_text()
        if system_libssl in maps or "libpeertls" not in maps:
            raise RuntimeError("the test server is not on its private libssl")
        # Clients: the interpreter under a name of their own, with this venv's packages (httpx).
        for name in (CLIENT_NAME, BYSTANDER_NAME):
            (self.workdir / name).symlink_to(os.path.realpath(sys.executable))
        import site
        self.client_env = {**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
                           "PYTHONPATH": os.pathsep.join(site.getsitepackages()), "NO_PROXY": "*"}

    @staticmethod
    def system_libssl() -> str:
        import _ssl
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "libssl.so" in path:
                    return os.path.realpath(path)
        raise RuntimeError(f"no libssl mapped by this interpreter ({_ssl.__file__})")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(10)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    def start_client(self, spec: dict) -> subprocess.Popen:
        """A client process, named CLIENT_NAME (captured) or, with spec["bystander"], BYSTANDER_NAME."""
        exe = self.workdir / (BYSTANDER_NAME if spec.get("bystander") else CLIENT_NAME)
        spec = {"base_url": self.base_url, "ca": self.ca, "cert": self.cert, "key": self.key, **spec}
        return subprocess.Popen([str(exe), str(Path(__file__).resolve()), "_client", json.dumps(spec)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=self.client_env)

    @staticmethod
    def finish_client(proc: subprocess.Popen, timeout: float = 120) -> dict:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"bench client exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
        return json.loads(out.decode().strip().splitlines()[-1])

    def foreign_probes(self) -> dict[int, str]:
        return foreign_probe_holders(self.llmtap_pids | {os.getpid()})

    def wait_clean(self, limit_s: float) -> dict[int, str]:
        """Wait up to limit_s for other processes' probes to go; return those still there."""
        deadline = time.monotonic() + limit_s
        while (holders := self.foreign_probes()) and time.monotonic() < deadline:
            time.sleep(1.0)
        return holders


# --- llmtap --------------------------------------------------------------------

EBPF_CONFIG = """
receivers:
  ebpf:
    extra_endpoints: [{{host: localhost, path: "/v1/*"}}, {{host: localhost, path: "/static/*"}}]
    include: {{executables: ["{client}"]}}
    ring_buffer_size: {ring}
processors:
  batch: {{}}
exporters:
  file:
    path: "{out}"
    format: proto
    rotation: {{max_megabytes: 256, max_backups: 1}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics_port}"}}, logs: {{level: info}}}}
  pipelines:
    traces: {{receivers: [ebpf], processors: [batch], exporters: [file]}}
"""

# The startup baseline: the same service, an OTLP receiver in place of the ebpf one.
PLAIN_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc_port}"}}
processors:
  batch: {{}}
exporters:
  file:
    path: "{out}"
    format: proto
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics_port}"}}, logs: {{level: info}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [file]}}
"""


class Llmtap:
    """One `llmtap run` process; its stderr lines are timed as they arrive."""

    def __init__(self, rig: Rig, ebpf: bool, name: str):
        self.rig, self.metrics_port = rig, free_port()
        config = rig.workdir / f"{name}.yaml"
        text = EBPF_CONFIG if ebpf else PLAIN_CONFIG
        config.write_text(text.format(client=CLIENT_NAME, ring=rig.ring_buffer_size, out=rig.workdir / f"{name}.otlp",
                                      metrics_port=self.metrics_port, grpc_port=free_port()))
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self.began = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "llmtap.cli", "run", "--config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     cwd=REPO)
        rig.llmtap_pids.add(self.proc.pid)
        threading.Thread(target=self._read, daemon=True).start()
        import psutil
        self.ps = psutil.Process(self.proc.pid)

    def _read(self) -> None:
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append((time.monotonic() - self.began, raw.decode(errors="replace").rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 60.0) -> tuple[float, str]:
        """(seconds since the process was started, the line) of the first log line containing text."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, line in self.lines:
                    if text in line:
                        return at, line
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(line for _, line in self.lines[-20:])
                    raise RuntimeError(f"llmtap never logged {text!r}:\n{tail}")
                self._cond.wait(0.1)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def metrics(self) -> dict[str, float]:
        """Self-metrics, summed over label sets, by sample name; a few keyed by one label."""
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
                if "reason" in s.labels:
                    key = f"{s.name}[{s.labels['reason']}]"
                    out[key] = out.get(key, 0.0) + s.value
        return out

    def warnings(self) -> list[str]:
        return [line for _, line in self.lines if "\twarn\t" in line or "\terror\t" in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.rig.llmtap_pids.discard(self.proc.pid)


SPANS = "llmtap_receiver_accepted_spans_total"
LOST = "llmtap_receiver_ebpf_lost_bytes_total"
LOST_EVENTS = "llmtap_receiver_ebpf_lost_events_total"
DROPPED = "llmtap_receiver_ebpf_dropped_exchanges_total"


# --- one workload, once --------------------------------------------------------

def run_workload(rig: Rig, spec: dict, processes: int = 1, llmtap: Llmtap | None = None,
                 settle_limit_s: float = 5.0) -> dict:
    """Run `processes` clients of `spec` at once. With llmtap: also its CPU, lost bytes,
    and the spans of these clients' requests, waited for after the clients end."""
    import psutil
    server = psutil.Process(rig.server.pid)
    srv0 = sum(server.cpu_times()[:2])
    machine0 = psutil.cpu_times()
    before = llmtap.metrics() if llmtap else {}
    cpu0 = llmtap.cpu_seconds() if llmtap else 0.0
    t0 = time.monotonic()
    procs = [rig.start_client(spec) for _ in range(processes)]
    results = [rig.finish_client(p) for p in procs]
    t1 = time.monotonic()
    machine1 = psutil.cpu_times()
    idle = lambda t: t.idle + getattr(t, "iowait", 0.0)  # noqa: E731
    busy = (sum(machine1) - idle(machine1)) - (sum(machine0) - idle(machine0))
    out: dict = {"clients": results, "server_cpu_s": sum(server.cpu_times()[:2]) - srv0,
                 "machine_busy_cores": busy / (t1 - t0)}
    if llmtap is None:
        return out
    cpu1 = llmtap.cpu_seconds()
    expected = 0 if spec.get("bystander") else sum(r.get("total_requests", 0) for r in results)
    # The last spans wait for the poll (50 ms) and the batch timeout (200 ms); more means a backlog.
    while True:
        after = llmtap.metrics()
        spans = after.get(SPANS, 0) - before.get(SPANS, 0)
        if spans >= expected or time.monotonic() - t1 > settle_limit_s:
            break
        time.sleep(0.05)
    drain = time.monotonic() - t1
    out.update({
        "expected_spans": expected, "spans": spans, "drain_s": drain,
        "lost_bytes": after.get(LOST, 0) - before.get(LOST, 0),
        "lost_events": after.get(LOST_EVENTS, 0) - before.get(LOST_EVENTS, 0),
        "dropped_exchanges": after.get(DROPPED, 0) - before.get(DROPPED, 0),
        "llmtap_cpu_s": cpu1 - cpu0, "llmtap_cpu_s_with_drain": llmtap.cpu_seconds() - cpu0,
        "clients_wall_s": t1 - t0, "llmtap_rss_mib": after.get("llmtap_process_memory_rss", 0) / 2**20,
    })
    return out


def summarize_clients(results: list[dict]) -> dict:
    """Clients that ran at the same time: rates summed, latencies pooled."""
    n = sum(r["requests"] for r in results)
    elapsed = statistics.fmean(r["elapsed_s"] for r in results)
    lat = [x for r in results for x in r["latencies_ms"]]
    cpu = sum(r["cpu_user_s"] + r["cpu_sys_s"] for r in results)
    return {"requests": n, "errors": sum(r["errors"] for r in results), "elapsed_s": elapsed,
            "requests_per_s": n / elapsed,
            "body_mb_per_s": sum(r["sent_bytes"] + r["received_bytes"] for r in results) / elapsed / 1e6,
            "p50_ms": percentile(lat, 0.50), "p99_ms": percentile(lat, 0.99),
            "client_cpu_ms_per_request": cpu / max(n, 1) * 1e3,
            "client_sys_ms_per_request": sum(r["cpu_sys_s"] for r in results) / max(n, 1) * 1e3,
            "_latencies": lat}


def pool_windows(windows: list[dict]) -> dict:
    """Several windows of one workload, one after another: requests over their summed time."""
    parts = [summarize_clients(w["clients"]) for w in windows]
    n, elapsed = sum(p["requests"] for p in parts), sum(p["elapsed_s"] for p in parts)
    lat = [x for p in parts for x in p["_latencies"]]
    return {"windows": len(parts), "requests": n, "errors": sum(p["errors"] for p in parts), "elapsed_s": elapsed,
            "requests_per_s": n / elapsed if elapsed else float("nan"),
            "p50_ms": percentile(lat, 0.50), "p99_ms": percentile(lat, 0.99),
            "client_cpu_ms_per_request": sum(p["client_cpu_ms_per_request"] * p["requests"] for p in parts) / max(n, 1),
            "client_sys_ms_per_request": sum(p["client_sys_ms_per_request"] * p["requests"] for p in parts) / max(n, 1)}


def public(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.startswith("_")}


# --- phases --------------------------------------------------------------------

def overhead_workloads(args) -> dict[str, dict]:
    base = {"warmup_s": 0.5, "seconds": args.seconds}
    sequential = {**base, "mode": "sequential"}
    return {
        # Worst case: nothing paces the stream, so client and server are CPU-bound and every
        # µs the probes add shows. ~8 KB streams of 24 SSE events (~300 bytes each): ~29 SSL calls.
        "sequential_h1": sequential,
        # The same client under a name llmtap is not told to capture: the probes still fire in it
        # (they are on the file), its connection is ruled out at its first bytes, llmtap parses nothing.
        # ON windows only; its OFF baseline is sequential_h1's (the same program and traffic).
        "sequential_h1_bystander": {**sequential, "bystander": True},
        "concurrent_h2_x8": {**base, "mode": "concurrent", "streams": 8},
        # Tokens paced as an LLM streams them (one event every 10 ms), 8 streams at a time.
        "paced_h2_x8": {**base, "mode": "concurrent", "streams": 8, "event_delay_ms": args.event_delay_ms},
    }


# Workloads measured with capture ON only, and whose OFF figures they are compared with.
ON_ONLY = {"sequential_h1_bystander": "sequential_h1"}


SSL_CALLS = {"mode": "ssl_calls", "chunk_bytes": 256, "iterations": 20000}


def startup_sample(rig: Rig, name: str) -> dict:
    """One `llmtap run` without the ebpf receiver, and one bare interpreter start."""
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_s = time.monotonic() - t
    plain = Llmtap(rig, ebpf=False, name=name)
    try:
        ready_s, _ = plain.wait_for(READY_LINE)
    finally:
        plain.stop()
    return {"python_s": python_s, "plain_ready_s": ready_s}


def start_capture(rig: Rig, name: str) -> tuple[Llmtap, dict]:
    llmtap = Llmtap(rig, ebpf=True, name=name)
    attached_s, line = llmtap.wait_for(ATTACHED_LINE)
    ready_s, _ = llmtap.wait_for(READY_LINE)
    fields = json.loads(line.split("\t", 4)[4]) if line.count("\t") >= 4 else {}
    return llmtap, {"attached_s": attached_s, "ebpf_ready_s": ready_s, "receiver_seconds": fields.get("seconds"),
                    "attached_files": fields.get("files")}


def phase_overhead(rig: Rig, args, startup: list[dict]) -> dict:
    workloads = overhead_workloads(args)
    runs: dict[str, dict[str, list]] = {w: {"on": [], "off": []} for w in workloads}
    ssl_runs: dict[str, list] = {"on": [], "off": []}
    windows = []
    # OFF ON ON OFF OFF ON ...: each pair's order alternates, so a drift favours neither side.
    order = [m for k in range(args.rounds) for m in (("off", "on") if k % 2 == 0 else ("on", "off"))]
    for i, mode in enumerate(order):
        window: dict = {"index": i, "mode": mode}
        llmtap = None
        if mode == "on":
            sample = startup_sample(rig, f"plain{i}")
            llmtap, started = start_capture(rig, f"capture{i}")
            startup.append({**sample, **started})
        else:
            window["waited_for_foreign_probes"] = rig.wait_clean(args.wait_clean)
        window["foreign_probes_at_start"] = sorted(rig.foreign_probes())
        try:
            for name, spec in workloads.items():
                if mode == "off" and name in ON_ONLY:
                    continue
                result = run_workload(rig, spec, llmtap=llmtap)
                result["window"] = i
                runs[name][mode].append(result)
                rate = summarize_clients(result["clients"])["requests_per_s"]
                log(f"  window {i} {mode:3} {name:24} {rate:8.1f} req/s"
                    + (f"  spans {result['spans']:.0f}/{result['expected_spans']}" if llmtap else ""))
            calls = rig.finish_client(rig.start_client(SSL_CALLS))
            ssl_runs[mode].append(calls)
        finally:
            if llmtap is not None:
                window["llmtap_warnings"] = llmtap.warnings()[-5:]
                llmtap.stop()
        window["foreign_probes_at_end"] = sorted(rig.foreign_probes())
        windows.append(window)

    contaminated = {w["index"] for w in windows
                    if w["foreign_probes_at_start"] or w["foreign_probes_at_end"]}
    out: dict = {"order": order, "windows": windows, "contaminated_windows": sorted(contaminated),
                 "workloads": {}}
    for name, by_mode in runs.items():
        by_mode = {"on": by_mode["on"], "off": runs[ON_ONLY.get(name, name)]["off"]}
        on, off = pool_windows(by_mode["on"]), pool_windows(by_mode["off"])
        per_window = {m: [summarize_clients(r["clients"])["requests_per_s"] for r in by_mode[m]] for m in by_mode}
        pairs = [ratio(a, b) for a, b in zip(per_window["on"], per_window["off"])]
        llmtap_cpu = sum(r["llmtap_cpu_s"] for r in by_mode["on"])
        llmtap_wall = sum(r["clients_wall_s"] for r in by_mode["on"])
        spans = sum(r["spans"] for r in by_mode["on"])
        out["workloads"][name] = {
            "spec": workloads[name],
            "throughput_ratio": ratio(on["requests_per_s"], off["requests_per_s"]),
            "throughput_ratio_per_pair": pairs,
            "p50_ratio": ratio(on["p50_ms"], off["p50_ms"]),
            "p99_ratio": ratio(on["p99_ms"], off["p99_ms"]),
            "client_cpu_per_request_ratio": ratio(on["client_cpu_ms_per_request"], off["client_cpu_ms_per_request"]),
            "on": on, "off": off,
            "server_cpu_ms_per_request": {
                m: sum(r["server_cpu_s"] for r in by_mode[m]) * 1e3 /
                max(1, sum(c["requests"] for r in by_mode[m] for c in r["clients"])) for m in by_mode},
            "llmtap_cpu_cores": ratio(llmtap_cpu, llmtap_wall),
            "llmtap_cpu_ms_per_exchange": ratio(llmtap_cpu * 1e3, spans),
            "spans": spans, "expected_spans": sum(r["expected_spans"] for r in by_mode["on"]),
            "lost_bytes": sum(r["lost_bytes"] for r in by_mode["on"]),
            "drain_s_max": max((r["drain_s"] for r in by_mode["on"]), default=float("nan")),
            "machine_busy_cores": {m: statistics.fmean(r["machine_busy_cores"] for r in by_mode[m]) for m in by_mode},
        }
    on_calls, off_calls = ssl_runs["on"], ssl_runs["off"]
    mean = lambda rs, k, f: statistics.fmean(r[k][f] for r in rs)  # noqa: E731
    cap_on, cap_off = mean(on_calls, "captured", "us_per_iteration"), mean(off_calls, "captured", "us_per_iteration")
    ign_on, ign_off = mean(on_calls, "ruled_out", "us_per_iteration"), mean(off_calls, "ruled_out", "us_per_iteration")
    # An iteration is 2 calls: a captured one is one captured write + one ruled-out read.
    per_ruled_out = (ign_on - ign_off) / 2
    out["ssl_call"] = {
        "runs": ssl_runs, "chunk_bytes": SSL_CALLS["chunk_bytes"],
        "iteration_us": {"captured": {"on": cap_on, "off": cap_off}, "ruled_out": {"on": ign_on, "off": ign_off}},
        "iteration_ratio": {"captured": ratio(cap_on, cap_off), "ruled_out": ratio(ign_on, ign_off)},
        "added_us_per_ruled_out_call": per_ruled_out,
        "added_us_per_captured_call": (cap_on - cap_off) - per_ruled_out,
    }
    return out


def capacity_steps(args) -> list[tuple[str, dict, int]]:
    base = {"mode": "sequential", "warmup_s": 0.5, "seconds": args.capacity_seconds}
    steps = []
    # Realistic streams (24 SSE events of ~300 bytes), more and more clients at once.
    for processes in (1, 2, 4):
        steps.append((f"sse_x{processes}", base, processes))
    # Raw bytes: GETs of a MiB blob (written in 64 KiB pieces, read in 16 KiB TLS records),
    # captured because the config lists /static/* as an endpoint. Cheap for the server, so the
    # clients and llmtap get the CPU.
    blob = {**base, "get_path": f"/static/blob?bytes={args.blob_bytes}"}
    for processes in (1, 2, 4):
        steps.append((f"blob_x{processes}", blob, processes))
    return steps


def phase_capacity(rig: Rig, args, startup: list[dict]) -> dict:
    """Each series' steps with capture OFF and with it ON (one llmtap for the series), the order
    alternating from series to series; the ON ramp stops at its first step with loss or a backlog."""
    steps = capacity_steps(args)
    startup.append(startup_sample(rig, "plain_capacity"))
    on: dict[str, dict] = {}
    off: dict[str, dict] = {}
    failed: set[str] = set()
    warnings: list[str] = []
    contaminated: list[str] = []
    for k, series in enumerate(dict.fromkeys(name.split("_")[0] for name, _, _ in steps)):
        mine = [step for step in steps if step[0].startswith(series + "_")]
        for mode in (("off", "on") if k % 2 == 0 else ("on", "off")):
            if mode == "off":
                if rig.wait_clean(args.wait_clean):
                    contaminated.append(series)
                for name, spec, processes in mine:
                    result = run_workload(rig, spec, processes)
                    off[name] = {**public(summarize_clients(result["clients"])), "server_cpu_s": result["server_cpu_s"],
                                 "machine_busy_cores": result["machine_busy_cores"]}
                continue
            llmtap, started = start_capture(rig, f"capacity_{series}")
            startup.append(started)
            try:
                for name, spec, processes in mine:
                    result = run_workload(rig, spec, processes, llmtap)
                    a = on[name] = {**public(summarize_clients(result["clients"])),
                                    **{key: v for key, v in result.items() if key != "clients"},
                                    "llmtap_cpu_cores": result["llmtap_cpu_s"] / result["clients_wall_s"]}
                    a["zero_loss_and_kept_up"] = (a["lost_bytes"] == 0 and a["lost_events"] == 0
                                                  and a["spans"] >= a["expected_spans"]
                                                  and a["drain_s"] <= args.max_drain_s)
                    if not a["zero_loss_and_kept_up"]:
                        failed.add(series)
                        break
            finally:
                warnings += llmtap.warnings()[-3:]
                llmtap.stop()
        for name, _, _ in mine:
            if name in on:
                a, b = on[name], off[name]
                log(f"  capacity {name:8} ON {a['requests_per_s']:6.1f} exch/s {a['body_mb_per_s']:6.2f} MB/s | OFF "
                    f"{b['requests_per_s']:6.1f} exch/s {b['body_mb_per_s']:6.2f} MB/s | llmtap "
                    f"{a['llmtap_cpu_cores']:.2f} cores, machine {a['machine_busy_cores']:.2f} cores busy | lost "
                    f"{a['lost_bytes']:.0f} B, spans {a['spans']:.0f}/{a['expected_spans']}, drain {a['drain_s']:.2f} s")
    best: dict[str, dict] = {}
    for series in ("sse", "blob"):
        ok = [n for n in on if n.startswith(series + "_") and on[n]["zero_loss_and_kept_up"]]
        if not ok:
            continue
        # The series' best with capture ON (zero loss) against its best OFF: one noisy step decides less.
        top = max(ok, key=lambda n: on[n]["body_mb_per_s"])
        top_off = max((n for n in off if n.startswith(series + "_")), key=lambda n: off[n]["body_mb_per_s"])
        a, b = on[top], off[top_off]
        best[series] = {"step": top, "exchanges_per_s": a["requests_per_s"], "body_mb_per_s": a["body_mb_per_s"],
                        "llmtap_cpu_cores": a["llmtap_cpu_cores"], "machine_busy_cores": a["machine_busy_cores"],
                        "llmtap_cpu_ms_per_exchange": ratio(a["llmtap_cpu_s"] * 1e3, a["spans"]),
                        "off_step": top_off, "off_exchanges_per_s": b["requests_per_s"],
                        "off_body_mb_per_s": b["body_mb_per_s"],
                        "ratio_to_off": ratio(a["body_mb_per_s"], b["body_mb_per_s"]),
                        "loss_seen": series in failed}
    return {"steps": [{"name": n, "processes": p, "spec": sp} for n, sp, p in steps], "on": on, "off": off,
            "best": best, "llmtap_warnings": warnings, "contaminated_series": contaminated}


# Where a uprobe sits matters: x86-64 kernels emulate a few instructions at a probe site (push,
# call, jmp, nop) and single-step every other one out of line, which costs two more traps. OpenSSL 3's
# SSL_read_ex/SSL_write_ex begin with `sub $8,%rsp` (single-stepped) and call straight into
# ssl_read_internal/ssl_write_internal, which take the same arguments and begin with `push` (emulated).
_WRAPPER_PROLOGUE = bytes.fromhex("4883ec")   # sub $imm8,%rsp, then (byte 4) call rel32
_NOOP_PROBES = """
#include <uapi/linux/ptrace.h>
BPF_HASH(calls, u64, u64, 1024);
int enter(struct pt_regs *ctx) { u64 id = bpf_get_current_pid_tgid(); u64 buf = PT_REGS_PARM2(ctx);
                                 calls.update(&id, &buf); return 0; }
int leave(struct pt_regs *ctx) { u64 id = bpf_get_current_pid_tgid(); calls.delete(&id); return 0; }
"""


def _internal_call_targets(path: str) -> dict[str, dict]:
    """For SSL_read_ex/SSL_write_ex: their first bytes and, when they are `sub rsp; call X`, X and its first bytes."""
    from elftools.elf.elffile import ELFFile
    out = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        segments = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]

        def read(vaddr: int, n: int) -> bytes:
            seg = next(s for s in segments if s["p_vaddr"] <= vaddr < s["p_vaddr"] + s["p_filesz"])
            f.seek(vaddr - seg["p_vaddr"] + seg["p_offset"])
            return f.read(n)

        dynsym = elf.get_section_by_name(".dynsym")
        for name in ("SSL_read_ex", "SSL_write_ex"):
            symbols = dynsym.get_symbol_by_name(name) or []
            if not symbols:
                continue
            addr = symbols[0]["st_value"]
            head = read(addr, 9)
            entry = {"address": addr, "first_bytes": head[:4].hex()}
            if head.startswith(_WRAPPER_PROLOGUE) and head[4] == 0xE8:
                target = addr + 9 + int.from_bytes(head[5:9], "little", signed=True)
                entry.update(internal=target, internal_first_bytes=read(target, 2).hex())
            out[name] = entry
    return out


def phase_probe_sites(rig: Rig, rounds: int = 3) -> dict:
    """µs a no-op uprobe + uretprobe pair adds to one SSL call, on the exported function's entry and
    on the internal function it calls, in a private copy of libssl nobody else maps."""
    from llmtap.receiver.ebpf.probes import import_bcc
    bcc = import_bcc()
    lib_dir = rig.workdir / "probe-sites"
    lib_dir.mkdir()
    lib = lib_dir / "libsitetls.so.3"
    lib.write_bytes(Path(rig.system_libssl()).read_bytes())
    (lib_dir / "libssl.so.3").symlink_to(lib.name)
    sites = _internal_call_targets(str(lib))
    if not all("internal" in s for s in sites.values()) or len(sites) < 2:
        return {"skipped": "SSL_read_ex/SSL_write_ex are not `sub rsp; call` wrappers in this libssl", "sites": sites}
    env = {**rig.client_env, "LD_LIBRARY_PATH": str(lib_dir)}
    spec = {**SSL_CALLS, "ca": rig.ca, "cert": rig.cert, "key": rig.key}

    def iteration_us() -> float:
        proc = subprocess.run([str(rig.workdir / BYSTANDER_NAME), str(Path(__file__).resolve()), "_client",
                               json.dumps(spec)], env=env, capture_output=True, check=True)
        r = json.loads(proc.stdout)
        return statistics.fmean(r[k]["us_per_iteration"] for k in ("captured", "ruled_out"))

    runs: dict[str, list[float]] = {"none": [], "exported_entry": [], "internal_entry": []}
    b = bcc.BPF(text=_NOOP_PROBES)
    try:
        for k in range(rounds):
            for variant in (runs if k % 2 == 0 else list(runs)[::-1]):
                if variant == "none":
                    runs[variant].append(iteration_us())
                    continue
                wheres = [{"sym": name.encode()} if variant == "exported_entry" else {"addr": site["internal"]}
                          for name, site in sites.items()]
                for where in wheres:
                    b.attach_uprobe(name=str(lib).encode(), fn_name=b"enter", **where)
                    b.attach_uretprobe(name=str(lib).encode(), fn_name=b"leave", **where)
                try:
                    runs[variant].append(iteration_us())
                finally:
                    for where in wheres:
                        b.detach_uprobe(name=str(lib).encode(), **where)
                        b.detach_uretprobe(name=str(lib).encode(), **where)
    finally:
        b.cleanup()
    none = statistics.median(runs["none"])
    # An iteration is two probed calls (a write and a read).
    added = {v: (statistics.median(r) - none) / 2 for v, r in runs.items() if v != "none"}
    return {"sites": {n: {k: (hex(v) if isinstance(v, int) else v) for k, v in s.items()} for n, s in sites.items()},
            "iteration_us": runs, "added_us_per_call": added,
            "exported_to_internal_ratio": ratio(added["exported_entry"], added["internal_entry"])}


def summarize_startup(samples: list[dict]) -> dict:
    def stats(key: str) -> dict:
        values = [s[key] for s in samples if s.get(key) is not None]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else {}
    attached, plain = stats("attached_s"), stats("plain_ready_s")
    return {"samples": samples, "attached_s": attached, "receiver_seconds": stats("receiver_seconds"),
            "ebpf_ready_s": stats("ebpf_ready_s"), "plain_ready_s": plain, "python_s": stats("python_s"),
            "attached_to_plain_ready_ratio": ratio(attached.get("median", 0), plain.get("median", 0)),
            "attached_minus_plain_ready_s": attached.get("median", 0) - plain.get("median", 0)}


def finite(obj):
    """NaN (a ratio without a baseline) as null, so that the output is strict JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def human_summary(result: dict) -> None:
    if "overhead" in result:
        overhead_summary(result["overhead"])
    ps = result.get("probe_sites", {})
    if "added_us_per_call" in ps:
        a = ps["added_us_per_call"]
        log(f"== a no-op uprobe+uretprobe per SSL call: {a['exported_entry']:.1f} µs on SSL_*_ex's entry "
            f"(sub rsp: single-stepped), {a['internal_entry']:.1f} µs on the internal function it calls (push: "
            f"emulated) ==")
    if "capacity" in result:
        capacity_summary(result["capacity"])
    st = result["startup"]
    if st["samples"]:
        log(f"== startup (median of {len(st['samples'])}) ==")
        log(f"  llmtap run → probes attached {st['attached_s']['median']:.2f} s (the receiver's own "
            f"{st['receiver_seconds']['median']:.2f} s); without ebpf → ready {st['plain_ready_s']['median']:.2f} s "
            f"(ratio {st['attached_to_plain_ready_ratio']:.2f}); python -c pass {st['python_s']['median']:.3f} s")


def overhead_summary(o: dict) -> None:
    log("\n== overhead on the traced client (ON / OFF; per-pair throughput ratios in brackets) ==")
    for name, w in o["workloads"].items():
        pairs = " ".join(f"{r:.2f}" for r in w["throughput_ratio_per_pair"])
        log(f"  {name:24} throughput {w['throughput_ratio']:.3f} [{pairs}]  p50 {w['p50_ratio']:.2f}"
            f"  p99 {w['p99_ratio']:.2f}  client CPU/req {w['client_cpu_per_request_ratio']:.2f}"
            f"  | OFF {w['off']['requests_per_s']:.0f} req/s, p50 {w['off']['p50_ms']:.2f} ms"
            f"  | llmtap {w['llmtap_cpu_cores']:.2f} cores, spans {w['spans']:.0f}/{w['expected_spans']},"
            f" lost {w['lost_bytes']:.0f} B")
    s = o["ssl_call"]
    log(f"  one SSL call ({s['chunk_bytes']} B): +{s['added_us_per_ruled_out_call']:.1f} µs ruled out, "
        f"+{s['added_us_per_captured_call']:.1f} µs captured (a write+read iteration OFF: "
        f"{s['iteration_us']['ruled_out']['off']:.1f} µs)")
    if o["contaminated_windows"]:
        log(f"  !! other processes held probes during windows {o['contaminated_windows']}: those figures are tainted")


def capacity_summary(c: dict) -> None:
    log("== capacity (highest step with zero loss that llmtap kept up with) ==")
    for series, b in c["best"].items():
        log(f"  {series:5} {b['step']:12} {b['exchanges_per_s']:.0f} exch/s, {b['body_mb_per_s']:.2f} MB/s, llmtap "
            f"{b['llmtap_cpu_cores']:.2f} cores ({b['llmtap_cpu_ms_per_exchange']:.2f} ms/exchange), machine "
            f"{b['machine_busy_cores']:.2f} cores busy | best OFF {b['off_step']}: {b['off_exchanges_per_s']:.0f} "
            f"exch/s, {b['off_body_mb_per_s']:.2f} MB/s | ON/OFF {b['ratio_to_off']:.3f};"
            f" a step lost data: {b['loss_seen']}")
    if c["contaminated_series"]:
        log(f"  !! other processes held probes during the OFF runs of {c['contaminated_series']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="ON/OFF window pairs of the overhead phase")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per overhead workload")
    parser.add_argument("--capacity-seconds", type=float, default=2.5, help="measured seconds per capacity step")
    parser.add_argument("--blob-bytes", type=int, default=1 << 20, help="response size of the blob series")
    parser.add_argument("--event-delay-ms", type=int, default=10, help="SSE event spacing of the paced workload")
    parser.add_argument("--ring-buffer-size", default="64MiB", help="the receiver's ring_buffer_size")
    parser.add_argument("--max-drain-s", type=float, default=1.0,
                        help="a capacity step keeps up if its last span arrives within this after the clients end")
    parser.add_argument("--wait-clean", type=float, default=30.0,
                        help="seconds an OFF window waits for other processes' probes to go away")
    parser.add_argument("--skip", action="append", default=[], choices=["overhead", "probe-sites", "capacity"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("ebpf_capture: needs root (the ebpf receiver's uprobes)")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmtap-bench-ebpf-") as tmp:
        rig = Rig(Path(tmp), args.ring_buffer_size)
        rig.start()
        try:
            result: dict = {"machine": {"nproc": os.cpu_count(), "kernel": os.uname().release,
                                        "python": sys.version.split()[0], "openssl": ssl.OPENSSL_VERSION,
                                        "loadavg_start": os.getloadavg()}}
            startup: list[dict] = []
            if "overhead" not in args.skip:
                log("overhead phase")
                result["overhead"] = phase_overhead(rig, args, startup)
            if "probe-sites" not in args.skip:
                log("probe-site phase")
                result["probe_sites"] = phase_probe_sites(rig)
            if "capacity" not in args.skip:
                log("capacity phase")
                result["capacity"] = phase_capacity(rig, args, startup)
            result["startup"] = summarize_startup(startup)
            result["machine"]["loadavg_end"] = os.getloadavg()
            result["seconds"] = time.monotonic() - began
        finally:
            rig.stop()
    print(json.dumps(finite(result), indent=2, allow_nan=False))
    human_summary(result)
    log(f"took {result['seconds']:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "_client":
        client_main(json.loads(sys.argv[2]))
    else:
        main()
