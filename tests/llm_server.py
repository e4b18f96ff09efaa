"""A local TLS server that plays OpenAI- and Anthropic-style endpoints and logs,
byte for byte, what it received and what it sent.

It is the known peer of the eBPF TLS-capture tests: a real client (an SDK, curl,
node) talks to it over TLS in its own process, the probe sees the plaintext, and
the test compares what llmtap reports with this server's log.

Why not hypercorn: hypercorn serves HTTP/2 fine, but an ASGI app cannot cut an
HTTP/2 response. An app that raises mid-body leaves the stream open with neither
END_STREAM nor RST_STREAM, and the client hangs. An ASGI app also cannot drop the
whole TCP connection or say how its bytes are split into writes. So this server
is asyncio + ssl + h11 + h2, the same protocol libraries hypercorn uses, with
every write under our control.

Run it
    python tests/llm_server.py --port 0 --log FILE --cert CERT --key KEY [--host 127.0.0.1]
prints one JSON line on stdout once it listens: {"port": N, "pid": P, "host": H}.
It binds the loopback address given and, when it can, [::1] on the same port.
Stop it with SIGTERM or SIGINT. From a test, use ``LlmServer`` (below):

    with LlmServer() as server:           # makes a test CA + cert, starts the process
        server.base_url, server.ca_file   # https://localhost:PORT, CA PEM to trust
        server.exchanges(wait_for=3)      # [Exchange], read from the log

TLS: ALPN offers h2 and http/1.1; the certificate covers localhost, 127.0.0.1
and ::1 (see ``make_test_pki``).

Endpoints
    POST /v1/chat/completions   OpenAI Chat Completions: JSON, or with "stream": true
                                SSE chunks ending in ``data: [DONE]``, plus a usage chunk
                                (choices: []) when stream_options.include_usage is true.
    POST /v1/responses          OpenAI Responses: JSON, or with "stream": true the typed
                                events response.created ... response.completed.
    POST /v1/messages           Anthropic Messages: JSON, or with "stream": true the
                                events message_start, content_block_start, ping,
                                content_block_delta..., content_block_stop,
                                message_delta, message_stop.
    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent[?alt=sse]
                                Google Gemini: JSON; with alt=sse one SSE event per chunk
                                (CRLF line ends, as Google sends them), without it one JSON
                                array written element by element; the last chunk has
                                finishReason and the full usageMetadata. (also /v1/, /v1alpha/)
    POST /v1beta/models/{model}:countTokens   {"totalTokens": N}
    GET  /v1/models             the OpenAI model list; the Anthropic one when the
                                request carries an ``anthropic-version`` header.
    GET  /healthz               "ok\\n", text/plain (non-LLM traffic)
    GET  /static/blob?bytes=N   N bytes of application/octet-stream (non-LLM traffic)
    POST /echo                  the request body back, with its content-type
Anything else is a 404, and a POST whose body is not a JSON object is a 400, both
with the provider's error body.

The reply text is "Hello from the llmtap test model — naïve café, 日本語 ✓. You
said: " plus the first 80 characters of the last user message, so a test can
tell its requests apart and every reply has multi-byte UTF-8. Streams send one
delta per word. The response ``model`` is the request's, except that OpenAI
answers add a date suffix (``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``), as the
real API reports the resolved snapshot.

Scripted conversations (for agents: the model asks for tool calls, then answers)
A user turn containing ``[llmtap-script:NAME]`` is answered from script NAME of the
scripts file (``--scripts FILE``, JSON {name: [turn, ...]}, re-read when it changes;
``LlmServer(scripts=...)`` / ``LlmServer.add_script`` write it). A turn is
{"text": "...", "tool_calls": [{"name": "run_shell", "arguments": {"command": "ls"}}]}
(either key may be missing). Real agent CLIs cannot send test headers, so the turn is
chosen from the request alone: the first turn whose tool calls have not all come back
as tool results in the history (``scripted_reply``). Concurrent conversations thus never
share state. Each API gets its own shape, streamed or not: Chat Completions
``tool_calls`` (finish_reason "tool_calls", arguments streamed in pieces), Responses
``function_call`` items (function_call_arguments.delta/.done events), Anthropic
``tool_use`` blocks (input_json_delta; stop_reason "tool_use"), Gemini ``functionCall``
parts (whole, in one chunk; no id, as the Gemini API sends none). Call ids are unique
per request and call. An unknown script name is a 400 with the provider's error body.

Behaviour knobs (request headers; names are case-insensitive)
    x-test-status: 400|401|403|404|429|500|503|529
        answer with this status and the provider's error JSON; 429, 503 and 529
        also carry ``retry-after``.
    x-test-retry-after: S       the retry-after value (default "1").
    x-test-gzip: 1              Content-Encoding: gzip. Each piece (below) is
                                compressed with a sync flush, so every prefix of the
                                sent bytes decompresses to a prefix of the body.
    x-test-pieces: events|irregular|coalesced
        how the body is cut into writes. events (default): one write per SSE event
        (or per 64 KiB of a JSON body); coalesced: the whole body in one write;
        irregular: random 1-97 byte writes that split events and lines, with a
        random 1-20 ms pause before each; at least one write ends inside a
        multi-byte UTF-8 character (every reply has some).
    x-test-seed: N              seed of the irregular split (default: the exchange seq).
    x-test-event-delay-ms: N    pause before each piece (events/coalesced modes).
    x-test-delay-ms: N          pause before the response headers.
    x-test-response-bytes: N    pad the reply text: a JSON body is then exactly N
                                bytes; a stream is at least N bytes (within one
                                delta event).
    x-test-cut-after-events: N  send the first N SSE events, then cut.
    x-test-cut-after-bytes: N   send the first N body bytes (before content
                                coding), then cut; works on JSON bodies too,
                                which then fall short of their content-length.
    x-test-cut-mode: close|reset
        close (default): drop the TCP connection without a TLS close_notify (on
        HTTP/2 this kills every stream of the connection; they are logged with
        outcome "aborted"). reset: on HTTP/2, RST_STREAM(INTERNAL_ERROR) on this
        stream only; on HTTP/1.1 the same as close.

Log: one JSON line per exchange, appended when the exchange ends (so a stream
shows up after its last byte, a cut or a client reset), written with a single
write() on an O_APPEND file from the one event-loop thread, so lines never
interleave, whatever the number of concurrent streams. Fields:
    seq                 exchange number, in order of arrival, from 1
    connection          TLS connection number, from 1 (same number = same connection)
    stream              HTTP/2 stream id; on HTTP/1.1 the request's index on its connection, from 1
    protocol            "1.1" or "2"
    client_port         the client's TCP source port
    method, path        as requested (path with query string)
    request_headers     [[name, value], ...] in order as received: HTTP/1.1 names in
                        the client's casing; HTTP/2 names as decoded, pseudo-headers
                        (":method", ...) included
    request_body_b64    the request body exactly as received, after transfer decoding
                        (chunked / DATA frames), not content-decoded
    status              the response status (null if none was sent)
    response_headers    [[name, value], ...] as sent: for HTTP/1.1 parsed back from the
                        bytes written (so they include the framing header
                        content-length or transfer-encoding); for HTTP/2 the header
                        list without ":status"
    response_body_b64   the body the client application sees: what was sent, before
                        content coding (for a cut, the part sent before the cut)
    response_body_encoded_b64
                        with gzip, the content-coded bytes sent (the payload of the
                        chunks / DATA frames); otherwise null
    content_encoding    "gzip" or null
    pieces              [[ms since the response headers, plaintext bytes], ...], one per write
    cut                 true if the server cut this exchange on purpose (a knob)
    outcome             "complete", "cut", "aborted" (the connection died, or another
                        stream's cut closed it) or "client_reset" (the client reset
                        the HTTP/2 stream or closed the connection first)
    started, finished   Unix times (seconds, float): request headers, end of exchange
    knobs               the x-test-* headers honoured, by name
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import hashlib
import http
import ipaddress
import json
import os
import random
import re
import selectors
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

# ----------------------------------------------------------------------------
# Test PKI


def make_test_pki(directory: str | os.PathLike) -> tuple[str, str, str]:
    """Write a test CA and a server certificate for localhost, 127.0.0.1 and ::1
    into `directory` (created if missing) and return (ca_file, cert_file, key_file).
    Files already there are reused, so a session can share one PKI."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = d / "ca.pem", d / "server.pem", d / "server-key.pem"
    if ca_file.exists() and cert_file.exists() and key_file.exists():
        return str(ca_file), str(cert_file), str(key_file)

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmtap test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(ca_file), str(cert_file), str(key_file)


