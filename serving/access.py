"""Who may open the websocket: an Origin allow-list against cross-site hijacking, and an optional bearer token."""

from __future__ import annotations

import hmac
import http
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# Origins of pages served from this machine; a browser page on localhost is the user's own.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
TOKEN_PARAMETER = "token"


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
    return parts.netloc.lower() == (host or "").lower() or (parts.hostname or "") in LOOPBACK_HOSTS \
        or f"[{parts.hostname}]" in LOOPBACK_HOSTS


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
        return Refusal(http.HTTPStatus.FORBIDDEN, f"Origin {origin} may not open this websocket. Serve the page "
                       "from this server, or start it with --allow-origin " + origin + ".")
    if token is not None:
        given = presented_token(path, headers.get("Authorization"))
        # compare_digest takes the same time wherever the strings differ: no timing oracle.
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            return Refusal(http.HTTPStatus.UNAUTHORIZED, "This server needs a token: send "
                           "`Authorization: Bearer <token>` or add ?token=<token> to the websocket URL "
                           "(the page passes on its own ?token=).")
    return None
