"""The one outbound HTTP request of a delivery: bounded in time and size, no redirects, and
never to a private address unless the operator allows it (SSRF).

The address check happens where the connection is made, on the addresses DNS gave for this
connection, so a name that resolves to a public address at registration and to 127.0.0.1
later (DNS rebinding) is still refused. TLS still verifies the certificate against the
endpoint's host name. Every request has one deadline for the whole exchange (connect, TLS,
send, headers, body): a receiver that dribbles a byte every few seconds cannot hold a worker
longer than the timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import certifi
import httpcore
import httpx

EXCERPT_BYTES = 1024
# An acknowledgement is a few bytes; an answer longer than this is not one (say, a URL that
# serves a download) and counts as a failure. Only this much is ever read.
MAX_RESPONSE_BYTES = 64 * 1024

_deadline: ContextVar[float | None] = ContextVar("webhook_deadline", default=None)


class AddressRefused(Exception):
    """The endpoint's host resolves to an address webhooks may not reach."""


def address_allowed(address: str) -> bool:
    """Public unicast addresses only: not private, loopback, link-local, shared, reserved,
    multicast or unspecified (an IPv4 address mapped into IPv6 is judged as itself)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    """The address a host is written as, if it is an IP literal."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    @staticmethod
    def _budget(timeout: float | None) -> float | None:
        deadline = _deadline.get()
        if deadline is None:
            return timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpcore.ReadTimeout("the attempt ran out of time")
        return remaining if timeout is None else min(timeout, remaining)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._budget(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._budget(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        upgraded = self._inner.start_tls(ssl_context, server_hostname, self._budget(timeout))
        return _DeadlineStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses forbidden addresses, connects to an allowed one."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error.strerror}") from error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not self.allow_private:
            refused = [a for a in addresses if not address_allowed(a)]
            if refused:
                raise AddressRefused(
                    f"{host} resolves to {refused[0]}, a private, loopback or link-local "
                    "address; webhooks go to public addresses only"
                )
        last: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                stream = super().connect_tcp(
                    address, port, _DeadlineStream._budget(timeout), local_address, socket_options
                )
                return _DeadlineStream(stream)
            except httpcore.ConnectError as error:
                last = error
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool that connects through `_GuardedBackend`."""

    def __init__(self, *, allow_private: bool, verify: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False)
        context = verify or ssl.create_default_context(cafile=certifi.where())
        # httpx 0.28 builds its pool without a way to choose the network backend; this is
        # the same pool it would build, with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private=allow_private),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request came to: an HTTP status, or an error before any answer."""

    status: int | None
    latency_ms: int
    excerpt: str
    error: str | None
    retry_after: str | None = None


class Sender:
    """Posts signed bodies to endpoints, one bounded request each; reuse it across deliveries
    (it keeps connections alive per host)."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.client = httpx.Client(
            transport=GuardedTransport(allow_private=allow_private, verify=verify),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "o2oloop-webhooks/1", "accept-encoding": "identity"},
        )

    def post(self, url: str, *, body: str, headers: dict[str, str]) -> Outcome:
        started = time.monotonic()
        token = _deadline.set(started + self.timeout)
        try:
            with self.client.stream("POST", url, content=body.encode(), headers=headers) as r:
                head, too_long = _read_bounded(r)
                error = None
                if too_long:
                    error = f"the answer's body is longer than {MAX_RESPONSE_BYTES} bytes"
                elif 300 <= r.status_code < 400:
                    error = f"redirect to {r.headers.get('location', '?')[:200]} (not followed)"
                return Outcome(
                    status=r.status_code,
                    latency_ms=_ms_since(started),
                    excerpt=_excerpt(head),
                    error=error,
                    retry_after=r.headers.get("retry-after"),
                )
        except AddressRefused as refused:
            return Outcome(None, _ms_since(started), "", str(refused))
        except httpx.TimeoutException:
            return Outcome(None, _ms_since(started), "", f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as failed:
            return Outcome(None, _ms_since(started), "", f"{type(failed).__name__}: {failed}"[:300])
        finally:
            _deadline.reset(token)

    def close(self) -> None:
        self.client.close()


def _read_bounded(response: httpx.Response) -> tuple[bytes, bool]:
    """At most MAX_RESPONSE_BYTES of the body, and whether there was more."""
    declared = response.headers.get("content-length", "")
    limit = EXCERPT_BYTES if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES else None
    received = bytearray()
    for chunk in response.iter_raw():
        received += chunk
        if limit is not None and len(received) >= limit:
            return bytes(received[:EXCERPT_BYTES]), True
        if len(received) > MAX_RESPONSE_BYTES:
            return bytes(received[:EXCERPT_BYTES]), True
    return bytes(received), limit is not None


def _excerpt(body: bytes) -> str:
    return body[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
