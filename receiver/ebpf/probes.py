"""Loading the eBPF programs with bcc, attaching them, and reading their ring buffer.

`TlsProbes` owns the kernel side: it compiles bpf/tls_capture.c, attaches the
sched tracepoints at once and the OpenSSL uprobes to each TlsLibrary it is
given (by symbol, or at the addresses found for a BoringSSL without symbols),
and hands every ring-buffer record to a callback as an `Event`. It also reads
the kernel's drop counters and marks connections the kernel should stop
copying. It does no parsing.

The process probes read task_struct fields at offsets found in the running
kernel's BTF (btf.py), so the headers bcc compiles with may be another kernel's.

bcc comes from the distribution (Debian's python3-bpfcc); its Python module
lives outside any virtualenv, so `import_bcc` looks there too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from importlib.resources import as_file, files
from typing import Callable

from llmtap.receiver.ebpf import events
from llmtap.receiver.ebpf.btf import PROCESS_FIELDS, BtfError, process_field_offsets
from llmtap.receiver.ebpf.tlslib import TlsLibrary

log = logging.getLogger("llmtap.receiver.ebpf")

# Where Debian and Ubuntu install bcc's Python module (python3-bpfcc).
BCC_PYTHON_PATHS = ("/usr/lib/python3/dist-packages", "/usr/lib/python3/site-packages")
EXIT_FORMAT = "/sys/kernel/tracing/events/sched/sched_process_exit/format"

# (symbol, entry program, return program); bcc wants bytes for names.
_HOOKS = (
    ("SSL_write", b"enter_ssl_write", b"return_ssl_write"),
    ("SSL_write_ex", b"enter_ssl_write_ex", b"return_ssl_write"),
    ("SSL_read", b"enter_ssl_read", b"return_ssl_read"),
    ("SSL_read_ex", b"enter_ssl_read_ex", b"return_ssl_read"),
    ("SSL_free", b"enter_ssl_free", None),
)


class EbpfUnavailable(RuntimeError):
    """This machine cannot run the probes; the message says why (and `llmtap doctor` says how to fix it)."""


def import_bcc():
    try:
        import bcc  # noqa: F401
        return bcc
    except ImportError:
        pass
    for path in BCC_PYTHON_PATHS:
        if os.path.isdir(os.path.join(path, "bcc")):
            sys.path.append(path)
            try:
                import bcc
                return bcc
            except ImportError:
                continue
            finally:
                sys.path.remove(path)
    raise EbpfUnavailable("bcc's Python module is not installed (Debian/Ubuntu: apt-get install python3-bpfcc)")


class TlsProbes:
    """`args_bytes`: how much of an exec'd program's arguments the kernel copies (0: none);
    `forks`: whether new processes that have not exec'd are reported too. On a kernel without
    BTF neither is possible: `process_tree_problem` then says why, and process events carry only
    pid, uid, cgroup and path."""

    def __init__(self, ring_buffer_bytes: int, on_event: Callable[[events.Event], None],
                 on_bad_record: Callable[[str], None], *, args_bytes: int = 0, forks: bool = False):
        bcc = import_bcc()
        pages = max(1, ring_buffer_bytes // os.sysconf("SC_PAGE_SIZE"))
        if pages & (pages - 1):
            raise ValueError(f"ring buffer size must be a power of two pages, got {pages}")
        if not 0 <= args_bytes <= events.MAX_ARGS_BYTES:
            raise ValueError(f"args_bytes must be 0..{events.MAX_ARGS_BYTES}, got {args_bytes}")
        # Without BTF the TLS capture works on; the process tree does not (see process_tree_problem).
        try:
            offsets = process_field_offsets()
            self.process_tree_problem = ""
        except BtfError as e:
            offsets = {macro: 0 for macro in PROCESS_FIELDS}
            self.process_tree_problem = str(e)
            args_bytes, forks = 0, False
        cflags = [f"-DLLMTAP_SELF_PID={os.getpid()}", f"-DLLMTAP_RING_PAGES={pages}", "-Wno-macro-redefined",
                  f"-DLLMTAP_ARGS_BYTES={args_bytes}"]
        cflags += [f"-D{macro}={offset}" for macro, offset in offsets.items()]
        if self.process_tree_problem:
            cflags.append("-DLLMTAP_NO_BTF=1")
        if forks:
            cflags.append("-DLLMTAP_PROCESS_FORKS=1")
        if _exit_has_group_dead():
            cflags.append("-DLLMTAP_HAVE_GROUP_DEAD=1")
        with as_file(files("llmtap.bpf")) as bpf_dir:
            cflags.append(f"-I{bpf_dir}")
            try:
                self._bpf = bcc.BPF(text=events.bpf_source("tls_capture.c").encode(), cflags=cflags)
            except Exception as e:
                raise EbpfUnavailable(f"cannot compile or load the eBPF programs: {e}") from e
        self._bcc = bcc
        segments = self._bpf.load_func(b"emit_segments", bcc.BPF.KPROBE)
        self._bpf[b"segment_progs"][ctypes.c_int(0)] = ctypes.c_int(segments.fd)
        self._drops = self._bpf[b"drops"]
        self._ignored = self._bpf[b"ignored_conns"]
        self.attached: list[TlsLibrary] = []

        def callback(_ctx, data, size):
            try:
                on_event(events.decode(ctypes.string_at(data, size)))
            except ValueError as e:
                on_bad_record(str(e))
            return 0

        self._callback = callback  # bcc keeps only a weak hold on it
        self._bpf[b"events"].open_ring_buffer(callback)

    def attach(self, library: TlsLibrary) -> None:
        """Attach the uprobes to one file, by symbol name or at a located address. Raises on
        failure (the caller logs and goes on)."""
        for symbol, entry, ret in _HOOKS:
            if symbol in library.symbols:
                where = {"sym": symbol.encode()}
            elif symbol in library.addresses:
                # A virtual address as in the ELF headers: bcc turns it into a file offset.
                where = {"addr": library.addresses[symbol]}
            else:
                continue
            self._bpf.attach_uprobe(name=library.path.encode(), fn_name=entry, **where)
            if ret:
                self._bpf.attach_uretprobe(name=library.path.encode(), fn_name=ret, **where)
        self.attached.append(library)

    def poll(self, timeout_ms: int) -> None:
        """Deliver every ready record to on_event; wait up to timeout_ms for one that wakes us.
        Process events wake no one (tls_capture.c says why): they are taken here, at the latest
        timeout_ms after they were written."""
        self._bpf.ring_buffer_poll(timeout_ms)
        self._bpf.ring_buffer_consume()

    def drops(self) -> dict[events.Drop, int]:
        """Kernel counters since load, summed over CPUs."""
        return {d: sum(self._drops[ctypes.c_int(int(d))]) for d in events.Drop}

    def ignore_connection(self, pid: int, conn: int) -> None:
        """Stop copying this connection's bytes (they are only counted from now on)."""
        key = self._ignored.Key()
        key.conn, key.pid, key.direction = conn, pid, 0
        self._ignored[key] = ctypes.c_uint8(1)

    def close(self) -> None:
        self._bpf.cleanup()


def _exit_has_group_dead() -> bool:
    try:
        with open(EXIT_FORMAT, encoding="ascii") as f:
            return "group_dead" in f.read()
    except OSError:
        return False
