"""The events the eBPF programs send, decoded from ring-buffer records.

The layout is defined once, in bpf/llmtap_events.h; this module reads that
header's constants (so they cannot drift) and mirrors `struct
llmtap_event_header` with a struct format whose size is checked against it.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from importlib.resources import files

HEADER_FILE = "llmtap_events.h"


def bpf_source(name: str) -> str:
    return files("llmtap.bpf").joinpath(name).read_text(encoding="utf-8")


def _constants(header: str) -> dict[str, int]:
    """`#define NAME number` and `NAME = number,` enum members of the header."""
    found = {m[1]: int(m[2]) for m in re.finditer(r"#define\s+(LLMTAP_\w+)\s+(\d+)\b", header)}
    found.update({m[1]: int(m[2]) for m in re.finditer(r"\b(LLMTAP_\w+)\s*=\s*(\d+)\s*,", header)})
    return found


C = _constants(bpf_source(HEADER_FILE))
SEGMENT_BYTES = C["LLMTAP_SEGMENT_BYTES"]
MAX_SEGMENTS = C["LLMTAP_MAX_SEGMENTS"]
PATH_BYTES = C["LLMTAP_PATH_BYTES"]


class Kind(enum.IntEnum):
    TLS_DATA = C["LLMTAP_EV_TLS_DATA"]
    TLS_FREE = C["LLMTAP_EV_TLS_FREE"]
    PROC_EXEC = C["LLMTAP_EV_PROC_EXEC"]
    PROC_EXIT = C["LLMTAP_EV_PROC_EXIT"]
    PROC_FORK = C["LLMTAP_EV_PROC_FORK"]


class Drop(enum.IntEnum):
    """Indexes of the kernel's `drops` counters."""
    RING_FULL_EVENTS = C["LLMTAP_DROP_RING_FULL_EVENTS"]
    RING_FULL_BYTES = C["LLMTAP_DROP_RING_FULL_BYTES"]
    READ_FAILED_EVENTS = C["LLMTAP_DROP_READ_FAILED_EVENTS"]
    READ_FAILED_BYTES = C["LLMTAP_DROP_READ_FAILED_BYTES"]
    TOO_LONG_BYTES = C["LLMTAP_DROP_TOO_LONG_BYTES"]
    IGNORED_BYTES = C["LLMTAP_IGNORED_BYTES"]
    PROC_RING_FULL_EVENTS = C["LLMTAP_DROP_PROC_RING_FULL_EVENTS"]
    PROC_ARGS_READ_FAILED = C["LLMTAP_DROP_PROC_ARGS_READ_FAILED"]


# struct llmtap_event_header: kind pid tid direction conn ts_ns stream_offset call_bytes data_bytes comm[16]
_HEADER = struct.Struct("<IIIIQQQII16s")
HEADER_BYTES = _HEADER.size
assert HEADER_BYTES == 64, "struct llmtap_event_header changed: update events.py"

# Direction values match llmtap_direction; the parser's Direction enum names them.
DIR_WRITE = C["LLMTAP_DIR_WRITE"]
DIR_READ = C["LLMTAP_DIR_READ"]


@dataclass(slots=True)
class Event:
    kind: int
    pid: int
    tid: int
    direction: int
    conn: int
    ts_ns: int
    stream_offset: int
    call_bytes: int
    comm: str
    data: bytes


def decode(record: bytes) -> Event:
    """One ring-buffer record → Event. Raises ValueError on a short or inconsistent record."""
    if len(record) < HEADER_BYTES:
        raise ValueError(f"event record of {len(record)} bytes is shorter than its {HEADER_BYTES}-byte header")
    kind, pid, tid, direction, conn, ts, offset, call_bytes, data_bytes, comm = _HEADER.unpack_from(record)
    if HEADER_BYTES + data_bytes > len(record):
        raise ValueError(f"event says {data_bytes} data bytes, record holds {len(record) - HEADER_BYTES}")
    data = record[HEADER_BYTES:HEADER_BYTES + data_bytes]
    return Event(kind, pid, tid, direction, conn, ts, offset, call_bytes,
                 comm.split(b"\0", 1)[0].decode("utf-8", "replace"), data)


def encode(event: Event) -> bytes:
    """The record the kernel would have written (tests and capture replay)."""
    comm = event.comm.encode()[:15]
    return _HEADER.pack(event.kind, event.pid, event.tid, event.direction, event.conn, event.ts_ns,
                        event.stream_offset, event.call_bytes, len(event.data), comm) + event.data


# struct llmtap_process: ppid uid start_ns parent_start_ns cgroup_id exit_code path_bytes args_bytes args_total,
# then path[LLMTAP_PATH_BYTES] (exec events only) and the arguments.
_PROCESS_IDS = struct.Struct("<IIQQQIIII")
PROCESS_IDS_BYTES = _PROCESS_IDS.size
assert PROCESS_IDS_BYTES == 48, "struct llmtap_process changed: update events.py"
PROCESS_BYTES = PROCESS_IDS_BYTES + PATH_BYTES
# The most argument bytes one event can carry (data[] holds SEGMENT_BYTES).
MAX_ARGS_BYTES = SEGMENT_BYTES - PROCESS_BYTES


@dataclass(slots=True)
class ProcessEvent:
    """The data of an exec, exit or fork event."""
    ppid: int
    uid: int
    start_ns: int         # CLOCK_BOOTTIME, the process's fork
    parent_start_ns: int
    cgroup_id: int
    exit_code: int = 0    # exit: (status << 8) | signal
    path: str = ""        # exec
    args: bytes = b""     # exec: NUL-separated argv, possibly cut short
    args_total: int = 0   # exec: size of the whole argument area

    @property
    def args_truncated(self) -> bool:
        return self.args_total > len(self.args)


def decode_process(data: bytes) -> ProcessEvent:
    """The data of a PROC_* event. Raises ValueError when it is too short for what it says it holds."""
    if len(data) < PROCESS_IDS_BYTES:
        raise ValueError(f"process event of {len(data)} bytes is shorter than its {PROCESS_IDS_BYTES}-byte ids")
    ppid, uid, start, parent_start, cgroup, code, path_bytes, args_bytes, args_total = _PROCESS_IDS.unpack_from(data)
    path = b""
    if path_bytes:
        path = data[PROCESS_IDS_BYTES:PROCESS_IDS_BYTES + min(path_bytes, PATH_BYTES)].split(b"\0", 1)[0]
    args = data[PROCESS_BYTES:PROCESS_BYTES + args_bytes] if args_bytes else b""
    if len(args) < args_bytes:
        raise ValueError(f"process event says {args_bytes} argument bytes, holds {len(args)}")
    return ProcessEvent(ppid, uid, start, parent_start, cgroup, code, path.decode("utf-8", "replace"), args,
                        max(args_total, len(args)))


def encode_process(p: ProcessEvent) -> bytes:
    """The data the kernel would have written (tests and capture replay)."""
    ids = _PROCESS_IDS.pack(p.ppid, p.uid, p.start_ns, p.parent_start_ns, p.cgroup_id, p.exit_code,
                            len(p.path.encode()) + 1 if p.path else 0, len(p.args), p.args_total)
    if not p.path and not p.args:
        return ids
    return ids + p.path.encode().ljust(PATH_BYTES, b"\0")[:PATH_BYTES] + p.args
