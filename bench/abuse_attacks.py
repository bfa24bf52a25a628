"""The attacks of bench_abuse.py: frames that stay within (or just past) the announced limits, and the clients that send them."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib

import numpy as np

KINDS = ("heavy_strokes", "huge_json", "png_chunk_bomb", "png_16bit", "connection_flood")
# Attackers connect from their own loopback addresses (all of 127/8 is this machine), as
# strangers would from theirs; the steady client and the probe use 127.0.0.1.
ATTACKER_ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
FLOOD_CONNECTIONS = 400


def heavy_strokes(seed: int, count: int = 500, points: int = 40, width: int = 4096, height: int = 400) -> str:
    """A legal drawing: a row of `count` touching zig-zag strokes (294 KB), jittered so no cache knows it."""
    rng = np.random.default_rng(seed)
    step = (width - 40) / count
    x = 10 + np.arange(count)[:, None] * step + np.linspace(0, 1.5 * step, points)[None, :] + rng.uniform(0, 8)
    y = np.where(np.arange(points) % 2 == 0, 20.0, height - 20.0)[None, :] + rng.uniform(-5, 5, (count, points))
    strokes = np.round(np.stack([x, y], axis=2), 1).tolist()
    return json.dumps({"type": "recognize", "id": seed, "width": width, "height": height, "strokes": strokes})


def huge_json(seed: int, size: int = 2_000_000) -> str:
    """A frame just under the 2 MiB frame limit full of one-point strokes: far more points than allowed."""
    stroke = f"[[{seed % 9 + 1},2]],"
    body = stroke * ((size - 80) // len(stroke))
    return '{"type":"recognize","id":' + str(seed) + ',"width":100,"height":100,"strokes":[' + body + "[[1,1]]]}"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunk_bomb(seed: int, chunks: int = 150_000) -> bytes:
    """A valid 64x64 gray PNG whose header holds 150,000 empty ancillary chunks (1.8 MB)."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0))
    filler = _chunk(b"teXt", b"") * chunks
    rows = b"".join(b"\x00" + bytes([255 - (seed % 7)]) * 64 for _ in range(64))
    return b"\x89PNG\r\n\x1a\n" + header + filler + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def png_16bit(seed: int, side: int = 2000) -> bytes:
    """A 2000x2000 16-bit RGBA PNG of a few dozen KB that decodes to 32 MB."""
    row = b"\x00" + bytes([seed % 251]) * (8 * side)
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0))
    data = zlib.compress(row * side, 9)
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


PAYLOADS = {
    "heavy_strokes": heavy_strokes,
    "huge_json": huge_json,
    "png_chunk_bomb": png_chunk_bomb,
    "png_16bit": png_16bit,
}


class AttackStats:
    """What the attackers saw: answers, errors, how long answers took, and refusals."""

    def __init__(self) -> None:
        self.answers, self.errors, self.closed, self.refused, self.connections = 0, 0, 0, 0, 0
        self.answer_seconds: list[float] = []
        self.codes: dict[str, int] = {}

    def summary(self) -> dict:
        worst = max(self.answer_seconds, default=None)
        return {
            "answers": self.answers,
            "errors": self.errors,
            "error_codes": self.codes,
            "closed": self.closed,
            "refused": self.refused,
            "connections": self.connections,
            "worst_answer_s": None if worst is None else round(worst, 3),
        }


async def send_attack(url: str, frames: list, address: str, stats: AttackStats, until: float) -> None:
    """Send the frames one after another, each after the answer to the last (reconnecting when closed)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    index = 0
    while time.monotonic() < until:
        try:
            async with connect(url, max_size=None, local_addr=(address, 0), open_timeout=30) as ws:
                await ws.recv()
                while time.monotonic() < until:
                    started = time.monotonic()
                    await ws.send(frames[index % len(frames)])
                    index += 1
                    event = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, until - time.monotonic())))
                    stats.answer_seconds.append(time.monotonic() - started)
                    if event.get("type") == "error":
                        stats.errors += 1
                        stats.codes[event["code"]] = stats.codes.get(event["code"], 0) + 1
                    else:
                        stats.answers += 1
        except ConnectionClosed:
            stats.closed += 1
        except InvalidStatus:
            stats.refused += 1
            await asyncio.sleep(0.05)
        except (TimeoutError, OSError):
            return


async def flood(url: str, address: str, stats: AttackStats, until: float) -> None:
    """Open connections as fast as the server takes them and hold them all until the end."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    held = []
    try:
        while time.monotonic() < until and len(held) < FLOOD_CONNECTIONS:
            try:
                ws = await asyncio.wait_for(connect(url, local_addr=(address, 0)), max(0.1, until - time.monotonic()))
                held.append(ws)
                stats.connections += 1
            except InvalidStatus:
                stats.refused += 1
                await asyncio.sleep(0.01)
            except (TimeoutError, OSError):
                await asyncio.sleep(0.05)
        await asyncio.sleep(max(0.0, until - time.monotonic()))
    finally:
        await asyncio.gather(*(ws.close() for ws in held), return_exceptions=True)


async def attack(kind: str, url: str, index: int, frames: list, stats: AttackStats, until: float) -> None:
    """One attacker of `kind`, from its own address, until `until` (monotonic seconds)."""
    address = ATTACKER_ADDRESSES[index % len(ATTACKER_ADDRESSES)]
    if kind == "connection_flood":
        await flood(url, address, stats, until)
    else:
        await send_attack(url, frames, address, stats, until)
