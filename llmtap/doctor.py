"""`llmtap doctor [--fix]`: can this machine run the eBPF receiver, and if not,
what exactly is missing and how to fix it.

Each check prints `ok`, `MISSING` (the receiver cannot run) or `warn` (a part
of it is off: without readable BTF, TLS capture works and process capture is
off), with the command that fixes it. `--fix` applies the fixes that are safe
to automate as root: mounting tracefs and debugfs, installing bcc and kernel
headers with apt-get, and pointing /lib/modules/$(uname -r)/build and /source
at installed headers when none match the running kernel (enough for uprobes
and tracepoints, which do not depend on kernel struct layouts). The last check
compiles and loads the real probes, so `ok` at the end means the receiver will
start.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from llmtap.receiver.ebpf.btf import VMLINUX, BtfError, KernelTypes, process_field_offsets

TRACEFS = "/sys/kernel/tracing"
DEBUGFS = "/sys/kernel/debug"
# CapEff bits: CAP_SYS_ADMIN 21, CAP_PERFMON 38, CAP_BPF 39.
_NEEDED_CAPS = {"CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38, "CAP_BPF": 39}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""             # a command or instruction for the person
    apply: Callable[[], None] | None = None  # what --fix runs
    required: bool = True


def _kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(m[1]), int(m[2])) if m else (0, 0)


def _capabilities() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _run(cmd: list[str]) -> None:
    print("  $ " + " ".join(cmd), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, env=env)


def _apt_install(*packages: str) -> Callable[[], None]:
    def apply() -> None:
        if not shutil.which("apt-get"):
            raise RuntimeError("no apt-get here: install " + " ".join(packages) + " with your package manager")
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])
    return apply


def _mount(fstype: str, where: str) -> Callable[[], None]:
    return lambda: _run(["mount", "-t", fstype, fstype, where])


def _headers_dir() -> str:
    return f"/lib/modules/{platform.release()}/build"


def _installed_headers() -> tuple[str, str] | None:
    """(build, source) of the newest installed Debian/Ubuntu kernel headers for this architecture."""
    candidates = sorted(d for d in glob.glob("/usr/src/linux-headers-*")
                        if not d.endswith("-common") and os.path.isfile(os.path.join(d, "Makefile")))
    if not candidates:
        return None
    build = candidates[-1]
    common = re.sub(r"-[a-z0-9_]+$", "-common", build)
    return build, common if os.path.isdir(common) else build


def _link_headers() -> None:
    found = _installed_headers()
    if found is None:
        raise RuntimeError("no kernel headers in /usr/src to link")
    build, source = found
    modules = os.path.dirname(_headers_dir())
    os.makedirs(modules, exist_ok=True)
    for name, target in (("build", build), ("source", source)):
        link = os.path.join(modules, name)
        if os.path.islink(link) or not os.path.exists(link):
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(target, link)
            print(f"  linked {link} -> {target}")


def _headers_fix() -> Callable[[], None]:
    def apply() -> None:
        if _installed_headers() is None:
            arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
            exact = f"linux-headers-{platform.release()}"
            has_exact = subprocess.run(["apt-cache", "show", exact], capture_output=True).returncode == 0
            _apt_install(exact if has_exact else f"linux-headers-{arch or 'amd64'}")()
        if not os.path.isdir(_headers_dir()):
            _link_headers()
    return apply


def _load_probes() -> tuple[bool, str]:
    """Compile and load the real programs (not attached anywhere)."""
    from llmtap.receiver.ebpf.probes import EbpfUnavailable, TlsProbes
    try:
        probes = TlsProbes(1 << 20, lambda e: None, lambda m: None)
    except (EbpfUnavailable, Exception) as e:
        return False, str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    probes.close()
    return True, "bpf/tls_capture.c compiles, passes the verifier and loads"


def btf_check(path: str = VMLINUX) -> Check:
    """Process capture reads a few kernel struct offsets (parent, arguments, exit code) from the
    kernel's BTF, so the check reads them as the receiver will; TLS capture does not need BTF."""
    try:
        with open(path, "rb") as f:
            offsets = process_field_offsets(KernelTypes(f.read()))
    except OSError as e:
        problem = e.strerror or str(e)
        fix = (f"let llmtap read {path} (in a container: mount the host's /sys/kernel/btf)" if os.path.exists(path)
               else "a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    except BtfError as e:
        problem = str(e)
        fix = "a kernel with complete BTF (CONFIG_DEBUG_INFO_BTF=y) for task_struct, cred and mm_struct"
    else:
        return Check("BTF", True, f"{path}: the {len(offsets)} struct fields process capture reads", required=False)
    return Check("BTF", False, f"{path}: {problem}. TLS capture works without it; process capture is off "
                               "(no process spans, no process tree on spans)", fix=fix, required=False)


def checks() -> list[Check]:
    out: list[Check] = []
    version = _kernel_version()
    out.append(Check("kernel", version >= (5, 8), f"Linux {platform.release()}",
                     fix="the BPF ring buffer needs Linux 5.8 or newer"))
    out.append(btf_check())
    caps = _capabilities()
    missing = [n for n, bit in _NEEDED_CAPS.items() if not caps >> bit & 1]
    out.append(Check("privileges", os.geteuid() == 0 or not missing,
                     "root" if os.geteuid() == 0 else f"uid {os.geteuid()}, missing {', '.join(missing) or 'none'}",
                     fix="run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (e.g. setcap, or a "
                         "privileged container); split mode keeps the rest of llmtap unprivileged"))
    tracefs = os.path.isdir(os.path.join(TRACEFS, "events"))
    out.append(Check("tracefs", tracefs, TRACEFS + (" mounted" if tracefs else " not mounted"),
                     fix=f"mount -t tracefs tracefs {TRACEFS}", apply=None if tracefs else _mount("tracefs", TRACEFS)))
    debugfs = os.path.ismount(DEBUGFS)
    out.append(Check("debugfs", debugfs, DEBUGFS + (" mounted" if debugfs else " not mounted"),
                     fix=f"mount -t debugfs debugfs {DEBUGFS}", required=False,
                     apply=None if debugfs else _mount("debugfs", DEBUGFS)))
    uprobes = os.path.exists(os.path.join(TRACEFS, "uprobe_events")) or \
        os.path.isdir("/sys/bus/event_source/devices/uprobe")
    out.append(Check("uprobes", uprobes, "uprobe events" + ("" if uprobes else " not available"),
                     fix="a kernel built with CONFIG_UPROBE_EVENTS=y (mount tracefs first)"))
    tracepoints = os.path.isdir(os.path.join(TRACEFS, "events/sched/sched_process_exec"))
    out.append(Check("tracepoints", tracepoints, "sched:sched_process_exec/exit",
                     fix="a kernel with tracepoints (CONFIG_TRACEPOINTS) and tracefs mounted"))
    try:
        from llmtap.receiver.ebpf.probes import import_bcc
        bcc = import_bcc()
        bcc_ok, bcc_detail = True, f"bcc {getattr(bcc, '__version__', '')} ({os.path.dirname(bcc.__file__)})"
    except Exception as e:
        bcc_ok, bcc_detail = False, str(e)
    out.append(Check("bcc", bcc_ok, bcc_detail, fix="apt-get install python3-bpfcc",
                     apply=None if bcc_ok else _apt_install("python3-bpfcc")))
    headers = os.path.isdir(_headers_dir())
    exact = headers and not os.path.islink(_headers_dir())
    out.append(Check("kernel headers", headers,
                     _headers_dir() + (" (linked to " + os.path.realpath(_headers_dir()) + ")" if headers and not exact
                                       else "" if headers else " missing"),
                     fix=f"apt-get install linux-headers-{platform.release()} (or linux-headers-amd64, then link "
                         f"/lib/modules/{platform.release()}/build and /source to it): llmtap doctor --fix does both",
                     apply=None if headers else _headers_fix()))
    return out


def _print(check: Check) -> None:
    state = "ok" if check.ok else ("MISSING" if check.required else "warn")
    print(f"{state:8} {check.name:15} {check.detail}")
    if not check.ok and check.fix:
        print(f"{'':8} {'':15} fix: {check.fix}")


def main(fix: bool = False) -> int:
    results = checks()
    if fix:
        for check in results:
            if not check.ok and check.apply is not None:
                print(f"fixing {check.name}:")
                try:
                    check.apply()
                except Exception as e:
                    print(f"  could not fix {check.name}: {e}", file=sys.stderr)
        results = checks()
    for check in results:
        _print(check)
    prerequisites = all(c.ok for c in results if c.required)
    if prerequisites:
        loaded, detail = _load_probes()
        _print(Check("probes", loaded, detail, fix="see the error above; run with the checks above all ok"))
    else:
        loaded = False
        print(f"{'skipped':8} {'probes':15} fix what is MISSING first")
    print("eBPF capture: " + ("available" if loaded else "NOT available on this machine"))
    return 0 if loaded else 1
