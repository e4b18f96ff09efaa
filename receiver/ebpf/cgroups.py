"""A process's cgroup path, from the cgroup id the kernel reports, and the
container id that path carries.

The probes report `bpf_get_current_cgroup_id()`: the inode number of the
process's cgroup v2 directory. A short-lived process is gone before user space
could read its /proc/<pid>/cgroup, so paths are kept by id: learned from any
live process's /proc entry, and on a miss from one walk of the cgroup v2 tree
(which learns every directory it passes).

Container ids, as the runtimes name their cgroups:
    docker (systemd driver)   …/docker-<64 hex>.scope
    docker (cgroupfs driver)  /docker/<64 hex>
    containerd / CRI          …/cri-containerd-<64 hex>.scope
    CRI-O                     …/crio-<64 hex>.scope
    podman                    …/libpod-<64 hex>.scope (not libpod-conmon-…, the monitor)
    kubernetes (cgroupfs)     /kubepods/<qos>/pod<uid>/<64 hex>
The innermost one wins (a container's own nested cgroups sit below it).

Cost: a dict lookup per known id; one /proc read per process asked about whose id
is new; a tree walk per id never seen (bounded by WALK_LIMIT directories); at
most CACHE_LIMIT ids remembered.
"""

from __future__ import annotations

import os
import re

CACHE_LIMIT = 16384
WALK_LIMIT = 100_000
_CONTAINER = re.compile(r"^(?:docker-|cri-containerd-|crio-|libpod-)?([0-9a-f]{64})(?:\.scope)?$")


def container_id(path: str) -> str:
    """The container id a cgroup path carries, or ""."""
    for part in reversed(path.split("/")):
        m = _CONTAINER.match(part)
        if m and not part.startswith("libpod-conmon-"):
            return m[1]
    return ""


def _v2_mount() -> str:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or …/unified on hybrid hosts)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split()[4]
    except OSError:
        pass
    return "/sys/fs/cgroup"


class CgroupPaths:
    def __init__(self, root: str | None = None):
        self.root = root or _v2_mount()
        self._by_id: dict[int, str] = {}
        self._walked: set[int] = set()

    def _remember(self, cgroup_id: int, path: str) -> None:
        if len(self._by_id) >= CACHE_LIMIT:
            self._by_id.clear()
        self._by_id[cgroup_id] = path

    def path(self, cgroup_id: int, pid: int = 0) -> str:
        """The cgroup v2 path of id `cgroup_id` ("/system.slice/docker-….scope"), or "" if unknown.
        `pid`, when alive and in that cgroup, is asked first."""
        if cgroup_id in self._by_id:
            return self._by_id[cgroup_id]
        if pid:
            found = self._from_proc(pid)
            if found is not None and self._inode(found) == cgroup_id:
                self._remember(cgroup_id, found)
                return found
        if cgroup_id and cgroup_id not in self._walked:
            self._walked.add(cgroup_id)
            self._walk()
            return self._by_id.get(cgroup_id, "")
        return ""

    def of_process(self, pid: int) -> str:
        """A live process's cgroup path, from /proc (v2; on a v1-only host, its first hierarchy)."""
        return self._from_proc(pid) or ""

    @staticmethod
    def _from_proc(pid: int) -> str | None:
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        v2 = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
        if v2 is not None or not lines:
            return v2
        return lines[0].split(":", 2)[-1]

    def _inode(self, path: str) -> int:
        try:
            return os.stat(self.root + path).st_ino
        except OSError:
            return -1

    def _walk(self) -> None:
        seen = 0
        stack = [""]
        while stack and seen < WALK_LIMIT:
            rel = stack.pop()
            try:
                with os.scandir(self.root + (rel or "/")) as it:
                    for entry in it:
                        if entry.is_dir(follow_symlinks=False):
                            child = f"{rel}/{entry.name}"
                            self._remember(entry.inode(), child)
                            stack.append(child)
                            seen += 1
            except OSError:
                continue
        try:
            self._remember(os.stat(self.root).st_ino, "/")
        except OSError:
            pass
