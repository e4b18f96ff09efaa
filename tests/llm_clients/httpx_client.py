"""Traffic source: raw `httpx` (the classic package, with h2), no SDK.

Sync scenarios use httpx.Client (CPython ssl on a socket: SSL_set_fd); the
concurrent one uses httpx.AsyncClient, whose TLS goes through asyncio's
memory-BIO SSL (SSL_set_bio: the SSL object has no fd).

Scenarios (see client_cli.py for the command line and output):
    get                 --count GETs of --path on one connection
    chat, chat_stream   --count chat completions (stream: false / true), one after another
    h1_keepalive        --count requests, alternating chat and chat_stream, on ONE HTTP/1.1
                        keep-alive connection
    concurrent_streams  --count chat_stream requests at once: on ONE HTTP/2 connection by
                        default, on --count HTTP/1.1 connections with --http1
    large_request       one chat completion whose JSON body is exactly --size bytes (default
                        1 MiB), HTTP/2 unless --http1
All requests carry the bearer key from OPENAI_API_KEY and the cookie from
LLMTAP_TEST_COOKIE ("name=value"). A result has "status", "http_version",
"headers", "body_b64" (the body after content decoding), "raw_b64" (the
content-coded bytes, only with a Content-Encoding), "reads" (bytes per read),
"request_sha256"/"request_len", and "error" when the exchange failed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
import zlib

import httpx

from client_cli import SYSTEM_PROMPT, describe_error, parse_args, prompt_of, run, ssl_context

SCENARIOS = ["get", "chat", "chat_stream", "h1_keepalive", "concurrent_streams", "large_request"]


def base_headers(args) -> dict[str, str]:
    return {"authorization": f"Bearer {os.environ['OPENAI_API_KEY']}", **args.headers}


def cookies() -> dict[str, str]:
    name, _, value = os.environ.get("LLMTAP_TEST_COOKIE", "session=llmtap-test").partition("=")
    return {name: value}


def chat_body(args, prompt: str, stream: bool) -> bytes:
    payload = {"model": args.model or "gpt-4o-mini", "stream": stream,
               "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]}
    if stream:
        payload["stream_options"] = {"include_usage": True}
    return json.dumps(payload).encode()


def sized_chat_body(args, prompt: str, size: int) -> bytes:
    """A chat request whose JSON body is exactly `size` bytes (ASCII padding)."""
    base = chat_body(args, prompt + " ", False)
    return chat_body(args, prompt + " " + "x" * max(0, size - len(base)), False)


def result_of(response: httpx.Response, reads: list[bytes], request_body: bytes, error: Exception | None,
              prompt: str | None) -> dict:
    raw = b"".join(reads)
    encoding = response.headers.get("content-encoding")
    out = {"prompt": prompt, "status": response.status_code, "http_version": response.http_version,
           "headers": dict(response.headers.items()), "reads": [len(r) for r in reads],
           "request_sha256": hashlib.sha256(request_body).hexdigest(), "request_len": len(request_body)}
    if encoding == "gzip":
        out["raw_b64"] = base64.b64encode(raw).decode()
        raw = zlib.decompressobj(31).decompress(raw)      # a cut stream still decodes its prefix
    out["body_b64"] = base64.b64encode(raw).decode()
    if error is not None:
        out["error"] = describe_error(error)
    return out


def send(client: httpx.Client, method: str, path: str, body: bytes | None, prompt: str | None, args) -> dict:
    headers = base_headers(args)
    if body is not None:
        headers["content-type"] = "application/json"
    request = client.build_request(method, path, content=body, headers=headers)
    try:
        response = client.send(request, stream=True)
    except httpx.HTTPError as exc:
        return {"prompt": prompt, "error": describe_error(exc)}
    reads, error = [], None
    try:
        for part in response.iter_raw():
            reads.append(part)
    except httpx.HTTPError as exc:
        error = exc
    finally:
        response.close()
    return result_of(response, reads, body or b"", error, prompt)


async def send_async(client: httpx.AsyncClient, path: str, body: bytes, prompt: str, args) -> dict:
    headers = {**base_headers(args), "content-type": "application/json"}
    request = client.build_request("POST", path, content=body, headers=headers)
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        return {"prompt": prompt, "error": describe_error(exc)}
    reads, error = [], None
    try:
        async for part in response.aiter_raw():
            reads.append(part)
    except httpx.HTTPError as exc:
        error = exc
    finally:
        await response.aclose()
    return result_of(response, reads, body, error, prompt)


def sync_client(args, http2: bool) -> httpx.Client:
    return httpx.Client(base_url=args.base_url, verify=ssl_context(args.ca), http2=http2, cookies=cookies(),
                        timeout=args.timeout, limits=httpx.Limits(max_connections=1))


async def concurrent_streams(args) -> list[dict]:
    http2 = args.http2 is not False
    limits = httpx.Limits(max_connections=1 if http2 else args.count)
    async with httpx.AsyncClient(base_url=args.base_url, verify=ssl_context(args.ca), http2=http2,
                                 http1=not http2, cookies=cookies(), timeout=args.timeout, limits=limits) as c:
        prompts = [prompt_of(args, i) for i in range(args.count)]
        return await asyncio.gather(*(send_async(c, "/v1/chat/completions", chat_body(args, p, True), p, args)
                                      for p in prompts))


def scenario(args) -> list[dict]:
    if args.scenario == "concurrent_streams":
        return asyncio.run(concurrent_streams(args))
    http2 = args.http2 is True if args.scenario != "large_request" else args.http2 is not False
    if args.scenario == "h1_keepalive":
        http2 = False
    with sync_client(args, http2) as client:
        results = []
        for i in range(args.count):
            prompt = prompt_of(args, i)
            if args.scenario == "get":
                results.append(send(client, "GET", args.path, None, None, args))
            elif args.scenario == "large_request":
                results.append(send(client, "POST", "/v1/chat/completions", sized_chat_body(args, prompt, args.size),
                                    prompt, args))
            else:
                stream = args.scenario == "chat_stream" or (args.scenario == "h1_keepalive" and i % 2 == 1)
                results.append(send(client, "POST", "/v1/chat/completions", chat_body(args, prompt, stream),
                                    prompt, args))
        return results


if __name__ == "__main__":
    run(parse_args("httpx", SCENARIOS, sys.argv[1:]), scenario, lambda: {"httpx_version": httpx.__version__})
