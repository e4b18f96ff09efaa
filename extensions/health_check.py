"""`health_check` extension: an HTTP endpoint that says whether llmtap is ready,
as the collector's healthcheckextension does.

GET `path` answers 200 with
`{"status":"Server available","upSince":"<RFC 3339>","uptime":"<Go duration>"}`
while every component is started, and 503 with `{"status":"Server not available",...}`
while the service is starting or shutting down. The service starts extensions
first and stops them last, so both 503 phases can be seen from outside.
`response_body.healthy` / `.unhealthy`, when set, replace the JSON bodies.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

from llmtap.component import Extension, Factory, Host, Kind, Settings, Stability
from llmtap.configtypes import doc
from llmtap.selfmetrics import split_endpoint

ZERO_TIME = "0001-01-01T00:00:00Z"  # what the collector reports before it was ever up
_STATUS_POLL = 0.02  # seconds between looks at the host status while it is starting


@dataclass
class ResponseBodyConfig:
    healthy: str = field(default="", metadata=doc("Body returned with 200 instead of the JSON status."))
    unhealthy: str = field(default="", metadata=doc("Body returned with 503 instead of the JSON status."))


@dataclass
class Config:
    endpoint: str = field(default="localhost:13133", metadata=doc("host:port to serve the health check on."))
    path: str = field(default="/", metadata=doc("URL path of the health check."))
    response_body: ResponseBodyConfig = field(default_factory=ResponseBodyConfig, metadata=doc(
        "Fixed bodies instead of the JSON status."))

    def validate(self) -> list[str]:
        errors = []
        try:
            split_endpoint(self.endpoint)
        except ValueError:
            errors.append(f"endpoint: must be host:port; got {self.endpoint!r}")
        if not self.path.startswith("/"):
            errors.append(f"path: must start with '/'; got {self.path!r}")
        return errors


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it: 1h2m3.5s, 49.0132518s, 1.5ms."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    text = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return sign + text + _fraction(ns, 10**9) + "s"


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0").rstrip(".") if rest else str(whole)


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


class HealthCheck(Extension):
    def __init__(self, settings: Settings, config: Config):
        super().__init__(settings, config)
        self.host: Host | None = None
        self.port: int | None = None  # the bound port (an endpoint with port 0 gets an ephemeral one)
        self._up_since: float | None = None  # wall-clock time the service became ready
        self._up_since_monotonic = 0.0
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task | None = None

    async def start(self, host: Host) -> None:
        self.host = host
        host_name, port = split_endpoint(self.config.endpoint)
        try:
            family = socket.getaddrinfo(host_name, port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.create_server((host_name, port), family=family, reuse_port=False)
        except OSError as e:
            raise HealthCheckError(f"cannot listen on {self.config.endpoint}: {e.strerror or e}") from e
        self.port = sock.getsockname()[1]
        app = web.Application()
        app.router.add_get(self.config.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self._watcher = asyncio.create_task(self._watch_until_ready(), name=f"{self.id} status watcher")
        self.logger.info("health check serving", extra={"fields": {
            "endpoint": f"http://{host_name}:{self.port}{self.config.path}"}})

    async def _watch_until_ready(self) -> None:
        # The service has no ready callback: look at its status until it is up.
        while self.host.status != "ready":
            await asyncio.sleep(_STATUS_POLL)
        self._mark_ready()

    def _mark_ready(self) -> None:
        if self._up_since is None:
            self._up_since, self._up_since_monotonic = time.time(), time.monotonic()

    async def _handle(self, request: web.Request) -> web.Response:
        ready = self.host is not None and self.host.status == "ready"
        if ready:
            self._mark_ready()
            custom = self.config.response_body.healthy
            body = {"status": "Server available", "upSince": rfc3339(self._up_since),
                    "uptime": go_duration(time.monotonic() - self._up_since_monotonic)}
        else:
            custom = self.config.response_body.unhealthy
            body = {"status": "Server not available", "upSince": ZERO_TIME, "uptime": ""}
        status = 200 if ready else 503
        if custom:
            return web.Response(status=status, text=custom)
        return web.Response(status=status, text=json.dumps(body, separators=(",", ":")),
                            content_type="application/json")

    async def shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class HealthCheckError(Exception):
    pass


factory = Factory(
    type="health_check",
    kind=Kind.EXTENSION,
    config_class=Config,
    create=HealthCheck,
    signals=frozenset(),
    stability=Stability.BETA,
    description="HTTP endpoint answering 200 while llmtap is ready and 503 while starting or stopping",
)
