"""The ebpf receiver, for real: probes in the kernel, real TLS clients in their
own processes (the openai and anthropic SDKs, httpx with HTTP/2, curl, Node's
fetch and the openai npm package) talking to the test LLM server
(tests/llm_server.py). Every body llmtap reports is compared, byte for byte,
with what that server logged as received and sent.

One Capture (one load of the probes) serves the module; each test tells its
spans apart by the client's pid.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from google.protobuf.json_format import MessageToJson

from ebpf_support import Capture, CapturedSpan, require_ebpf
from llmtap.receiver.ebpf.events import Drop
from llm_server import LlmServer
from llm_traffic import SECRET_MARKER, client_env, finish_client, run_client, run_concurrent, start_client

# The test server listens on localhost:<random port>; /v1/* there counts as an LLM API.
CONFIG = {"extra_endpoints": [{"host": "localhost", "path": "/v1/*"}]}


@pytest.fixture(scope="module")
def capture():
    require_ebpf()
    with Capture(CONFIG) as cap:
        yield cap


@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s


_prompts = itertools.count()


def run(kind: str, scenario: str, server, **options):
    """run_client with a prompt no other test sends, so the server's record of it is unique."""
    options.setdefault("prompt", f"{kind} {scenario} #{next(_prompts)} {os.getpid()}")
    return run_client(kind, scenario, server, **options)


def body(span: CapturedSpan, side: str) -> bytes:
    value = span.attrs.get(f"llmtap.http.{side}.body", b"")
    return value.encode() if isinstance(value, str) else value


def logged_exchange(server, request_body: bytes, timeout: float = 10):
    """The server's log record of the exchange whose request body was this."""
    deadline = time.monotonic() + timeout
    while True:
        matches = [x for x in server.exchanges() if x.request_body == request_body]
        if matches or time.monotonic() > deadline:
            assert len(matches) == 1, f"{len(matches)} server records for that request body"
            return matches[0]
        time.sleep(0.05)


def assert_same_as_server(span: CapturedSpan, server) -> None:
    x = logged_exchange(server, body(span, "request"))
    assert span.attrs["http.request.method"] == x.method
    assert span.attrs["url.full"] == f"https://localhost:{server.port}{x.path}"
    assert span.attrs["http.response.status_code"] == x.status
    assert span.attrs["network.protocol.version"] == x.protocol
    assert body(span, "response") == x.response_body
    assert span.attrs["llmtap.http.response.body.size"] == len(x.response_body_encoded or x.response_body)
    assert "llmtap.capture.lost_bytes" not in span.attrs


CLIENTS = [
    ("openai", "chat", None),
    ("openai", "chat_stream", None),
    ("openai", "responses_stream", None),
    ("openai", "chat_stream", True),
    ("anthropic", "messages", None),
    ("anthropic", "messages_stream", None),
    ("httpx", "chat_stream", True),
    ("curl", "chat_stream", False),
    ("curl", "chat_stream", True),
    ("curl", "messages_stream", True),
    ("fetch", "chat_stream", None),
    ("fetch", "messages_stream", None),
    ("openai_node", "chat_stream", None),
    ("openai_node", "responses_stream", None),
]


@pytest.mark.parametrize("kind,scenario,http2", CLIENTS, ids=[f"{k}-{s}-{'h2' if h else 'h1'}" for k, s, h in CLIENTS])
def test_a_real_client_s_exchange_is_captured_whole(capture, server, kind, scenario, http2):
    result = run(kind, scenario, server, http2=http2, headers={"x-test-pieces": "irregular"})
    (span,) = capture.of_pid(result.pid)
    assert_same_as_server(span, server)
    assert span.span.kind == span.span.SPAN_KIND_CLIENT
    assert span.span.name == f"POST {span.attrs['url.full'].split(str(server.port), 1)[1].split('?')[0]}"
    assert span.attrs["server.address"] == "localhost" and span.attrs["server.port"] == server.port
    assert span.attrs["process.pid"] == result.pid
    assert span.attrs["process.executable.name"] in ("python3", "python3.11", "python", "curl", "node")
    assert span.attrs["process.executable.path"].startswith("/")
    assert span.attrs["thread.id"] > 0
    assert span.attrs["user_agent.original"]
    assert span.resource["service.name"] == span.attrs["process.executable.name"]
    assert span.resource["host.name"] == socket.gethostname()
    assert span.span.start_time_unix_nano <= span.span.end_time_unix_nano
    assert abs(span.span.end_time_unix_nano / 1e9 - time.time()) < 60
    # Every exchange here ends normally; the SDKs hang up after an SSE stream's last event without
    # reading the chunked terminator, which is not an error.
    assert span.span.status.code == span.span.status.STATUS_CODE_UNSET, span.span.status.message
    if scenario.endswith("_stream"):
        times = span.attrs["llmtap.http.response.read.time_unix_nano"]
        ends = span.attrs["llmtap.http.response.read.end_offset"]
        assert len(times) == len(ends) > 1
        assert times == sorted(times) and ends == sorted(ends)
        assert ends[-1] == span.attrs["llmtap.http.response.body.size"]
        assert span.span.start_time_unix_nano <= times[0] <= span.span.end_time_unix_nano


