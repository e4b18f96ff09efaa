"""Finding the TLS library code inside processes, so the probes can be attached to it.

Four shapes are found:
- the system's shared `libssl.so.*` (Python's ssl, curl, most clients), by the ELF
  dynamic symbols it exports;
- a binary that links OpenSSL statically but exports its `SSL_*` symbols
  (Debian's `node`), the same way;
- a stripped binary with BoringSSL linked in and no `SSL_*` symbols: a Bun
  single-file executable (an ELF with a `.bun` section, such as Claude Code's
  `claude`) or a file under `attach`, whose SSL_write/SSL_read boringssl.py finds
  by BoringSSL's error-reporting call sites;
- any of those inside a container: paths from /proc/<pid>/maps are resolved
  through /proc/<pid>/root, which reaches the container's filesystem.

A uprobe attaches to a file (an inode), not to a process: every process that
maps the file, now or later, is traced. So each file is examined and attached
once, keyed by (device, inode), however many processes use it; a file found
to hold no TLS library is never examined again either.

Cost: reading /proc/<pid>/maps per process scanned; an ELF symbol-table and
section-header read once per distinct candidate file (the executable and mapped
files whose name says ssl), cached by inode; and, only for a Bun executable or
a file under `attach` that exports no SSL_* symbols, boringssl.py's scan (0.1 to
0.3 s for the 373 MB `claude`), once per inode, on the thread that examines.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Collection, Mapping

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from llmtap.receiver.ebpf import boringssl

log = logging.getLogger("llmtap.receiver.ebpf")

# Hooked functions. SSL_write/SSL_read are required; the _ex variants (OpenSSL
# 1.1.1+, what Python's ssl calls) and SSL_free are used where exported.
REQUIRED_SYMBOLS = frozenset({"SSL_write", "SSL_read"})
SSL_SYMBOLS = REQUIRED_SYMBOLS | {"SSL_write_ex", "SSL_read_ex", "SSL_free"}

# Bun single-file executables carry their JavaScript in this section, and BoringSSL in their code.
BUN_SECTION = ".bun"
# A mapped file is examined when its name says it may carry OpenSSL.
_CANDIDATE_NAME = re.compile(r"ssl", re.IGNORECASE)
# Where distributions keep the shared libssl: looked at on the host at start, and inside
# a container (another mount namespace) whenever one of its processes execs, so that
# even the container's first TLS call is seen.
SYSTEM_LIBSSL_GLOBS = ("/usr/lib/*/libssl.so*", "/lib/*/libssl.so*", "/usr/lib64/libssl.so*",
                       "/lib64/libssl.so*", "/usr/lib/libssl.so*", "/lib/libssl.so*", "/usr/local/lib/libssl.so*")


@dataclass(frozen=True)
class TlsLibrary:
    """Where the hooked functions are: by exported symbol name, or (BoringSSL found without
    symbols) by virtual address, as in the ELF headers."""
    path: str              # a path the kernel and bcc can open now (maybe via /proc/<pid>/root)
    display_path: str      # the path as the process sees it
    inode: tuple[int, int]
    symbols: frozenset[str] = frozenset()
    addresses: Mapping[str, int] = field(default_factory=dict, hash=False)


def exported_ssl_symbols(elf: ELFFile) -> frozenset[str]:
    """The hooked functions this ELF file defines and exports.

    Looked up by name in the dynamic symbol hash table (.gnu.hash or .hash), so a
    large binary such as node costs milliseconds, not a walk of 100k symbols.
    """
    table = _hash_table(elf) or elf.get_section_by_name(".dynsym")
    if table is None:
        return frozenset()
    return frozenset(name for name in SSL_SYMBOLS if _defines_function(table, name))


def _defines_function(table, name: str) -> bool:
    if isinstance(table, SymbolTableSection):
        symbols = table.get_symbol_by_name(name) or []
    else:
        symbols = [table.get_symbol(name)]
    return any(s is not None and s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["type"] == "STT_FUNC"
               for s in symbols)


def _hash_table(elf: ELFFile):
    for name in (".gnu.hash", ".hash"):
        section = elf.get_section_by_name(name)
        if section is not None and hasattr(section, "get_symbol"):
            return section
    return None


def _mapped_files(pid: int) -> set[str]:
    files = set()
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith("/") and not parts[5].endswith("(deleted)\n"):
                    files.add(parts[5].rstrip("\n"))
    except OSError:
        pass
    return files


class TlsLibraryFinder:
    """Remembers every file it has examined; `new_libraries(pid)` returns the
    TLS libraries of a process that were not found before.

    `static_boringssl`: whether a file that exports no SSL_* symbols is searched for
    BoringSSL (boringssl.py) when it is a Bun executable or its path is in `named`."""

    def __init__(self, *, static_boringssl: bool = True, named: Collection[str] = ()) -> None:
        self.examined: set[tuple[int, int]] = set()
        self.static_boringssl = static_boringssl
        self.named = frozenset(named)
        self._own_mounts = _mount_namespace(os.getpid())

    def library_at(self, path: str) -> TlsLibrary | None:
        """The TLS library at `path`, unless it is none or was found before."""
        return self.examine(path, path)

    def new_libraries(self, pid: int) -> list[TlsLibrary]:
        root = f"/proc/{pid}/root"
        # In another mount namespace (a container) the same path may name another file: go through its root.
        mounts = _mount_namespace(pid)
        if mounts is None:
            return []  # gone already (most short commands are, by the time their exec is read)
        same_root = mounts == self._own_mounts
        candidates: list[tuple[str, str]] = []
        if not same_root:
            # Every time, not once per namespace: a container may mount its libraries after its first exec.
            candidates += [(root + path, path) for pattern in SYSTEM_LIBSSL_GLOBS
                           for path in _glob_in(root, pattern)]
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            # /proc/<pid>/exe opens the executable even inside another mount namespace.
            candidates.append((exe if same_root else f"/proc/{pid}/exe", exe))
        except OSError:
            return []  # gone, or a kernel thread
        for path in _mapped_files(pid):
            if _CANDIDATE_NAME.search(os.path.basename(path)):
                candidates.append((path if same_root else root + path, path))
        found = (self.examine(path, display) for path, display in candidates)
        return [library for library in found if library is not None]

    def examine(self, path: str, display_path: str) -> TlsLibrary | None:
        """The TlsLibrary at `path` if it holds the hooked functions and was not examined before."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        inode = (st.st_dev, st.st_ino)
        if inode in self.examined:
            return None
        self.examined.add(inode)  # before the work: a file that fails is not tried again either
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                symbols = exported_ssl_symbols(elf)
                bun = elf.get_section_by_name(BUN_SECTION) is not None
        except (OSError, ELFError, ValueError) as e:
            log.debug("cannot read ELF symbols of %s: %s", path, e)
            return None
        if REQUIRED_SYMBOLS <= symbols:
            return TlsLibrary(path, display_path, inode, symbols)
        if self.static_boringssl and (bun or display_path in self.named):
            return _static_boringssl(path, display_path, inode)
        return None


