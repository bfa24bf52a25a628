"""The desktop window (`demnistify draw`), headless: synthetic mouse events in, the live title out."""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.backend_bases import KeyEvent, MouseEvent  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from clients.desktop import PLACEHOLDER, DrawingWindow, ServerLink  # noqa: E402
from demnistify.cli import main  # noqa: E402
from serving.config import ServeConfig  # noqa: E402
from tests.server_support import ServerThread, free_port  # noqa: E402
from tests.support import densify, number_strokes  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained_store):
    config = ServeConfig(port=0, model_uri=trained_store.model_uri, tracking_uri=trained_store.tracking_uri)
    with ServerThread(config) as running:
        yield running


@pytest.fixture()
def window(server):
    link = ServerLink(f"ws://127.0.0.1:{server.port}/")
    link.start()
    figure = Figure(figsize=(10, 4.6))
    FigureCanvasAgg(figure)
    yield DrawingWindow(figure, link)
    link.stop()


def send(window: DrawingWindow, name: str, x: float, y: float) -> None:
    """Feed one mouse event at canvas point (x, y) through the figure's own callbacks."""
    display_x, display_y = window.axes.transData.transform((x, y))
    event = MouseEvent(name, window.figure.canvas, display_x, display_y, button=1)
    window.figure.canvas.callbacks.process(name, event)


def draw(window: DrawingWindow, strokes) -> None:
    """Press, drag through every point, release: once per stroke."""
    for stroke in strokes:
        points = densify(stroke, step=6)
        send(window, "button_press_event", *points[0])
        for point in points[1:]:
            send(window, "motion_notify_event", *point)
        send(window, "button_release_event", *points[-1])


def title_after(window: DrawingWindow, expected: str, timeout: float = 20) -> str:
    """Poll the window (as its timer does) until the title reads `expected` or time runs out."""
    deadline = time.monotonic() + timeout
    while window.poll() != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return window.axes.get_title()


def test_title_shows_the_number_live_and_any_key_erases(window, trained_store):
    assert window.axes.get_title() == PLACEHOLDER
    draw(window, number_strokes("4", 80, 60))
    assert title_after(window, "4") == "4"
    draw(window, number_strokes("7", 80 + 135, 60))
    assert title_after(window, "47") == "47"
    version = trained_store.result.model.version
    assert f"online · demnistify-cnn v{version}" in window.axes.get_xlabel()
    window.figure.canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", window.figure.canvas, "x"))
    assert window.axes.get_title() == PLACEHOLDER and not window.lines
    # Results still in flight for the erased drawing must not bring it back.
    time.sleep(0.3)
    assert window.poll() == PLACEHOLDER


def test_releasing_the_button_sends_the_drawing_as_no_longer_a_preview(window):
    sent = []
    window.link.submit = sent.append  # What the window hands its link, in order.
    draw(window, number_strokes("1", 80, 60))
    assert [message["pen_down"] for message in sent][-1] is False
    assert all(message["pen_down"] for message in sent[:-1]) and len(sent) > 2
    assert sent[-1]["strokes"] == sent[-2]["strokes"]


def test_motion_outside_the_drawing_area_or_without_a_button_draws_nothing(window):
    send(window, "motion_notify_event", 100, 100)
    send(window, "button_press_event", -500, 100)
    assert window.strokes == [] and window.poll() == PLACEHOLDER


def test_draw_refuses_an_address_that_is_not_a_websocket(capsys):
    assert main(["draw", "--server", "http://127.0.0.1:1/"]) == 2
    assert "ws://" in capsys.readouterr().err


def test_window_says_offline_when_the_server_cannot_be_reached():
    # Nothing listens on this port: the very first attempt fails.
    link = ServerLink(f"ws://127.0.0.1:{free_port()}/")
    link.start()
    try:
        event = link.events.get(timeout=10)
    finally:
        link.stop()
    assert event == {"type": "status", "state": "offline"}