# ----------------------------------------------------------------------------
# What to answer: pure functions of the request (no I/O, no clock but `created`)

REPLY_PREFIX = "Hello from the llmtap test model — naïve café, 日本語 ✓. You said: "
OPENAI_SNAPSHOT_SUFFIX = "-2024-07-18"
JSON_PIECE = 64 * 1024          # a JSON body is written in pieces of this size


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    seq: int

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


@dataclass
class Knobs:
    status: int | None = None
    retry_after: str = "1"
    gzip: bool = False
    pieces: str = "events"
    seed: int = 0
    event_delay: float = 0.0
    delay: float = 0.0
    response_bytes: int | None = None
    cut_after_events: int | None = None
    cut_after_bytes: int | None = None
    cut_mode: str = "close"
    honoured: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls, req: Request) -> "Knobs":
        k = cls(seed=req.seq)
        for name, value in req.headers:
            lname = name.lower()
            if not lname.startswith("x-test-"):
                continue
            key = lname[len("x-test-"):]
            value = value.strip()
            try:
                if key == "status":
                    k.status = int(value)
                elif key == "retry-after":
                    k.retry_after = value
                elif key == "gzip":
                    k.gzip = value.lower() not in ("", "0", "false", "no")
                elif key == "pieces":
                    if value not in ("events", "irregular", "coalesced"):
                        raise ValueError(value)
                    k.pieces = value
                elif key == "seed":
                    k.seed = int(value)
                elif key == "event-delay-ms":
                    k.event_delay = int(value) / 1000
                elif key == "delay-ms":
                    k.delay = int(value) / 1000
                elif key == "response-bytes":
                    k.response_bytes = int(value)
                elif key == "cut-after-events":
                    k.cut_after_events = int(value)
                elif key == "cut-after-bytes":
                    k.cut_after_bytes = int(value)
                elif key == "cut-mode":
                    if value not in ("close", "reset"):
                        raise ValueError(value)
                    k.cut_mode = value
                else:
                    continue
            except ValueError:
                continue            # a knob we cannot read is ignored, and not listed
            k.honoured[lname] = value
        return k


@dataclass
class ResponsePlan:
    """The response before it meets the wire: its status, headers (no framing
    headers), and body as a list of events (SSE events, or one JSON document)."""
    status: int
    headers: list[tuple[str, str]]
    events: list[bytes]
    streaming: bool


def dumps(obj: Any) -> str:
    # The providers send compact JSON with raw UTF-8, not \\u escapes.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def _ident(prefix: str, req: Request, n: int = 24) -> str:
    return prefix + hashlib.sha256(f"{prefix}{req.seq}".encode()).hexdigest()[:n]


def _user_turn_texts(payload: dict) -> list[str]:
    """The texts of the user turns of a chat / messages / responses / Gemini request, in order."""
    turns = payload.get("messages")
    if turns is None:
        turns = payload.get("input")
        if isinstance(turns, str):
            return [turns]
    if turns is None:
        turns = payload.get("contents")          # Gemini: role "user", parts [{"text": ...}]
    texts = []
    for turn in turns if isinstance(turns, list) else []:
        if not isinstance(turn, dict) or turn.get("role", "user" if "parts" in turn else None) != "user":
            continue
        content = turn.get("content", turn.get("parts"))
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.append(" ".join(str(p.get("text", "")) for p in content if isinstance(p, dict)))
    return texts


def _last_user_text(payload: dict) -> str:
    """The text of the last user turn of a chat/messages/responses request."""
    texts = _user_turn_texts(payload)
    return texts[-1] if texts else ""


def _tool_results(payload: dict) -> int:
    """How many tool results the request's history carries back to the model, in any
    provider's shape: OpenAI chat `role: "tool"` messages, Responses `*_call_output`
    input items, Anthropic `tool_result` blocks, Gemini `functionResponse` parts."""
    count = 0
    for turn in payload.get("messages") or payload.get("contents") or []:
        if not isinstance(turn, dict):
            continue
        if turn.get("role") in ("tool", "function"):
            count += 1
        blocks = turn.get("content", turn.get("parts"))
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and (block.get("type") == "tool_result" or "functionResponse" in block
                                            or "function_response" in block):
                count += 1
    items = payload.get("input")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("type", "")).endswith("_call_output"):
            count += 1
    return count


