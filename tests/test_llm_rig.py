"""The eBPF capture tests' rig, checked on its own (no eBPF): tests/llm_server.py
answers like the providers, every client in tests/llm_clients/ (and curl) talks
to it from its own process over the protocol it should, the official SDKs
assemble the server's streams, and the server's log holds, byte for byte, what
the clients sent and received, under every behaviour knob."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from collections import Counter

import pytest

from llm_server import Knobs, LlmServer, Request, make_test_pki, plan_response, schedule
from llm_traffic import (ANTHROPIC_API_KEY, COOKIE, OPENAI_API_KEY, SECRET_MARKER, run_client,
                         run_concurrent)

MiB = 1 << 20


@pytest.fixture(scope="module")
def server():
    with LlmServer() as s:
        yield s
        assert "Traceback" not in s.stderr(), s.stderr()


class Mark:
    """The exchanges logged from here on (tests run one at a time)."""

    def __init__(self, server: LlmServer):
        self.server, self.start = server, len(server.records())

    def new(self, n: int):
        got = self.server.exchanges(wait_for=self.start + n)[self.start:]
        assert len(got) == n, [(e.method, e.path, e.outcome) for e in got]
        return got


def sse_json(exchange) -> list[dict]:
    return [json.loads(d) for d in exchange.sse_data() if d != "[DONE]"]


def reply_text(exchange) -> str:
    """The assistant text in a logged response, the way the provider's wire format carries it."""
    if exchange.response_header("content-type").startswith("text/event-stream"):
        events = sse_json(exchange)
        if exchange.path.startswith("/v1/chat"):
            return "".join(c["delta"].get("content", "") for e in events for c in e["choices"])
        if exchange.path.startswith("/v1/responses"):
            return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    body = exchange.response_json()
    if exchange.path.startswith("/v1/chat"):
        return body["choices"][0]["message"]["content"]
    if exchange.path.startswith("/v1/responses"):
        return body["output"][0]["content"][0]["text"]
    return "".join(b["text"] for b in body["content"])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def carries_secret(exchange) -> bool:
    return any(SECRET_MARKER in v for _, v in exchange.request_headers)


# --- the server's sans-IO half ---------------------------------------------------


def request(path: str, payload: dict | None = None, **knobs: str) -> Request:
    headers = [("content-type", "application/json")] + [(f"x-test-{k.replace('_', '-')}", v) for k, v in knobs.items()]
    return Request("POST" if payload is not None else "GET", path, headers,
                   json.dumps(payload or {}).encode(), seq=7)


CHAT_STREAM = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
               "messages": [{"role": "user", "content": "hi"}]}


