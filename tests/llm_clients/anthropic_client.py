"""Traffic source: the official `anthropic` Python SDK, with its own transport
(httpx2; HTTP/1.1 unless --http2) and a sync client.

Scenarios (see client_cli.py for the command line and output):
    messages            non-streamed Messages call
    messages_stream     streamed Messages call; text from text_stream, the message from
                        the SDK's get_final_message()
    models              GET /v1/models (Anthropic's shape)
    concurrent_streams  --count messages_stream requests at once, from threads sharing one client
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import anthropic
import httpx2

from client_cli import SYSTEM_PROMPT, describe_error, parse_args, prompt_of, run, ssl_context

SCENARIOS = ["messages", "messages_stream", "models", "concurrent_streams"]
MODEL = "claude-sonnet-4-5-20250929"
sent: list[dict] = []
sent_lock = threading.Lock()


def record(request: httpx2.Request) -> None:
    body = request.content
    with sent_lock:
        sent.append({"method": request.method, "path": urlsplit(str(request.url)).path,
                     "body_sha256": hashlib.sha256(body).hexdigest(), "body_len": len(body)})


def make_client(args) -> anthropic.Anthropic:
    http_client = httpx2.Client(verify=ssl_context(args.ca), http2=bool(args.http2),
                                event_hooks={"request": [record]}, timeout=args.timeout)
    return anthropic.Anthropic(base_url=args.base_url, api_key=os.environ["ANTHROPIC_API_KEY"],
                               http_client=http_client, max_retries=args.max_retries,
                               default_headers=args.headers)


def message_summary(m) -> dict:
    return {"id": m.id, "model": m.model, "content": "".join(b.text for b in m.content if b.type == "text"),
            "stop_reason": m.stop_reason, "usage": m.usage.model_dump()}


def messages(client, args, i: int) -> dict:
    prompt = prompt_of(args, i)
    out = {"prompt": prompt}
    try:
        m = client.messages.create(model=args.model or MODEL, max_tokens=256, system=SYSTEM_PROMPT,
                                   messages=[{"role": "user", "content": prompt}])
        out.update(message_summary(m))
    except Exception as exc:
        out["error"] = describe_error(exc)
    return out


def messages_stream(client, args, i: int) -> dict:
    prompt = prompt_of(args, i)
    out = {"prompt": prompt, "event_types": []}
    texts: list[str] = []
    try:
        with client.messages.stream(model=args.model or MODEL, max_tokens=256, system=SYSTEM_PROMPT,
                                    messages=[{"role": "user", "content": prompt}]) as stream:
            for event in stream:
                if event.type not in out["event_types"]:
                    out["event_types"].append(event.type)
                if event.type == "text":
                    texts.append(event.text)
            out.update(message_summary(stream.get_final_message()))
    except Exception as exc:
        out["error"] = describe_error(exc)
    out["deltas"] = texts
    return out


def models(client, args, i: int) -> dict:
    out = {"prompt": None}
    try:
        out["models"] = [m.id for m in client.models.list()]
    except Exception as exc:
        out["error"] = describe_error(exc)
    return out


def scenario(args) -> list[dict]:
    client = make_client(args)
    try:
        if args.scenario == "concurrent_streams":
            with ThreadPoolExecutor(max_workers=args.count) as pool:
                return list(pool.map(lambda i: messages_stream(client, args, i), range(args.count)))
        one = globals()[args.scenario]
        return [one(client, args, i) for i in range(args.count)]
    finally:
        client.close()


if __name__ == "__main__":
    a = parse_args("anthropic", SCENARIOS, sys.argv[1:])
    run(a, scenario, lambda: {"sent": sent, "sdk_version": anthropic.__version__})
