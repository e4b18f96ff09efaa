"""Finding SSL_write and SSL_read in a stripped x86-64 binary that links BoringSSL statically
(Bun's single-file executables, such as Claude Code's native `claude`), with no symbols.

BoringSSL reports errors with OPENSSL_PUT_ERROR(SSL, reason), which compiles to a call
    ERR_put_error(ERR_LIB_SSL = 16, 0, reason, __FILE__, __LINE__)
and binaries built without OPENSSL_NO_FILENAMES keep __FILE__, e.g.
"../../vendor/boringssl/ssl/ssl_lib.cc". Every error site of ssl_lib.cc loads that
string's address as the 4th argument (rcx): `mov ecx, imm32` in a non-PIE executable,
`lea rcx, [rip+disp32]` in a PIE. The sites, with the reason code (edx) beside them,
name the functions they sit in:
  SSL_write      the one function with UNINITIALIZED (226), SSL_HANDSHAKE_FAILURE (215)
                 and BAD_LENGTH (111): ssl_lib.cc's SSL_write checks all three;
  ssl_read_impl  UNINITIALIZED and SSL_HANDSHAKE_FAILURE, no BAD_LENGTH;
  SSL_read       a function whose only error site is the QUIC check
                 (ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED, 66) and that calls ssl_read_impl directly: SSL_read with SSL_peek inlined (a
                 standalone SSL_peek looks the same; the larger one is SSL_read, which
                 also consumes the data).
A function starts at the 16-byte aligned address after the int3/nop padding that ends the
previous one; the start must be a frame-pointer prologue (push rbp; mov rbp, rsp), which
Bun's build keeps, or the locator declines rather than guess.

Both functions keep the C ABI (ssl in rdi, buffer in rsi, length in edx, the byte count
returned in eax), so the OpenSSL uprobes of bpf/tls_capture.c work on them unchanged.

Cost: one pass over the file for the file-name string and one for its references (mmap,
bytes.find), plus a few hundred bytes decoded per reference: about a second for the
373 MB `claude` binary. Returns virtual addresses (bcc's attach_uprobe(addr=...) maps
them to file offsets).

    python tests/agents/boringssl_locator.py PATH     prints {"SSL_write": "0x…", "SSL_read": "0x…"}
"""

from __future__ import annotations

import json
import mmap
import struct
import sys
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

FILE_SUFFIXES = (b"boringssl/ssl/ssl_lib.cc\0", b"boringssl/ssl/ssl_lib.c\0")
ERR_LIB_SSL = 16
UNINITIALIZED, HANDSHAKE_FAILURE, BAD_LENGTH, SHOULD_NOT_HAVE_BEEN_CALLED = 226, 215, 111, 66
PROLOGUE = b"\x55\x48\x89\xe5"          # push rbp; mov rbp, rsp
PADDING = frozenset(b"\xcc\x90")         # int3, nop
MAX_FUNCTION_BYTES = 1 << 16


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class ErrorSite:
    address: int          # the instruction that loads the file name
    reason: int | None
    line: int | None
    function: int         # start of the function it sits in


class Binary:
    def __init__(self, path: str):
        self.file = open(path, "rb")
        self.data = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        self.elf = ELFFile(self.file)
        if self.elf["e_machine"] != "EM_X86_64":
            raise NotFound(f"{path}: not x86-64 ({self.elf['e_machine']})")
        text = self.elf.get_section_by_name(".text")
        if text is None:
            raise NotFound(f"{path}: no .text section")
        self.text_addr, self.text_off, self.text_size = text["sh_addr"], text["sh_offset"], text["sh_size"]

    def close(self) -> None:
        self.data.close()
        self.file.close()

    def vaddr(self, offset: int) -> int | None:
        for seg in self.elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_offset"] <= offset < seg["p_offset"] + seg["p_filesz"]:
                return seg["p_vaddr"] + offset - seg["p_offset"]
        return None

    def text_offset(self, vaddr: int) -> int:
        return self.text_off + vaddr - self.text_addr

    def byte_at(self, vaddr: int) -> int:
        return self.data[self.text_offset(vaddr)]


def _file_name_addresses(binary: Binary) -> list[int]:
    """Virtual addresses of the NUL-terminated ssl_lib.c(c) path strings."""
    found = []
    for suffix in FILE_SUFFIXES:
        at = binary.data.find(suffix)
        while at >= 0:
            start = at
            while start > 0 and binary.data[start - 1] not in (0,) and at - start < 256:
                start -= 1
            address = binary.vaddr(start)
            if address is not None:
                found.append(address)
            at = binary.data.find(suffix, at + 1)
    return found