def test_openai_chat_stream_follows_the_chunk_format():
    req = request("/v1/chat/completions", CHAT_STREAM)
    plan = plan_response(req, Knobs.from_request(req))
    assert plan.events[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(e[len(b"data: "):]) for e in plan.events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


def test_cut_and_gzip_pieces_are_prefixes_of_the_whole_body():
    req = request("/v1/chat/completions", CHAT_STREAM, gzip="1", pieces="irregular", cut_after_bytes="700")
    knobs = Knobs.from_request(req)
    plan = plan_response(req, knobs)
    pieces, cut = schedule(plan, knobs)
    body = b"".join(plan.events)
    assert b"".join(p.plain for p in pieces) == body
    assert gzip.decompress(b"".join(p.wire for p in pieces)) == body
    sent = pieces[:cut]
    assert b"".join(p.plain for p in sent) == body[:700]
    assert zlib.decompressobj(31).decompress(b"".join(p.wire for p in sent)) == body[:700]
    assert all(1 <= len(p.plain) <= 97 for p in pieces) and all(0.001 <= p.delay <= 0.02 for p in pieces)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
def test_response_bytes_makes_a_json_body_of_exactly_that_size(path):
    payload = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for size in (2000, 12_345, 5 * MiB):
        req = request(path, payload, response_bytes=str(size))
        assert sum(map(len, plan_response(req, Knobs.from_request(req)).events)) == size


def test_make_test_pki_reuses_what_is_there(tmp_path):
    first = make_test_pki(tmp_path)
    ca = open(first[0], "rb").read()
    assert make_test_pki(tmp_path) == first and open(first[0], "rb").read() == ca


# --- curl: HTTP/1.1 and HTTP/2 ------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_curl_stream_is_logged_byte_for_byte(server, http2):
    mark = Mark(server)
    r = run_client("curl", "chat_stream", server, http2=http2)
    (res,) = r.results
    assert "error" not in res and res["status"] == 200 and res["http_version"] == ("2" if http2 else "1.1")
    (ex,) = mark.new(1)
    assert ex.protocol == ("2" if http2 else "1.1") and ex.outcome == "complete"
    assert base64.b64decode(res["body_b64"]) == ex.response_body
    assert json.loads(ex.request_body)["messages"][1]["content"] == res["prompt"]
    assert ex.request_header("authorization") == f"Bearer {OPENAI_API_KEY}"
    assert ex.request_header("cookie") == COOKIE
    wire_headers = {k.lower(): v for k, v in res["headers"]}
    for name, value in ex.response_headers:
        assert wire_headers[name.lower()] == value
    if not http2:
        assert ex.response_header("transfer-encoding") == "chunked"
    assert res["prompt"] in reply_text(ex)


# --- the official SDKs ------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_openai_sdk_assembles_the_chat_stream(server, http2):
    mark = Mark(server)
    r = run_client("openai", "chat_stream", server, http2=http2)
    (res,) = r.results
    assert "error" not in res, res
    (ex,) = mark.new(1)
    assert ex.protocol == ("2" if http2 else "1.1")
    assert res["content"] == reply_text(ex) == "".join(res["deltas"])
    assert res["prompt"] in res["content"] and "日本語" in res["content"]
    events = sse_json(ex)
    assert res["usage"]["total_tokens"] == events[-1]["usage"]["total_tokens"]
    assert res["id"] == events[0]["id"] and res["model"] == "gpt-4o-mini-2024-07-18"
    request = ex.request_json()
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert r.output["sent"] == [{"method": "POST", "path": "/v1/chat/completions",
                                 "body_sha256": sha(ex.request_body), "body_len": len(ex.request_body)}]
    assert ex.request_header("authorization") == f"Bearer {OPENAI_API_KEY}"


def test_openai_sdk_chat_and_responses(server):
    mark = Mark(server)
    chat = run_client("openai", "chat", server).results[0]
    stream = run_client("openai", "responses_stream", server, http2=True).results[0]
    chat_ex, stream_ex = mark.new(2)
    assert chat["content"] == reply_text(chat_ex)
    assert chat["usage"]["total_tokens"] == chat_ex.response_json()["usage"]["total_tokens"]
    assert stream_ex.protocol == "2" and stream["content"] == reply_text(stream_ex)
    assert stream["status"] == "completed"
    types = [e["type"] for e in sse_json(stream_ex)]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert [e["sequence_number"] for e in sse_json(stream_ex)] == list(range(len(types)))
    assert stream_ex.sse_data()[0] and stream_ex.response_body.startswith(b"event: response.created\ndata: ")
    assert stream["event_types"] == list(dict.fromkeys(types))


def test_anthropic_sdk_stream_yields_the_final_message(server):
    mark = Mark(server)
    r = run_client("anthropic", "messages_stream", server, headers={"x-test-pieces": "irregular"})
    (res,) = r.results
    assert "error" not in res, res
    (ex,) = mark.new(1)
    assert res["content"] == reply_text(ex) == "".join(res["deltas"]) and res["stop_reason"] == "end_turn"
    types = [e["type"] for e in sse_json(ex)]
    assert types[:3] == ["message_start", "content_block_start", "ping"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert res["usage"]["output_tokens"] == sse_json(ex)[-2]["usage"]["output_tokens"]
    assert len(ex.pieces) > 20 and max(n for _, n in ex.pieces) <= 97
    # anthropic 2.x sends the API key as a bearer token, not as x-api-key
    assert ANTHROPIC_API_KEY in (ex.request_header("x-api-key"), ex.request_header("authorization")[len("Bearer "):])
    assert r.output["sent"][0]["body_sha256"] == sha(ex.request_body)


def test_anthropic_sdk_non_streamed_over_http2(server):
    mark = Mark(server)
    (res,) = run_client("anthropic", "messages", server, http2=True).results
    (ex,) = mark.new(1)
    assert ex.protocol == "2" and res["content"] == reply_text(ex) and res["id"] == ex.response_json()["id"]


def test_openai_sdk_reads_a_stream_split_mid_event_and_mid_character(server):
    mark = Mark(server)
    (res,) = run_client("openai", "chat_stream", server, headers={"x-test-pieces": "irregular"}).results
    (ex,) = mark.new(1)
    assert "error" not in res and res["content"] == reply_text(ex)
    cuts = [sum(n for _, n in ex.pieces[:i]) for i in range(1, len(ex.pieces))]
    body = ex.response_body
    assert any(0x80 <= body[c] < 0xC0 for c in cuts), "some write should split a UTF-8 character"


# --- raw httpx: one HTTP/2 connection, one keep-alive HTTP/1.1 connection, a big upload


def test_httpx_concurrent_streams_share_one_http2_connection(server):
    mark = Mark(server)
    r = run_client("httpx", "concurrent_streams", server, count=10)
    logged = {json.loads(e.request_body)["messages"][1]["content"]: e for e in mark.new(10)}
    assert len({e.connection for e in logged.values()}) == 1 and len({e.stream for e in logged.values()}) == 10
    for res in r.results:
        ex = logged[res["prompt"]]
        assert ex.protocol == "2" and res["http_version"] == "HTTP/2"
        assert base64.b64decode(res["body_b64"]) == ex.response_body
        assert res["request_sha256"] == sha(ex.request_body)
        assert ex.request_header("cookie") == COOKIE and carries_secret(ex)


def test_httpx_sequential_requests_reuse_one_http1_connection(server):
    mark = Mark(server)
    r = run_client("httpx", "h1_keepalive", server, count=6)
    logged = mark.new(6)
    assert {e.protocol for e in logged} == {"1.1"} and len({e.connection for e in logged}) == 1
    assert [e.stream for e in logged] == [1, 2, 3, 4, 5, 6]
    for res, ex in zip(r.results, logged):
        assert base64.b64decode(res["body_b64"]) == ex.response_body
        assert res["request_sha256"] == sha(ex.request_body)
    assert [e.response_header("transfer-encoding") for e in logged] == [None, "chunked"] * 3


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_httpx_one_mebibyte_request_arrives_whole(server, http2):
    mark = Mark(server)
    (res,) = run_client("httpx", "large_request", server, http2=http2).results
    (ex,) = mark.new(1)
    assert res["status"] == 200 and ex.protocol == ("2" if http2 else "1.1")
    assert len(ex.request_body) == res["request_len"] == MiB and sha(ex.request_body) == res["request_sha256"]


# --- node: fetch (undici) and the openai npm package ------------------------------


def test_node_fetch_streams_and_posts_over_http1(server):
    mark = Mark(server)
    stream = run_client("fetch", "chat_stream", server).results[0]
    chat = run_client("fetch", "chat", server).results[0]
    anthropic = run_client("fetch", "messages_stream", server).results[0]
    logged = mark.new(3)
    # Node 20's fetch offers only http/1.1 in ALPN, so it never speaks HTTP/2.
    assert {e.protocol for e in logged} == {"1.1"}
    for res, ex in zip([stream, chat, anthropic], logged):
        assert res["status"] == 200 and base64.b64decode(res["body_b64"]) == ex.response_body
        assert res["content"] == reply_text(ex) and res["prompt"] in res["content"]
        assert ex.request_header("cookie") == COOKIE and carries_secret(ex)


def test_openai_node_sdk_assembles_streams(server):
    mark = Mark(server)
    chat = run_client("openai_node", "chat_stream", server).results[0]
    responses = run_client("openai_node", "responses_stream", server).results[0]
    chat_ex, responses_ex = mark.new(2)
    assert "error" not in chat and chat["content"] == reply_text(chat_ex) == "".join(chat["deltas"])
    assert chat["usage"]["total_tokens"] == sse_json(chat_ex)[-1]["usage"]["total_tokens"]
    assert responses["content"] == reply_text(responses_ex) and responses["status"] == "completed"
    assert chat_ex.protocol == "1.1" and chat_ex.request_header("authorization") == f"Bearer {OPENAI_API_KEY}"


# --- the behaviour knobs ----------------------------------------------------------


def test_gzip_logs_the_decoded_body_and_the_bytes_sent(server):
    mark = Mark(server)
    (curl,) = run_client("curl", "chat", server, http2=True, headers={"x-test-gzip": "1"}, compressed=True).results
    (httpx_res,) = run_client("httpx", "chat_stream", server, headers={"x-test-gzip": "1"}).results
    curl_ex, httpx_ex = mark.new(2)
    for ex in (curl_ex, httpx_ex):
        assert ex.content_encoding == "gzip" and ex.response_header("content-encoding") == "gzip"
        assert gzip.decompress(ex.response_body_encoded) == ex.response_body
    assert base64.b64decode(curl["body_b64"]) == curl_ex.response_body
    assert int(curl_ex.response_header("content-length")) == len(curl_ex.response_body_encoded)
    assert base64.b64decode(httpx_res["raw_b64"]) == httpx_ex.response_body_encoded
    assert base64.b64decode(httpx_res["body_b64"]) == httpx_ex.response_body
    assert reply_text(httpx_ex).startswith("Hello from the llmtap test model")


def test_error_statuses_have_the_providers_bodies(server):
    mark = Mark(server)
    rate = run_client("openai", "chat", server, headers={"x-test-status": "429", "x-test-retry-after": "2"})
    auth = run_client("curl", "chat", server, headers={"x-test-status": "401"})
    boom = run_client("curl", "chat", server, http2=True, headers={"x-test-status": "500"})
    over = run_client("anthropic", "messages", server, headers={"x-test-status": "529"})
    rate_ex, auth_ex, boom_ex, over_ex = mark.new(4)

    err = rate.results[0]["error"]
    assert err["type"] == "RateLimitError" and err["status"] == 429 and err["headers"]["retry-after"] == "2"
    assert rate_ex.status == 429 and rate_ex.response_json()["error"]["code"] == "rate_limit_exceeded"
    assert auth_ex.status == 401 and auth.results[0]["status"] == 401
    assert auth_ex.response_json()["error"]["code"] == "invalid_api_key"
    assert boom_ex.status == 500 and boom_ex.response_json()["error"]["type"] == "server_error"
    assert over.results[0]["error"]["status"] == 529
    assert over_ex.response_json()["error"]["type"] == "overloaded_error" and over_ex.response_header("retry-after")
    assert len(over.output["sent"]) == 1                      # max_retries=0: no silent retries


def test_bad_json_and_unknown_paths_get_provider_errors(server):
    mark = Mark(server)
    bad = run_client("curl", "chat", server, body=b"{not json")
    lost = run_client("curl", "get", server, path="/v1/nope", http2=True)
    bad_ex, lost_ex = mark.new(2)
    assert bad.results[0]["status"] == 400 and bad_ex.request_body == b"{not json"
    assert bad_ex.response_json()["error"]["type"] == "invalid_request_error"
    assert lost_ex.status == 404 and "/v1/nope" in lost_ex.response_json()["error"]["message"]


def test_cut_mid_stream_over_http1_closes_the_connection(server):
    mark = Mark(server)
    (res,) = run_client("httpx", "chat_stream", server, headers={"x-test-cut-after-events": "5"}).results
    (ex,) = mark.new(1)
    assert ex.cut and ex.outcome == "cut" and res["error"]["type"] == "RemoteProtocolError"
    assert base64.b64decode(res["body_b64"]) == ex.response_body
    assert len(ex.sse_data()) == 5 and ex.response_body.endswith(b"\n\n")


def test_cut_of_an_sdk_stream_reports_what_arrived(server):
    mark = Mark(server)
    (res,) = run_client("openai", "chat_stream", server, http2=True,
                        headers={"x-test-cut-after-bytes": "1000", "x-test-pieces": "irregular"}).results
    (ex,) = mark.new(1)
    assert ex.cut and len(ex.response_body) == 1000 and "error" in res
    assert reply_text_prefix(ex).startswith("".join(res["deltas"]))


def reply_text_prefix(exchange) -> str:
    """The deltas of the complete events in a cut chat stream."""
    text = exchange.response_body.rsplit(b"\n\n", 1)[0].decode()
    return "".join(c["delta"].get("content", "")
                   for line in text.split("\n") if line.startswith("data: ")
                   for c in json.loads(line[6:])["choices"])


def test_http2_cut_modes_reset_the_stream_or_drop_the_connection(server):
    mark = Mark(server)
    reset = run_client("curl", "chat_stream", server, http2=True,
                       headers={"x-test-cut-after-events": "3", "x-test-cut-mode": "reset"}).results[0]
    close = run_client("curl", "chat_stream", server, http2=True, headers={"x-test-cut-after-events": "3"}).results[0]
    short = run_client("curl", "chat", server, headers={"x-test-cut-after-bytes": "100"}).results[0]
    reset_ex, close_ex, short_ex = mark.new(3)
    assert reset["error"]["exit_code"] == 92 and "INTERNAL_ERROR" in reset["error"]["message"]
    assert close["error"]["exit_code"] in (16, 18, 56, 92)
    assert short["error"]["exit_code"] == 18                # HTTP/1.1: fewer bytes than content-length
    for res, ex in ((reset, reset_ex), (close, close_ex), (short, short_ex)):
        assert ex.cut and base64.b64decode(res["body_b64"]) == ex.response_body
    assert int(short_ex.response_header("content-length")) > len(short_ex.response_body) == 100


def test_five_mebibyte_responses(server):
    mark = Mark(server)
    (blob,) = run_client("httpx", "get", server, path=f"/static/blob?bytes={5 * MiB}", http2=True).results
    (chat,) = run_client("curl", "chat", server, headers={"x-test-response-bytes": str(5 * MiB)}).results
    (stream,) = run_client("httpx", "chat_stream", server, headers={"x-test-response-bytes": str(5 * MiB)}).results
    blob_ex, chat_ex, stream_ex = mark.new(3)
    assert len(blob_ex.response_body) == 5 * MiB and blob_ex.protocol == "2"
    assert sha(base64.b64decode(blob["body_b64"])) == sha(blob_ex.response_body)
    assert len(chat_ex.response_body) == 5 * MiB == len(base64.b64decode(chat["body_b64"]))
    assert 5 * MiB <= len(stream_ex.response_body) < 5 * MiB + 2048
    assert base64.b64decode(stream["body_b64"]) == stream_ex.response_body


def test_non_llm_paths(server):
    mark = Mark(server)
    (health,) = run_client("fetch", "get", server, path="/healthz").results
    (echo,) = run_client("curl", "get", server, path="/echo", body=b"\x00binary\xff", http2=True).results
    (models,) = run_client("openai_node", "models", server).results
    health_ex, echo_ex, models_ex = mark.new(3)
    assert base64.b64decode(health["body_b64"]) == b"ok\n" == health_ex.response_body
    assert echo_ex.method == "POST" and echo_ex.response_body == b"\x00binary\xff" == echo_ex.request_body
    assert models["models"] == [m["id"] for m in models_ex.response_json()["data"]]


# --- load: 8 processes x 25 concurrent streams ------------------------------------


def test_two_hundred_concurrent_streams_are_each_logged_once(server):
    mark = Mark(server)
    runs = run_concurrent("httpx", "concurrent_streams", server, processes=8, requests=25)
    logged = mark.new(200)
    by_prompt = Counter(e.request_json()["messages"][1]["content"] for e in logged)
    prompts = [res["prompt"] for run in runs for res in run.results]
    assert len(set(prompts)) == 200 and by_prompt == Counter(prompts)
    assert all(e.outcome == "complete" and e.status == 200 for e in logged)
    assert sorted(Counter(e.connection for e in logged).values()) == [25] * 8
    assert len({run.pid for run in runs}) == 8
    bodies = {e.request_json()["messages"][1]["content"]: e.response_body for e in logged}
    for run in runs:
        for res in run.results:
            assert base64.b64decode(res["body_b64"]) == bodies[res["prompt"]]