def test_200_concurrent_streams_from_8_processes_each_exactly_once(capture, server):
    results = run_concurrent("httpx", "concurrent_streams", server, processes=8, requests=25, http2=True)
    pids = {r.pid for r in results}
    spans = capture.wait_for(200, lambda s: s.pid in pids, timeout=60)
    assert len(spans) == 200
    request_bodies = [body(s, "request") for s in spans]
    assert len(set(request_bodies)) == 200, "an exchange was reported twice"
    for span in spans:
        assert_same_as_server(span, server)
    assert capture.metric("llmtap_receiver_ebpf_lost_bytes_total", reason="ring_full") == 0
    assert capture.receiver.tracker.lost_bytes == 0


def test_200_concurrent_http1_connections(capture, server):
    results = run_concurrent("httpx", "concurrent_streams", server, processes=8, requests=25, http2=False)
    pids = {r.pid for r in results}
    spans = capture.wait_for(200, lambda s: s.pid in pids, timeout=60)
    assert len(spans) == 200 and len({body(s, "request") for s in spans}) == 200
    for span in spans:
        assert_same_as_server(span, server)


def test_a_1_mib_request_and_a_5_mib_response_arrive_whole(capture, server):
    result = run("httpx", "large_request", server, http2=False, size=1 << 20)
    (span,) = capture.of_pid(result.pid)
    assert len(body(span, "request")) >= 1 << 20
    assert_same_as_server(span, server)

    result = run("curl", "chat", server, headers={"x-test-response-bytes": str(5 << 20)})
    (span,) = capture.of_pid(result.pid)
    assert len(body(span, "response")) == 5 << 20
    assert_same_as_server(span, server)
    assert "llmtap.http.response.body.truncated" not in span.attrs


def test_many_exchanges_on_one_keep_alive_connection_are_kept_apart(capture, server):
    result = run("httpx", "h1_keepalive", server, count=20)
    spans = capture.of_pid(result.pid, 20)
    assert len(spans) == 20
    assert len({body(s, "request") for s in spans}) == 20
    for span in spans:
        assert_same_as_server(span, server)


def test_many_streams_on_one_http2_connection_are_kept_apart(capture, server):
    result = run("httpx", "concurrent_streams", server, count=30, http2=True)
    spans = capture.of_pid(result.pid, 30)
    assert len(spans) == 30
    assert len({s.attrs["llmtap.http.stream_id"] for s in spans}) == 30
    for span in spans:
        assert_same_as_server(span, server)


def test_gzip_responses_are_reported_decoded(capture, server):
    for kind, kw in (("curl", {"compressed": True, "http2": True}), ("httpx", {"http2": False})):
        result = run(kind, "chat_stream", server, headers={"x-test-gzip": "1"}, **kw)
        (span,) = capture.of_pid(result.pid)
        assert_same_as_server(span, server)
        assert ("content-encoding", "gzip") in [(k, v) for k, vs in span.attrs.items()
                                                if k.startswith("llmtap.http.response.header.")
                                                for v in vs for k in [k.rsplit(".", 1)[1]]]


def test_an_error_status_makes_an_error_span(capture, server):
    result = run("curl", "chat", server, headers={"x-test-status": "429", "x-test-retry-after": "7"},
                        check=False)
    (span,) = capture.of_pid(result.pid)
    assert span.attrs["http.response.status_code"] == 429
    assert span.span.status.code == span.span.status.STATUS_CODE_ERROR
    assert span.attrs["error.type"] == "429"
    assert span.attrs["llmtap.http.response.header.retry-after"] == ["7"]
    assert_same_as_server(span, server)


def test_a_stream_cut_by_the_server_reports_what_was_received(capture, server):
    result = run("curl", "chat_stream", server, headers={"x-test-cut-after-events": "3"}, check=False)
    (span,) = capture.of_pid(result.pid)
    x = logged_exchange(server, body(span, "request"))
    assert x.outcome == "cut"
    assert body(span, "response") == x.response_body and x.response_body
    assert span.span.status.code == span.span.status.STATUS_CODE_ERROR
    assert span.attrs["error.type"] == "incomplete"


def test_a_client_killed_mid_stream_gives_an_error_span_with_what_it_received(capture, server):
    started = start_client("curl", "chat_stream", server, headers={"x-test-event-delay-ms": "150"},
                           prompt=f"killed #{os.getpid()}")
    deadline = time.monotonic() + 20
    # Kill it once some of the stream has arrived (the server logs only at the end, so wait on time).
    time.sleep(1.0)
    os.kill(started.pid, signal.SIGKILL)
    finish_client(started, check=False)
    (span,) = capture.of_pid(started.pid, timeout=max(1, deadline - time.monotonic()))
    assert span.span.status.code == span.span.status.STATUS_CODE_ERROR
    assert span.attrs["error.type"] == "incomplete"
    received = body(span, "response")
    assert received.startswith(b"data: ")
    assert "exited" in span.span.status.message
    x = logged_exchange(server, body(span, "request"))
    assert x.outcome == "client_reset" and x.response_body.startswith(received)


