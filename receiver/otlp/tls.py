"""Server-side TLS from a `tls` config block, for aiohttp (an ssl.SSLContext) and
for gRPC (ServerCredentials). Files are read once, at start; a missing or
unreadable file fails the start with the key it came from."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from llmtap.receiver.otlp.config import TLSServerConfig


class TLSConfigError(Exception):
    pass


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TLSConfigError(f"tls.{key}: cannot read {path!r}: {e.strerror or e}") from None


def ssl_context(config: TLSServerConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # the collector's default min_version
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as e:
        raise TLSConfigError(f"tls.cert_file/key_file: cannot load {config.cert_file!r} with "
                             f"{config.key_file!r}: {e}") from None
    if config.client_ca_file:
        try:
            context.load_verify_locations(cafile=config.client_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise TLSConfigError(f"tls.client_ca_file: cannot load {config.client_ca_file!r}: {e}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def grpc_credentials(config: TLSServerConfig) -> grpc.ServerCredentials:
    # grpc only reports bad PEM when the port is added, so check it loads with ssl first.
    ssl_context(config)
    key = _read(config.key_file, "key_file")
    cert = _read(config.cert_file, "cert_file")
    client_ca = _read(config.client_ca_file, "client_ca_file") if config.client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)
