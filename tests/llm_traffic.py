"""Real TLS clients as traffic sources, each in its own OS process.

The eBPF receiver traces processes, so no client ever runs inside pytest: every
call here starts a program from tests/llm_clients/ (or curl) as a subprocess
and parses the one JSON summary it prints.

    from llm_server import LlmServer
    from llm_traffic import run_client, run_concurrent

    with LlmServer() as server:
        r = run_client("openai", "chat_stream", server)            # ClientResult
        r.pid, r.results[0]["content"]
        r = run_client("curl", "chat_stream", server, http2=True, headers={"x-test-gzip": "1"}, compressed=True)
        rs = run_concurrent("httpx", "concurrent_streams", server, processes=8, requests=25)

Kinds and their scenarios (each client module's docstring has the details):
    openai       openai Python SDK     chat chat_stream responses responses_stream models concurrent_streams
    anthropic    anthropic Python SDK  messages messages_stream models concurrent_streams
    httpx        raw httpx (+h2)       get chat chat_stream h1_keepalive concurrent_streams large_request
    fetch        node fetch (undici)   get chat chat_stream messages_stream concurrent_streams
    openai_node  openai npm package    chat chat_stream responses_stream models concurrent_streams
    curl         curl, one request     get chat chat_stream messages_stream
Keyword options: count, headers (dict, sent on every request: the x-test-* knobs
of tests/llm_server.py), http2 (True/False/None = the client's default),
prompt, model, size, path, max_retries; curl also takes compressed and body.

Every client sends secrets a test can grep for in llmtap's output: the API keys
below and, in httpx, fetch and curl, the cookie COOKIE. All contain
SECRET_MARKER. Mind the header: fetch and curl send ANTHROPIC_API_KEY as
x-api-key, but the anthropic Python SDK (2.x) sends it as
"Authorization: Bearer ...". The servers' Set-Cookie values contain the marker too.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_MARKER = "LLMTAP-SECRET"
OPENAI_API_KEY = "sk-test-LLMTAP-SECRET-openai-4f1c9a2e7b5d"
ANTHROPIC_API_KEY = "sk-ant-test-LLMTAP-SECRET-anthropic-8d3e6b0a1c9f"
COOKIE = "session=LLMTAP-SECRET-cookie-2b7f9e41c0d3"

CLIENTS_DIR = Path(__file__).resolve().parent / "llm_clients"
PYTHON_CLIENTS = {"openai": "openai_client.py", "anthropic": "anthropic_client.py", "httpx": "httpx_client.py"}
NODE_CLIENTS = {"fetch": "fetch.mjs", "openai_node": "openai_node.mjs"}
KINDS = (*PYTHON_CLIENTS, *NODE_CLIENTS, "curl")
NPM_INSTALL = ["npm", "ci", "--no-audit", "--no-fund"]
CURL = "/usr/bin/curl"


@dataclass
class ClientResult:
    kind: str
    scenario: str
    pid: int
    returncode: int
    output: dict
    stderr: str
    argv: list[str]
    seconds: float

    @property
    def results(self) -> list[dict]:
        return self.output.get("results", [])


@dataclass
class _Started:
    kind: str
    scenario: str
    proc: subprocess.Popen
    argv: list[str]
    began: float
    scratch: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid


def ensure_node_modules() -> Path:
    """Install the pinned npm packages of tests/llm_clients once (npm ci)."""
    if not (CLIENTS_DIR / "node_modules" / "openai" / "package.json").exists():
        subprocess.run(NPM_INSTALL, cwd=CLIENTS_DIR, check=True, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return CLIENTS_DIR / "node_modules"


def client_env(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(OPENAI_API_KEY=OPENAI_API_KEY, ANTHROPIC_API_KEY=ANTHROPIC_API_KEY, LLMTAP_TEST_COOKIE=COOKIE,
               SSL_CERT_FILE=server.ca_file, NODE_EXTRA_CA_CERTS=server.ca_file, NO_PROXY="*",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def client_command(kind: str, scenario: str, server, *, count: int = 1, headers: dict[str, str] | None = None,
                   http2: bool | None = None, prompt: str | None = None, model: str | None = None,
                   size: int | None = None, path: str | None = None, max_retries: int | None = None) -> list[str]:
    """The argv that runs one client program (not curl)."""
    if kind in PYTHON_CLIENTS:
        argv = [sys.executable, str(CLIENTS_DIR / PYTHON_CLIENTS[kind])]
    elif kind in NODE_CLIENTS:
        argv = [shutil.which("node") or "/usr/bin/node", str(CLIENTS_DIR / NODE_CLIENTS[kind])]
    else:
        raise ValueError(f"unknown client kind {kind!r}; one of {KINDS}")
    argv += ["--base-url", server.base_url, "--ca", server.ca_file, "--scenario", scenario, "--count", str(count)]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    if http2 is not None:
        if kind in NODE_CLIENTS and http2:
            raise ValueError("node 20's fetch has no HTTP/2")
        if kind in PYTHON_CLIENTS:
            argv.append("--http2" if http2 else "--http1")
    for flag, value in (("--prompt", prompt), ("--model", model), ("--size", size), ("--path", path),
                        ("--max-retries", max_retries)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _curl_payload(scenario: str, prompt: str, model: str | None) -> tuple[str, bytes | None, list[str]]:
    system = "You are a terse test assistant."
    if scenario == "get":
        return "GET", None, []
    if scenario in ("chat", "chat_stream"):
        payload = {"model": model or "gpt-4o-mini", "stream": scenario == "chat_stream",
                   "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]}
        if scenario == "chat_stream":
            payload["stream_options"] = {"include_usage": True}
        return "POST", json.dumps(payload).encode(), ["-H", f"Authorization: Bearer {OPENAI_API_KEY}"]
    if scenario == "messages_stream":
        payload = {"model": model or "claude-sonnet-4-5-20250929", "max_tokens": 256, "stream": True,
                   "system": system, "messages": [{"role": "user", "content": prompt}]}
        return "POST", json.dumps(payload).encode(), ["-H", f"x-api-key: {ANTHROPIC_API_KEY}",
                                                      "-H", "anthropic-version: 2023-06-01"]
    raise ValueError(f"curl has no scenario {scenario!r}")


def _start_curl(scenario: str, server, *, headers=None, http2=None, prompt=None, model=None, path=None,
                compressed: bool = False, body: bytes | None = None, count: int = 1, **unused) -> _Started:
    if count != 1:
        raise ValueError("the curl client makes one request")
    scratch = Path(tempfile.mkdtemp(prefix="llm-curl-"))
    prompt = prompt or "Say hello to llmtap"
    method, payload, auth = _curl_payload(scenario, f"{prompt} #curl", model)
    if body is not None:
        payload = body
        method = "POST" if method == "GET" else method
    url_path = path or {"get": "/healthz", "messages_stream": "/v1/messages"}.get(scenario, "/v1/chat/completions")
    argv = [CURL, "--cacert", server.ca_file, "-sS", "--no-buffer", "--http2" if http2 else "--http1.1",
            "-X", method, "-b", COOKIE, "-D", str(scratch / "headers"), "-o", str(scratch / "body"),
            "-w", "%{json}", *auth]
    if payload is not None:
        (scratch / "request").write_bytes(payload)
        argv += ["-H", "Content-Type: application/json", "--data-binary", f"@{scratch / 'request'}"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if compressed:
        argv.append("--compressed")
    argv.append(server.base_url + url_path)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=client_env(server))
    return _Started("curl", scenario, proc, argv, time.monotonic(), scratch,
                    {"prompt": f"{prompt} #curl" if payload is not None else None})


def start_client(kind: str, scenario: str, server, **options) -> _Started:
    """Start one client process; finish it with `finish_client` (its .pid is known at once)."""
    if kind == "curl":
        return _start_curl(scenario, server, **options)
    if kind == "openai_node":
        ensure_node_modules()
    argv = client_command(kind, scenario, server, **options)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=client_env(server), cwd=CLIENTS_DIR)
    return _Started(kind, scenario, proc, argv, time.monotonic())


def _curl_output(started: _Started, stdout: str, stderr: str) -> dict:
    scratch = started.scratch
    try:
        info = json.loads(stdout) if stdout.strip() else {}
        result: dict[str, Any] = {"prompt": started.options.get("prompt"),
                                  "status": info.get("response_code"), "http_version": info.get("http_version")}
        blocks = (scratch / "headers").read_bytes().decode("latin-1").split("\r\n\r\n") \
            if (scratch / "headers").exists() else []
        final = [b for b in blocks if b.strip()][-1:]           # the last block: after any 100 Continue
        result["headers"] = [tuple(line.split(": ", 1)) for line in final[0].split("\r\n")[1:]] if final else []
        body = (scratch / "body").read_bytes() if (scratch / "body").exists() else b""
        result["body_b64"] = base64.b64encode(body).decode()
        if started.proc.returncode != 0:
            result["error"] = {"type": "curl", "exit_code": started.proc.returncode, "message": stderr.strip()}
        return {"client": "curl", "scenario": started.scenario, "pid": started.pid, "results": [result]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def finish_client(started: _Started, timeout: float = 60.0, check: bool = True) -> ClientResult:
    try:
        stdout, stderr = started.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        started.proc.kill()
        stdout, stderr = started.proc.communicate()
        raise RuntimeError(f"{started.kind} {started.scenario} timed out after {timeout}s: {stderr.decode()[-2000:]}")
    out_text, err_text = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    if started.kind == "curl":
        output = _curl_output(started, out_text, err_text)
    else:
        if check and started.proc.returncode != 0:
            raise RuntimeError(f"{started.kind} {started.scenario} exited {started.proc.returncode}: "
                               f"{err_text[-3000:]}")
        lines = [line for line in out_text.splitlines() if line.strip()]
        output = json.loads(lines[-1]) if lines else {}
    return ClientResult(started.kind, started.scenario, started.pid, started.proc.returncode, output, err_text,
                        started.argv, time.monotonic() - started.began)


def run_client(kind: str, scenario: str, server, *, timeout: float = 60.0, check: bool = True,
               **options) -> ClientResult:
    """Run one client process to the end and return its parsed summary. With
    `check`, a client that crashed (not one whose request failed) raises."""
    return finish_client(start_client(kind, scenario, server, **options), timeout, check)


def run_concurrent(kind: str, scenario: str, server, processes: int = 8, requests: int = 25,
                   timeout: float = 120.0, **options) -> list[ClientResult]:
    """Start `processes` client processes at once, each making `requests`
    requests (scenario "concurrent_streams": all at the same time), and wait for all."""
    if kind == "openai_node":
        ensure_node_modules()
    started = [start_client(kind, scenario, server, count=requests, **options) for _ in range(processes)]
    return [finish_client(s, timeout) for s in started]