def test_traffic_to_hosts_and_paths_not_on_the_allow_list_is_dropped_and_counted(capture, server):
    before = capture.metric("llmtap_receiver_ebpf_dropped_exchanges_total", reason="not_llm")
    health = run("curl", "get", server, path="/healthz")        # an allowed host, another path
    blob = run("fetch", "get", server, path="/static/blob?bytes=200000")
    time.sleep(1.5)  # the receiver reports its counters every second
    assert capture.spans(lambda s: s.pid in (health.pid, blob.pid)) == []
    assert capture.metric("llmtap_receiver_ebpf_dropped_exchanges_total", reason="not_llm") >= before + 2


def test_a_host_no_rule_names_is_ruled_out_in_the_kernel(capture, server):
    before = capture.receiver.probes.drops()
    env = dict(client_env(server))
    script = (
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
        "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='127.0.0.1')\n"
        "s.sendall(b'POST /v1/chat/completions HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: 2\\r\\n\\r\\n{}')\n"
        "s.recv(100000)\n"
        "for _ in range(20):\n"
        "    s.sendall(b'POST /v1/chat/completions HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: 2\\r\\n\\r\\n{}')\n"
        "    s.recv(100000)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(server.port), server.ca_file], env=env)
    assert proc.wait(30) == 0
    time.sleep(0.5)
    assert capture.spans(lambda s: s.pid == proc.pid) == []
    # After the first request, the kernel stopped copying: the other 20 were only counted.
    assert capture.receiver.probes.drops()[Drop.IGNORED_BYTES] > before[Drop.IGNORED_BYTES]


def test_non_http_bytes_over_tls_cause_no_span_and_no_crash(capture, server):
    script = (
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
        "s = ctx.wrap_socket(socket.create_connection(('localhost', int(sys.argv[1]))), server_hostname='localhost')\n"
        "s.sendall(bytes(range(256)) * 64)\n"
        "try:\n    s.recv(1000)\nexcept OSError:\n    pass\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(server.port), server.ca_file])
    proc.wait(30)
    time.sleep(0.5)
    assert capture.spans(lambda s: s.pid == proc.pid) == []
    # The receiver is still working.
    result = run("curl", "chat", server)
    (span,) = capture.of_pid(result.pid)
    assert_same_as_server(span, server)


def test_a_tls_library_inside_a_container_is_found_through_its_root(capture, server, tmp_path):
    # A container is a mount namespace: there the system path of libssl names another file, which the
    # host cannot reach by that path. The copy bound over it is that other file (its own inode).
    system_libssl = os.path.realpath("/usr/lib/x86_64-linux-gnu/libssl.so.3")
    container_libssl = tmp_path / "libssl.so.3"
    shutil.copy(system_libssl, container_libssl)
    prompt = f"from a container #{os.getpid()}"
    payload = f'{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "{prompt}"}}]}}'
    # The pause stands for a container's start-up: discovery runs at each exec in it (here `sleep`'s), and
    # attaching takes milliseconds, which a bare curl would win.
    script = (f"mount --bind {container_libssl} {system_libssl} && sleep 1 && exec curl -sS -o /dev/null --cacert "
              f"{server.ca_file} -H 'Content-Type: application/json' --data-binary '{payload}' "
              f"{server.base_url}/v1/chat/completions")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    assert proc.wait(30) == 0
    (span,) = capture.of_pid(proc.pid)
    assert_same_as_server(span, server)
    assert any(lib.path.startswith("/proc/") and "libssl.so" in lib.display_path
               for lib in capture.receiver.probes.attached)


def test_no_secret_reaches_any_span(capture, server):
    # Cookies, Authorization and x-api-key of every client: none may appear anywhere in the output.
    for kind, scenario in (("httpx", "chat"), ("fetch", "chat"), ("curl", "chat"), ("anthropic", "messages"),
                           ("openai", "chat")):
        run(kind, scenario, server)
    time.sleep(0.5)
    with capture.sink.lock:
        requests = list(capture.sink.requests)
    assert requests
    for request in requests:
        assert SECRET_MARKER.encode() not in request.SerializeToString()
        assert SECRET_MARKER not in MessageToJson(request)


def test_a_full_ring_buffer_is_counted_and_marked_on_the_span(server):
    require_ebpf()
    # A one-page ring buffer cannot hold even one full 16 KiB segment: a 1 MiB response must lose bytes.
    with Capture({**CONFIG, "ring_buffer_size": 4096}) as small:
        result = run("curl", "chat", server, headers={"x-test-response-bytes": str(1 << 20)})
        time.sleep(1.5)
        lost = small.metric("llmtap_receiver_ebpf_lost_bytes_total", reason="ring_full")
        assert lost > 0
        spans = small.spans(lambda s: s.pid == result.pid)
        for span in spans:
            assert span.attrs["llmtap.capture.lost_bytes"] > 0
            assert span.span.status.code == span.span.status.STATUS_CODE_ERROR
