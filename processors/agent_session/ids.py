"""Deterministic trace and span ids of an agent session (docs/genai.md, `agent_session`).

Every id is a prefix of a SHA-256 over a tag and the session key, so a span knows its trace
and its parent without waiting for any other span: children exported before their root join
it in any backend, and so do spans that arrive after it.

    session key           "agent:{pid}:{start_ns}"  the agent root process (pid + start time,
                                                    decimal: a pid alone is reused)
                          "conversation:{id}"       a gen_ai.conversation.id, for spans with no
                                                    agent root (OTLP from instrumented apps)
    trace id              sha256(b"session" + key)[:16]
    root span id          sha256(b"root" + key)[:8]     the invoke_agent span
    process span id       sha256(b"proc" + pid as 4 bytes + start_ns as 8 bytes, big-endian)[:8]
                          (the eBPF receiver names its process spans so: its function is used here)
    execute_tool span id  sha256(b"tool" + key + b"/" + tool_call_id)[:8]

Keys are UTF-8 text; `start_ns` is llmtap.process.start_time_unix_nano. A pid must be below
2**32 and a start time below 2**64 (the processor treats other values as absent).
"""

from __future__ import annotations

import hashlib

from llmtap.receiver.ebpf.processes import process_span_id  # noqa: F401  (part of this module's API)


def agent_key(pid: int, start_ns: int) -> str:
    return f"agent:{pid}:{start_ns}"


def conversation_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def _digest(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def trace_id(key: str) -> bytes:
    return _digest(b"session", key.encode())[:16]


def root_span_id(key: str) -> bytes:
    return _digest(b"root", key.encode())[:8]


def tool_span_id(key: str, tool_call_id: str) -> bytes:
    return _digest(b"tool", key.encode(), b"/", tool_call_id.encode())[:8]
