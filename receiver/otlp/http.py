"""OTLP/HTTP on aiohttp: POST protobuf or JSON export requests to one path per signal.

Answers as the OTLP spec and the collector do: the response is encoded like the
request (application/x-protobuf or application/json); a failure carries a
google.rpc.Status naming what was wrong. 405 (with Allow: POST) for another
method, 415 for another content type or content encoding, 413 over
max_request_body_size (on the wire or once decompressed), 400 for a body that
cannot be decompressed or decoded and for data the pipeline calls permanently
bad, 503 (429 when the pipeline throttles) with Retry-After when it refuses,
401 when the authenticator rejects the request (checked before the body is read).
Paths of signals that no pipeline takes are not served (404).

A request holds at most max_request_body_size bytes of decoded body (see body.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf import json_format
from google.protobuf.message import Message

from llmtap.component import PermanentError, RefusedError, Signal
from llmtap.pdata import parse_json, parse_protobuf, to_json
from llmtap.receiver.otlp import rpcstatus
from llmtap.receiver.otlp.body import BodyTooLarge, MalformedBody, UnsupportedEncoding, read_body
from llmtap.receiver.otlp.config import HttpConfig
from llmtap.receiver.otlp.endpoint import format_endpoint, parse_endpoint
from llmtap.receiver.otlp.intake import RESPONSE_TYPES, Intake
from llmtap.receiver.otlp.tls import ssl_context

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# aiohttp's own wait for handlers at cleanup; ours (the grace period) has already run by then.
_STRAGGLER_TIMEOUT = 1.0


def _text(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", headers=headers)


def _encode(message: Message, media_type: str) -> bytes:
    if media_type == JSON:
        return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
    return message.SerializeToString()


def _error(status: int, message: str, media_type: str, retry_after: float | None = None) -> web.Response:
    body = rpcstatus.status(rpcstatus.CODE_FOR_HTTP_STATUS[status], message, retry_after)
    headers = {"Retry-After": rpcstatus.retry_after_header(retry_after)} if retry_after is not None else {}
    return web.Response(status=status, body=_encode(body, media_type), content_type=media_type, headers=headers)


class HttpServer:
    def __init__(self, config: HttpConfig, intake: Intake, authenticator: Any, logger: logging.Logger):
        self.config = config
        self.intake = intake
        self.authenticator = authenticator
        self.logger = logger
        self.endpoint = ""  # host:port actually bound, once started
        self._runner: web.AppRunner | None = None
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> str:
        context = ssl_context(self.config.tls) if self.config.tls.enabled else None
        middlewares = [self._require_authentication] if self.authenticator else []
        app = web.Application(middlewares=middlewares)
        paths = self.config.url_paths()
        for signal in self.intake.signals:
            app.router.add_route("*", paths[signal], functools.partial(self._export, signal))
        # auto_decompress off: body.py decompresses under the size cap and names bad gzip.
        runner = web.AppRunner(app, auto_decompress=False, shutdown_timeout=_STRAGGLER_TIMEOUT)
        await runner.setup()
        host, port = parse_endpoint(self.config.endpoint)
        try:
            await web.TCPSite(runner, host or None, port, ssl_context=context).start()
        except OSError as e:
            await runner.cleanup()
            raise OSError(f"cannot listen on {self.config.endpoint}: {e.strerror or e}") from None
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.endpoint = format_endpoint(bound_host, bound_port)
        return self.endpoint

    async def stop(self, grace: float) -> None:
        """Stop listening at once; requests already running get `grace` seconds to finish."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for site in list(runner.sites):
            await site.stop()
        if self._active:
            try:
                await asyncio.wait_for(self._idle.wait(), grace)
            except asyncio.TimeoutError:
                self.logger.warning("OTLP/HTTP requests still running after the shutdown grace period",
                                    extra={"fields": {"requests": self._active, "grace_s": grace}})
        await runner.cleanup()

    @web.middleware
    async def _require_authentication(self, request: web.Request, handler) -> web.StreamResponse:
        if self.authenticator.authenticate(request.headers):
            return await handler(request)
        scheme = getattr(self.authenticator, "scheme", "")
        headers = {"WWW-Authenticate": scheme} if scheme else {}
        return _text(401, "401 unauthorized: missing or invalid credentials", **headers)

    async def _export(self, signal: Signal, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _text(405, "405 method not allowed, supported: [POST]", Allow="POST")
        media_type = request.content_type
        if media_type not in (JSON, PROTOBUF):
            return _text(415, f"415 unsupported media type, supported: [{JSON}, {PROTOBUF}]")
        self._active += 1
        self._idle.clear()
        try:
            return await self._accept(signal, request, media_type)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def _accept(self, signal: Signal, request: web.Request, media_type: str) -> web.StreamResponse:
        try:
            body = await read_body(request, self.config.body_limit())
            data = parse_json(signal, body) if media_type == JSON else parse_protobuf(signal, body)
            await self.intake.deliver(signal, data, "http")
        except UnsupportedEncoding as e:
            return _error(415, str(e), media_type)
        except BodyTooLarge as e:
            return _error(413, str(e), media_type)
        except (MalformedBody, PermanentError) as e:
            return _error(400, str(e), media_type)
        except RefusedError as e:
            return _error(429 if e.throttle else 503, str(e), media_type, retry_after=e.retry_after)
        except (HttpProcessingError, ConnectionError) as e:
            # The client went away or broke the framing mid-body; nobody is left to answer.
            self.logger.debug("OTLP/HTTP request body incomplete: %s", e)
            return _error(400, f"incomplete request body: {e}", media_type)
        except Exception:
            self.logger.exception("OTLP/HTTP export failed unexpectedly", extra={"fields": {
                "signal": str(signal), "peer": request.remote}})
            return _error(500, "internal error while processing the request", media_type)
        response = RESPONSE_TYPES[signal]()
        body = to_json(response).encode() if media_type == JSON else response.SerializeToString()
        return web.Response(status=200, body=body, content_type=media_type)
