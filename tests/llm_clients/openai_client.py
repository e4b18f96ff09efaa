"""Traffic source: the official `openai` Python SDK, with its own transport
(httpx2; HTTP/1.1 unless --http2) and a sync client, so TLS goes through
CPython's ssl module on a socket (SSL_read_ex/SSL_write_ex on an fd).

Scenarios (see client_cli.py for the command line and output):
    chat                non-streamed chat completion
    chat_stream         streamed chat completion with stream_options.include_usage, assembled
                        by the SDK's chat.completions.stream() helper
    responses           non-streamed Responses API call
    responses_stream    streamed Responses API call, assembled by responses.stream()
    models              GET /v1/models
    concurrent_streams  --count chat_stream requests at once, from threads sharing one client
Every result has "prompt" and either what the SDK assembled or "error".
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx2
import openai

from client_cli import SYSTEM_PROMPT, describe_error, parse_args, prompt_of, run, ssl_context

SCENARIOS = ["chat", "chat_stream", "responses", "responses_stream", "models", "concurrent_streams"]
sent: list[dict] = []
sent_lock = threading.Lock()


def record(request: httpx2.Request) -> None:
    body = request.content
    with sent_lock:
        sent.append({"method": request.method, "path": urlsplit(str(request.url)).path,
                     "body_sha256": hashlib.sha256(body).hexdigest(), "body_len": len(body)})


def make_client(args) -> openai.OpenAI:
    http_client = httpx2.Client(verify=ssl_context(args.ca), http2=bool(args.http2),
                                event_hooks={"request": [record]}, timeout=args.timeout)
    return openai.OpenAI(base_url=args.base_url + "/v1", api_key=os.environ["OPENAI_API_KEY"],
                         http_client=http_client, max_retries=args.max_retries,
                         default_headers=args.headers)


def messages(prompt: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def chat(client, args, i: int) -> dict:
    prompt = prompt_of(args, i)
    out = {"prompt": prompt}
    try:
        c = client.chat.completions.create(model=args.model or "gpt-4o-mini", messages=messages(prompt))
        out.update(id=c.id, model=c.model, content=c.choices[0].message.content,
                   finish_reason=c.choices[0].finish_reason, usage=c.usage.model_dump())
    except Exception as exc:
        out["error"] = describe_error(exc)
    return out


def chat_stream(client, args, i: int) -> dict:
    prompt = prompt_of(args, i)
    out = {"prompt": prompt, "events": 0}
    deltas: list[str] = []
    try:
        with client.chat.completions.stream(model=args.model or "gpt-4o-mini", messages=messages(prompt),
                                            stream_options={"include_usage": True}) as stream:
            for event in stream:
                out["events"] += 1
                if event.type == "content.delta":
                    deltas.append(event.delta)
            final = stream.get_final_completion()
        out.update(id=final.id, model=final.model, content=final.choices[0].message.content,
                   finish_reason=final.choices[0].finish_reason,
                   usage=final.usage.model_dump() if final.usage else None)
    except Exception as exc:
        out["error"] = describe_error(exc)
    out["deltas"] = deltas
    return out


def responses(client, args, i: int) -> dict:
    prompt = prompt_of(args, i)
    out = {"prompt": prompt}
    try:
        r = client.responses.create(model=args.model or "gpt-4o-mini", instructions=SYSTEM_PROMPT, input=prompt)
        out.update(id=r.id, model=r.model, content=r.output_text, status=r.status, usage=r.usage.model_dump())
    except Exception as exc:
        out["error"] = describe_error(exc)
    return out


def responses_stream(client, args, i: int) -> dict:
    prompt = prompt_of(args, i)
    out = {"prompt": prompt, "event_types": []}
    deltas: list[str] = []
    try:
        with client.responses.stream(model=args.model or "gpt-4o-mini", instructions=SYSTEM_PROMPT,
                                     input=prompt) as stream:
            for event in stream:
                if event.type not in out["event_types"]:
                    out["event_types"].append(event.type)
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
            final = stream.get_final_response()
        out.update(id=final.id, model=final.model, content=final.output_text, status=final.status,
                   usage=final.usage.model_dump() if final.usage else None)
    except Exception as exc:
        out["error"] = describe_error(exc)
    out["deltas"] = deltas
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
                return list(pool.map(lambda i: chat_stream(client, args, i), range(args.count)))
        one = globals()[args.scenario]
        return [one(client, args, i) for i in range(args.count)]
    finally:
        client.close()


if __name__ == "__main__":
    a = parse_args("openai", SCENARIOS, sys.argv[1:])
    run(a, scenario, lambda: {"sent": sent, "sdk_version": openai.__version__})
