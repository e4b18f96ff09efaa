"""Finding SSL_write and SSL_read in a stripped x86-64 ELF file that links BoringSSL
statically and exports no symbols for it (Bun's single-file executables, such as
Claude Code's native `claude`).

BoringSSL reports errors with OPENSSL_PUT_ERROR(SSL, reason), which compiles to a call
    ERR_put_error(ERR_LIB_SSL = 16, 0, reason, __FILE__, __LINE__)
and builds without OPENSSL_NO_FILENAMES keep __FILE__, e.g.
"../../vendor/boringssl/ssl/ssl_lib.cc". Every error site of ssl_lib.cc loads that
string's address as the 4th argument (rcx): `mov ecx, imm32` in a non-PIE executable,
`lea rcx, [rip+disp32]` in position-independent code. The sites, with the reason code
(edx) beside them, name the functions they sit in:
  SSL_write      the one function with UNINITIALIZED (226), SSL_HANDSHAKE_FAILURE (215)
                 and BAD_LENGTH (111): ssl_lib.cc's SSL_write checks all three;
  ssl_read_impl  UNINITIALIZED and SSL_HANDSHAKE_FAILURE, no BAD_LENGTH;
  SSL_read       a function whose only error site is the QUIC check
                 (ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED, 66) and that calls ssl_read_impl
                 directly: SSL_read with SSL_peek inlined (a standalone SSL_peek looks
                 the same; the larger one is SSL_read, which also consumes the data).
A function starts at the 16-byte aligned address after the int3/nop padding that ends the
previous one; the start must be a frame-pointer prologue (push rbp; mov rbp, rsp), which
Bun's build keeps. Whenever the shape differs (no file names, no single SSL_write, no
SSL_read calling ssl_read_impl, no prologue) `locate` declines rather than guesses: a
uprobe at a wrong address would corrupt the traced program.

Both functions keep the C ABI (ssl in rdi, buffer in rsi, length in edx, the byte count
returned in eax), so the OpenSSL uprobes of bpf/tls_capture.c work on them unchanged.

Cost: one pass over the read-only data sections for the file name and one over .text
for its references (mmap, bytes.find; the `lea` pass only for position-independent code),
plus a few hundred bytes decoded per reference: about half a second for the 373 MB
`claude` binary when it is in the page cache, seconds when it must be read from disk.
Returns ELF virtual addresses, as symbol values are (bcc's attach_uprobe(addr=...) maps
them to file offsets).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

# ssl_lib.cc (or ssl_lib.c in older trees) under any prefix, NUL-terminated.
FILE_NAME = b"boringssl/ssl/ssl_lib.c"
FILE_NAME_ENDINGS = (b"c\0", b"\0")
ERR_LIB_SSL = 16
UNINITIALIZED, HANDSHAKE_FAILURE, BAD_LENGTH, SHOULD_NOT_HAVE_BEEN_CALLED = 226, 215, 111, 66
PROLOGUE = b"\x55\x48\x89\xe5"          # push rbp; mov rbp, rsp
PADDING = (b"\xcc", b"\x90")            # int3, nop
MAX_FUNCTION_BYTES = 1 << 16
MAX_PATH_BYTES = 256
MOV_ECX = b"\xb9"                        # mov ecx, imm32
LEA_RCX_RIP = b"\x48\x8d\x0d"            # lea rcx, [rip+disp32]
MOV_EDI_SSL = b"\xbf" + struct.pack("<I", ERR_LIB_SSL)
MOV_EDX, MOV_R8D, CALL_REL32 = b"\xba", b"\x41\xb8", b"\xe8"


class NotFound(LookupError):
    """The locator declines; the message says why."""


@dataclass(frozen=True)
class ErrorSite:
    address: int          # the instruction that loads the file name
    reason: int | None
    line: int | None
    function: int         # start of the function it sits in


class Binary:
    """An x86-64 ELF file mapped read-only; addresses are virtual, as in the ELF headers."""

    def __init__(self, path: str):
        self.file = open(path, "rb")
        try:
            self.data = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        except Exception:
            self.file.close()
            raise
        try:
            self.elf = ELFFile(self.file)
            if self.elf["e_machine"] != "EM_X86_64":
                raise NotFound(f"not x86-64 ({self.elf['e_machine']})")
            text = self.elf.get_section_by_name(".text")
            if text is None:
                raise NotFound("no .text section")
        except Exception:
            self.close()
            raise
        self.text_addr, self.text_off, self.text_size = text["sh_addr"], text["sh_offset"], text["sh_size"]
        self.position_independent = self.elf["e_type"] != "ET_EXEC"

    def __enter__(self) -> "Binary":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.data.close()
        self.file.close()

    def read_only_data(self):
        """(file offset, size, virtual address) of each loaded, read-only, non-code section."""
        for section in self.elf.iter_sections():
            flags = section["sh_flags"]
            if section["sh_type"] == "SHT_PROGBITS" and flags & SH_FLAGS.SHF_ALLOC \
                    and not flags & (SH_FLAGS.SHF_WRITE | SH_FLAGS.SHF_EXECINSTR):
                yield section["sh_offset"], section["sh_size"], section["sh_addr"]

    def text_offset(self, vaddr: int) -> int:
        return self.text_off + vaddr - self.text_addr

    def code(self, vaddr: int, length: int) -> bytes:
        """`length` bytes of .text from `vaddr` (fewer at its ends)."""
        start = max(self.text_off, self.text_offset(vaddr))
        return self.data[start:min(self.text_off + self.text_size, self.text_offset(vaddr) + length)]

    def starts_function(self, vaddr: int) -> bool:
        """A 16-aligned prologue right after padding: where the compiler put a function."""
        return self.code(vaddr, 4) == PROLOGUE and self.code(vaddr - 1, 1) in PADDING


def _file_name_addresses(binary: Binary) -> list[int]:
    """Virtual addresses of the NUL-terminated …/boringssl/ssl/ssl_lib.c(c) path strings."""
    found = []
    data = binary.data
    for offset, size, vaddr in binary.read_only_data():
        end = offset + size
        at = data.find(FILE_NAME, offset, end)
        while at >= 0:
            tail = data[at + len(FILE_NAME):at + len(FILE_NAME) + 2]
            if any(tail.startswith(ending) for ending in FILE_NAME_ENDINGS):
                start = at
                while start > offset and data[start - 1] != 0 and at - start < MAX_PATH_BYTES:
                    start -= 1
                found.append(vaddr + start - offset)
            at = data.find(FILE_NAME, at + 1, end)
    return found


def _references(binary: Binary, target: int) -> list[int]:
    """Instructions in .text that put `target` in ecx/rcx."""
    start, end = binary.text_off, binary.text_off + binary.text_size
    refs = []
    if not binary.position_independent and target < 1 << 32:
        needle = MOV_ECX + struct.pack("<I", target)
        at = binary.data.find(needle, start, end)
        while at >= 0:
            refs.append(binary.text_addr + at - start)
            at = binary.data.find(needle, at + 1, end)
    if refs:
        return refs
    # lea rcx, [rip+disp32]: the target is the next instruction's address + disp32. Only code
    # compiled position-independent has it, so a non-PIE file's own mov sites spare this pass.
    at = binary.data.find(LEA_RCX_RIP, start, end - 7)
    while at >= 0:
        disp = struct.unpack_from("<i", binary.data, at + 3)[0]
        if binary.text_addr + (at - start) + 7 + disp == target:
            refs.append(binary.text_addr + at - start)
        at = binary.data.find(LEA_RCX_RIP, at + 1, end - 7)
    return refs


def _immediate_after(window: bytes, opcode: bytes) -> int | None:
    at = window.find(opcode)
    if at < 0 or at + len(opcode) + 4 > len(window):
        return None
    return struct.unpack_from("<I", window, at + len(opcode))[0]


def _function_start(binary: Binary, address: int) -> int | None:
    """The start of the function around `address`: the nearest function start before it."""
    lowest = max(binary.text_addr, address - MAX_FUNCTION_BYTES)
    at = address & ~0xF
    while at > lowest:
        if binary.starts_function(at):
            return at
        at -= 16
    return None


def error_sites(binary: Binary) -> list[ErrorSite]:
    """Every ERR_put_error(ERR_LIB_SSL, …, "…/ssl_lib.cc", …) call site, with its function."""
    sites = []
    for name in _file_name_addresses(binary):
        for ref in _references(binary, name):
            before, after = binary.code(ref - 24, 24), binary.code(ref, 40)
            if MOV_EDI_SSL not in before + after:
                continue                      # not an ERR_put_error(ERR_LIB_SSL, ...) call
            start = _function_start(binary, ref)
            if start is not None:
                sites.append(ErrorSite(ref, _immediate_after(after, MOV_EDX), _immediate_after(after, MOV_R8D),
                                       start))
    return sites


def _calls(binary: Binary, function: int, callee: int, length: int = 512) -> bool:
    """Whether the first `length` bytes of `function` hold a direct call (e8 rel32) to `callee`."""
    code = binary.code(function, length)
    at = code.find(CALL_REL32)
    while at >= 0:
        if at + 5 <= len(code) and function + at + 5 + struct.unpack_from("<i", code, at + 1)[0] == callee:
            return True
        at = code.find(CALL_REL32, at + 1)
    return False


def _size(binary: Binary, function: int) -> int:
    """Bytes up to the next function start."""
    at = function + 16
    while at < function + MAX_FUNCTION_BYTES:
        if binary.starts_function(at):
            return at - function
        at += 16
    return MAX_FUNCTION_BYTES


def _identify(binary: Binary) -> dict[str, int]:
    sites = error_sites(binary)
    if not sites:
        raise NotFound("no BoringSSL ssl_lib error sites (no file names kept, or not BoringSSL)")
    reasons: dict[int, set[int | None]] = {}
    for site in sites:
        reasons.setdefault(site.function, set()).add(site.reason)
    writes = [f for f, r in reasons.items() if {UNINITIALIZED, HANDSHAKE_FAILURE, BAD_LENGTH} <= r]
    if len(writes) != 1:
        raise NotFound(f"{len(writes)} SSL_write candidates, not one")
    read_impls = [f for f, r in reasons.items() if {UNINITIALIZED, HANDSHAKE_FAILURE} <= r and BAD_LENGTH not in r]
    reads = [f for f, r in reasons.items() if r == {SHOULD_NOT_HAVE_BEEN_CALLED}
             and any(_calls(binary, f, impl) for impl in read_impls)]
    if not reads:
        raise NotFound("no SSL_read candidate (a function with only the QUIC check, calling ssl_read_impl)")
    return {"SSL_write": writes[0], "SSL_read": max(reads, key=lambda f: _size(binary, f))}


def locate(path: str) -> dict[str, int]:
    """{"SSL_write": vaddr, "SSL_read": vaddr} in the ELF file at `path`. Raises only NotFound,
    whose message says why not (an unreadable or malformed file included)."""
    try:
        with Binary(path) as binary:
            return _identify(binary)
    except NotFound as e:
        raise NotFound(f"{path}: {e}") from None
    except (OSError, ELFError, ValueError, IndexError, struct.error) as e:
        raise NotFound(f"{path}: cannot read it as an ELF file: {e}") from None