@dataclass
class ToolCall:
    id: str                      # the call's id ("" where the API has none: Gemini)
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return dumps(self.arguments)

    def argument_pieces(self) -> list[str]:
        """The arguments JSON as a stream sends it: in pieces of at most 12 characters."""
        text = self.arguments_json
        return [text[i:i + 12] for i in range(0, len(text), 12)]


@dataclass
class Reply:
    """What the model answers: text (maybe empty) and tool calls (maybe none)."""
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)


def default_reply(payload: dict) -> Reply:
    return Reply(REPLY_PREFIX + " ".join(_last_user_text(payload).split())[:80])


def _text_tokens(text: str, pad: int) -> list[str]:
    """The text, as the deltas a stream sends: one per word, then the padding
    in 1 KiB deltas."""
    tokens = re.findall(r"\S+\s*", text)
    filler = ("pad " * (pad // 4 + 1))[:pad]
    tokens += [filler[i:i + 1024] for i in range(0, len(filler), 1024)]
    return tokens


# ----------------------------------------------------------------------------
# Scripted conversations

SCRIPT_MARKER = re.compile(r"\[llmtap-script:([A-Za-z0-9_.-]+)\]")


class UnknownScript(LookupError):
    pass


def scripted_reply(req: Request, payload: dict, scripts: dict[str, list[dict]], call_id_prefix: str) -> Reply | None:
    """The scripted answer to this request, or None when no user turn names a script.

    A script is a list of turns: {"text": "...", "tool_calls": [{"name": ..., "arguments": {...}}]}
    (either key may be missing). The turn to answer is found from the request alone, so
    concurrent conversations never share state: each turn with tool calls is done once
    the history carries back as many tool results as it made calls; the first turn that is
    not done is the answer. A text turn is never done: it answers every later request too.
    After a last turn of tool calls the model says the script is over."""
    marker = next((m for t in _user_turn_texts(payload) for m in [SCRIPT_MARKER.search(t)] if m), None)
    if marker is None:
        return None
    name = marker.group(1)
    if name not in scripts:
        raise UnknownScript(name)
    results = _tool_results(payload)
    for turn in scripts[name]:
        calls = turn.get("tool_calls") or []
        if not calls or results < len(calls):
            break
        results -= len(calls)
    else:
        return Reply(f"The script {name} is over.")
    tool_calls = [
        ToolCall(call_id_prefix and call_id_prefix + hashlib.sha256(f"{name}|{req.seq}|{i}".encode()).hexdigest()[:24],
                 str(call["name"]), dict(call.get("arguments") or {}))
        for i, call in enumerate(calls)]
    return Reply(str(turn.get("text", "")), tool_calls)


class ScriptBook:
    """The scripts file (JSON: {name: [turn, ...]}), re-read whenever it changes, so a
    running server takes scripts added by the test."""

    def __init__(self, path: str | None):
        self.path = path
        self.stamp: tuple[int, int, int] | None = None
        self.scripts: dict[str, list[dict]] = {}

    def current(self) -> dict[str, list[dict]]:
        if self.path is None:
            return {}
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        if (st.st_ino, st.st_mtime_ns, st.st_size) != self.stamp:
            with open(self.path, "rb") as f:
                self.scripts = json.load(f)
            self.stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        return self.scripts

def _prompt_tokens(req: Request) -> int:
    return max(1, len(req.body) // 4)


def _openai_model(payload: dict) -> str:
    model = str(payload.get("model", "gpt-4o-mini"))
    return model if re.search(r"\d{4}-\d{2}-\d{2}$", model) else model + OPENAI_SNAPSHOT_SUFFIX


def _openai_headers(req: Request, content_type: str) -> list[tuple[str, str]]:
    return [
        ("content-type", content_type),
        ("x-request-id", _ident("req_", req, 32)),
        ("openai-organization", "llmtap-test"),
        ("openai-processing-ms", "7"),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-requests", "9999"),
        # Real responses carry a Cloudflare cookie; a secret-looking value lets
        # tests check that Set-Cookie never leaves the sidecar.
        ("set-cookie", f"__cf_bm=LLMTAP-SECRET-setcookie-{req.seq}; path=/; HttpOnly; Secure; SameSite=None"),
    ]


def _anthropic_headers(req: Request, content_type: str) -> list[tuple[str, str]]:
    return [
        ("content-type", content_type),
        ("request-id", _ident("req_", req)),
        ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000"),
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
    ]


SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"


def _padded(build: Callable[[int], list[bytes]], target: int | None, streaming: bool) -> list[bytes]:
    """Grow the reply padding until the body reaches `target` bytes: exactly for
    a JSON body (trailing spaces absorb a token count that gains a digit), and
    to at least `target` for a stream."""
    events = build(0)
    if target is None:
        return events
    size = lambda evs: sum(map(len, evs))  # noqa: E731
    base = size(events)
    if base >= target:
        return events
    if streaming:
        pad = target - base
        grown = size(build(pad))
        pad = int(pad * pad / max(1, grown - base))          # padding costs ~1 byte/char + delta overhead
        while size(events := build(pad)) < target:
            pad += max(1, (target - size(events)) // 2)
        return events
    pad = target - base
    for _ in range(8):
        events = build(pad)
        if size(events) == target:
            return events
        pad += target - size(events)
    while size(events := build(pad)) > target:
        pad -= 1
    return [events[0] + b" " * (target - size(events))]


def plan_chat_completion(req: Request, payload: dict, knobs: Knobs, reply: Reply) -> ResponsePlan:
    streaming = bool(payload.get("stream"))
    cid, created, model = _ident("chatcmpl-", req), int(time.time()), _openai_model(payload)
    fingerprint = "fp_" + _ident("", req, 10)
    calls = reply.tool_calls
    finish = "tool_calls" if calls else "stop"
    call_tokens = sum(len(c.argument_pieces()) + 1 for c in calls)
    usage_of = lambda n: {  # noqa: E731
        "prompt_tokens": _prompt_tokens(req), "completion_tokens": n + call_tokens,
        "total_tokens": _prompt_tokens(req) + n + call_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }

    def build_json(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens) if tokens or not calls else None,
                                   "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments_json}} for c in calls]
        body = {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage_of(len(tokens)), "service_tier": "default", "system_fingerprint": fingerprint,
        }
        return [(dumps(body) + "\n").encode()]

    include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))

    def build_stream(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)

        def chunk(choices: list, **extra: Any) -> bytes:
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "service_tier": "default", "system_fingerprint": fingerprint, "choices": choices}
            if include_usage:
                body["usage"] = None
            body.update(extra)
            return sse(body)

        def delta(d: dict, finish_reason: str | None = None) -> list:
            return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish_reason}]

        first = {"role": "assistant", "content": "" if tokens or not calls else None, "refusal": None}
        events = [chunk(delta(first), obfuscation="Xq3")]
        for i, tok in enumerate(tokens):
            events.append(chunk(delta({"content": tok}), obfuscation="pad"[: (i % 3) + 1]))
        # A tool call streams as its id and name first, then its arguments in pieces.
        for i, call in enumerate(calls):
            events.append(chunk(delta({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                                                       "function": {"name": call.name, "arguments": ""}}]})))
            events += [chunk(delta({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
                       for piece in call.argument_pieces()]
        events.append(chunk(delta({}, finish)))
        if include_usage:
            events.append(chunk([], usage=usage_of(len(tokens))))
        events.append(sse("[DONE]"))
        return events

    events = _padded(build_stream if streaming else build_json, knobs.response_bytes, streaming)
    return ResponsePlan(200, _openai_headers(req, SSE_TYPE if streaming else JSON_TYPE), events, streaming)


def plan_responses(req: Request, payload: dict, knobs: Knobs, reply: Reply) -> ResponsePlan:
    streaming = bool(payload.get("stream"))
    rid, mid, created = _ident("resp_", req, 48), _ident("msg_", req, 48), int(time.time())
    model = _openai_model(payload)
    calls = reply.tool_calls
    with_message = bool(reply.text) or not calls or knobs.response_bytes is not None
    call_tokens = sum(len(c.argument_pieces()) + 1 for c in calls)

    def response_obj(status: str, output: list, usage: dict | None) -> dict:
        return {
            "id": rid, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": payload.get("instructions"), "max_output_tokens": payload.get("max_output_tokens"),
            "model": model, "output": output, "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default", "store": True,
            "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": usage, "user": None, "metadata": {},
        }

    def usage_of(n: int) -> dict:
        n += call_tokens
        return {"input_tokens": _prompt_tokens(req), "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": n, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": _prompt_tokens(req) + n}

    def text_part(text: str) -> dict:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def message(status: str, content: list) -> dict:
        return {"id": mid, "type": "message", "status": status, "content": content, "role": "assistant"}

    def function_call(i: int, call: ToolCall, status: str) -> dict:
        return {"id": _ident(f"fc_{i}_", req, 48), "type": "function_call", "status": status,
                "arguments": call.arguments_json if status == "completed" else "", "call_id": call.id,
                "name": call.name}

    def output(tokens: list[str]) -> list[dict]:
        items = [message("completed", [text_part("".join(tokens))])] if with_message else []
        return items + [function_call(i, c, "completed") for i, c in enumerate(calls)]

    def build_json(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)
        body = response_obj("completed", output(tokens), usage_of(len(tokens)))
        return [(dumps(body) + "\n").encode()]

    def build_stream(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)
        text = "".join(tokens)
        seq = iter(range(1 << 30))

        def ev(kind: str, **body: Any) -> bytes:
            return sse({"type": kind, "sequence_number": next(seq), **body}, event=kind)

        events = [
            ev("response.created", response=response_obj("in_progress", [], None)),
            ev("response.in_progress", response=response_obj("in_progress", [], None)),
        ]
        if with_message:
            where = {"item_id": mid, "output_index": 0, "content_index": 0}
            events += [ev("response.output_item.added", output_index=0, item=message("in_progress", [])),
                       ev("response.content_part.added", **where, part=text_part(""))]
            events += [ev("response.output_text.delta", **where, delta=tok, logprobs=[],
                          obfuscation="x" * (i % 4 + 1)) for i, tok in enumerate(tokens)]
            events += [
                ev("response.output_text.done", **where, text=text, logprobs=[]),
                ev("response.content_part.done", **where, part=text_part(text)),
                ev("response.output_item.done", output_index=0, item=message("completed", [text_part(text)])),
            ]
        for i, call in enumerate(calls):
            index, item = i + with_message, function_call(i, call, "in_progress")
            events.append(ev("response.output_item.added", output_index=index, item=item))
            events += [ev("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                          delta=piece, obfuscation="y" * (j % 4 + 1))
                       for j, piece in enumerate(call.argument_pieces())]
            events += [ev("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                          arguments=call.arguments_json),
                       ev("response.output_item.done", output_index=index, item=function_call(i, call, "completed"))]
        events.append(ev("response.completed", response=response_obj("completed", output(tokens),
                                                                      usage_of(len(tokens)))))
        return events

    events = _padded(build_stream if streaming else build_json, knobs.response_bytes, streaming)
    return ResponsePlan(200, _openai_headers(req, SSE_TYPE if streaming else JSON_TYPE), events, streaming)


def plan_messages(req: Request, payload: dict, knobs: Knobs, reply: Reply) -> ResponsePlan:
    streaming = bool(payload.get("stream"))
    mid, model = "msg_01" + _ident("", req, 22), str(payload.get("model", "claude-sonnet-4-5-20250929"))
    input_tokens = _prompt_tokens(req)
    calls = reply.tool_calls
    with_text = bool(reply.text) or not calls or knobs.response_bytes is not None
    stop = "tool_use" if calls else "end_turn"
    call_tokens = sum(len(c.argument_pieces()) + 1 for c in calls)

    def usage(n: int) -> dict:
        return {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": n, "service_tier": "standard"}

    def message(content: list, stop: str | None, n: int) -> dict:
        return {"id": mid, "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": stop, "stop_sequence": None, "usage": usage(n)}

    def tool_use(call: ToolCall, complete: bool) -> dict:
        return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments if complete else {}}

    def build_json(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)
        content = [{"type": "text", "text": "".join(tokens)}] if with_text else []
        content += [tool_use(c, True) for c in calls]
        body = message(content, stop, len(tokens) + call_tokens)
        return [(dumps(body) + "\n").encode()]

    def build_stream(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)

        def ev(kind: str, **body: Any) -> bytes:
            return sse({"type": kind, **body}, event=kind)

        events = [ev("message_start", message=message([], None, 1))]
        if with_text:
            events += [ev("content_block_start", index=0, content_block={"type": "text", "text": ""}), ev("ping")]
            events += [ev("content_block_delta", index=0, delta={"type": "text_delta", "text": tok})
                       for tok in tokens]
            events.append(ev("content_block_stop", index=0))
        for i, call in enumerate(calls):
            index = i + with_text
            events.append(ev("content_block_start", index=index, content_block=tool_use(call, False)))
            if not with_text and i == 0:
                events.append(ev("ping"))
            # Anthropic's first input_json_delta is empty; the JSON follows in pieces.
            events += [ev("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": p})
                       for p in ["", *call.argument_pieces()]]
            events.append(ev("content_block_stop", index=index))
        events += [
            ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
               usage={"output_tokens": len(tokens) + call_tokens}),
            ev("message_stop"),
        ]
        return events

    events = _padded(build_stream if streaming else build_json, knobs.response_bytes, streaming)
    return ResponsePlan(200, _anthropic_headers(req, SSE_TYPE if streaming else JSON_TYPE), events, streaming)


GEMINI_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")
GEMINI_JSON_TYPE = "application/json; charset=UTF-8"


def _gemini_headers(content_type: str) -> list[tuple[str, str]]:
    return [("content-type", content_type), ("vary", "Origin, X-Origin, Referer"),
            ("server-timing", "gfet4t7; dur=412"), ("x-content-type-options", "nosniff")]


def plan_gemini(req: Request, payload: dict, knobs: Knobs, reply: Reply, model: str, method: str,
                sse_stream: bool) -> ResponsePlan:
    """Gemini generateContent, and streamGenerateContent: SSE (CRLF line ends) with
    ``alt=sse``, else one JSON array whose elements are written as they come."""
    prompt = _prompt_tokens(req)
    if method == "countTokens":
        body = {"totalTokens": prompt, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
        return ResponsePlan(200, _gemini_headers(GEMINI_JSON_TYPE), [(dumps(body) + "\n").encode()], False)
    streaming = method == "streamGenerateContent"
    rid = _ident("", req, 22)
    call_parts = [{"functionCall": {"name": c.name, "args": c.arguments}} for c in reply.tool_calls]
    call_tokens = sum(len(c.argument_pieces()) + 1 for c in reply.tool_calls)
    prompt_usage = {"promptTokenCount": prompt, "totalTokenCount": prompt,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}

    def response(parts: list, n: int | None) -> dict:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if n is not None:
            candidate["finishReason"] = "STOP"          # Gemini says STOP after function calls too
        candidate["index"] = 0
        usage = prompt_usage if n is None else {**prompt_usage, "candidatesTokenCount": n + call_tokens,
                                                "totalTokenCount": prompt + n + call_tokens}
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": rid}

    def build_json(pad: int) -> list[bytes]:
        tokens = _text_tokens(reply.text, pad)
        parts = ([{"text": "".join(tokens)}] if tokens or not call_parts else []) + call_parts
        return [(dumps(response(parts, len(tokens))) + "\n").encode()]

    def chunks(pad: int) -> list[dict]:
        tokens = _text_tokens(reply.text, pad)
        out = [response([{"text": tok}], None) for tok in tokens]
        if call_parts or not out:
            out.append(response(call_parts or [{"text": ""}], len(tokens)))
        else:
            out[-1] = response([{"text": tokens[-1]}], len(tokens))
        return out

    def build_sse(pad: int) -> list[bytes]:
        return [f"data: {dumps(c)}\r\n\r\n".encode() for c in chunks(pad)]

    def build_array(pad: int) -> list[bytes]:
        texts = [json.dumps(c, indent=2, ensure_ascii=False) for c in chunks(pad)]
        events = ["[" + texts[0]] + [",\r\n" + t for t in texts[1:]]
        events[-1] += "]"
        return [e.encode() for e in events]

    build = build_json if not streaming else build_sse if sse_stream else build_array
    events = _padded(build, knobs.response_bytes, streaming)
    content_type = "text/event-stream" if streaming and sse_stream else GEMINI_JSON_TYPE
    return ResponsePlan(200, _gemini_headers(content_type), events, streaming)


OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "We could not parse the JSON body of your request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported."),
    404: ("invalid_request_error", "unknown_url", "Unknown request URL."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "There was an issue with the format or content of your request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    529: ("overloaded_error", "Overloaded"),
}
GEMINI_ERRORS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def plan_error(req: Request, status: int, knobs: Knobs, message: str | None = None) -> ResponsePlan:
    anthropic = req.path.startswith("/v1/messages") or req.header("anthropic-version") is not None
    if GEMINI_PATH.match(urlsplit(req.path).path):
        body = {"error": {"code": status, "message": message or "Request failed.",
                          "status": GEMINI_ERRORS.get(status, "UNKNOWN")}}
        headers = _gemini_headers(GEMINI_JSON_TYPE)
    elif anthropic:
        kind, text = ANTHROPIC_ERRORS.get(status, ("api_error", "Error"))
        body = {"type": "error", "error": {"type": kind, "message": message or text},
                "request_id": _ident("req_", req)}
        headers = _anthropic_headers(req, JSON_TYPE)
    else:
        kind, code, text = OPENAI_ERRORS.get(status, ("server_error", None, "Error"))
        body = {"error": {"message": message or text, "type": kind, "param": None, "code": code}}
        headers = _openai_headers(req, JSON_TYPE)
    if status in (429, 503, 529):
        headers.append(("retry-after", knobs.retry_after))
    return ResponsePlan(status, headers, [(dumps(body) + "\n").encode()], False)


# Tool call ids the way each API spells them.
_CALL_ID_PREFIX = {"/v1/chat/completions": "call_", "/v1/responses": "call_", "/v1/messages": "toolu_01"}


def plan_response(req: Request, knobs: Knobs, scripts: dict[str, list[dict]] | None = None) -> ResponsePlan:
    """Route a request to the response it gets."""
    if knobs.status is not None:
        return plan_error(req, knobs.status, knobs)
    url = urlsplit(req.path)
    route = (req.method, url.path)
    llm = {"/v1/chat/completions": plan_chat_completion, "/v1/responses": plan_responses,
           "/v1/messages": plan_messages}
    gemini = GEMINI_PATH.match(url.path) if req.method == "POST" else None
    if req.method == "POST" and (url.path in llm or gemini):
        try:
            payload = json.loads(req.body)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            return plan_error(req, 400, knobs)
        try:
            reply = scripted_reply(req, payload, scripts or {}, _CALL_ID_PREFIX.get(url.path, ""))
        except UnknownScript as e:
            return plan_error(req, 400, knobs, f"llm_server has no script {e.args[0]!r}.")
        reply = reply or default_reply(payload)
        if gemini:
            sse_stream = parse_qs(url.query).get("alt") == ["sse"]
            return plan_gemini(req, payload, knobs, reply, unquote(gemini.group(2)), gemini.group(3), sse_stream)
        return llm[url.path](req, payload, knobs, reply)
    if route == ("GET", "/v1/models"):
        if req.header("anthropic-version") is not None:
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
                    for m in ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")]
            body = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
            return ResponsePlan(200, _anthropic_headers(req, JSON_TYPE), [(dumps(body) + "\n").encode()], False)
        data = [{"id": m, "object": "model", "created": 1721172741, "owned_by": "system"}
                for m in ("gpt-4o-mini", "gpt-4o", "o4-mini")]
        return ResponsePlan(200, _openai_headers(req, JSON_TYPE),
                            [(dumps({"object": "list", "data": data}) + "\n").encode()], False)
    if route == ("GET", "/healthz"):
        return ResponsePlan(200, [("content-type", "text/plain; charset=utf-8")], [b"ok\n"], False)
    if route == ("GET", "/static/blob"):
        n = int(parse_qs(url.query).get("bytes", ["1024"])[0])
        unit = bytes(range(256))
        blob = unit * (n // 256) + unit[: n % 256]
        return ResponsePlan(200, [("content-type", "application/octet-stream")], [blob], False)
    if route == ("POST", "/echo"):
        return ResponsePlan(200, [("content-type", req.header("content-type") or "application/octet-stream")],
                            [req.body], False)
    return plan_error(req, 404, knobs, f"Unknown request URL: {req.method} {url.path}.")

@dataclass
class Piece:
    plain: bytes                   # body bytes before content coding
    wire: bytes                    # what goes into the chunk / DATA frames
    delay: float                   # seconds to wait before writing it


def schedule(plan: ResponsePlan, knobs: Knobs) -> tuple[list[Piece], int | None]:
    """Split the planned body into writes. Returns the pieces of the whole body
    (so content-length and gzip cover the whole body) and, if the exchange is to
    be cut, how many of them to send before the cut."""
    body = b"".join(plan.events)
    cut_at = None
    if knobs.cut_after_events is not None:
        cut_at = sum(len(e) for e in plan.events[: knobs.cut_after_events])
    if knobs.cut_after_bytes is not None:
        cut_at = min(knobs.cut_after_bytes, len(body)) if cut_at is None else min(cut_at, knobs.cut_after_bytes)

    bounds: list[int] = []          # end offsets of the pieces
    if knobs.pieces == "coalesced":
        bounds = [len(body)]
    elif knobs.pieces == "irregular":
        rng, pos = random.Random(knobs.seed), 0
        while pos < len(body):
            pos = min(len(body), pos + rng.randint(1, 97))
            bounds.append(pos)
        # Promise a write that ends inside a multi-byte character, whatever the seed.
        if not any(b < len(body) and 0x80 <= body[b] < 0xC0 for b in bounds):
            lead = next((i for i, byte in enumerate(body) if byte >= 0xC0), None)
            if lead is not None:
                bounds = sorted(set(bounds) | {lead + 1})
    else:
        pos = 0
        for event in plan.events:
            for start in range(0, len(event), JSON_PIECE):
                pos += len(event[start:start + JSON_PIECE])
                bounds.append(pos)
    if cut_at is not None and cut_at not in bounds:
        bounds = sorted(set(bounds) | {cut_at})
    bounds = [b for b in bounds if b > 0]

    rng = random.Random(knobs.seed ^ 0x5EED)
    gz = zlib.compressobj(6, zlib.DEFLATED, 31) if knobs.gzip else None
    pieces, start = [], 0
    for i, end in enumerate(bounds):
        plain = body[start:end]
        start = end
        if gz is not None:
            wire = gz.compress(plain) + gz.flush(zlib.Z_FINISH if i == len(bounds) - 1 else zlib.Z_SYNC_FLUSH)
        else:
            wire = plain
        delay = rng.randint(1, 20) / 1000 if knobs.pieces == "irregular" else knobs.event_delay
        pieces.append(Piece(plain, wire, delay))
    if gz is not None and not pieces:
        pieces.append(Piece(b"", gz.flush(zlib.Z_FINISH), 0.0))
    cut_index = None
    if cut_at is not None:
        cut_index = bounds.index(cut_at) + 1 if cut_at > 0 else 0
    return pieces, cut_index


# ----------------------------------------------------------------------------
# The exchange log


class ExchangeLog:
    """Appends one JSON line per exchange. One os.write per line on an O_APPEND
    fd, from the single event-loop thread: lines never interleave."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=True) + "\n").encode()
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        os.close(self.fd)


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


class StreamGone(Exception):
    """The stream or its connection ended before we finished sending."""

    def __init__(self, outcome: str):
        super().__init__(outcome)
        self.outcome = outcome


class Channel:
    """One response's way to the wire, for HTTP/1.1 or HTTP/2."""

    protocol: str

    async def start(self, status: int, headers: list[tuple[str, str]], streaming: bool) -> list[tuple[str, str]]:
        raise NotImplementedError   # returns the headers as sent

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def end(self) -> None:
        raise NotImplementedError

    async def cut(self, mode: str) -> None:
        raise NotImplementedError


async def run_exchange(req: Request, channel: Channel, log: ExchangeLog, meta: dict,
                       scripts: dict[str, list[dict]] | None = None) -> None:
    """Answer one request on `channel` and log the exchange."""
    started = meta.pop("started")
    knobs = Knobs.from_request(req)
    record: dict[str, Any] = {
        "seq": req.seq, **meta, "protocol": channel.protocol, "method": req.method, "path": req.path,
        "request_headers": [list(h) for h in req.headers], "request_body_b64": b64(req.body),
        "status": None, "response_headers": [], "response_body_b64": "", "response_body_encoded_b64": None,
        "content_encoding": None, "pieces": [], "cut": False, "outcome": "complete",
        "started": started, "finished": None, "knobs": knobs.honoured,
    }
    sent_plain, sent_wire = bytearray(), bytearray()
    try:
        try:
            plan = plan_response(req, knobs, scripts)
        except Exception:
            traceback.print_exc()
            plan = plan_error(req, 500, knobs, "llm_server failed to plan this response")
        pieces, cut_index = schedule(plan, knobs)
        headers = list(plan.headers)
        if knobs.gzip:
            headers.append(("content-encoding", "gzip"))
            record["content_encoding"] = "gzip"
        if not plan.streaming:
            headers.append(("content-length", str(sum(len(p.wire) for p in pieces))))
        else:
            headers.append(("cache-control", "no-cache"))
        if knobs.delay:
            await asyncio.sleep(knobs.delay)
        record["status"] = plan.status
        record["response_headers"] = [list(h) for h in await channel.start(plan.status, headers, plan.streaming)]
        t0 = time.monotonic()
        to_send = pieces if cut_index is None else pieces[:cut_index]
        for piece in to_send:
            if piece.delay:
                await asyncio.sleep(piece.delay)
            await channel.send(piece.wire)
            sent_plain += piece.plain
            sent_wire += piece.wire
            record["pieces"].append([round((time.monotonic() - t0) * 1000, 3), len(piece.plain)])
        if cut_index is not None:
            record["cut"], record["outcome"] = True, "cut"
            await channel.cut(knobs.cut_mode)
        else:
            await channel.end()
    except StreamGone as gone:
        if record["outcome"] == "complete":
            record["outcome"] = gone.outcome
    finally:
        record["response_body_b64"] = b64(bytes(sent_plain))
        if knobs.gzip:
            record["response_body_encoded_b64"] = b64(bytes(sent_wire))
        record["finished"] = time.time()
        log.write(record)


# ----------------------------------------------------------------------------
# HTTP/1.1


class H1Channel(Channel):
    protocol = "1.1"

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter, state: "ConnState"):
        self.conn, self.writer, self.state = conn, writer, state

    async def _write(self, data: bytes) -> None:
        if self.state.closed:
            raise StreamGone("aborted")
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.state.closed = True
            raise StreamGone("client_reset") from None

    async def start(self, status, headers, streaming):
        if streaming:
            headers = headers + [("transfer-encoding", "chunked")]
        reason = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
        data = self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
        await self._write(data)
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        return [tuple(line.split(": ", 1)) for line in head]

    async def send(self, data):
        if data:
            await self._write(self.conn.send(h11.Data(data=data)))

    async def end(self):
        await self._write(self.conn.send(h11.EndOfMessage()))

    async def cut(self, mode):
        self.state.closed = True
        self.writer.transport.abort()


@dataclass
class ConnState:
    closed: bool = False


async def serve_h1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: "Server", cid: int,
                   port: int) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    state = ConnState()
    index = 0

    async def next_event():
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await reader.read(1 << 16)
            conn.receive_data(data)      # b"" = EOF, h11 then reports ConnectionClosed

    while not state.closed:
        try:
            event = await next_event()
            if not isinstance(event, h11.Request):
                break                    # ConnectionClosed, or a peer that said goodbye
            started = time.time()
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()]
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            body = bytearray()
            while True:
                part = await next_event()
                if isinstance(part, h11.Data):
                    body += part.data
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    raise ConnectionError("request body ended early")
        except (h11.RemoteProtocolError, ConnectionError, OSError):
            break
        index += 1
        req = Request(event.method.decode(), event.target.decode("latin-1"), headers, bytes(body), server.next_seq())
        meta = {"connection": cid, "stream": index, "client_port": port, "started": started}
        await run_exchange(req, H1Channel(conn, writer, state), server.log, meta, server.scripts.current())
        if state.closed or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            break
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            break
    if not state.closed:
        writer.close()


# ----------------------------------------------------------------------------
# HTTP/2


class H2Conn:
    """One HTTP/2 connection: a read loop feeding h2, and one task per request."""

    def __init__(self, reader, writer, server: "Server", cid: int, port: int):
        self.reader, self.writer, self.server, self.cid, self.port = reader, writer, server, cid, port
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
        })
        self.closed = False
        self.window = asyncio.Condition()
        self.requests: dict[int, dict] = {}
        self.reset: set[int] = set()
        self.tasks: set[asyncio.Task] = set()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                await self.lost()

    async def lost(self) -> None:
        self.closed = True
        async with self.window:
            self.window.notify_all()

    async def run(self) -> None:
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window((1 << 24) - 65535)
        await self.flush()
        try:
            while not self.closed:
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    await self.flush()
                    break
                for event in events:
                    await self.handle(event)
                await self.flush()
        except (ConnectionError, OSError):
            pass
        finally:
            await self.lost()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            if not self.writer.transport.is_closing():
                self.writer.close()

    async def handle(self, event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.requests[event.stream_id] = {"headers": event.headers, "body": bytearray(), "started": time.time()}
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id in self.requests:
                self.requests[event.stream_id]["body"] += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            pending = self.requests.pop(event.stream_id, None)
            if pending is None:
                return
            task = asyncio.create_task(self.respond(event.stream_id, pending))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif isinstance(event, h2.events.StreamReset):
            self.reset.add(event.stream_id)
            self.requests.pop(event.stream_id, None)
            async with self.window:
                self.window.notify_all()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            async with self.window:
                self.window.notify_all()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    async def respond(self, sid: int, pending: dict) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pending["headers"]]
        pseudo = dict(h for h in headers if h[0].startswith(":"))
        req = Request(pseudo.get(":method", ""), pseudo.get(":path", ""), headers, bytes(pending["body"]),
                      self.server.next_seq())
        meta = {"connection": self.cid, "stream": sid, "client_port": self.port, "started": pending["started"]}
        await run_exchange(req, H2Channel(self, sid), self.server.log, meta, self.server.scripts.current())


