"""The `ebpf` receiver: every call an agent makes to an LLM API, captured in
plaintext at the TLS library of the client process, without touching the client.

uprobes on OpenSSL's SSL_write/SSL_read (and their _ex forms) copy the bytes into
a kernel ring buffer (bpf/tls_capture.c); one thread here polls it, reassembles
each connection's streams into HTTP/1.1 or HTTP/2 exchanges (tracker.py, http.py)
and hands one CLIENT span per LLM exchange to the pipeline (span.py).

Where probes go: the system libssl, `node` on PATH, anything under `attach`, and
every TLS library mapped by a running process (tlslib.py); a process that execs
later is examined at once and again shortly after (for libraries it maps late).
A Bun single-file executable (Claude Code's `claude`) exports no SSL_* symbols:
its BoringSSL's SSL_write/SSL_read are found by their error sites (boringssl.py,
`static_boringssl`) at its first exec, in a fraction of a second during which
ring-buffer records wait. A file is attached once and then traces every process
that maps it.

Processes (`processes`): the sched tracepoints report every exec (path, argv up
to `max_args_bytes`, parent, uid, cgroup), fork and exit (exit code, signal);
the process table (processes.py) keeps the tree. Every span carries its
process's place in it (process.parent_pid, llmtap.process.start_time_unix_nano)
and its agent root (llmtap.agent.pid / .start_time_unix_nano / .name): the
nearest ancestor-or-self that made a captured LLM request or is named in
`processes.agents`. Each process in an agent's tree becomes an INTERNAL span
`exec {name}` at its exit (span.py lists its attributes); a process that ran
just before its parent's first LLM call is still reported if that call comes
within `processes.window` of its exit. Every other process is counted
(llmtap_receiver_ebpf_processes_not_emitted_total{reason}), not reported.
Argument values that look like secrets are replaced by "<REDACTED>"
(argsecrets.py). Process events wake no reader: they are read within _POLL_MS.

    processes:
      agents: [claude, gemini, "python:my_agent.py"]   # agents before their first LLM call
      window: 30s            # a finished process waits this long for an agent above it
      max_args_bytes: 4KiB   # argv copied at exec
      scope: agents          # or all: every process on the machine

Config keys: see config.py (`llmtap components` / docs/config-reference.md).

Needs root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN for uprobes), bcc, kernel
headers and tracefs; `llmtap doctor` checks each. Process capture also needs the
kernel's BTF (/sys/kernel/btf/vmlinux, for task_struct offsets): without it TLS
capture runs on and process capture is off, with a warning. With `required: false` (the
default) a machine without them gets a loud warning and llmtap runs on without
this receiver; with `required: true` or LLMTAP_REQUIRE_EBPF=1 it fails to start.

Backpressure: at most `_MAX_IN_FLIGHT` requests wait for the pipeline; beyond
that the polling thread waits too, the kernel ring buffer fills, and what no
longer fits is counted as lost (ring_full) — never dropped silently.
"""

from __future__ import annotations

import asyncio
import fnmatch
import heapq
import os
import shutil
import threading
import time
from typing import Mapping

from llmtap.component import Consumer, Factory, Host, Kind, Receiver, Settings, Signal, Stability
from llmtap.pdata import count_items
from llmtap.receiver.ebpf.agents import AgentPatterns
from llmtap.receiver.ebpf.config import Config, ProcessFilter
from llmtap.receiver.ebpf.endpoints import EndpointMatcher
from llmtap.receiver.ebpf.events import Drop, Event, Kind as EventKind
from llmtap.receiver.ebpf.http import HttpConnectionParser
from llmtap.receiver.ebpf.probes import EbpfUnavailable, TlsProbes
from llmtap.receiver.ebpf.processes import Finished, ProcfsReader, ProcessTable
from llmtap.receiver.ebpf.selfmetrics import process_metrics
from llmtap.receiver.ebpf.span import traces_request
from llmtap.receiver.ebpf.tlslib import TlsLibrary, TlsLibraryFinder, running_pids, system_libraries
from llmtap.receiver.ebpf.tracker import ConnectionTracker, Observed, ProcessInfo

REQUIRE_ENV = "LLMTAP_REQUIRE_EBPF"
_MAX_IN_FLIGHT = 16
# The longest a process event waits in the ring buffer (they wake no reader; TLS data does).
_POLL_MS = 20
# Spans go to the pipeline in requests at least this far apart (unless this many are ready): one
# request per exec of an exec-heavy agent would cost more than the spans themselves.
_FLUSH_EVERY_S = 0.02
_FLUSH_ITEMS = 512
# After an exec, look again for TLS libraries the process maps late (dlopen, a container's libssl).
_RESCAN_AFTER_S = (0.2, 1.0, 3.0)
_DROP_CHECK_S = 1.0
_LOST_REASONS = {Drop.RING_FULL_BYTES: "ring_full", Drop.READ_FAILED_BYTES: "read_failed",
                 Drop.TOO_LONG_BYTES: "too_long"}
