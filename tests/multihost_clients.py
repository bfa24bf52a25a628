"""The client host of the multi-host test: drawing clients that reconnect and resend their drawing when dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.support import densify, number_strokes

NUMBER = "17"
PREVIEWS = 5  # Frames sent with the pen down before the finished drawing.
FRAME_SECONDS = 0.1
PAUSE_SECONDS = 0.4  # Between two drawings of one client.
ANSWER_SECONDS = 10.0  # A final drawing not answered by then is sent again on a new connection.


def frames(client: int, drawing: int) -> tuple[int, list[str]]:
    """The final frame's id and the frames of one drawing: previews growing point by point, then the whole."""
    strokes = [densify(stroke) for stroke in number_strokes(NUMBER, 40 + 7 * (client % 10), 40)]
    total, final_id = sum(len(stroke) for stroke in strokes), drawing * 100
    out = []
    for step in range(1, PREVIEWS + 2):
        budget, partial = total * step // (PREVIEWS + 1), []
        for stroke in strokes:
            if budget > 0:
                partial.append(stroke[:budget])
                budget -= len(stroke)
        last = step == PREVIEWS + 1
        out.append(
            json.dumps(
                {
                    "type": "recognize",
                    "id": final_id - PREVIEWS - 1 + step,
                    "width": 800,
                    "height": 300,
                    "pen_width": 14,
                    "strokes": partial,
                    "pen_down": not last,
                }
            )
        )
    return final_id, out


class Client:
    """One person drawing NUMBER again and again; every event and answer is logged with its wall-clock time."""

    def __init__(self, index: int, url: str) -> None:
        self.index, self.url = index, url
        self.log = {"connects": [], "drops": [], "models": [], "finals": []}
        self.ws, self.inbox = None, asyncio.Queue()

    async def run(self, stop_file: Path) -> dict:
        await self.reconnect()
        drawing = 0
        while not stop_file.exists():
            drawing += 1
            await self.draw(drawing)
            await asyncio.sleep(PAUSE_SECONDS)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close()
        return self.log

    async def reconnect(self) -> None:
        """Connect through nginx until a replica says hello (nginx may answer 502/503 meanwhile)."""
        while True:
            try:
                self.ws = await connect(self.url, open_timeout=5)
                hello = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.2)
                continue
            self.log["connects"].append([time.time(), hello["model"]["version"]])
            self.inbox = asyncio.Queue()
            asyncio.create_task(self.read(self.ws, self.inbox))
            return

    async def read(self, ws, inbox: asyncio.Queue) -> None:
        try:
            async for message in ws:
                event = json.loads(message)
                if event["type"] == "model":
                    self.log["models"].append([time.time(), event["model"]["version"]])
                inbox.put_nowait(event)
        except ConnectionClosed:
            pass
        if ws.close_code != 1000:  # Dropped by the server's side, not closed by this client.
            self.log["drops"].append(time.time())
        inbox.put_nowait(None)

    async def draw(self, drawing: int) -> None:
        final_id, sequence = frames(self.index, drawing)
        for frame in sequence[:-1]:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(frame)
            await asyncio.sleep(FRAME_SECONDS)
        sent, tries = time.time(), 0
        while True:
            tries += 1
            answer = await self.ask(sequence[-1], final_id)
            if answer is not None:
                self.log["finals"].append(
                    {
                        "id": final_id,
                        "sent": sent,
                        "answered": time.time(),
                        "tries": tries,
                        "type": answer["type"],
                        "text": answer.get("text"),
                        "version": (answer.get("model") or {}).get("version"),
                    }
                )
                return
            await self.reconnect()

    async def ask(self, frame: str, final_id: int) -> dict | None:
        """Send the finished drawing; its answer, or None when the connection dropped or stayed silent."""
        try:
            await self.ws.send(frame)
            async with asyncio.timeout(ANSWER_SECONDS):
                while (event := await self.inbox.get()) is not None:
                    if event.get("id") == final_id:
                        return event
        except (ConnectionClosed, TimeoutError):
            pass
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close()
        return None


async def drive(url: str, count: int, stop_file: Path, out: Path) -> None:
    """Run `count` clients until `stop_file` appears; print `ready` once each has an answer, write the logs to `out`."""
    clients = [Client(index, url) for index in range(count)]
    tasks = [asyncio.create_task(client.run(stop_file)) for client in clients]
    while not all(client.log["finals"] for client in clients):
        await asyncio.sleep(0.2)
    print(json.dumps({"ready": time.time()}), flush=True)
    logs = await asyncio.gather(*tasks)
    out.write_text(json.dumps(logs))
