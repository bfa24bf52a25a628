"""Who may connect: Host and Origin checks, an optional bearer token, and caps on open connections."""

from __future__ import annotations

import hmac
import http
import ipaddress
import logging
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# Origins of pages served from this machine; a browser page on localhost is the user's own.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
TOKEN_PARAMETER = "token"
# A refused client is told to come back after this many seconds.
RETRY_AFTER_SECONDS = 5
# Addresses remembered as barred at most (each a few dozen bytes), so that a flood of
# addresses cannot grow the table.
BARRED_ADDRESSES = 65_536
# Refusals of one kind are logged at most once per this many seconds, with a count of the rest.
LOG_PERIOD_SECONDS = 10.0


@dataclass(frozen=True)
class Refusal:
    """Why an upgrade was refused: the HTTP status and a message for the client developer."""

    status: http.HTTPStatus
    message: str


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a websocket from a page at `origin` may connect to the server reached as `host`.

    Browsers always send Origin; other clients (scripts, the desktop window) send none, and
    hijacking needs a browser, so no Origin is allowed. A page is allowed when it is this
    server's own page (same host and port), on localhost, or listed (`*` allows any).
    """
    if origin is None or "*" in allowed or origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return (
        parts.netloc.lower() == (host or "").lower()
        or (parts.hostname or "") in LOOPBACK_HOSTS
        or f"[{parts.hostname}]" in LOOPBACK_HOSTS
    )


def presented_token(path: str, authorization: str | None) -> str | None:
    """The token a client presented: `Authorization: Bearer ...`, else `?token=` in the URL.

    Browsers cannot set headers on a websocket, so the page passes it in the query string.
    """
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    values = parse_qs(urlsplit(path).query).get(TOKEN_PARAMETER)
    return values[0] if values else None


def check_upgrade(path: str, headers, allowed_origins: tuple[str, ...], token: str | None) -> Refusal | None:
    """None when the websocket upgrade may proceed, else why not (403 origin, 401 token)."""
    origin = headers.get("Origin")
    if not origin_allowed(origin, headers.get("Host"), allowed_origins):
        return Refusal(
            http.HTTPStatus.FORBIDDEN,
            f"Origin {origin} may not open this websocket. Serve the page "
            "from this server, or start it with --allow-origin " + origin + ".",
        )
    if token is not None:
        given = presented_token(path, headers.get("Authorization"))
        # compare_digest takes the same time wherever the strings differ: no timing oracle.
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            return Refusal(
                http.HTTPStatus.UNAUTHORIZED,
                "This server needs a token: send "
                "`Authorization: Bearer <token>` or add ?token=<token> to the websocket URL "
                "(the page passes on its own ?token=).",
            )
    return None


def host_allowed(host: str | None, bound_host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a request's Host header names this server: an IP address, localhost, the bound host or a listed name.

    A DNS-rebinding page reaches the server under its own domain name, which is none of these.
    """
    hostname = urlsplit("//" + (host or "")).hostname if host else None
    if not hostname:
        return False
    if "*" in allowed or hostname in LOOPBACK_HOSTS or hostname == bound_host.lower():
        return True
    try:
        ipaddress.ip_address(hostname)
        return True
    except ValueError:
        return hostname in {name.lower() for name in allowed}


def full_health_allowed(path: str, headers, token: str | None, remote_address) -> bool:
    """Whether /healthz may say more than ok or degraded: with the token, or from this machine when none is set."""
    if token is not None:
        given = presented_token(path, headers.get("Authorization"))
        return given is not None and hmac.compare_digest(given.encode(), token.encode())
    address = remote_address[0] if remote_address else ""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def client_address(connection) -> str:
    """The client's IP address, which connection caps count by (a closed socket has none left to name)."""
    remote = connection.remote_address
    return str(remote[0]) if remote else "?"


class ConnectionCaps:
    """Open connections, in all and per client address, against their caps."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total, self.per_address = total, per_address
        self.open: Counter[str] = Counter()
        # Addresses whose connection was closed for abuse, and until when they are refused.
        self._barred: dict[str, float] = {}

    def bar(self, address: str, seconds: float = RETRY_AFTER_SECONDS) -> None:
        """Refuse new connections from `address` for a while: closed with 1008, it would come back at once."""
        if len(self._barred) >= BARRED_ADDRESSES:
            self._barred = {key: until for key, until in self._barred.items() if until > time.monotonic()}
        if len(self._barred) < BARRED_ADDRESSES:
            self._barred[address] = time.monotonic() + seconds

    def refusal(self, address: str) -> Refusal | None:
        """Why one more connection from `address` is refused (503), or None."""
        if self._barred.get(address, 0.0) > time.monotonic():
            return Refusal(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"A connection from your address kept sending past its rate limits; retry in {RETRY_AFTER_SECONDS} s.",
            )
        if sum(self.open.values()) >= self.total:
            return Refusal(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"This server holds its {self.total} connections; retry in {RETRY_AFTER_SECONDS} s.",
            )
        if self.open[address] >= self.per_address:
            return Refusal(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"Your address holds {self.per_address} connections "
                f"already; close one or retry in {RETRY_AFTER_SECONDS} s.",
            )
        return None

    def opened(self, address: str) -> None:
        self.open[address] += 1

    def closed(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class ThrottledLog:
    """Logs a kind of event at most once per `period` seconds, saying how many were left out meanwhile."""

    def __init__(self, logger: logging.Logger, period: float = LOG_PERIOD_SECONDS) -> None:
        self.logger, self.period = logger, period
        self._last: dict[str, float] = {}
        self._skipped: Counter[str] = Counter()

    def warning(self, kind: str, message: str, *args) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.period) < self.period:
            self._skipped[kind] += 1
            return
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({skipped} more like it in the last {self.period:g} s not logged)" if skipped else ""
        self.logger.warning(message + suffix, *args)