_LOST_EVENT_REASONS = {Drop.RING_FULL_EVENTS: "ring_full", Drop.READ_FAILED_EVENTS: "read_failed"}
_PROCESS_EVENTS = (EventKind.PROC_EXEC, EventKind.PROC_FORK, EventKind.PROC_EXIT)


def _matches(f: ProcessFilter, info: ProcessInfo) -> bool:
    if info.pid in f.pids:
        return True
    for pattern in f.executables:
        subject = info.executable_path if "/" in pattern else info.executable_name
        if fnmatch.fnmatch(subject, pattern) or (info.comm and "/" not in pattern and
                                                 fnmatch.fnmatch(info.comm, pattern)):
            return True
    return any(fnmatch.fnmatch(info.cgroup, pattern) for pattern in f.cgroups)


class EbpfReceiver(Receiver):
    def __init__(self, settings: Settings, config: Config, consumers: Mapping[Signal, Consumer]):
        super().__init__(settings, config, consumers)
        self.probes: TlsProbes | None = None
        self.finder = TlsLibraryFinder(static_boringssl=config.static_boringssl == "auto", named=config.attach)
        pc = config.processes
        self.processes = ProcessTable(
            agents=AgentPatterns(pc.agents), window_s=float(pc.window), max_tracked=pc.max_tracked,
            scope=pc.scope if pc.enabled else "off", proc=ProcfsReader(int(pc.max_args_bytes)))
        self.tracker = ConnectionTracker(
            self._make_parser, EndpointMatcher(config.endpoints + config.extra_endpoints),
            process_wanted=self._process_wanted, ignore=self._ignore_connection,
            process_info=self.processes.info, llm_request=self.processes.llm_request)
        self._process_metrics = process_metrics(settings.telemetry)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._in_flight = threading.Semaphore(_MAX_IN_FLIGHT)
        self._deliveries: set[asyncio.Task] = set()
        self._ready: list[Observed] = []
        self._finished: list[Finished] = []
        self._rescans: list[tuple[float, int]] = []
        self._kernel_drops: dict[Drop, int] = {}
        self._reported: dict[str, int] = {}
        self.started = threading.Event()  # set once probes are attached (tests and the bench wait on it)

    @property
    def active(self) -> bool:
        return self.probes is not None

    def _make_parser(self, accept) -> HttpConnectionParser:
        c = self.config
        return HttpConnectionParser(max_body_bytes=int(c.max_body_bytes), request_headers=c.headers.request,
                                    response_headers=c.headers.response, accept=accept)

    def _process_wanted(self, info: ProcessInfo) -> bool:
        if not self.config.include.empty and not _matches(self.config.include, info):
            return False
        return not _matches(self.config.exclude, info)

    def _ignore_connection(self, pid: int, conn: int) -> None:
        if self.probes is not None:
            self.probes.ignore_connection(pid, conn)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self._loop = asyncio.get_running_loop()
        required = self.config.required or os.environ.get(REQUIRE_ENV, "") not in ("", "0")
        began = time.monotonic()
        try:
            self.probes = await self._loop.run_in_executor(None, self._open_probes)
        except (EbpfUnavailable, PermissionError, OSError) as e:
            if required:
                raise RuntimeError(f"eBPF capture is unavailable: {e}. `llmtap doctor` says what is missing") from e
            self.logger.warning(
                "eBPF capture is OFF: LLM traffic will NOT be captured on this machine. `llmtap doctor` says "
                "what is missing", extra={"fields": {"receiver": str(self.id), "reason": str(e)}})
            return
        if self.probes.process_tree_problem:
            self.processes.tree_known = self.processes.reporting = False
            if self.config.processes.enabled:
                self.logger.warning("process capture is OFF: no process spans, no process tree on spans", extra={
                    "fields": {"receiver": str(self.id), "reason": self.probes.process_tree_problem}})
        self.logger.info("eBPF TLS capture attached", extra={"fields": {
            "receiver": str(self.id), "files": [lib.display_path for lib in self.probes.attached],
            "seconds": round(time.monotonic() - began, 3)}})
        self._thread = threading.Thread(target=self._poll_loop, name=f"llmtap-{self.id}", daemon=True)
        self._thread.start()
        self.started.set()

    def _open_probes(self) -> TlsProbes:
        if os.geteuid() != 0:
            raise EbpfUnavailable("not running as root (uprobes need CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)")
        pc = self.config.processes
        probes = TlsProbes(int(self.config.ring_buffer_size), self._on_event, self._on_bad_record,
                           args_bytes=int(pc.max_args_bytes) if pc.enabled else 0, forks=pc.enabled)
        self.probes = probes
        paths = system_libraries() + list(self.config.attach)
        paths += [p for p in (shutil.which("node"), shutil.which("nodejs")) if p]
        for path in paths:
            self._attach_file(path)
        for pid in running_pids():
            if pid != os.getpid():
                self._attach_new_libraries(pid)
        return probes

    def _attach_file(self, path: str) -> None:
        library = self.finder.library_at(path)
        if library is not None:
            self._attach(library)
        elif path in self.config.attach and os.path.exists(path):
            self.logger.warning("attach: %s has no SSL_write/SSL_read (exported, or BoringSSL's found by their "
                                "error sites), or was given twice; not attached", path)

    def _attach_new_libraries(self, pid: int) -> None:
        for library in self.finder.new_libraries(pid):
            self._attach(library)

    def _attach(self, library: TlsLibrary) -> None:
        try:
            self.probes.attach(library)
        except Exception as e:  # one odd file must not stop the others
            self.logger.warning("cannot attach TLS probes", extra={"fields": {
                "receiver": str(self.id), "file": library.display_path, "error": str(e)}})
            return
        self.settings.telemetry.ebpf_attached_files.labels(receiver=str(self.id)).set(len(self.probes.attached))
        if self.started.is_set():
            self.logger.info("eBPF TLS capture attached to a new file", extra={"fields": {
                "receiver": str(self.id), "file": library.display_path}})

    async def shutdown(self) -> None:
        if self._thread is not None:
            self._stop.set()
            await self._loop.run_in_executor(None, self._thread.join)
            self._thread = None
        if self.probes is not None:
            self._ready += self.tracker.close_all(time.monotonic_ns())
            self._finished += self.processes.close()
            self._flush()
            self._report_processes()
            if self._deliveries:
                await asyncio.gather(*self._deliveries, return_exceptions=True)
            self.probes.close()
            self.probes = None

    # --- the polling thread -------------------------------------------------------------

    def _poll_loop(self) -> None:
        next_drop_check = next_flush = 0.0
        while not self._stop.is_set():
            self.probes.poll(_POLL_MS)
            now = time.monotonic()
            while self._rescans and self._rescans[0][0] <= now:
                _, pid = heapq.heappop(self._rescans)
                self._attach_new_libraries(pid)
            if now >= next_drop_check:
                self._check_kernel_drops()
                next_drop_check = now + _DROP_CHECK_S
            self.processes.expire(time.monotonic_ns())
            self._finished += self.processes.take_finished()
            if now >= next_flush or len(self._ready) + len(self._finished) >= _FLUSH_ITEMS:
                self._flush()
                next_flush = now + _FLUSH_EVERY_S
        self.probes.poll(0)  # what the kernel wrote before we were told to stop
        self._check_kernel_drops()

    def _on_event(self, event: Event) -> None:
        if event.kind in _PROCESS_EVENTS:
            try:
                self.processes.handle(event)
            except ValueError as e:
                self._on_bad_record(str(e))
            except Exception:  # a bug here must not cost the capture
                self.logger.exception("cannot process a process event", extra={"fields": {
                    "receiver": str(self.id), "pid": event.pid}})
            if event.kind == EventKind.PROC_FORK:
                return
        if event.kind == EventKind.PROC_EXEC:
            self._attach_new_libraries(event.pid)
            now = time.monotonic()
            for delay in _RESCAN_AFTER_S:
                heapq.heappush(self._rescans, (now + delay, event.pid))
        try:
            self._ready += self.tracker.handle(event)
        except Exception:  # a parser bug must cost one connection, not the receiver
            self.logger.exception("cannot process a captured event; its connection is dropped", extra={
                "fields": {"receiver": str(self.id), "pid": event.pid, "conn": hex(event.conn)}})
            self.tracker.forget(event.pid, event.conn)

    def _on_bad_record(self, message: str) -> None:
        self.logger.error("malformed event from the kernel", extra={"fields": {"receiver": str(self.id),
                                                                               "error": message}})

    def _check_kernel_drops(self) -> None:
        drops = self.probes.drops()
        rid = str(self.id)
        t = self.settings.telemetry
        for drop, count in drops.items():
            delta = count - self._kernel_drops.get(drop, 0)
            if delta <= 0:
                continue
            if drop in _LOST_REASONS:
                t.ebpf_lost_bytes.labels(receiver=rid, reason=_LOST_REASONS[drop]).inc(delta)
                self.logger.warning("eBPF capture lost bytes", extra={"fields": {
                    "receiver": rid, "reason": _LOST_REASONS[drop], "bytes": delta,
                    "hint": "raise ring_buffer_size" if drop is Drop.RING_FULL_BYTES else ""}})
            elif drop in _LOST_EVENT_REASONS:
                t.ebpf_lost_events.labels(receiver=rid, reason=_LOST_EVENT_REASONS[drop]).inc(delta)
            elif drop is Drop.IGNORED_BYTES:
                t.ebpf_ignored_bytes.labels(receiver=rid, reason="kernel").inc(delta)
            elif drop is Drop.PROC_RING_FULL_EVENTS:
                self._process_metrics.events_lost.labels(receiver=rid, reason="ring_full").inc(delta)
                self.logger.warning("eBPF capture lost process events", extra={"fields": {
                    "receiver": rid, "reason": "ring_full", "events": delta, "hint": "raise ring_buffer_size"}})
            elif drop is Drop.PROC_ARGS_READ_FAILED:
                self._process_metrics.args_unread.labels(receiver=rid).inc(delta)
        self._kernel_drops = drops
        self._report_processes()
        for reason, total in [*self.tracker.dropped_exchanges.items()]:
            self._report(t.ebpf_dropped_exchanges, f"x:{reason}", reason, total)
        for reason, total in [*self.tracker.ignored_bytes.items()]:
            self._report(t.ebpf_ignored_bytes, f"i:{reason}", reason, total)
        t.ebpf_open_connections.labels(receiver=rid).set(self.tracker.open_connections)

    def _report_processes(self) -> None:
        m, rid = self._process_metrics, str(self.id)
        for kind, total in [*self.processes.events.items()]:
            self._report(m.events, f"e:{kind}", kind, total, label="kind")
        for reason, total in [*self.processes.not_emitted.items()]:
            self._report(m.not_emitted, f"n:{reason}", reason, total)
        m.tracked.labels(receiver=rid).set(self.processes.tracked)

    def _report(self, counter, key: str, reason: str, total: int, label: str = "reason") -> None:
        delta = total - self._reported.get(key, 0)
        if delta > 0:
            counter.labels(receiver=str(self.id), **{label: reason}).inc(delta)
            self._reported[key] = total

    # --- into the pipeline ------------------------------------------------------------

    def _flush(self) -> None:
        """Hand the exchanges finished so far to the event loop as one request (called on the poll thread,
        and on the loop thread at shutdown)."""
        if not self._ready and not self._finished:
            return
        observed, self._ready = self._ready, []
        finished, self._finished = self._finished, []
        if finished:
            self._process_metrics.emitted.labels(receiver=str(self.id)).inc(len(finished))
        # The kernel stamps CLOCK_MONOTONIC (bpf_ktime_get_ns); spans want Unix time.
        now = time.monotonic_ns()
        request = traces_request(observed, time.time_ns() - now, self.config.service_name,
                                 process_attributes=self.processes.exchange_attributes,
                                 processes=finished, table=self.processes, now_ns=now)
        if self._thread is None:  # shutdown, on the loop thread, after the poll thread ended
            self._deliveries.add(asyncio.ensure_future(self._deliver(request)))
            return
        self._in_flight.acquire()
        self._loop.call_soon_threadsafe(self._start_delivery, request)

    def _start_delivery(self, request) -> None:
        task = self._loop.create_task(self._deliver(request))
        self._deliveries.add(task)
        task.add_done_callback(lambda t: (self._deliveries.discard(t), self._in_flight.release()))

    async def _deliver(self, request) -> None:
        n = count_items(Signal.TRACES, request)
        consumer = self.consumers.get(Signal.TRACES)
        rid = str(self.id)
        try:
            if consumer is None:
                raise RuntimeError("no traces pipeline takes this receiver's data")
            await consumer.consume(Signal.TRACES, request)
        except Exception as e:
            self.settings.telemetry.count("receiver", "refused", Signal.TRACES, n, receiver=rid, transport="ebpf")
            self.logger.warning("pipeline refused captured exchanges", extra={"fields": {
                "receiver": rid, "spans": n, "error": str(e)}})
            return
        self.settings.telemetry.count("receiver", "accepted", Signal.TRACES, n, receiver=rid, transport="ebpf")


factory = Factory(
    type="ebpf",
    kind=Kind.RECEIVER,
    config_class=Config,
    create=EbpfReceiver,
    signals=frozenset({Signal.TRACES}),
    stability=Stability.ALPHA,
    description="Captures LLM API calls in plaintext at the TLS library of any client process (eBPF uprobes).",
)
