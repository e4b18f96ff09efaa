"""Where the kernel keeps a few struct fields, read from the running kernel's BTF.

bcc compiles the probes against the installed kernel headers, and those need not
be the running kernel's (Debian ships 6.1 headers; the machine may run 6.18): a
`task->real_parent` in the C source would read at the headers' offset, which is
wrong, and silently so. The few fields the process probes read are therefore
located in /sys/kernel/btf/vmlinux, as libbpf's CO-RE relocations would locate
them, and handed to the compiler as constants (`-DLLMTAP_OFF_TASK_TGID=2484`).

Only what that needs is parsed: the type section is walked once to index
structs and unions by name; a field is found by name, through anonymous members
(mm_struct keeps its fields in an anonymous struct).

Cost: one pass over the type section at receiver start (~150k types, a few
hundred ms in Python), memory for one int per type.
"""

from __future__ import annotations

import struct

VMLINUX = "/sys/kernel/btf/vmlinux"

_MAGIC = 0xEB9F
_STRUCT, _UNION = 4, 5
_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG = 8, 9, 10, 11, 18
# Bytes that follow `struct btf_type` (12 bytes) for each kind, fixed and per vlen item.
_EXTRA = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0), 8: (0, 0),
          9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0), 15: (0, 12), 16: (0, 0),
          17: (4, 0), 18: (0, 0), 19: (0, 12)}
_TYPE = struct.Struct("<III")
_MEMBER = struct.Struct("<III")


class BtfError(RuntimeError):
    pass


class KernelTypes:
    """Struct layouts of one BTF blob (the running kernel's by default)."""

    def __init__(self, blob: bytes):
        if len(blob) < 24:
            raise BtfError("BTF data is too short")
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", blob)
        if magic != _MAGIC:
            raise BtfError(f"not BTF data (magic {magic:#x})")
        self._blob = blob
        self._types_at = hdr_len + type_off
        self._strings = blob[hdr_len + str_off:hdr_len + str_off + str_len]
        self._where: list[int] = [0]  # type id → offset of its btf_type; id 0 is void
        self._records: dict[str, int] = {}
        pos, end = self._types_at, self._types_at + type_len
        while pos < end:
            name_off, info, _ = _TYPE.unpack_from(blob, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind not in _EXTRA:
                raise BtfError(f"unknown BTF kind {kind} at type {len(self._where)}")
            if kind in (_STRUCT, _UNION) and name_off:
                self._records.setdefault(self._name(name_off), len(self._where))
            self._where.append(pos)
            fixed, item = _EXTRA[kind]
            pos += _TYPE.size + fixed + item * vlen

    @classmethod
    def running_kernel(cls) -> KernelTypes:
        try:
            with open(VMLINUX, "rb") as f:
                return cls(f.read())
        except OSError as e:
            raise BtfError(f"cannot read the kernel's BTF ({VMLINUX}): {e}. The kernel needs "
                           "CONFIG_DEBUG_INFO_BTF=y") from e

    def _name(self, off: int) -> str:
        end = self._strings.index(b"\0", off)
        return self._strings[off:end].decode()

    def _resolve(self, type_id: int) -> int:
        """Through typedefs and qualifiers to the type they name."""
        for _ in range(32):
            _, info, ref = _TYPE.unpack_from(self._blob, self._where[type_id])
            if (info >> 24) & 0x1F not in (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG):
                return type_id
            type_id = ref
        return type_id

    def _find(self, type_id: int, member: str) -> int | None:
        pos = self._where[type_id]
        _, info, _ = _TYPE.unpack_from(self._blob, pos)
        kind, vlen, bitfields = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        if kind not in (_STRUCT, _UNION):
            return None
        for i in range(vlen):
            name_off, member_type, offset = _MEMBER.unpack_from(self._blob, pos + _TYPE.size + i * _MEMBER.size)
            bits = offset & 0xFFFFFF if bitfields else offset
            if name_off and self._name(name_off) == member:
                if bits % 8:
                    raise BtfError(f"{member} is a bit field")
                return bits // 8
            if not name_off:  # an anonymous struct or union: its members are the parent's
                inner = self._find(self._resolve(member_type), member)
                if inner is not None:
                    return bits // 8 + inner
        return None

    def offset(self, record: str, member: str) -> int:
        """Byte offset of `record.member` (struct or union `record`). Raises BtfError when absent."""
        type_id = self._records.get(record)
        if type_id is None:
            raise BtfError(f"the kernel's BTF has no struct {record}")
        found = self._find(type_id, member)
        if found is None:
            raise BtfError(f"struct {record} has no field {member} in this kernel")
        return found


# The fields the process probes read (bpf/tls_capture.c), by the macro that carries each offset.
PROCESS_FIELDS = {
    "LLMTAP_OFF_TASK_PID": ("task_struct", "pid"),
    "LLMTAP_OFF_TASK_TGID": ("task_struct", "tgid"),
    "LLMTAP_OFF_TASK_REAL_PARENT": ("task_struct", "real_parent"),
    "LLMTAP_OFF_TASK_GROUP_LEADER": ("task_struct", "group_leader"),
    "LLMTAP_OFF_TASK_MM": ("task_struct", "mm"),
    "LLMTAP_OFF_TASK_EXIT_CODE": ("task_struct", "exit_code"),
    "LLMTAP_OFF_TASK_START_BOOTTIME": ("task_struct", "start_boottime"),
    "LLMTAP_OFF_TASK_REAL_CRED": ("task_struct", "real_cred"),
    "LLMTAP_OFF_CRED_EUID": ("cred", "euid"),
    "LLMTAP_OFF_MM_ARG_START": ("mm_struct", "arg_start"),
    "LLMTAP_OFF_MM_ARG_END": ("mm_struct", "arg_end"),
}


def process_field_offsets(types: KernelTypes | None = None) -> dict[str, int]:
    types = types or KernelTypes.running_kernel()
    return {macro: types.offset(record, member) for macro, (record, member) in PROCESS_FIELDS.items()}