class H2Channel(Channel):
    protocol = "2"

    def __init__(self, owner: H2Conn, sid: int):
        self.owner, self.sid = owner, sid

    def _check(self) -> None:
        if self.sid in self.owner.reset:
            raise StreamGone("client_reset")
        if self.owner.closed:
            raise StreamGone("aborted")

    async def start(self, status, headers, streaming):
        self._check()
        try:
            self.owner.conn.send_headers(self.sid, [(":status", str(status))] + headers)
        except h2.exceptions.StreamClosedError:
            raise StreamGone("client_reset") from None
        await self.owner.flush()
        return headers

    async def send(self, data):
        view, conn = memoryview(data), self.owner.conn
        while view:
            self._check()
            try:
                room = min(conn.local_flow_control_window(self.sid), conn.max_outbound_frame_size)
            except (h2.exceptions.StreamClosedError, KeyError):
                raise StreamGone("client_reset") from None
            if room <= 0:
                async with self.owner.window:
                    await self.owner.window.wait()
                continue
            conn.send_data(self.sid, bytes(view[:room]))
            view = view[room:]
        await self.owner.flush()
        self._check()

    async def end(self):
        self._check()
        try:
            self.owner.conn.end_stream(self.sid)
        except h2.exceptions.StreamClosedError:
            raise StreamGone("client_reset") from None
        await self.owner.flush()

    async def cut(self, mode):
        if mode == "reset":
            self.owner.conn.reset_stream(self.sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            await self.owner.flush()
        else:
            await self.owner.lost()
            self.owner.writer.transport.abort()


# ----------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, log: ExchangeLog, context: ssl.SSLContext, scripts: ScriptBook | None = None):
        self.log, self.context = log, context
        self.scripts = scripts or ScriptBook(None)
        self.seq = 0
        self.connections = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cid = self.connections
        peer = writer.get_extra_info("peername") or ("", 0)
        tls = writer.get_extra_info("ssl_object")
        alpn = tls.selected_alpn_protocol() if tls else None
        try:
            if alpn == "h2":
                await H2Conn(reader, writer, self, cid, peer[1]).run()
            else:
                await serve_h1(reader, writer, self, cid, peer[1])
        except Exception:
            traceback.print_exc()
            writer.transport.abort()


def server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


async def serve(host: str, port: int, log_path: str, cert: str, key: str, scripts: str | None = None) -> None:
    log = ExchangeLog(log_path)
    context = server_context(cert, key)
    server = Server(log, context, ScriptBook(scripts))
    listeners = [await asyncio.start_server(server.accept, host, port, ssl=context, backlog=1024)]
    port = listeners[0].sockets[0].getsockname()[1]
    if host in ("127.0.0.1", "localhost"):
        try:
            listeners.append(await asyncio.start_server(server.accept, "::1", port, ssl=context, backlog=1024))
        except OSError:
            pass                         # no IPv6 loopback here; clients resolve localhost to 127.0.0.1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"port": port, "pid": os.getpid(), "host": host}), flush=True)
    await stop.wait()
    for listener in listeners:
        listener.close()
    log.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True, help="append one JSON line per exchange here")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--scripts", help="JSON file of scripted conversations, re-read when it changes")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.log, args.cert, args.key, args.scripts))


