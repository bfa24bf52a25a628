"""Desktop drawing window: a matplotlib figure that reads the drawn number live through the server."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading

from websockets.asyncio.client import connect
from websockets.client import process_exception
from websockets.exceptions import ConnectionClosed

logger = logging.getLogger(__name__)

# The drawing area in the protocol's canvas pixels; the window scales it to its size.
CANVAS_WIDTH, CANVAS_HEIGHT = 800, 300
PEN_WIDTH = 14
# The newest drawing is sent at most this often: motion events come faster than needed.
SEND_INTERVAL_S = 0.03
POLL_INTERVAL_MS = 40
PLACEHOLDER = "Draw a number"


class ServerLink:
    """A websocket link in a background thread: sends the newest drawing, queues every event, reconnects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self._drawing: dict | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._socket = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demnistify-link", daemon=True)

    def start(self) -> None:
        """Start connecting in the background; events arrive on `events`."""
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        """Close the connection and end the thread."""
        if self._loop and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._thread.join(timeout=5)

    def submit(self, message: dict | None) -> None:
        """Make `message` (a recognize request) the next one to send, replacing any unsent; None sends nothing."""
        self._drawing = message
        if self._loop and self._wake:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _shutdown(self) -> None:
        # Close with 1000 first so the server sees a normal goodbye, not a dropped connection.
        if self._socket is not None:
            await self._socket.close()
        self._task.cancel()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._task = asyncio.current_task()
        self._started.set()
        try:
            # `connect` as an iterator reconnects with exponential backoff after each failure.
            async for socket in connect(
                self.url, open_timeout=5, max_size=2**22, process_exception=self._connect_failed
            ):
                self._socket = socket
                try:
                    await self._session(socket)
                except ConnectionClosed:
                    pass
                self.events.put({"type": "status", "state": "offline"})
        except asyncio.CancelledError:
            pass

    def _connect_failed(self, error: Exception) -> Exception | None:
        # Show "offline" from the first failed attempt on, not only after a lost connection;
        # websockets then decides as usual whether to retry (with backoff) or give up.
        self.events.put({"type": "status", "state": "offline"})
        return process_exception(error)

    async def _session(self, socket) -> None:
        self.events.put({"type": "status", "state": "online"})
        # The server has seen nothing of the current drawing yet.
        self._wake.set()
        sender = asyncio.create_task(self._send_loop(socket))
        try:
            async for frame in socket:
                self._receive(frame)
        finally:
            sender.cancel()

    def _receive(self, frame: str | bytes) -> None:
        try:
            self.events.put(json.loads(frame))
        except ValueError:
            logger.warning("Ignoring a frame that is not JSON: %.80r", frame)

    async def _send_loop(self, socket) -> None:
        sent = None
        while True:
            await self._wake.wait()
            self._wake.clear()
            message = self._drawing
            if message is not None and message is not sent:
                await socket.send(json.dumps(message))
                sent = message
            await asyncio.sleep(SEND_INTERVAL_S)


