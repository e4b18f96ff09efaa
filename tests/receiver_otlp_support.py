"""Shared by the otlp receiver tests: starting a real receiver on ephemeral ports,
and a throwaway PKI (a CA, a server certificate for 127.0.0.1/localhost, a client
certificate) made with `cryptography` for the TLS and mutual-TLS tests.

Fixtures (import them into a test module to use them):
- start_otlp(protocols, consumers=None, *, host=None, id="otlp") -> a started
  OtlpReceiver; every receiver started is shut down after the test. `consumers`
  defaults to the `capture` fixture for all three signals.
- auth_host(token="s3cret") -> a Host with a started bearertokenauth extension.
- pki -> Pki with file paths (str) of ca, server_cert, server_key, client_cert,
  client_key, plus `other_ca` / `stranger_cert` / `stranger_key` signed by a CA
  the server does not trust.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import ReadyHost, new_settings
from llmtap.component import ComponentID, Signal
from llmtap.configtypes import decode_config
from llmtap.extensions import bearertokenauth
from llmtap.receiver.otlp import OtlpReceiver, factory


@pytest.fixture
async def start_otlp(capture):
    started: list[OtlpReceiver] = []

    async def start(protocols: dict, consumers=None, *, host=None, id: str = "otlp") -> OtlpReceiver:
        config, errors = decode_config(factory.config_class, {"protocols": protocols})
        assert errors == []
        if consumers is None:
            consumers = {signal: capture for signal in Signal}
        receiver = factory.create(new_settings("receiver", id), config, consumers)
        await receiver.start(host or ReadyHost())
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.shutdown()


async def auth_host(token: str = "s3cret", **config) -> ReadyHost:
    """A host running a started `bearertokenauth` extension with this token."""
    extension = bearertokenauth.factory.create(new_settings("extension", "bearertokenauth"),
                                               bearertokenauth.Config(token=token, **config))
    await extension.start(ReadyHost())
    host = ReadyHost()
    host.extensions[ComponentID("bearertokenauth")] = extension
    return host


def http_url(receiver: OtlpReceiver, path: str = "/v1/traces", scheme: str = "http") -> str:
    return f"{scheme}://{receiver.endpoints['http']}{path}"


def accepted(receiver: OtlpReceiver, item: str, transport: str) -> float:
    """llmtap_receiver_accepted_<item>_total of this receiver over `transport`."""
    return receiver.settings.telemetry.value(f"llmtap_receiver_accepted_{item}_total",
                                            receiver=str(receiver.id), transport=transport)


def refused(receiver: OtlpReceiver, item: str, transport: str) -> float:
    return receiver.settings.telemetry.value(f"llmtap_receiver_refused_{item}_total",
                                            receiver=str(receiver.id), transport=transport)


@dataclass
class Pki:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str
    stranger_cert: str
    stranger_key: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path) -> str:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def _write_cert(cert: x509.Certificate, path: Path) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, usage=None, san=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _certificate(name, key, _name(name), key, ca=True)


def _leaf(name: str, ca_key, ca_cert, usage, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _certificate(name, key, ca_cert.subject, ca_key, ca=False, usage=usage, san=san)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("llmtap test CA")
    server_key, server_cert = _leaf("llmtap test server", ca_key, ca_cert, ExtendedKeyUsageOID.SERVER_AUTH,
                                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key, client_cert = _leaf("llmtap test client", ca_key, ca_cert, ExtendedKeyUsageOID.CLIENT_AUTH)
    other_key, other_cert = _ca("some other CA")
    stranger_key, stranger_cert = _leaf("stranger", other_key, other_cert, ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(
        ca=_write_cert(ca_cert, d / "ca.pem"),
        server_cert=_write_cert(server_cert, d / "server.pem"), server_key=_write_key(server_key, d / "server.key"),
        client_cert=_write_cert(client_cert, d / "client.pem"), client_key=_write_key(client_key, d / "client.key"),
        other_ca=_write_cert(other_cert, d / "other-ca.pem"),
        stranger_cert=_write_cert(stranger_cert, d / "stranger.pem"),
        stranger_key=_write_key(stranger_key, d / "stranger.key"),
    )
