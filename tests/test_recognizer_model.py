"""The registered recognizer as MLflow users load it: `mlflow.pyfunc.load_model` and `mlflow models serve`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from demnistify.constants import CHAMPION_ALIAS, MODEL_NAME
from tests.server_support import free_port, healthy, wait_until
from tests.support import number_strokes

pytestmark = pytest.mark.slow

CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"


@pytest.fixture(scope="module")
def recognizer(trained_store):
    import mlflow
    import mlflow.pyfunc

    mlflow.set_tracking_uri(trained_store.tracking_uri)
    return mlflow.pyfunc.load_model(CHAMPION_URI)


def picture_of(text: str) -> str:
    """A base64 PNG of `text` drawn in black on white."""
    canvas = np.full((300, 800), 255, dtype=np.uint8)
    for stroke in number_strokes(text, 40, 40):
        cv2.polylines(canvas, [np.round(stroke).astype(np.int32)], False, 0, thickness=9)
    return base64.b64encode(cv2.imencode(".png", canvas)[1].tobytes()).decode()


def test_the_champion_reads_41_from_strokes_and_a_picture(recognizer):
    import pandas as pd

    drawings = [
        {"strokes": number_strokes("41", 40, 40), "width": 800, "height": 300, "pen_width": 9.0},
        {"image": picture_of("41")},
    ]
    as_list, as_frame = recognizer.predict(drawings), recognizer.predict(pd.DataFrame(drawings))
    assert [reading["text"] for reading in as_list] == ["41", "41"] and as_frame == as_list
    four, one = as_list[0]["digits"]
    assert (four["label"], one["label"]) == (4, 1) and four["box"][0] < one["box"][0]
    assert 0 < four["confidence"] <= 1 and len(four["candidates"]) == 3


def test_the_pyfunc_answers_like_the_server(recognizer, trained_store):
    from pipeline import recognize_image, recognize_strokes
    from serving.served_model import load_served_model

    strokes = number_strokes("4170", 20, 40, height=120)
    served = load_served_model(trained_store.result.model, trained_store.tracking_uri, cache_size=0)
    assert served.classify.__class__.__name__ == "BatchingClassifier"
    expected = recognize_strokes(strokes, 800, 300, served.classify).as_dict()
    assert recognizer.predict([{"strokes": strokes, "width": 800, "height": 300}]) == [expected]
    # Pictures with the float graph, as the server reads them.
    picture = picture_of("4170")
    expected = recognize_image(base64.b64decode(picture), served.picture_classifier).as_dict()
    assert served.picture_classifier is not served.classify
    assert recognizer.predict([{"image": picture}]) == [expected]


@pytest.mark.parametrize(
    "drawing, message",
    [
        ({"strokes": [[[1, 2]]], "width": 0, "height": 300}, "width"),
        ({"strokes": [[[1, 2]]], "width": 100}, "height"),
        ({"image": "not base64!"}, "base64"),
        ({"strokes": [[[1, 2]]] * 501, "width": 100, "height": 100}, "at most 500 strokes"),
    ],
)
def test_bad_drawings_get_a_clear_error(recognizer, drawing, message):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=message):
        recognizer.predict([drawing])


def test_mlflow_models_serve_answers_a_posted_drawing(trained_store, tmp_path):
    port = free_port()
    # Without PYTHONPATH and outside the checkout: the model must bring the code it runs.
    environment = {
        **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        "MLFLOW_TRACKING_URI": trained_store.tracking_uri,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        CHAMPION_URI,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path, env=environment)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthy(url, "/ping") or server.poll() is not None, 120, "mlflow models serve")
        assert server.poll() is None, log.read_text()[-3000:]
        body = {"dataframe_records": [{"strokes": number_strokes("41", 40, 40), "width": 800, "height": 300}]}
        status, answer = _post(f"{url}/invocations", body)
        assert status == 200, answer
        assert answer["predictions"][0]["text"] == "41"
        status, answer = _post(
            f"{url}/invocations", {"dataframe_records": [{"strokes": [[[1, 2]]], "width": 0, "height": 5}]}
        )
        assert status == 400 and "width" in answer["message"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
