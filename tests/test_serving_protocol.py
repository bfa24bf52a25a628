"""Protocol parsing and limits without a server: every refused frame gets the documented error code."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from registry.client import ModelRef
from serving.config import Limits, ServeConfig
from serving.events import encode, error_event
from serving.frames import parse_message
from serving.live import Job, LatestSlot, TokenBucket, execute
from serving.messages import ErrorCode, ImageRequest, MatrixRequest, ProtocolError, StrokesRequest
from serving.served_model import ServedModel
from tests.support import drawing, png_of

LIMITS = Limits(max_strokes=3, max_points=50, max_canvas_side=1000, max_image_pixels=10_000)


def png(width: int, height: int) -> bytes:
    """A white PNG with one black bar."""
    image = np.full((height, width), 255, np.uint8)
    image[height // 4 : 3 * height // 4, width // 2 - 2 : width // 2 + 2] = 0
    return cv2.imencode(".png", image)[1].tobytes()


def recognize(**fields) -> str:
    return json.dumps({"type": "recognize", "id": 5, **fields})


def refused(message, limits: Limits = LIMITS) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_message(message, limits)
    return caught.value


def test_strokes_request_parsed():
    request = parse_message(recognize(width=800, height=300.0, pen_width=14, strokes=[[[1, 2], [3.5, 4]]]), LIMITS)
    assert request == StrokesRequest(5, 800, 300, [[[1, 2], [3.5, 4]]], 14)
    preview = parse_message(recognize(width=80, height=30, strokes=[[[1, 2]]], pen_down=True), LIMITS)
    assert preview.pen_down is True and request.pen_down is False


def test_image_field_and_binary_frame_parsed():
    data = png(40, 30)
    assert parse_message(recognize(image=base64.b64encode(data).decode()), LIMITS) == ImageRequest(5, data)
    data_url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert parse_message(recognize(image=data_url), LIMITS).data == data
    assert parse_message(data, LIMITS) == ImageRequest(None, data)


def test_legacy_matrix_parsed():
    request = parse_message(json.dumps(np.full((28, 28), 0.5).tolist()), LIMITS)
    assert isinstance(request, MatrixRequest) and request.matrix.shape == (28, 28)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", ErrorCode.BAD_JSON),
        ('{"type": "draw", "id": 1}', ErrorCode.UNKNOWN_TYPE),
        ('{"id": 1}', ErrorCode.UNKNOWN_TYPE),
        ("42", ErrorCode.INVALID_FIELD),
        (json.dumps([[0.5] * 28] * 27), ErrorCode.INVALID_FIELD),
        (json.dumps([[2.0] * 28] * 28), ErrorCode.INVALID_FIELD),
        (json.dumps([[True] * 28] * 28), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100, strokes=[], image="AAAA"), ErrorCode.INVALID_FIELD),
        (recognize(width=0, height=100, strokes=[]), ErrorCode.INVALID_FIELD),
        (recognize(width=10.5, height=100, strokes=[]), ErrorCode.INVALID_FIELD),
        (recognize(width="800", height=100, strokes=[]), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100, pen_width=-3, strokes=[]), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100, pen_down="yes", strokes=[]), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100, strokes=[1, 2]), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100, strokes="[[1, 2]]"), ErrorCode.INVALID_FIELD),
        (json.dumps({"type": "recognize", "id": [1], "width": 1, "height": 1, "strokes": []}), ErrorCode.INVALID_FIELD),
        (recognize(width=100, height=100, strokes=[[[1, 1]]] * 4), ErrorCode.TOO_MANY_STROKES),
        (recognize(width=100, height=100, strokes=[[[1, 1]] * 51]), ErrorCode.TOO_MANY_POINTS),
        (recognize(width=1001, height=100, strokes=[]), ErrorCode.CANVAS_TOO_LARGE),
        (recognize(image="not base64!"), ErrorCode.BAD_IMAGE),
        (recognize(image=base64.b64encode(b"GIF? no, garbage").decode()), ErrorCode.BAD_IMAGE),
        (recognize(image=12), ErrorCode.INVALID_FIELD),
        (b"\x89PNG broken", ErrorCode.BAD_IMAGE),
        (png(200, 100), ErrorCode.IMAGE_TOO_LARGE),
    ],
)
def test_refused_frames_get_their_code(message, code):
    error = refused(message)
    assert error.code == code
    assert len(error.message) > 20, "messages must tell a client developer what to fix"


@pytest.mark.parametrize(
    "frame",
    [
        # orjson would read this id as a float and refuse the others; json reads them all.
        '{"type": "recognize", "id": 123456789012345678901234567890, "width": 80, "height": 30, "strokes": []}',
        '{"type": "recognize", "id": -9223372036854775809, "width": 80, "height": 30, "strokes": []}',
        '{"type": "recognize", "id": "\\ud800", "width": 80, "height": 30, "strokes": []}',
        '{"type": "recognize", "id": 7, "width": 80, "height": 30, "strokes": [[[1e400, 2]]]}',
        '{"type": "recognize", "id": 7, "width": NaN, "height": 30, "strokes": []}',
        '{"type": "recognize", "id": 7, "id": 8, "width": 80.0, "height": 30, "strokes": [[[0.1, 2.675]]]}',
    ],
)
def test_frames_parse_exactly_as_json_reads_them(frame):
    expected = json.loads(frame)
    try:
        request = parse_message(frame, LIMITS)
    except ProtocolError as error:
        # Refused for what json read in it, not as unreadable JSON.
        assert error.code == ErrorCode.INVALID_FIELD and error.request_id == expected["id"]
        return
    assert request == StrokesRequest(expected["id"], 80, 30, expected["strokes"], None)
    assert type(request.id) is type(expected["id"])
    # The id goes back exactly as it came, even where orjson cannot write it.
    assert json.loads(encode({"type": "result", "id": request.id}))["id"] == expected["id"]


def test_errors_carry_the_request_id_when_readable():
    event = error_event(refused(recognize(width=5000, height=100, strokes=[])))
    assert event == {"type": "error", "id": 5, "code": "canvas_too_large", "message": event["message"]}
    assert refused("{oops").request_id is None


def test_every_error_code_is_documented():
    document = (Path(__file__).resolve().parent.parent / "serving" / "PROTOCOL.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", document, flags=re.MULTILINE))
    assert {str(code) for code in ErrorCode} <= documented


def test_limits_are_validated_and_announced():
    with pytest.raises(ValueError, match="max_points"):
        Limits(max_points=0)
    assert Limits().announce()["max_message_bytes"] == ServeConfig().limits.max_message_bytes
    with pytest.raises(ValueError, match="port"):
        ServeConfig(port=70000)
    with pytest.raises(ValueError, match="model_threads"):
        ServeConfig(model_threads=-1)


def test_model_threads_share_the_cores_among_workers_unless_given():
    cores = os.cpu_count() or 1
    single, shared = ServeConfig(), ServeConfig(port=9000, workers=2 * cores)
    assert single.model_threads_per_worker == min(4, cores)
    # More workers than cores: each model call still gets one thread.
    assert shared.model_threads_per_worker == 1
    assert ServeConfig(model_threads=3, workers=2, port=9000).model_threads_per_worker == 3


def test_recognition_threads_are_two_per_core_of_a_worker_unless_given():
    cores = os.cpu_count() or 1
    assert ServeConfig().threads_per_worker == max(2, 2 * cores)
    assert ServeConfig(port=9000, workers=cores).threads_per_worker == 2
    assert ServeConfig(threads=5, workers=2, port=9000).threads_per_worker == 5
    with pytest.raises(ValueError, match="threads"):
        ServeConfig(threads=-1)
    with pytest.raises(ValueError, match="preview_patience"):
        ServeConfig(patience_seconds=0.5, preview_patience_seconds=0.1)


def test_token_bucket_allows_a_burst_then_refuses():
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.allow() for _ in range(5)] == [True, True, True, False, False]


def test_latest_slot_keeps_only_the_newest_job():
    import asyncio

    async def scenario():
        slot = LatestSlot()
        for name, received in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
            slot.offer(Job(name, received))
        waiting = slot.pending_since()
        await slot.wait()
        taken = slot.take()
        slot.offer(Job("d", 4.0))
        await slot.wait()
        return waiting, taken.request, slot.pending_since(), slot.take().request, slot.take(), slot.dropped

    # The first unanswered drawing's arrival is kept while newer ones replace it.
    assert asyncio.run(scenario()) == ((1.0, 3.0, False, False), "c", (4.0, 4.0, False, False), "d", None, 2)


def test_pictures_are_read_with_the_picture_classifier_and_strokes_with_the_live_one():
    def always(label: int):
        return lambda images: np.tile(np.eye(10, dtype=np.float32)[label] * 0.9 + 0.01, (len(images), 1))

    ref = ModelRef("demnistify-cnn", "3", "run")
    model = ServedModel(ref, always(4), classify_pictures=always(1))
    strokes = StrokesRequest(1, 800, 300, drawing("17"))
    picture = ImageRequest(2, png_of(drawing("17")))
    assert json.loads(execute(Job(strokes), model))["text"] == "44"
    assert json.loads(execute(Job(picture), model))["text"] == "11"
    # Without a picture classifier, pictures are read with the live one.
    assert json.loads(execute(Job(picture), ServedModel(ref, always(4))))["text"] == "44"
