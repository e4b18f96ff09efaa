"""The small parts of process capture: secret arguments, agent patterns, container
ids from cgroup paths, and kernel struct offsets from BTF."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from llmtap.configtypes import decode_config
from llmtap.receiver.ebpf.agents import AgentPatterns, agent_name, script_of
from llmtap.receiver.ebpf.argsecrets import REDACTED, redact_args
from llmtap.receiver.ebpf.btf import VMLINUX, BtfError, KernelTypes, process_field_offsets
from llmtap.receiver.ebpf.cgroups import container_id
from llmtap.receiver.ebpf.config import Config
from llmtap.secretpatterns import GLUED_PASSWORD_FLAGS, PASSWORD_VALUE_FLAGS, USER_PASSWORD_FLAGS
from secret_examples import IN_CONTEXT, TOKENS, example_secret, name

R = REDACTED


@pytest.mark.parametrize("argv,expected", [
    (["curl", "-sS", "-H", "Authorization: Bearer abc.def-123", "https://api.example.com/v1/x"],
     ["curl", "-sS", "-H", f"Authorization: Bearer {R}", "https://api.example.com/v1/x"]),
    (["curl", "-H", "x-api-key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv", "-u", "bob:hunter2", "https://h/"],
     ["curl", "-H", f"x-api-key: {R}", "-u", f"bob:{R}", "https://h/"]),
    (["curl", "-b", "session=2b7f9e41c0d3:x", "-H", "Cookie: sid=abc", "https://h/"],
     ["curl", "-b", R, "-H", f"Cookie: {R}", "https://h/"]),
    (["bash", "-c", 'curl -s -H "Authorization: Bearer $T" "https://h/x?api_key=abc123&q=1" | jq .data'],
     ["bash", "-c", f'curl -s -H "Authorization: Bearer {R}" "https://h/x?api_key={R}&q=1" | jq .data']),
    (["env", "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx", "GITHUB_TOKEN=ghp_" + "a" * 36, "HOME=/root",
      "python3", "agent.py"],
     ["env", f"OPENAI_API_KEY={R}", f"GITHUB_TOKEN={R}", "HOME=/root", "python3", "agent.py"]),
    (["tool", "--api-key", "abc", "--password=pw", "--token-file", "/run/token", "--no-auth", "https://u"],
     ["tool", "--api-key", R, f"--password={R}", "--token-file", "/run/token", "--no-auth", "https://u"]),
    (["mysql", "-uroot", "-phunter2", "shop"], ["mysql", "-uroot", f"-p{R}", "shop"]),
    (["sshpass", "-p", "hunter2", "ssh", "-p", "2222", "host"], ["sshpass", "-p", R, "ssh", "-p", "2222", "host"]),
    (["curl", "-u", "sk_live_zGtSnovm14TUOizwd1iaeOV4:", "https://api.stripe.com/v1/charges"],
     ["curl", "-u", f"{R}:{R}", "https://api.stripe.com/v1/charges"]),
    (["git", "clone", "https://bob:s3cr3t@git.example.com/x.git"],
     ["git", "clone", f"https://bob:{R}@git.example.com/x.git"]),
    (["aws", "--access-key-id", "AKIAIOSFODNN7EXAMPLE"], ["aws", "--access-key-id", R]),
    (["node", "x.js", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"],
     ["node", "x.js", R]),
    (["slack", "xoxb-123456789012-abcdefghij"], ["slack", R]),
    (["gcloud", "AIza" + "B" * 35], ["gcloud", R]),
    # Nothing secret: left alone.
    (["ls", "-la", "/tmp"], ["ls", "-la", "/tmp"]),
    (["sort", "-u", "a:b"], ["sort", "-u", "a:b"]),
    (["ssh", "-p", "2222", "host"], ["ssh", "-p", "2222", "host"]),
    (["grep", "-r", "password", "src/"], ["grep", "-r", "password", "src/"]),
    (["redis-cli", "-h", "cache", "-p", "6380", "-a", "pw", "ping"],
     ["redis-cli", "-h", "cache", "-p", "6380", "-a", R, "ping"]),
    (["curl", "-b", "cookies.txt", "--user=bob:pw", "https://h/"],
     ["curl", "-b", "cookies.txt", f"--user=bob:{R}", "https://h/"]),
    (["htpasswd", "-b", "-c", "/etc/nginx/.htpasswd", "admin", "s3cret"],
     ["htpasswd", "-b", "-c", "/etc/nginx/.htpasswd", "admin", R]),
    (["htpasswd", "-c", "/etc/nginx/.htpasswd", "admin"], ["htpasswd", "-c", "/etc/nginx/.htpasswd", "admin"]),
    (["psql", "host=db user=app password=s3cretpw dbname=shop"],
     ["psql", f"host=db user=app password={R} dbname=shop"]),
    (["docker", "exec", "db", "mysql", "-pX1", "shop"], ["docker", "exec", "db", "mysql", f"-p{R}", "shop"]),
    (["bash", "-c", "mysql -u root -phunter2 shop; redis-cli -p 6380 -a s3cretpw ping"],
     ["bash", "-c", f"mysql -u root -p{R} shop; redis-cli -p 6380 -a {R} ping"]),
    # The AWS secret key (40 characters of base64) only in a command line that speaks of AWS or secrets.
    (["aws", "configure", "set", "aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
     ["aws", "configure", "set", "aws_secret_access_key", R]),
    (["cp", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "/tmp"],
     ["cp", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "/tmp"]),
])
def test_secret_looking_argument_values_are_redacted(argv, expected):
    assert redact_args(argv) == expected


@pytest.mark.parametrize("argv", [
    ["psql", "--password", "shop"],                        # asks on the terminal; shop is the database
    ["pg_dump", "-h", "db", "-W", "shop"],
    ["sudo", "-u", "postgres", "psql", "--password", "shop"],
    ["bash", "-c", "psql -h db --password shop | head"],
    ["mysql", "--password", "shop"],                       # without '=' it prompts too
    ["mysql", "-u", "root", "-p", "shop"],
    ["curl", "-u", "bob", "https://h/"],                   # a user name alone: curl asks for the password
    ["mongod", "--auth", "--port", "27017"],               # followed by the next option: a switch
    ["ansible-playbook", "--ask-pass", "--ask-become-pass", "site.yml"],
    ["gh", "auth", "login", "--with-token", "--hostname", "github.example.com"],
    ["pg_restore", "--no-password", "-d", "shop", "shop.dump"],
])
def test_switches_named_like_credentials_keep_the_next_argument(argv):
    assert redact_args(argv) == argv


@pytest.mark.parametrize("pattern", TOKENS, ids=name)
def test_every_token_format_of_the_shared_table_is_redacted_in_argv(pattern):
    key = pattern.example
    url = "https://api.example.com/v1/models"
    assert redact_args(["curl", "-H", f"x-api-key: {key}", url]) == ["curl", "-H", f"x-api-key: {R}", url]
    assert redact_args(["env", f"OPENAI_API_KEY={key}", "python", "a.py"]) == \
        ["env", f"OPENAI_API_KEY={R}", "python", "a.py"]
    assert redact_args(["bash", "-c", f"OPENAI_API_KEY='{key}' python a.py"]) == \
        ["bash", "-c", f"OPENAI_API_KEY='{R}' python a.py"]
    assert redact_args(["tool", f"--token={key}"]) == ["tool", f"--token={R}"]
    # Only its format says what it is:
    assert redact_args(["python", "a.py", key]) == ["python", "a.py", R]
    assert redact_args(["bash", "-c", f"echo '{key}' | base64"]) == ["bash", "-c", f"echo '{R}' | base64"]


@pytest.mark.parametrize("pattern", IN_CONTEXT, ids=name)
def test_every_secret_in_context_of_the_shared_table_is_redacted_in_a_script(pattern):
    secret = example_secret(pattern)
    [script] = redact_args(["bash", "-c", pattern.example])[2:]
    assert secret not in script and R in script


@pytest.mark.parametrize("argv, expected", [
    *[([command, "-h", "db", flag + "s3cr3t", "shop"], [command, "-h", "db", flag + R, "shop"])
      for command, flags in GLUED_PASSWORD_FLAGS.items() for flag in flags],
    *[([command, flag, "s3cr3t", "x"], [command, flag, R, "x"])
      for command, flags in PASSWORD_VALUE_FLAGS.items() for flag in flags],
    *[([command, flag, "bob:s3cr3t", "x"], [command, flag, f"bob:{R}", "x"])
      for command, flags in USER_PASSWORD_FLAGS.items() for flag in flags],
], ids=lambda v: " ".join(v))
def test_the_table_s_command_line_passwords_are_redacted_argument_by_argument_and_in_scripts(argv, expected):
    assert redact_args(argv) == expected
    assert redact_args(["sh", "-c", " ".join(argv)]) == ["sh", "-c", " ".join(expected)]


def test_the_receiver_s_redaction_does_not_load_presidio():
    """The capture process of split mode stays small: no presidio, no spaCy."""
    code = ("import sys, llmtap.receiver.ebpf, llmtap.receiver.ebpf.argsecrets; "
            "assert not {'presidio_analyzer', 'spacy'} & set(sys.modules), sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_redaction_keeps_the_input_list():
    argv = ["curl", "-u", "bob:pw", "https://h/"]
    redact_args(argv)
    assert argv == ["curl", "-u", "bob:pw", "https://h/"]


def test_agent_patterns_match_executables_and_interpreter_scripts():
    patterns = AgentPatterns(["claude", "gemini", "python:my_agent.py", "/opt/agents/*"])
    assert patterns.match("claude", "/usr/local/bin/claude", ["claude", "-p", "hi"]) == "claude"
    assert patterns.match("node", "/usr/bin/node", ["node", "/usr/local/bin/gemini", "--yolo"]) == "gemini"
    assert patterns.match("python3.11", "/usr/bin/python3.11", ["python3", "-u", "/srv/my_agent.py"]) == "my_agent"
    assert patterns.match("runner", "/opt/agents/runner", ["runner"]) == "runner"
    assert patterns.match("python3.11", "/usr/bin/python3.11", ["python3", "other.py"]) is None
    assert patterns.match("cat", "/usr/bin/cat", ["cat", "claude"]) is None  # cat runs no script
    assert patterns.match("node", "/usr/bin/node", ["node", "-e", "gemini()"]) is None


def test_an_agent_is_named_after_its_script_or_executable():
    assert agent_name("node", ["node", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"]) == "claude-code"
    assert agent_name("python3", ["python3", "-m", "mypkg.agent"]) == "mypkg.agent"
    assert agent_name("python3", ["python3", "-c", "print(1)"]) == "python3"
    assert agent_name("bun", ["bun", "run", "agent.ts"]) == "agent"
    assert agent_name("codex", ["codex", "exec", "fix it"]) == "codex"
    assert script_of("java", ["java", "-Xmx1g", "-jar", "app.jar"]) == "app.jar"


def test_the_agent_list_and_argument_bound_are_validated():
    _, errors = decode_config(Config, {"processes": {"agents": ["python:"], "max_args_bytes": 0}})
    assert errors == ["processes: agents[0]: 'python:' must be NAME or INTERPRETER:SCRIPT (globs)",
                      "processes: max_args_bytes: must be 1..16080; got 0"]
    config, errors = decode_config(Config, {"processes": {"window": "10s", "agents": ["aider"]}})
    assert not errors and config.processes.window == 10 and config.processes.agents == ["aider"]


@pytest.mark.parametrize("path,expected", [
    ("/system.slice/docker-" + "0123456789abcdef" * 4 + ".scope", "0123456789abcdef" * 4),
    ("/docker/" + "a" * 64, "a" * 64),
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + "b" * 64
     + ".scope", "b" * 64),
    ("/kubepods/burstable/pod8f2e/" + "c" * 64, "c" * 64),
    ("/machine.slice/libpod-" + "d" * 64 + ".scope/container", "d" * 64),
    ("/machine.slice/libpod-conmon-" + "e" * 64 + ".scope", ""),
    ("/system.slice/crio-" + "f" * 64 + ".scope", "f" * 64),
    ("/user.slice/user-1000.slice/session-2.scope", ""),
    ("/", ""),
])
def test_container_ids_come_from_the_runtimes_cgroup_names(path, expected):
    assert container_id(path) == expected


# --- BTF ---------------------------------------------------------------------------------


def btf_blob() -> bytes:
    """A BTF blob as the kernel writes it: mm_struct keeps arg_start/arg_end in an anonymous struct
    (reached through a const), flags is a bit field."""
    strings = b"\0int\0mm_struct\0x\0arg_start\0arg_end\0flags\0odd\0"
    off = {name: strings.index(b"\0" + name.encode() + b"\0") + 1 for name in
           ("int", "mm_struct", "x", "arg_start", "arg_end", "flags", "odd")}

    def btf_type(name, kind, vlen, size_or_type, kind_flag=0):
        return struct.pack("<III", name, (kind_flag << 31) | (kind << 24) | vlen, size_or_type)

    def member(name, type_id, bit_offset):
        return struct.pack("<III", name, type_id, bit_offset)

    types = (btf_type(off["int"], 1, 0, 4) + struct.pack("<I", 32)                        # 1: int
             + btf_type(0, 4, 2, 8) + member(off["arg_start"], 1, 0) + member(off["arg_end"], 1, 32)  # 2
             + btf_type(0, 10, 0, 2)                                                      # 3: const → 2
             + btf_type(off["mm_struct"], 4, 4, 24, kind_flag=1)                          # 4: mm_struct
             + member(off["x"], 1, 0) + member(0, 3, 64)
             + member(off["flags"], 1, (3 << 24) | 128) + member(off["odd"], 1, (1 << 24) | 131))
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def test_btf_gives_offsets_through_anonymous_members():
    kernel = KernelTypes(btf_blob())
    assert kernel.offset("mm_struct", "x") == 0
    assert kernel.offset("mm_struct", "arg_start") == 8
    assert kernel.offset("mm_struct", "arg_end") == 12
    assert kernel.offset("mm_struct", "flags") == 16
    with pytest.raises(BtfError, match="bit field"):
        kernel.offset("mm_struct", "odd")
    with pytest.raises(BtfError, match="no field nope"):
        kernel.offset("mm_struct", "nope")
    with pytest.raises(BtfError, match="no struct task_struct"):
        kernel.offset("task_struct", "pid")
    with pytest.raises(BtfError, match="not BTF"):
        KernelTypes(b"\0" * 64)


@pytest.mark.skipif(not os.access(VMLINUX, os.R_OK), reason="the kernel exposes no BTF here")
def test_the_running_kernel_s_btf_has_every_field_the_probes_read():
    offsets = process_field_offsets()
    assert offsets["LLMTAP_OFF_TASK_TGID"] == offsets["LLMTAP_OFF_TASK_PID"] + 4  # pid_t pid; pid_t tgid;
    assert offsets["LLMTAP_OFF_MM_ARG_END"] == offsets["LLMTAP_OFF_MM_ARG_START"] + 8
    assert all(v > 0 for k, v in offsets.items() if k != "LLMTAP_OFF_CRED_EUID")