class DrawingWindow:
    """The drawing figure: mouse draws, any key erases, the title shows the number read so far."""

    def __init__(self, figure, link: ServerLink) -> None:
        self.figure, self.link = figure, link
        self.axes = figure.add_axes((0.02, 0.08, 0.96, 0.78))
        self.axes.set(xlim=(0, CANVAS_WIDTH), ylim=(CANVAS_HEIGHT, 0), xticks=[], yticks=[], aspect="equal")
        self.strokes: list[list[list[float]]] = []
        self.lines: list = []
        self.pen_down = False
        # Every drawing gets a new id; `shown` is the id whose result is on screen.
        self.next_id = self.shown = 0
        self.status, self.model = "connecting", "no model yet"
        self.text = PLACEHOLDER
        for name, handler in (
            ("button_press_event", self.on_press),
            ("motion_notify_event", self.on_motion),
            ("button_release_event", self.on_release),
            ("key_press_event", self.on_key),
        ):
            figure.canvas.mpl_connect(name, handler)
        self._refresh()

    def on_press(self, event) -> None:
        """Start a stroke at the mouse."""
        if event.inaxes is not self.axes or event.button != 1:
            return
        self.pen_down = True
        self.strokes.append([[event.xdata, event.ydata]])
        (line,) = self.axes.plot(
            [event.xdata],
            [event.ydata],
            color="black",
            linewidth=self._pen_points(),
            solid_capstyle="round",
            solid_joinstyle="round",
            marker="o",
            markersize=self._pen_points(),
            markevery=[0],
        )
        self.lines.append(line)
        self._changed()

    def on_motion(self, event) -> None:
        """Extend the stroke while the button is held."""
        if not self.pen_down or event.inaxes is not self.axes:
            return
        self.strokes[-1].append([event.xdata, event.ydata])
        self.lines[-1].set_data(*zip(*self.strokes[-1]))
        self._changed()

    def on_release(self, event) -> None:
        """End the stroke, and send the drawing again: it is no longer a preview."""
        if self.pen_down:
            self.pen_down = False
            self._changed()

    def on_key(self, event) -> None:
        """Any key erases the drawing, as in the original window."""
        for line in self.lines:
            line.remove()
        self.strokes, self.lines, self.pen_down = [], [], False
        self._changed()

    def poll(self) -> str:
        """Apply every event from the server (results, model, status) and return the title."""
        while True:
            try:
                self._handle(self.link.events.get_nowait())
            except queue.Empty:
                return self._refresh()

    def _handle(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "status":
            self.status = event["state"]
        elif kind in ("hello", "model"):
            self.model = "{name} v{version}".format(**event["model"])
            if kind == "model":
                self._changed()  # the new model may read the drawing differently
        elif kind == "result" and isinstance(event.get("id"), int) and event["id"] > self.shown and self.strokes:
            self.shown = event["id"]
            self.text = " / ".join(event["lines"]) if event["text"] else "(no digits found)"
        elif kind == "error":
            logger.warning("Server error %s: %s", event.get("code"), event.get("message"))

    def _changed(self) -> None:
        self.next_id += 1
        if not self.strokes:
            # An empty drawing needs no server: show the placeholder and void pending results.
            self.shown, self.text = self.next_id, PLACEHOLDER
            self.link.submit(None)
        else:
            self.link.submit(
                {
                    "type": "recognize",
                    "id": self.next_id,
                    "width": CANVAS_WIDTH,
                    "height": CANVAS_HEIGHT,
                    "pen_width": PEN_WIDTH,
                    "pen_down": self.pen_down,
                    # A copy: the link serializes it on its own thread while drawing goes on.
                    "strokes": [stroke[:] for stroke in self.strokes],
                }
            )
        self._refresh()
        self.figure.canvas.draw_idle()

    def _refresh(self) -> str:
        title = self.axes.get_title()
        if title != self.text:
            self.axes.set_title(self.text, fontsize=28, fontweight="bold")
        self.axes.set_xlabel(f"{self.status} · {self.model} · drag to draw, any key erases", fontsize=9)
        if title != self.text:
            self.figure.canvas.draw_idle()
        return self.text

    def _pen_points(self) -> float:
        # Match the line width (in points) to PEN_WIDTH canvas pixels at the current window size.
        pixels_per_unit = self.axes.bbox.width / CANVAS_WIDTH
        return PEN_WIDTH * pixels_per_unit * 72 / self.figure.dpi


def run_window(url: str) -> int:
    """Open the drawing window connected to the server at `url`; returns when it is closed."""
    import matplotlib.pyplot as plt

    link = ServerLink(url)
    link.start()
    figure = plt.figure(figsize=(10, 4.6))
    figure.canvas.manager.set_window_title(f"deMNISTify — {url}")
    window = DrawingWindow(figure, link)
    timer = figure.canvas.new_timer(interval=POLL_INTERVAL_MS)
    timer.add_callback(window.poll)
    timer.start()
    try:
        plt.show()
    finally:
        link.stop()
    return 0
