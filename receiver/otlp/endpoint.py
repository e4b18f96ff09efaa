"""`host:port` endpoints as the collector writes them: an empty host (`:4317`)
means every interface, IPv6 hosts are bracketed (`[::1]:4317`)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from llmtap.selfmetrics import split_endpoint


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """(host, port); host is "" for every interface."""
    return split_endpoint(endpoint, default_host="")


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def is_loopback_only(host: str) -> bool:
    """Whether listening on `host` can only be reached from this machine."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)
