"""BoringSSL found without symbols (receiver/ebpf/boringssl.py), and which files the TLS
library finder (tlslib.py) searches for it: Bun single-file executables and files under
`attach` that export no SSL_* symbols, once per inode, found or not.

The real subject is Claude Code's native `claude` (2.1.328, pinned in tests/agents), whose
functions docs/agents.md lists; the declined ones are the machine's own binaries. No eBPF
is needed here: tests/test_agents_e2e.py captures Claude Code's traffic through the probes.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

import pytest
import yaml

from llmtap.config import ConfigError, parse
from llmtap.receiver.ebpf import boringssl
from llmtap.receiver.ebpf.tlslib import TlsLibraryFinder
from llmtap.registry import default_registry
from test_agents_e2e import CLAUDE_BIN, node_agents  # noqa: F401  (the fixture installs the agents)

# docs/agents.md, "Claude Code: BoringSSL inside a stripped Bun executable"
CLAUDE_SSL_WRITE, CLAUDE_SSL_READ, CLAUDE_SSL_READ_IMPL = 0x331e660, 0x331e810, 0x331e910


@pytest.fixture
def claude(node_agents) -> str:  # noqa: F811
    return str(CLAUDE_BIN)


@pytest.fixture
def locator_log(caplog):
    """What the finder logged about searching files for BoringSSL (it logs every search, found or not)."""
    caplog.set_level(logging.INFO, logger="llmtap.receiver.ebpf")
    return lambda: [r for r in caplog.records if "BoringSSL" in r.getMessage()]


def bun_like(tmp_path, program: str = "sleep") -> str:
    """A copy of an ordinary program with an (empty) `.bun` section: looks like a Bun executable,
    holds no BoringSSL."""
    path = tmp_path / f"bun-{program}"
    subprocess.run(["objcopy", "--add-section", ".bun=/dev/null", shutil.which(program), str(path)], check=True)
    path.chmod(0o755)
    return str(path)


# --- the locator -------------------------------------------------------------------------------


def test_claude_code_s_ssl_write_and_ssl_read_are_found_by_their_error_sites(claude):
    assert boringssl.locate(claude) == {"SSL_write": CLAUDE_SSL_WRITE, "SSL_read": CLAUDE_SSL_READ}
    with boringssl.Binary(claude) as binary:
        sites = boringssl.error_sites(binary)
        by_function: dict[int, set[tuple[int, int]]] = {}
        for site in sites:
            by_function.setdefault(site.function, set()).add((site.line, site.reason))
        # ssl_lib.cc's SSL_write: the QUIC check, UNINITIALIZED, SSL_HANDSHAKE_FAILURE, BAD_LENGTH
        assert by_function[CLAUDE_SSL_WRITE] == {(955, 66), (960, 226), (975, 215), (981, 111)}
        assert by_function[CLAUDE_SSL_READ_IMPL] == {(839, 226), (872, 215)}
        # SSL_read (SSL_peek inlined): only the QUIC check, and a call into ssl_read_impl
        assert by_function[CLAUDE_SSL_READ] == {(933, 66)}
        assert boringssl._calls(binary, CLAUDE_SSL_READ, CLAUDE_SSL_READ_IMPL)
        assert all(binary.starts_function(f) for f in (CLAUDE_SSL_WRITE, CLAUDE_SSL_READ))


@pytest.mark.parametrize("program", ["node", "curl"])
def test_binaries_without_boringssl_are_declined_not_guessed_at(program):
    path = shutil.which(program)
    with pytest.raises(boringssl.NotFound, match=f"^{re.escape(path)}: no BoringSSL ssl_lib error sites"):
        boringssl.locate(path)


def test_the_system_libssl_is_declined():
    with pytest.raises(boringssl.NotFound, match="no BoringSSL ssl_lib error sites"):
        boringssl.locate("/usr/lib/x86_64-linux-gnu/libssl.so.3")


def test_unreadable_and_malformed_files_are_declined_with_the_reason(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a program\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated"  # an ELF header whose section headers lie past the end
    program = open(shutil.which("sleep"), "rb").read()
    truncated.write_bytes(program[:4096])
    arm = tmp_path / "arm64"  # the same program, its header saying AArch64 (e_machine, at byte 18)
    arm.write_bytes(program[:18] + (183).to_bytes(2, "little") + program[20:])
    cases = {str(text): "cannot read it as an ELF file: Magic number does not match",
             str(empty): "cannot read it as an ELF file",
             str(truncated): "cannot read it as an ELF file: .*past EOF",
             str(arm): r"not x86-64 \(EM_AARCH64\)",
             str(tmp_path / "missing"): "cannot read it as an ELF file: .*No such file",
             str(tmp_path): "cannot read it as an ELF file"}
    for path, reason in cases.items():
        with pytest.raises(boringssl.NotFound, match=f"^{re.escape(path)}: .*{reason}"):
            boringssl.locate(path)


# --- which files the finder searches -----------------------------------------------------------


def test_a_bun_executable_without_ssl_symbols_is_found_by_address(claude, locator_log):
    finder = TlsLibraryFinder()
    library = finder.examine(claude, claude)
    assert library is not None and not library.symbols
    assert library.addresses == {"SSL_write": CLAUDE_SSL_WRITE, "SSL_read": CLAUDE_SSL_READ}
    [found] = locator_log()
    assert found.getMessage() == "found BoringSSL's SSL_write/SSL_read by their error sites"
    assert found.fields["file"] == claude
    assert found.fields["addresses"] == {"SSL_write": "0x331e660", "SSL_read": "0x331e810"}
    # once per inode: the exec of every later `claude` finds nothing new
    assert finder.examine(claude, claude) is None and len(locator_log()) == 1


def test_with_static_boringssl_off_a_bun_executable_is_not_searched(claude, locator_log):
    assert TlsLibraryFinder(static_boringssl=False).examine(claude, claude) is None
    assert locator_log() == []


def test_an_ordinary_binary_without_ssl_and_without_a_bun_section_is_not_searched(tmp_path, locator_log):
    finder = TlsLibraryFinder()
    for program in ("sleep", "ls", "git"):
        path = shutil.which(program)
        if path:
            assert finder.examine(path, path) is None
    assert locator_log() == []
    # the same kind of file under `attach` is searched (and declined)
    named = shutil.which("sleep")
    assert TlsLibraryFinder(named=[named]).examine(named, named) is None
    [declined] = locator_log()
    assert declined.fields["file"] == named and "no BoringSSL ssl_lib error sites" in declined.fields["reason"]


def test_a_bun_executable_the_locator_declines_is_logged_once_and_never_searched_again(tmp_path, locator_log):
    path = bun_like(tmp_path)
    finder = TlsLibraryFinder()
    proc = subprocess.Popen([path, "30"])
    try:
        assert finder.new_libraries(proc.pid) == []
        [declined] = locator_log()
        assert declined.levelno == logging.INFO
        assert declined.getMessage().startswith("TLS in this file is not captured: it exports no SSL_* symbols")
        assert declined.fields == {"file": path, "reason": f"{path}: no BoringSSL ssl_lib error sites "
                                   "(no file names kept, or not BoringSSL)"}
        # the receiver looks at a process again after its exec (0.2 s, 1 s, 3 s), and at every
        # other process of the same file: the decline is remembered by inode
        assert finder.new_libraries(proc.pid) == [] and finder.examine(path, path) is None
        assert len(locator_log()) == 1
    finally:
        proc.kill()
        proc.wait()


# --- config --------------------------------------------------------------------------------------


def test_static_boringssl_is_auto_or_off():
    def errors_of(value) -> list[str]:
        text = yaml.safe_dump({"receivers": {"ebpf": {"static_boringssl": value}}, "exporters": {"debug": {}},
                               "service": {"pipelines": {"traces": {"receivers": ["ebpf"], "exporters": ["debug"]}}}})
        try:
            parse(yaml.safe_load(text), default_registry())
        except ConfigError as e:
            return e.errors
        return []
    assert errors_of("auto") == [] and errors_of("off") == []
    [error] = errors_of("always")
    assert error.startswith("receivers::ebpf: static_boringssl: ")
