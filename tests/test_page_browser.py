"""The drawing page in a real headless Chromium against the real server: mouse, touch, undo, reconnect."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import shutil
import threading

import pytest
from playwright.sync_api import Page, expect

from demnistify.constants import CHAMPION_ALIAS, DEFAULT_MODEL_URI, MODEL_NAME, REPO_ROOT
from serving.config import STATIC_DIR, ServeConfig
from tests.server_support import ServerThread
from tests.support import densify, number_strokes

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = 15_000


def page_config(store, port: int = 0) -> ServeConfig:
    """The page's server on a copy of the trained store (the model-badge test registers a version in it)."""
    # Following the alias with a short poll lets a promotion reach the page within a second.
    return ServeConfig(
        port=port, model_uri=DEFAULT_MODEL_URI, tracking_uri=store.tracking_uri, poll_seconds=0.3, threads=2
    )


@pytest.fixture(scope="module")
def server(own_store):
    with ServerThread(page_config(own_store)) as running:
        yield running


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 700}, device_scale_factor=2)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def open_page(page: Page, port: int, query: str = "") -> Page:
    page.goto(f"http://127.0.0.1:{port}/{query}")
    expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=TIMEOUT_MS)
    return page


def draw_with_mouse(page: Page, strokes) -> None:
    """Drag the mouse along each stroke (canvas CSS pixels), button held."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = densify(stroke)
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.up()


def draw_with_touch(page: Page, strokes) -> None:
    """Drag one finger along each stroke with real touch events (Chrome DevTools Protocol)."""
    session = page.context.new_cdp_session(page)
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in densify(stroke)]
        session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for point in points[1:]:
            session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    session.detach()


def expect_number(page: Page, text: str, boxes: int) -> None:
    expect(page.locator("#result")).to_have_text(text, timeout=TIMEOUT_MS)
    expect(page.locator(".digit-box")).to_have_count(boxes)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_mouse_drawing_shows_the_number_and_digit_boxes(page, server):
    sent = []
    page.on("websocket", lambda socket: socket.on("framesent", lambda payload: sent.append(json.loads(payload))))
    open_page(page, server.port)
    expect(page.locator("#result")).to_have_attribute("data-state", "empty")
    expect(page.locator("#result")).to_have_text("Draw a number")
    draw_with_mouse(page, number_strokes("47", 80, 60, height=180))
    expect_number(page, "47", boxes=2)
    labels = page.locator(".digit-label").all_inner_texts()
    assert [label.split()[0].rstrip("?") for label in labels] == ["4", "7"]
    assert all(label.endswith("%") for label in labels)
    # The boxes sit over the ink: the 4's box starts near where it was drawn.
    left = float(page.locator(".digit-box").first.evaluate("box => parseFloat(box.style.left)"))
    assert 60 < left < 120
    # Frames sent while the button is held are previews; the one after it is released is not.
    pens = [frame["pen_down"] for frame in sent if frame.get("type") == "recognize"]
    assert True in pens and pens[-1] is False
    screenshot(page, "page-mouse.png")


def test_touch_drawing_neither_scrolls_nor_zooms(browser, server):
    context = browser.new_context(
        viewport={"width": 390, "height": 740}, device_scale_factor=3, is_mobile=True, has_touch=True
    )
    page = open_page(context.new_page(), server.port)
    assert page.locator("#pad").evaluate("pad => getComputedStyle(pad).touchAction") == "none"
    # Make the page scrollable, so a finger that pans instead of drawing would scroll it.
    page.add_style_tag(
        content="html, body { overflow: auto !important; } body::after { content: ''; "
        "display: block; min-height: 3000px; }"
    )
    draw_with_touch(page, number_strokes("17", 40, 40, height=140))
    expect_number(page, "17", boxes=2)
    assert page.evaluate("[window.scrollX, window.scrollY, window.visualViewport.scale]") == [0, 0, 1]
    screenshot(page, "page-touch.png")
    context.close()


def test_undo_and_clear_with_buttons_and_keys(page, server):
    open_page(page, server.port)
    draw_with_mouse(page, number_strokes("47", 80, 60, height=180))
    expect_number(page, "47", boxes=2)
    page.keyboard.press("Control+z")  # the 7 is one stroke
    expect_number(page, "4", boxes=1)
    page.keyboard.press("Escape")
    expect(page.locator("#result")).to_have_text("Draw a number")
    expect(page.locator("#result")).to_have_attribute("data-state", "empty")
    expect(page.locator(".digit-box")).to_have_count(0)
    draw_with_mouse(page, number_strokes("71", 80, 60, height=180))
    expect_number(page, "71", boxes=2)
    page.get_by_role("button", name="Undo").click()
    expect_number(page, "7", boxes=1)
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#result")).to_have_text("Draw a number")
    # Undo on an empty pad is harmless.
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#result")).to_have_text("Draw a number")


def test_model_badge_follows_a_promotion(page, server, own_store):
    from registry.client import connect

    client = connect(own_store.tracking_uri)
    current = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    open_page(page, server.port)
    expect(page.locator("#model")).to_have_text(f"{MODEL_NAME} v{current.version}")
    # Same weights, new version: a plain artifact location needs no logged-model lookup.
    source = client.get_model_version_download_uri(MODEL_NAME, current.version)
    new = client.create_model_version(MODEL_NAME, source, run_id=current.run_id)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, new.version)
    expect(page.locator("#model")).to_have_text(f"{MODEL_NAME} v{new.version}", timeout=30_000)


def test_reconnects_after_the_server_restarts(page, own_store):
    first = ServerThread(page_config(own_store))
    port = first.start()
    open_page(page, port)
    draw_with_mouse(page, number_strokes("4", 80, 60, height=180))
    expect_number(page, "4", boxes=1)
    first.stop()
    expect(page.locator("#status")).not_to_have_attribute("data-state", "online", timeout=TIMEOUT_MS)
    # Drawn while offline: the page sends it once the server is back.
    draw_with_mouse(page, number_strokes("7", 80 + 160, 60, height=180))
    with ServerThread(page_config(own_store, port)):
        expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=TIMEOUT_MS)
        expect_number(page, "47", boxes=2)


@pytest.fixture()
def static_site(tmp_path):
    """The page from a plain file server that has no websocket: only ?server= can connect it."""
    shutil.copytree(STATIC_DIR, tmp_path / "static")
    shutil.copy(STATIC_DIR / "index.html", tmp_path / "index.html")
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
        thread = threading.Thread(target=site.serve_forever, daemon=True)
        thread.start()
        yield site.server_address[1]
        site.shutdown()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature.
        pass


def test_server_query_parameter_and_token_pass_through(page, server, static_site):
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_page(page, static_site, f"?server=ws://127.0.0.1:{server.port}/&token=s3cret")
    assert sockets == [f"ws://127.0.0.1:{server.port}/?token=s3cret"]
    draw_with_mouse(page, number_strokes("1", 80, 60, height=180))
    expect_number(page, "1", boxes=1)


def test_page_passes_its_token_to_a_server_that_requires_one(page, own_store):
    token = "page-token-0123456789"
    config = dataclasses.replace(page_config(own_store), token=token)
    with ServerThread(config) as guarded:
        open_page(page, guarded.port, f"?token={token}")
        draw_with_mouse(page, number_strokes("1", 80, 60, height=180))
        expect_number(page, "1", boxes=1)
        # Without the token the server refuses the upgrade and the page never gets online.
        page.goto(f"http://127.0.0.1:{guarded.port}/")
        page.wait_for_timeout(1500)
        expect(page.locator("#status")).not_to_have_attribute("data-state", "online")