def _static_boringssl(path: str, display_path: str, inode: tuple[int, int]) -> TlsLibrary | None:
    began = time.monotonic()
    try:
        addresses = boringssl.locate(path)
    except boringssl.NotFound as e:
        log.info("TLS in this file is not captured: it exports no SSL_* symbols and BoringSSL's "
                 "SSL_write/SSL_read were not found in it", extra={"fields": {
                     "file": display_path, "reason": str(e)}})
        return None
    log.info("found BoringSSL's SSL_write/SSL_read by their error sites", extra={"fields": {
        "file": display_path, "addresses": {name: hex(a) for name, a in addresses.items()},
        "seconds": round(time.monotonic() - began, 3)}})
    return TlsLibrary(path, display_path, inode, addresses=addresses)


def _glob_in(root: str, pattern: str) -> list[str]:
    """Paths matching `pattern` inside `root`, as seen from inside."""
    return [path[len(root):] for path in glob.glob(root + pattern)]


def system_libraries() -> list[str]:
    """The host's shared libssl files: ldconfig's cache, then the usual directories."""
    paths: list[str] = []
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=5).stdout
        paths += [line.rsplit("=>", 1)[1].strip() for line in out.splitlines()
                  if "libssl.so" in line and "=>" in line]
    except (OSError, subprocess.SubprocessError):
        pass
    return paths + [path for pattern in SYSTEM_LIBSSL_GLOBS for path in glob.glob(pattern)]


def _mount_namespace(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def running_pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
