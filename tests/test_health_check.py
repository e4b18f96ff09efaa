"""The health_check extension answers real HTTP GETs: 200 with the collector's
JSON while the service is ready, 503 while it starts and while it shuts down."""

import asyncio
import json
import socket
from datetime import datetime

import aiohttp
import pytest

from conftest import Instances, ReadyHost
from llmtap.component import ComponentID, EmptyConfig, Exporter, Kind, Signal
from llmtap.configtypes import decode_config
from llmtap.extensions.health_check import Config, HealthCheckError, ResponseBodyConfig, factory, go_duration


async def get(port: int, path: str = "/") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()


@pytest.fixture
async def make_extension(make_settings):
    made = []

    async def make(host, **config):
        config.setdefault("endpoint", "127.0.0.1:0")
        extension = factory.create(make_settings("extension", "health_check"), Config(**config))
        await extension.start(host)
        made.append(extension)
        return extension

    yield make
    for extension in made:
        await extension.shutdown()


async def test_ready_answers_200_with_status_upsince_and_uptime(make_extension):
    extension = await make_extension(ReadyHost("ready"))
    status, text = await get(extension.port)
    assert status == 200
    body = json.loads(text)
    assert set(body) == {"status", "upSince", "uptime"}
    assert body["status"] == "Server available"
    assert datetime.fromisoformat(body["upSince"].replace("Z", "+00:00")).tzinfo is not None
    assert body["uptime"].endswith("s") and body["uptime"][0].isdigit()


async def test_starting_and_stopping_answer_503(make_extension):
    host = ReadyHost("starting")
    extension = await make_extension(host)
    status, text = await get(extension.port)
    assert status == 503
    assert json.loads(text) == {"status": "Server not available", "upSince": "0001-01-01T00:00:00Z", "uptime": ""}
    host.status = "ready"
    assert (await get(extension.port))[0] == 200
    host.status = "stopping"
    assert (await get(extension.port))[0] == 503


async def test_path_and_custom_bodies_are_configurable(make_extension):
    host = ReadyHost("ready")
    extension = await make_extension(host, path="/health/status",
                                      response_body=ResponseBodyConfig(healthy="I'm OK", unhealthy="Not yet"))
    assert await get(extension.port, "/health/status") == (200, "I'm OK")
    assert (await get(extension.port, "/"))[0] == 404
    host.status = "stopping"
    assert await get(extension.port, "/health/status") == (503, "Not yet")


async def test_a_taken_port_fails_start_naming_the_endpoint(make_settings):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        endpoint = f"127.0.0.1:{taken.getsockname()[1]}"
        extension = factory.create(make_settings("extension", "health_check"), Config(endpoint=endpoint))
        with pytest.raises(HealthCheckError, match=f"cannot listen on {endpoint}: Address already in use"):
            await extension.start(ReadyHost())


async def test_config_defaults_and_errors():
    assert Config().endpoint == "localhost:13133" and Config().path == "/"
    _, errors = decode_config(Config, {"endpoint": "13133", "path": "health"})
    assert errors == ["endpoint: must be host:port; got '13133'", "path: must start with '/'; got 'health'"]


def test_uptime_is_printed_as_a_go_duration():
    assert go_duration(0) == "0s"
    assert go_duration(0.0015) == "1.5ms"
    assert go_duration(49.0132518) == "49.0132518s"
    assert go_duration(60) == "1m0s"
    assert go_duration(3723.5) == "1h2m3.5s"


class GatedExporter(Exporter):
    """Start and shutdown each wait for the test to open a gate."""

    def __init__(self, settings, config):
        super().__init__(settings, config)
        self.open_start, self.open_shutdown = asyncio.Event(), asyncio.Event()
        self.starting, self.stopping = asyncio.Event(), asyncio.Event()

    async def start(self, host):
        self.starting.set()
        await self.open_start.wait()

    async def shutdown(self):
        self.stopping.set()
        await self.open_shutdown.wait()

    async def consume(self, signal, data):
        pass


async def test_a_real_service_is_unavailable_while_starting_and_stopping(service_from_yaml):
    gated = Instances(Kind.EXPORTER, "gated", EmptyConfig, GatedExporter, frozenset(Signal))
    service = service_from_yaml("""
        receivers: {feed: {}}
        exporters: {gated: {}}
        extensions:
          health_check: {endpoint: "127.0.0.1:0"}
        service:
          extensions: [health_check]
          pipelines:
            traces: {receivers: [feed], exporters: [gated]}
    """, gated.factory)
    health = service.extensions[ComponentID("health_check")]
    exporter = gated["gated"]

    starting = asyncio.create_task(service.start())
    await asyncio.wait_for(exporter.starting.wait(), 5)  # the extension started first and is serving
    status, text = await get(health.port)
    assert (status, json.loads(text)["status"]) == (503, "Server not available")

    exporter.open_start.set()
    await asyncio.wait_for(starting, 5)
    status, text = await get(health.port)
    assert (status, json.loads(text)["status"]) == (200, "Server available")

    stopping = asyncio.create_task(service.shutdown())
    await asyncio.wait_for(exporter.stopping.wait(), 5)  # the extension stops last: still answering
    status, text = await get(health.port)
    assert (status, json.loads(text)["status"]) == (503, "Server not available")

    exporter.open_shutdown.set()
    await asyncio.wait_for(stopping, 5)
    with pytest.raises(aiohttp.ClientConnectorError):
        await get(health.port)
