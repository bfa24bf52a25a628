"""The hostile-input rules on their own: image headers, frames counted before parsing, byte-bounded caches, Host names, caps."""

from __future__ import annotations

import http
import logging
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from bench.abuse_attacks import huge_json, png_16bit, png_chunk_bomb
from serving.access import ConnectionCaps, ThrottledLog, full_health_allowed, host_allowed
from serving.caches import BoundedLru, DigitCache
from serving.config import Limits
from serving.frames import parse_message
from serving.image_header import HeaderError, read_header
from serving.messages import ErrorCode, ProtocolError

LIMITS = Limits()


def test_png_and_jpeg_headers_are_read_without_decoding():
    gray = cv2.imencode(".png", np.zeros((30, 40), np.uint8))[1].tobytes()
    color = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
    assert (read_header(gray).width, read_header(gray).height, read_header(gray).decoded_bytes) == (40, 30, 1200)
    assert read_header(color).decoded_bytes == 40 * 30 * 3
    assert read_header(png_16bit(0)).decoded_bytes == 2000 * 2000 * 4 * 2
    for bad in (b"GIF89a....", gray[:20], b"\xff\xd8" + b"\xff\xe0\x00\x02" * 600):
        with pytest.raises(HeaderError):
            read_header(bad)


def test_png_chunk_bomb_header_costs_constant_time():
    bomb = png_chunk_bomb(0)
    started = time.perf_counter()
    request = parse_message(bomb, LIMITS)
    # Pillow walked the 150,000 chunks for 320-400 ms; the IHDR is read in microseconds.
    assert time.perf_counter() - started < 0.005 and request.decoded_bytes == 64 * 64


def test_16_bit_image_refused_by_decoded_bytes():
    with pytest.raises(ProtocolError) as refused:
        parse_message(png_16bit(0), Limits(max_image_bytes=2**24))
    assert refused.value.code == ErrorCode.IMAGE_TOO_LARGE and "16 bits" in refused.value.message


def test_frame_with_more_arrays_than_a_legal_drawing_is_refused_unread():
    started = time.perf_counter()
    with pytest.raises(ProtocolError) as refused:
        parse_message(huge_json(1), LIMITS)
    assert refused.value.code == ErrorCode.TOO_MANY_POINTS and "not read" in refused.value.message
    assert time.perf_counter() - started < 0.02
    flat = '{"type":"recognize","width":9,"height":9,"strokes":[[[1,2]]],"x":[' + ",".join(["10"] * 50_000) + "]}"
    with pytest.raises(ProtocolError, match="commas"):
        parse_message(flat, LIMITS)


def test_caches_are_bounded_by_bytes_keyed_by_digest_and_hold_copies():
    cache = BoundedLru(1000, max_bytes=10_000)
    for index in range(10):
        cache.put(bytes([index]) * 300_000, np.zeros(500, np.float32))
    assert cache.bytes <= 10_000 and len(cache._entries) == 4
    assert all(len(key) == 16 for key in cache._entries)
    assert cache.get(bytes([9]) * 300_000) is not None and cache.get(bytes([0]) * 300_000) is None
    digits = DigitCache(lambda batch: np.full((len(batch), 10), 0.1, np.float32), 100)
    digits(np.random.default_rng(0).random((3, 28, 28), dtype=np.float32))
    assert all(value.base is None for value, _ in digits.entries._entries.values())


@pytest.mark.parametrize(
    "host, bound, allowed, expected",
    [
        ("127.0.0.1:8765", "127.0.0.1", (), True),
        ("localhost:8765", "127.0.0.1", (), True),
        ("[::1]:8765", "::1", (), True),
        ("10.1.2.3:8765", "0.0.0.0", (), True),
        ("rebound.evil.example:8765", "127.0.0.1", (), False),
        ("digits.example.com", "0.0.0.0", ("digits.example.com",), True),
        ("DIGITS.example.com:443", "0.0.0.0", ("digits.example.com",), True),
        ("other.example.com", "0.0.0.0", ("digits.example.com",), False),
        ("myhost", "myhost", (), True),
        ("anything", "0.0.0.0", ("*",), True),
        (None, "127.0.0.1", (), False),
    ],
)
def test_host_rules(host, bound, allowed, expected):
    assert host_allowed(host, bound, allowed) is expected


def test_health_details_need_the_token_or_loopback_without_one():
    token = "t" * 20
    assert full_health_allowed("/healthz", {"Authorization": "Bearer " + token}, token, ("10.0.0.9", 1))
    assert full_health_allowed(f"/healthz?token={token}", {}, token, ("10.0.0.9", 1))
    assert not full_health_allowed("/healthz", {}, token, ("127.0.0.1", 1))
    assert full_health_allowed("/healthz", {}, None, ("127.0.0.1", 1))
    assert not full_health_allowed("/healthz", {}, None, ("10.0.0.9", 1))


def test_connection_caps_in_all_and_per_address():
    caps = ConnectionCaps(total=3, per_address=2)
    caps.opened("a")
    caps.opened("a")
    assert caps.refusal("a").status == http.HTTPStatus.SERVICE_UNAVAILABLE and caps.refusal("b") is None
    caps.opened("b")
    assert "its 3 connections" in caps.refusal("c").message
    caps.closed("a")
    assert caps.refusal("a") is None and caps.refusal("c") is None


def test_refusal_logs_are_throttled(caplog):
    log = ThrottledLog(logging.getLogger("throttle-test"), period=60)
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        for index in range(100):
            log.warning("host", "Refused %d", index)
    assert [record.getMessage() for record in caplog.records] == ["Refused 0"]


def _png_with_text_first() -> bytes:
    chunk = struct.pack(">I", 0) + b"teXt" + struct.pack(">I", zlib.crc32(b"teXt"))
    return b"\x89PNG\r\n\x1a\n" + chunk + png_chunk_bomb(0, chunks=1)[8:]


def test_png_without_ihdr_first_is_bad_image():
    with pytest.raises(ProtocolError) as refused:
        parse_message(_png_with_text_first(), LIMITS)
    assert refused.value.code == ErrorCode.BAD_IMAGE and "IHDR" in refused.value.message


def test_small_frames_are_parsed_as_they_are_so_deep_nesting_stays_bad_json():
    with pytest.raises(ProtocolError) as refused:
        parse_message("[" * 3000 + "]" * 3000, Limits(max_points=100))
    assert refused.value.code == ErrorCode.BAD_JSON


def test_an_address_closed_for_abuse_is_barred_for_a_while():
    caps = ConnectionCaps(total=10, per_address=10)
    caps.bar("a", seconds=0.2)
    assert "kept sending" in caps.refusal("a").message and caps.refusal("b") is None
    time.sleep(0.25)
    assert caps.refusal("a") is None
