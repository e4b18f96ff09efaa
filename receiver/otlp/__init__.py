"""The `otlp` receiver: OTLP over gRPC (default localhost:4317) and HTTP (default
localhost:4318) for traces, metrics and logs, as the collector's otlpreceiver.

One instance serves every signal that has a pipeline listing it; requests for
other signals are not served (HTTP 404, gRPC UNIMPLEMENTED). Each request is
handed to the pipeline before it is answered, so a success response means the
pipeline took the data, and a refusal reaches the client as a retryable status.

Config keys (see config.py; `protocols.<grpc|http>` present, even empty, enables it):

    protocols:
      grpc:
        endpoint: localhost:4317
        max_recv_msg_size_mib: 4
        tls: {cert_file, key_file, client_ca_file}
        auth: {authenticator: bearertokenauth}
      http:
        endpoint: localhost:4318
        traces_url_path: /v1/traces   (metrics_url_path, logs_url_path likewise)
        max_request_body_size: 20MiB
        tls: ...
        auth: ...

`endpoints` gives the addresses actually bound ("grpc"/"http" → "host:port"),
so a test can configure `127.0.0.1:0` and read the port the OS picked. (Use an
IP literal with port 0: `localhost` may bind IPv4 and IPv6 on different ports.)

At start, a protocol that listens beyond loopback without an authenticator is
reported with a warning: anyone who can reach the port can write telemetry.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

from llmtap.component import ComponentID, Consumer, Factory, Host, Kind, Receiver, Settings, Signal, Stability
from llmtap.receiver.otlp.config import AuthConfig, Config
from llmtap.receiver.otlp.endpoint import is_loopback_only, parse_endpoint
from llmtap.receiver.otlp.grpc import GrpcServer
from llmtap.receiver.otlp.http import HttpServer
from llmtap.receiver.otlp.intake import Intake

# How long in-flight requests may take to finish at shutdown when the service set no deadline.
DEFAULT_SHUTDOWN_GRACE = 10.0


class OtlpReceiver(Receiver):
    def __init__(self, settings: Settings, config: Config, consumers: Mapping[Signal, Consumer]):
        super().__init__(settings, config, consumers)
        self.intake = Intake(str(self.id), settings.telemetry, self.consumers)
        self._servers: dict[str, GrpcServer | HttpServer] = {}
        self._host: Host | None = None

    @property
    def endpoints(self) -> dict[str, str]:
        """Protocol ("grpc", "http") → the host:port it is listening on."""
        return {name: server.endpoint for name, server in self._servers.items()}

    async def start(self, host: Host) -> None:
        self._host = host
        protocols = self.config.protocols
        wanted: list[tuple[str, Any]] = []
        if protocols.grpc.configured:
            wanted.append(("grpc", GrpcServer))
        if protocols.http.configured:
            wanted.append(("http", HttpServer))
        try:
            for name, server_class in wanted:
                protocol_config = getattr(protocols, name)
                authenticator = self._authenticator(host, protocol_config.auth, name)
                server = server_class(protocol_config, self.intake, authenticator, self.logger)
                try:
                    endpoint = await server.start()
                except Exception as e:
                    raise RuntimeError(f"protocols.{name}: {e}") from e
                self._servers[name] = server
                self.logger.info("OTLP receiver listening", extra={"fields": {
                    "receiver": str(self.id), "protocol": name, "endpoint": endpoint,
                    "tls": protocol_config.tls.enabled, "auth": protocol_config.auth.authenticator or None,
                    "signals": [str(s) for s in self.intake.signals]}})
                if authenticator is None:
                    await self._warn_if_exposed(name, protocol_config.endpoint)
        except BaseException:
            await self._stop_servers(0)
            raise

    def _authenticator(self, host: Host, auth: AuthConfig, protocol: str) -> Any:
        if not auth.authenticator:
            return None
        key = f"protocols.{protocol}.auth.authenticator"
        cid = ComponentID.parse(auth.authenticator)
        try:
            extension = host.extension(cid)
        except KeyError:
            raise RuntimeError(f"{key}: extension {str(cid)!r} is not running; configure it under "
                               f"'extensions' and list it in service.extensions") from None
        if not callable(getattr(extension, "authenticate", None)):
            raise RuntimeError(f"{key}: extension {str(cid)!r} is not an authenticator")
        return extension

    async def _warn_if_exposed(self, protocol: str, endpoint: str) -> None:
        host, _ = parse_endpoint(endpoint)
        if await is_loopback_only(host):
            return
        self.logger.warning(
            "OTLP receiver accepts UNAUTHENTICATED data from the network: anyone who can reach this port "
            "can send telemetry. Set auth.authenticator or listen on localhost.",
            extra={"fields": {"receiver": str(self.id), "protocol": protocol, "endpoint": endpoint,
                              "key": f"protocols.{protocol}.auth.authenticator"}})

    async def shutdown(self) -> None:
        """Stop accepting; requests already being handled finish within the shutdown grace."""
        await self._stop_servers(self._grace())

    def _grace(self) -> float:
        loop = asyncio.get_running_loop()
        deadline = self._host.shutdown_deadline if self._host is not None else None
        return DEFAULT_SHUTDOWN_GRACE if deadline is None else max(0.0, deadline - loop.time())

    async def _stop_servers(self, grace: float) -> None:
        servers = list(self._servers.values())
        self._servers.clear()
        await asyncio.gather(*(server.stop(grace) for server in servers))


factory = Factory(
    type="otlp",
    kind=Kind.RECEIVER,
    config_class=Config,
    create=OtlpReceiver,
    signals=frozenset(Signal),
    stability=Stability.BETA,
    description="Receives OTLP over gRPC and HTTP (protobuf and JSON) for traces, metrics and logs.",
)
