"""The events the server sends (hello, model, result, error) and their compact JSON encoding."""

from __future__ import annotations

import json

import orjson

from demnistify.constants import PROTOCOL_VERSION
from pipeline.types import Recognition
from serving.config import Limits
from serving.messages import ProtocolError


def model_info(ref, full: bool = True) -> dict:
    """A model version as events describe it."""
    info = {"name": ref.name, "version": ref.version}
    return {**info, "run_id": ref.run_id} if full else info


def hello_event(ref, limits: Limits) -> dict:
    """The first event on every connection."""
    return {"type": "hello", "protocol": PROTOCOL_VERSION, "model": model_info(ref), "limits": limits.announce()}


def model_event(ref) -> dict:
    """Sent to every client when the served model changes."""
    return {"type": "model", "model": model_info(ref)}


def error_event(error: ProtocolError) -> dict:
    """The event for a refused request."""
    return {"type": "error", "id": error.request_id, "code": str(error.code), "message": error.message}


def result_event(request_id, recognition: Recognition, ref, elapsed_ms: float) -> dict:
    """The answer to one recognize request."""
    return {
        "type": "result",
        "id": request_id,
        **recognition.as_dict(),
        "model": model_info(ref, full=False),
        "elapsed_ms": round(elapsed_ms, 3),
    }


def encode(event: dict) -> str:
    """Compact JSON for one event."""
    try:
        return orjson.dumps(event).decode()
    except orjson.JSONEncodeError:
        # Only json writes an id beyond 64 bits or with a lone surrogate, echoed as it came.
        return json.dumps(event, separators=(",", ":"))
