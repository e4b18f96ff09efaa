"""Serving llmtap's own Prometheus metrics (`service.telemetry.metrics`)."""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from llmtap.config import MetricsTelemetryConfig
from llmtap.telemetry import SelfTelemetry

log = logging.getLogger("llmtap.telemetry")


def split_endpoint(endpoint: str, default_host: str = "localhost") -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep:
        raise ValueError(f"endpoint {endpoint!r} must be host:port")
    return (host.strip("[]") or default_host), int(port)


def serve_self_metrics(config: MetricsTelemetryConfig, telemetry: SelfTelemetry) -> WSGIServer | None:
    if config.level == "none" or not config.address:
        return None
    host, port = split_endpoint(config.address)
    server, _thread = start_http_server(port, host, registry=telemetry.registry)
    log.info("serving self-metrics", extra={"fields": {"endpoint": f"http://{config.address}/metrics"}})
    return server
