"""`llmtap doctor`'s BTF check: it reads the kernel's BTF as process capture will, and says
what is off without it. (The whole doctor, as root and unprivileged: test_ebpf_service.py.)"""

from __future__ import annotations

import os

import pytest

from llmtap.doctor import btf_check
from llmtap.receiver.ebpf.btf import VMLINUX

NO_BTF = "TLS capture works without it; process capture is off (no process spans, no process tree on spans)"


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="the kernel exposes no BTF here")
def test_the_running_kernel_s_btf_is_read_for_the_fields_process_capture_needs():
    check = btf_check()
    assert check.ok, check.detail
    assert check.detail == f"{VMLINUX}: the 11 struct fields process capture reads"


def test_a_kernel_without_btf_keeps_tls_capture_and_loses_process_capture(tmp_path):
    check = btf_check(str(tmp_path / "vmlinux"))
    assert (check.ok, check.required) == (False, False)
    assert check.detail == f"{tmp_path / 'vmlinux'}: No such file or directory. {NO_BTF}"
    assert check.fix == "a kernel built with CONFIG_DEBUG_INFO_BTF=y"


def test_btf_that_is_there_but_cannot_be_read_is_not_ok(tmp_path):
    unreadable = tmp_path / "btf"
    unreadable.mkdir()  # root reads any file: a path that exists and is no file stands for it
    check = btf_check(str(unreadable))
    assert (check.ok, check.required) == (False, False)
    assert check.detail == f"{unreadable}: Is a directory. {NO_BTF}"
    assert check.fix.startswith(f"let llmtap read {unreadable}")


def test_a_file_that_is_not_btf_is_not_ok(tmp_path):
    garbage = tmp_path / "vmlinux"
    garbage.write_bytes(b"\x7fELF" + b"\0" * 60)
    check = btf_check(str(garbage))
    assert not check.ok and check.detail == f"{garbage}: not BTF data (magic 0x457f). {NO_BTF}"
