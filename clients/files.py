"""Offline recognition of numbers in image files (scans, photos, exported drawings) with a registered model."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline import Classifier, Digit, Recognition, recognize_image
from pipeline.budget import Budget


@dataclass(frozen=True)
class FileResult:
    """What one file held: its recognition, or why it could not be read."""

    path: str
    recognition: Recognition | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file was read (an empty page is a result, not a failure)."""
        return self.error is None


def recognize_file(path: str | Path, classify: Classifier) -> FileResult:
    """Read one image file and recognize the number in it; errors are reported, not raised."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        return FileResult(name, error="is a directory, not an image file")
    except OSError as error:
        return FileResult(name, error=f"cannot read the file: {error.strerror or error}")
    try:
        # The user's own files on their own machine: no work budget (the server's protects others).
        return FileResult(name, recognition=recognize_image(data, classify, Budget()))
    except ValueError as error:
        # The pipeline says what is wrong (not an image, too large, odd channels).
        return FileResult(name, error=f"not a usable image: {error}")


def recognize_files(paths: Iterable[str | Path], classify: Classifier) -> list[FileResult]:
    """Recognize every file in order, one result each."""
    return [recognize_file(path, classify) for path in paths]


def format_line(result: FileResult) -> str:
    """One human-readable line: `FILE: NUMBER`, rows separated by ` / `, unsure digits counted."""
    if not result.ok:
        return f"{result.path}: error: {result.error}"
    recognition = result.recognition
    if not recognition.text:
        return f"{result.path}: (no digits found)"
    unsure = sum(digit.unsure for digit in recognition.digits)
    note = f"  ({unsure} unsure digit{'s' if unsure != 1 else ''})" if unsure else ""
    return f"{result.path}: {' / '.join(recognition.lines)}{note}"


def to_json(result: FileResult) -> dict:
    """The result as a JSON-ready dict; digits carry the same fields as the protocol's `result` event."""
    if not result.ok:
        return {"file": result.path, "error": result.error}
    recognition = result.recognition
    return {
        "file": result.path,
        "text": recognition.text,
        "lines": list(recognition.lines),
        "digits": [_digit(digit) for digit in recognition.digits],
    }


def _digit(digit: Digit) -> dict:
    return {
        "label": digit.label,
        "confidence": round(float(digit.confidence), 6),
        "box": [int(v) for v in digit.box],
        "candidates": [[int(label), round(float(p), 6)] for label, p in digit.candidates],
        "unsure": bool(digit.unsure),
        "line": digit.line,
    }


def dump_json(results: list[FileResult], model: dict) -> str:
    """The `--json` output: the model that read the files, then one entry per file."""
    return json.dumps({"model": model, "files": [to_json(result) for result in results]}, indent=2)
