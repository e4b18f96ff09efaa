"""The otlp receiver's config: the collector's keys and defaults, a protocol is on
when its key is present (even with no value) and off when absent, and every
mistake is reported with its key path. Plus the receiver inside a real Service
built from YAML, with its authenticator extension."""

from __future__ import annotations

import aiohttp
import pytest
import yaml

from llmtap.component import Signal
from llmtap.config import ConfigError, parse
from llmtap.configtypes import decode_config
from llmtap.receiver.otlp import Config
from llmtap.registry import default_registry
from otlpdata import spans_request


def decode(text: str):
    return decode_config(Config, yaml.safe_load(text))


def test_defaults_are_the_collectors():
    config, errors = decode("protocols: {grpc: {}, http: {}}")
    assert errors == []
    grpc, http = config.protocols.grpc, config.protocols.http
    assert (grpc.endpoint, grpc.max_recv_msg_size_mib) == ("localhost:4317", 4)
    assert (http.endpoint, http.traces_url_path, http.metrics_url_path, http.logs_url_path) == \
        ("localhost:4318", "/v1/traces", "/v1/metrics", "/v1/logs")
    assert http.max_request_body_size == 20 * 1024 * 1024
    assert http.include_metadata is False
    assert not grpc.tls.enabled and not http.auth.authenticator


@pytest.mark.parametrize("text, grpc_on, http_on", [
    ("protocols: {grpc: }", True, False),            # YAML `grpc:` with no value: on, with defaults
    ("protocols:\n  http:\n", False, True),
    ("protocols: {grpc: {}, http: }", True, True),
    ("protocols: {http: {endpoint: '0.0.0.0:4318'}}", False, True),
])
def test_a_protocol_is_on_when_its_key_is_present(text, grpc_on, http_on):
    config, errors = decode(text)
    assert errors == []
    assert (config.protocols.grpc.configured, config.protocols.http.configured) == (grpc_on, http_on)


@pytest.mark.parametrize("text", ["{}", "protocols:", "protocols: {}"])
def test_at_least_one_protocol_must_be_configured(text):
    _, errors = decode(text)
    assert errors == ["protocols: must specify at least one protocol (grpc or http) when using the OTLP receiver"]


@pytest.mark.parametrize("text, error", [
    ("protocols: {grpc: {endpoint: 4317}}", "protocols.grpc.endpoint: expected string, got int 4317"),
    ("protocols: {grpc: {endpoint: 'nohost'}}", "protocols.grpc: endpoint: 'nohost' must be host:port"),
    ("protocols: {http: {endpoint: 'localhost:99999'}}", "protocols.http: endpoint: port 99999 is out of range"),
    ("protocols: {http: {max_request_body_size: lots}}",
     "protocols.http.max_request_body_size: invalid size 'lots' (expected e.g. 20971520, 20MiB, 512KiB)"),
    ("protocols: {grpc: {max_recv_msg_size_mib: -1}}", "protocols.grpc: max_recv_msg_size_mib: must not be negative"),
    ("protocols: {http: {logs_url_path: /v1/traces}}",
     "protocols.http: traces_url_path, metrics_url_path and logs_url_path must be different paths"),
    ("protocols: {http: {tls: {cert_file: server.pem}}}",
     "protocols.http.tls: cert_file and key_file must be set together"),
    ("protocols: {grpc: {tls: {client_ca_file: ca.pem}}}",
     "protocols.grpc.tls: client_ca_file: mutual TLS needs cert_file and key_file as well"),
    ("protocols: {grpc: {auth: {authenticator: 'a/b/c'}}}",
     "protocols.grpc.auth: authenticator: invalid component ID 'a/b/c': must be 'type' or 'type/name'"),
    ("protocols: {http: {cors: {}}}", "protocols.http.cors: unknown key (known keys: auth, endpoint, "
     "include_metadata, logs_url_path, max_request_body_size, metrics_url_path, tls, traces_url_path)"),
    ("protocols: {thrift: {}}", "protocols.thrift: unknown key (known keys: grpc, http)"),
])
def test_mistakes_name_their_key(text, error):
    _, errors = decode(text)
    assert errors == [error]


def test_errors_in_a_service_config_name_the_receiver():
    raw = yaml.safe_load("""
        receivers:
          otlp/public: {protocols: {http: {endpoint: nope}}}
        exporters: {debug: {}}
        service: {pipelines: {traces: {receivers: [otlp/public], exporters: [debug]}}}
    """)
    with pytest.raises(ConfigError) as info:
        parse(raw, default_registry())
    assert info.value.errors == ["receivers::otlp/public: protocols.http: endpoint: 'nope' must be host:port"]


SERVICE = """
extensions:
  bearertokenauth:
    token: s3cret
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        auth: {authenticator: bearertokenauth}
exporters:
  capture: {}
service:
  extensions: [bearertokenauth]
  pipelines:
    traces: {receivers: [otlp], exporters: [capture]}
"""


async def test_in_a_service_with_its_authenticator(service_from_yaml, capture_exporters):
    service = service_from_yaml(SERVICE)
    await service.start()
    try:
        receiver = next(iter(service.receivers.values()))
        url = f"http://{receiver.endpoints['http']}/v1/traces"
        body = spans_request(4).SerializeToString()
        async with aiohttp.ClientSession(headers={"Content-Type": "application/x-protobuf"}) as client:
            async with client.post(url, data=body) as response:
                assert response.status == 401
            async with client.post(url, data=body, headers={"Authorization": "Bearer s3cret"}) as response:
                assert response.status == 200
            async with client.post(url.replace("traces", "logs"), data=body,
                                   headers={"Authorization": "Bearer s3cret"}) as response:
                assert response.status == 404  # no logs pipeline
    finally:
        await service.shutdown()
    assert capture_exporters["capture"].sink.items(Signal.TRACES) == 4


async def test_a_service_without_the_extension_fails_to_start_naming_the_key(service_from_yaml):
    service = service_from_yaml(SERVICE.replace("  extensions: [bearertokenauth]\n", ""))
    with pytest.raises(Exception, match="cannot start receiver otlp: protocols.http.auth.authenticator: "
                                        "extension 'bearertokenauth' is not running"):
        await service.start()