# ----------------------------------------------------------------------------
# The test-side handle


@dataclass
class Exchange:
    """One logged exchange, bodies decoded from base64 (see the module docstring)."""
    seq: int
    connection: int
    stream: int
    protocol: str
    client_port: int
    method: str
    path: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int | None
    response_headers: list[tuple[str, str]]
    response_body: bytes
    response_body_encoded: bytes | None
    content_encoding: str | None
    pieces: list[tuple[float, int]]
    cut: bool
    outcome: str
    started: float
    finished: float
    knobs: dict[str, str]

    @classmethod
    def from_record(cls, r: dict) -> "Exchange":
        enc = r["response_body_encoded_b64"]
        return cls(
            seq=r["seq"], connection=r["connection"], stream=r["stream"], protocol=r["protocol"],
            client_port=r["client_port"], method=r["method"], path=r["path"],
            request_headers=[tuple(h) for h in r["request_headers"]],
            request_body=base64.b64decode(r["request_body_b64"]), status=r["status"],
            response_headers=[tuple(h) for h in r["response_headers"]],
            response_body=base64.b64decode(r["response_body_b64"]),
            response_body_encoded=None if enc is None else base64.b64decode(enc),
            content_encoding=r["content_encoding"], pieces=[tuple(p) for p in r["pieces"]],
            cut=r["cut"], outcome=r["outcome"], started=r["started"], finished=r["finished"], knobs=r["knobs"],
        )

    def request_header(self, name: str) -> str | None:
        return next((v for k, v in self.request_headers if k.lower() == name.lower()), None)

    def response_header(self, name: str) -> str | None:
        return next((v for k, v in self.response_headers if k.lower() == name.lower()), None)

    def request_json(self) -> Any:
        return json.loads(self.request_body)

    def response_json(self) -> Any:
        return json.loads(self.response_body)

    def sse_data(self) -> list[str]:
        """The data fields of the response's SSE events, in order."""
        text = self.response_body.decode("utf-8", errors="replace")
        return [line[len("data: "):] for block in text.split("\n\n")
                for line in block.split("\n") if line.startswith("data: ")]


