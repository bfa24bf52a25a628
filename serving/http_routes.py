"""Plain HTTP on the server's port: Host and upgrade checks, the drawing page, static files, /healthz, /metrics."""

from __future__ import annotations

import asyncio
import http
import json
import logging
import mimetypes
import os
import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from serving import metrics
from serving.access import (
    RETRY_AFTER_SECONDS,
    Refusal,
    ThrottledLog,
    check_upgrade,
    client_address,
    full_health_allowed,
    host_allowed,
)

if TYPE_CHECKING:
    from serving.app import App

logger = logging.getLogger(__name__)
refusals = ThrottledLog(logger)

PLACEHOLDER_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>deMNISTify</title><p>deMNISTify is serving. "
    b"The drawing page is not built yet; connect a websocket client to this address "
    b"(see serving/PROTOCOL.md).</p>"
)


def process_request(app: App, connection: ServerConnection, request: Request) -> Response | None:
    """Let websocket upgrades through (any path) unless refused; answer plain HTTP GETs."""
    config = app.config
    host = request.headers.get("Host")
    if not host_allowed(host, config.host, config.allowed_hosts):
        return _refuse(
            connection,
            "host",
            Refusal(
                http.HTTPStatus.MISDIRECTED_REQUEST,
                (
                    f"This server does not answer to the name {host!r}; use its address, or start it with "
                    "--allow-host NAME."
                ),
            ),
        )
    if request.headers.get("Upgrade", "").lower() == "websocket":
        refusal = check_upgrade(
            request.path, request.headers, config.allowed_origins, config.token
        ) or app.caps.refusal(client_address(connection))
        return None if refusal is None else _refuse(connection, "websocket", refusal)
    path = request.path.split("?", 1)[0]
    if path == "/healthz":
        full = full_health_allowed(request.path, request.headers, config.token, connection.remote_address)
        body = json.dumps(health(app, full)).encode()
        return http_response(http.HTTPStatus.OK, body, "application/json")
    if path == "/metrics":
        return _metrics(app, connection, request)
    if path in ("/", "/index.html"):
        page = config.static_dir / "index.html"
        body = page.read_bytes() if page.is_file() else PLACEHOLDER_PAGE
        return http_response(http.HTTPStatus.OK, body, "text/html; charset=utf-8")
    if path.startswith("/static/"):
        return _static(app, path.removeprefix("/static/"))
    return not_found(path)


def health(app: App, full: bool = True) -> dict:
    """The /healthz document; without `full`, only whether the server is ok or degraded."""
    if not full:
        return {"status": app.store.health()["status"]}
    connections = len(app.server.connections) if app.server is not None else 0
    # pid tells workers sharing a port apart; tasks lets a soak test see that none leak.
    return {
        **app.store.health(),
        "uptime_s": round(time.monotonic() - app.started, 1),
        "connections": connections,
        "pid": os.getpid(),
        "tasks": len(asyncio.all_tasks()),
    }


def _metrics(app: App, connection: ServerConnection, request: Request) -> Response:
    # With a token set, Prometheus presents it (a scrape config's `authorization`), as /healthz's details need.
    if app.config.token is not None and not full_health_allowed(
        request.path, request.headers, app.config.token, connection.remote_address
    ):
        return _refuse(
            connection,
            "metrics",
            Refusal(http.HTTPStatus.UNAUTHORIZED, ("/metrics needs the server's token (Authorization: Bearer).")),
        )
    return http_response(http.HTTPStatus.OK, *metrics.exposition())


def _refuse(connection: ServerConnection, kind: str, refusal: Refusal) -> Response:
    refusals.warning(kind, "Refused a %s request from %s: %s", kind, connection.remote_address, refusal.message)
    response = http_response(refusal.status, (refusal.message + "\n").encode(), "text/plain; charset=utf-8")
    if refusal.status == http.HTTPStatus.SERVICE_UNAVAILABLE:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _static(app: App, name: str) -> Response:
    root = app.config.static_dir.resolve()
    target = (root / name).resolve()
    # resolve() folds "..", so anything outside the folder is refused, whatever the spelling.
    if not name or not target.is_relative_to(root) or not target.is_file():
        return not_found(f"/static/{name}")
    return http_response(http.HTTPStatus.OK, target.read_bytes(), content_type(target.name))


def content_type(name: str) -> str:
    """The Content-Type for a static file name; text types are UTF-8."""
    guessed = "text/javascript" if name.endswith((".js", ".mjs")) else mimetypes.guess_type(name)[0]
    guessed = guessed or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("json") else guessed


def http_response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    """A complete HTTP response (the connection closes after it)."""
    headers = Headers(
        [
            ("Date", formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-cache"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def not_found(path: str) -> Response:
    """404 naming the routes that exist."""
    text = f"404 Not Found: {path}\nRoutes: / (drawing page), /static/<file>, /healthz, /metrics, and the websocket.\n"
    return http_response(http.HTTPStatus.NOT_FOUND, text.encode(), "text/plain; charset=utf-8")
