"""The command line shared by the Python traffic sources in this folder.

Every client is run as its own process (the eBPF probe traces processes):

    python tests/llm_clients/<client>.py --base-url https://localhost:PORT --ca CA.pem \\
        --scenario NAME [--count N] [--header 'x-test-gzip: 1'] [--http1|--http2] \\
        [--prompt TEXT] [--model M] [--size BYTES] [--path /healthz] [--max-retries N]

and prints one JSON object on stdout when done:

    {"client": ..., "scenario": ..., "pid": ..., "results": [one object per request], ...}

The SDK clients add "sent": [{"method", "path", "body_sha256", "body_len"}, ...],
every HTTP request their transport sent (retries included), seen by an httpx
event hook, so a test can check the server received those exact bytes.

A request that fails (an HTTP error status, a cut connection) is a result with
an "error" member, not a failed process: the process exits non-zero only when
the client itself breaks. API keys come from OPENAI_API_KEY / ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import traceback
from typing import Any, Callable

SYSTEM_PROMPT = "You are a terse test assistant."


def parse_args(client: str, scenarios: list[str], argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=client)
    p.add_argument("--base-url", required=True, help="https://localhost:PORT (no /v1)")
    p.add_argument("--ca", required=True, help="PEM file of the CA to trust")
    p.add_argument("--scenario", required=True, choices=scenarios)
    p.add_argument("--count", type=int, default=1, help="requests (concurrent or sequential, by scenario)")
    p.add_argument("--header", action="append", default=[], help="'name: value', added to every request")
    proto = p.add_mutually_exclusive_group()
    proto.add_argument("--http1", action="store_const", dest="http2", const=False)
    proto.add_argument("--http2", action="store_const", dest="http2", const=True)
    p.add_argument("--prompt", default="Say hello to llmtap")
    p.add_argument("--model", default=None)
    p.add_argument("--size", type=int, default=1 << 20, help="request body bytes (large_request)")
    p.add_argument("--path", default="/healthz", help="path of the get scenario")
    p.add_argument("--max-retries", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    args.client = client
    args.headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        args.headers[name.strip()] = value.strip()
    return args


def ssl_context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def prompt_of(args: argparse.Namespace, i: int) -> str:
    """A prompt per request that the server echoes, so results and log lines pair up."""
    return f"{args.prompt} #{os.getpid()}-{i}"


def describe_error(exc: BaseException) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)[:500]}
    status = getattr(exc, "status_code", None)
    if status is not None:
        err["status"] = status
    body = getattr(exc, "body", None)
    if body is not None:
        err["body"] = body
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "headers"):
        err["headers"] = {k.lower(): v for k, v in response.headers.items()}
    return err


def run(args: argparse.Namespace, scenario: Callable[[argparse.Namespace], list[dict]],
        extra: Callable[[], dict] | None = None) -> None:
    try:
        results = scenario(args)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    out = {"client": args.client, "scenario": args.scenario, "pid": os.getpid(), "results": results}
    if extra is not None:
        out.update(extra())
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()