class LlmServer:
    """Start tests/llm_server.py as its own process, with a fresh test PKI.

        with LlmServer() as server:
            ... server.base_url, server.ca_file, server.port, server.pid ...
            server.exchanges(wait_for=2)

    `workdir` (default: a new temp dir, removed on exit) holds ca.pem, server.pem,
    server-key.pem, exchanges.jsonl, scripts.json and server.stderr. `scripts`
    ({name: [turn, ...]}, see "Scripted conversations") can be added to later with
    `add_script`, while the server runs."""

    def __init__(self, workdir: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 start_timeout: float = 15.0, scripts: dict[str, list[dict]] | None = None):
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="llm-server-") if workdir is None else workdir)
        self.host, self.start_timeout = host, start_timeout
        self.log_path = self.workdir / "exchanges.jsonl"
        self.scripts_path = self.workdir / "scripts.json"
        self.scripts: dict[str, list[dict]] = dict(scripts or {})
        self.ca_file = self.cert_file = self.key_file = ""
        self.port = 0
        self.pid = 0
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    def add_script(self, name: str, turns: list[dict]) -> str:
        """Add (or replace) a script; returns the marker that selects it in a prompt."""
        self.scripts[name] = turns
        self._write_scripts()
        return f"[llmtap-script:{name}]"

    def _write_scripts(self) -> None:
        # Written whole and renamed into place: the server never reads half a file.
        scratch = self.scripts_path.with_suffix(".tmp")
        scratch.write_text(json.dumps(self.scripts, ensure_ascii=False))
        os.replace(scratch, self.scripts_path)

    def start(self) -> "LlmServer":
        self.ca_file, self.cert_file, self.key_file = make_test_pki(self.workdir)
        self._write_scripts()
        self.log_path.touch()
        self._stderr = open(self.workdir / "server.stderr", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--host", self.host, "--port", "0",
             "--log", str(self.log_path), "--cert", self.cert_file, "--key", self.key_file,
             "--scripts", str(self.scripts_path)],
            stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(self.start_timeout):
            self.stop()
            raise RuntimeError(f"llm_server did not start in {self.start_timeout}s: {self.stderr()}")
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"llm_server exited: {self.stderr()}")
        ready = json.loads(line)
        self.port, self.pid = ready["port"], ready["pid"]
        return self

    def stderr(self) -> str:
        path = self.workdir / "server.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def records(self) -> list[dict]:
        with open(self.log_path, "rb") as f:
            return [json.loads(line) for line in f if line.endswith(b"\n")]

    def exchanges(self, wait_for: int = 0, timeout: float = 10.0) -> list[Exchange]:
        """All logged exchanges, in the order they ended. With `wait_for`, wait
        up to `timeout` seconds for at least that many (a streamed exchange is
        logged just after its last byte, so a client can finish first)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if len(records) >= wait_for or time.monotonic() > deadline:
                return [Exchange.from_record(r) for r in records]
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_stderr", None):
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "LlmServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
