"""`demnistify recognize FILE...`: numbers read from PNG/JPEG files offline, clear errors, exit status."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from clients.files import FileResult, format_line, recognize_file, to_json
from demnistify.cli import main
from tests.support import number_strokes


def write_number(path, text: str, dark_ink: bool = True, noise: float = 0.0) -> None:
    """Draw `text` with a marker on paper and save it as PNG or JPEG (by the file's extension)."""
    paper, ink = (235, 30) if dark_ink else (25, 220)
    image = np.full((260, 120 + 150 * len(text)), paper, np.uint8)
    for stroke in number_strokes(text, 60, 50, height=160):
        cv2.polylines(image, [np.array(stroke, np.int32)], False, ink, thickness=14, lineType=cv2.LINE_AA)
    if noise:
        # A photo: uneven light and sensor noise on top of the ink.
        gradient = np.linspace(-25, 25, image.shape[1])[None, :]
        image = np.clip(image + gradient + np.random.default_rng(0).normal(0, noise, image.shape), 0, 255)
    assert cv2.imwrite(str(path), image.astype(np.uint8))


def always_seven(batch: np.ndarray) -> np.ndarray:
    """A stand-in classifier: every digit is a 7 with 90 %."""
    probabilities = np.full((len(batch), 10), 0.1 / 9, np.float32)
    probabilities[:, 7] = 0.9
    return probabilities


def test_file_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "folder.png").mkdir()
    missing = recognize_file(tmp_path / "missing.png", always_seven)
    assert not missing.ok and "No such file" in missing.error
    assert "not a usable image" in recognize_file(tmp_path / "notes.png", always_seven).error
    assert "directory" in recognize_file(tmp_path / "folder.png", always_seven).error
    assert format_line(missing) == f"{tmp_path / 'missing.png'}: error: {missing.error}"
    assert to_json(missing) == {"file": str(tmp_path / "missing.png"), "error": missing.error}


def test_a_readable_file_gives_digits_boxes_and_confidences(tmp_path):
    write_number(tmp_path / "two.png", "41")
    result = recognize_file(tmp_path / "two.png", always_seven)
    assert result.ok and result.recognition.text == "77"
    assert format_line(result) == f"{tmp_path / 'two.png'}: 77"
    entry = to_json(result)
    assert entry["text"] == "77" and entry["lines"] == ["77"]
    first, second = entry["digits"]
    assert first["label"] == 7 and first["confidence"] == pytest.approx(0.9) and not first["unsure"]
    # Boxes are image pixels, left to right, around the drawn digits.
    assert first["box"][0] + first["box"][2] <= second["box"][0]
    assert 100 < first["box"][3] < 200
    json.dumps(entry)


def test_blank_page_is_read_as_no_digits(tmp_path):
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((100, 200), 240, np.uint8))
    result = recognize_file(tmp_path / "blank.png", always_seven)
    assert result.ok and format_line(result).endswith(": (no digits found)")
    assert to_json(result)["digits"] == []


def test_unsure_digits_are_counted_in_the_line():
    from pipeline import Digit, Recognition

    digits = (Digit(4, 0.99, ((4, 0.99),), (0, 0, 5, 9), False), Digit(9, 0.4, ((9, 0.4),), (6, 0, 5, 9), True))
    line = format_line(FileResult("a.png", Recognition("49", ("49",), digits)))
    assert line == "a.png: 49  (1 unsure digit)"


@pytest.mark.slow
def test_recognize_command_reads_scans_and_photos(trained_store, tmp_path, capsys):
    write_number(tmp_path / "scan.png", "47")
    write_number(tmp_path / "photo.jpg", "10", dark_ink=False, noise=8)
    status = main(
        [
            "recognize",
            str(tmp_path / "scan.png"),
            str(tmp_path / "photo.jpg"),
            "--tracking-uri",
            trained_store.tracking_uri,
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out == [f"{tmp_path / 'scan.png'}: 47", f"{tmp_path / 'photo.jpg'}: 10"]


@pytest.mark.slow
def test_recognize_json_and_failures(trained_store, tmp_path, capsys):
    write_number(tmp_path / "scan.png", "47")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    status = main(
        [
            "recognize",
            str(tmp_path / "scan.png"),
            str(tmp_path / "broken.jpg"),
            str(tmp_path / "gone.png"),
            "--json",
            "--tracking-uri",
            trained_store.tracking_uri,
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert status == 1
    assert document["model"]["version"] == trained_store.result.model.version
    scan, broken, gone = document["files"]
    assert scan["text"] == "47" and [d["label"] for d in scan["digits"]] == [4, 7]
    assert all(0 <= d["confidence"] <= 1 and len(d["box"]) == 4 for d in scan["digits"])
    assert "not a usable image" in broken["error"] and "No such file" in gone["error"]


@pytest.mark.slow
def test_recognize_without_a_model_exits_2(tmp_path, capsys):
    status = main(["recognize", str(tmp_path / "any.png"), "--tracking-uri", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert status == 2
    assert "demnistify train" in capsys.readouterr().err