def _references(binary: Binary, target: int) -> list[int]:
    """Instructions in .text that put `target` in ecx/rcx: mov ecx, imm32 (b9) or lea rcx, [rip+d] (48 8d 0d)."""
    start, end = binary.text_off, binary.text_off + binary.text_size
    refs = []
    if target < 1 << 32:
        needle = b"\xb9" + struct.pack("<I", target)
        at = binary.data.find(needle, start, end)
        while at >= 0:
            refs.append(binary.text_addr + at - start)
            at = binary.data.find(needle, at + 1, end)
    # lea rcx, [rip+disp32]: 48 8d 0d d32, target = address of the next instruction + d32
    at = binary.data.find(b"\x48\x8d\x0d", start, end)
    while at >= 0:
        disp = struct.unpack_from("<i", binary.data, at + 3)[0]
        if binary.text_addr + (at - start) + 7 + disp == target:
            refs.append(binary.text_addr + at - start)
        at = binary.data.find(b"\x48\x8d\x0d", at + 1, end)
    return refs


def _immediate_near(window: bytes, opcode: bytes) -> int | None:
    at = window.find(opcode)
    return struct.unpack_from("<I", window, at + len(opcode))[0] if at >= 0 else None


def _function_start(binary: Binary, address: int) -> int | None:
    """The start of the function around `address`: after the nearest padding run before it."""
    lowest = max(binary.text_addr, address - MAX_FUNCTION_BYTES)
    at = address & ~0xF
    while at > lowest:
        if binary.data[binary.text_offset(at):binary.text_offset(at) + 4] == PROLOGUE \
                and binary.byte_at(at - 1) in PADDING:
            return at
        at -= 16
    return None


def error_sites(binary: Binary) -> list[ErrorSite]:
    sites = []
    for name in _file_name_addresses(binary):
        for ref in _references(binary, name):
            off = binary.text_offset(ref)
            window = bytes(binary.data[off - 24:off + 40])
            if b"\xbf" + struct.pack("<I", ERR_LIB_SSL) not in window:
                continue                      # not an ERR_put_error(ERR_LIB_SSL, ...) call
            start = _function_start(binary, ref)
            if start is not None:
                sites.append(ErrorSite(ref, _immediate_near(window[24:], b"\xba"),
                                       _immediate_near(window[24:], b"\x41\xb8"), start))
    return sites


def _calls(binary: Binary, function: int, callee: int, length: int = 512) -> bool:
    """Whether the first `length` bytes of `function` hold a direct call (e8 rel32) to `callee`."""
    off = binary.text_offset(function)
    code = binary.data[off:off + length]
    at = code.find(b"\xe8")
    while at >= 0:
        if at + 5 <= len(code) and function + at + 5 + struct.unpack_from("<i", code, at + 1)[0] == callee:
            return True
        at = code.find(b"\xe8", at + 1)
    return False


def _size(binary: Binary, function: int) -> int:
    """Bytes up to the next function start (a 16-aligned prologue after padding)."""
    at = function + 16
    while at < function + MAX_FUNCTION_BYTES:
        off = binary.text_offset(at)
        if binary.data[off:off + 4] == PROLOGUE and binary.byte_at(at - 1) in PADDING:
            return at - function
        at += 16
    return MAX_FUNCTION_BYTES


def locate(path: str) -> dict[str, int]:
    """{"SSL_write": vaddr, "SSL_read": vaddr}; NotFound says why not."""
    binary = Binary(path)
    try:
        sites = error_sites(binary)
        if not sites:
            raise NotFound(f"{path}: no BoringSSL ssl_lib error sites (no file names, or not BoringSSL)")
        reasons: dict[int, set[int]] = {}
        for site in sites:
            reasons.setdefault(site.function, set()).add(site.reason)
        writes = [f for f, r in reasons.items() if {UNINITIALIZED, HANDSHAKE_FAILURE, BAD_LENGTH} <= r]
        read_impls = [f for f, r in reasons.items()
                      if {UNINITIALIZED, HANDSHAKE_FAILURE} <= r and BAD_LENGTH not in r]
        if len(writes) != 1:
            raise NotFound(f"{path}: {len(writes)} SSL_write candidates")
        reads = [f for f, r in reasons.items() if r == {SHOULD_NOT_HAVE_BEEN_CALLED}
                 and any(_calls(binary, f, impl) for impl in read_impls)]
        if not reads:
            raise NotFound(f"{path}: no SSL_read candidate (a function with the QUIC check calling ssl_read_impl)")
        return {"SSL_write": writes[0], "SSL_read": max(reads, key=lambda f: _size(binary, f))}
    finally:
        binary.close()


if __name__ == "__main__":
    try:
        print(json.dumps({name: hex(addr) for name, addr in locate(sys.argv[1]).items()}))
    except NotFound as e:
        sys.exit(str(e))
