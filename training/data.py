"""MNIST loading: IDX (gzip or raw) or Keras' mnist.npz, checksum-verified, with a download path."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demnistify.constants import DEFAULT_DATA_DIRS, MNIST_FILES, MNIST_MIRRORS

IDX_MAGIC = {2049: 1, 2051: 3}  # labels have one dimension, images three.
NPZ_KEYS = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}


class DataError(RuntimeError):
    """A data file is missing, truncated or altered."""


@dataclass(frozen=True)
class Mnist:
    """The MNIST arrays: uint8 images (N, 28, 28) with ink high, uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def default_data_dir() -> Path:
    """`MNIST_DIR` if set, else the repo's data folder, else `../shared/data/mnist`."""
    if os.environ.get("MNIST_DIR"):
        return Path(os.environ["MNIST_DIR"]).expanduser()
    for candidate in DEFAULT_DATA_DIRS:
        if candidate.is_dir():
            return candidate
    return DEFAULT_DATA_DIRS[0]


def load_mnist(data_dir: Path | str | None = None) -> Mnist:
    """Load and verify MNIST from IDX files (gzip or raw) or an `mnist.npz` in `data_dir`."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    if not directory.is_dir():
        raise DataError(
            f"MNIST folder {directory} does not exist. Set MNIST_DIR to a folder holding the "
            "four IDX files (or mnist.npz), or run `demnistify download-data` with internet access."
        )
    if not _find_idx(directory, MNIST_FILES["train_images"][0]) and (directory / "mnist.npz").is_file():
        return _load_npz(directory / "mnist.npz")
    arrays = {key: _load_idx_file(directory, name, digest) for key, (name, digest) in MNIST_FILES.items()}
    return Mnist(**arrays)


def _find_idx(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_file(directory: Path, name: str, expected_sha256: str) -> np.ndarray:
    path = _find_idx(directory, name)
    if path is None:
        raise DataError(f"MNIST file {directory / (name + '.gz')} is missing (raw {name} is accepted too).")
    content = _read_bytes(path)
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected_sha256:
        raise DataError(
            f"MNIST file {path} is corrupt or altered: SHA-256 of its decompressed content is "
            f"{actual}, expected {expected_sha256}. Delete it and copy or download it again."
        )
    return parse_idx(content, source=str(path))


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"MNIST file {path} cannot be read ({error}); it is truncated or not gzip.") from error


def parse_idx(content: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX content (big-endian header, then uint8 data) into an array."""
    if len(content) < 8:
        raise DataError(f"{source} is too short to be an IDX file ({len(content)} bytes).")
    magic = int.from_bytes(content[:4], "big")
    if magic not in IDX_MAGIC:
        raise DataError(f"{source} is not an IDX file of unsigned bytes (magic number {magic}).")
    ndim = IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(content) != expected:
        raise DataError(f"{source} holds {len(content)} bytes, expected {expected} for shape {shape}.")
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def _load_npz(path: Path) -> Mnist:
    try:
        with np.load(path) as archive:
            arrays = {key: archive[npz_key] for key, npz_key in NPZ_KEYS.items()}
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path} is not a readable Keras mnist.npz ({error}).") from error
    for key, (_, digest) in MNIST_FILES.items():
        _check_npz_array(path, key, arrays[key], digest)
    return Mnist(**{key: value.astype(np.uint8) for key, value in arrays.items()})


def _check_npz_array(path: Path, key: str, array: np.ndarray, expected_sha256: str) -> None:
    # The npz holds the IDX payload without its header, so hash the payload the IDX file
    # would carry: header plus bytes gives the original file's checksum.
    magic = 2051 if array.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    actual = hashlib.sha256(header + array.astype(np.uint8).tobytes()).hexdigest()
    if actual != expected_sha256:
        raise DataError(f"{path}: array for {key} does not match the original MNIST (SHA-256 {actual}).")


def download_mnist(data_dir: Path | str | None = None, mirrors: tuple[str, ...] = MNIST_MIRRORS) -> Path:
    """Download the four gzip IDX files from the public mirrors, verifying each checksum."""
    directory = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIRS[0]
    directory.mkdir(parents=True, exist_ok=True)
    for name, digest in MNIST_FILES.values():
        target = directory / f"{name}.gz"
        if target.is_file() and hashlib.sha256(_read_bytes(target)).hexdigest() == digest:
            continue
        _download_verified(mirrors, name, digest, target)
    return directory


def _download_verified(mirrors: tuple[str, ...], name: str, digest: str, target: Path) -> None:
    # A mirror that serves an altered file is skipped like one that is down.
    errors = []
    for mirror in mirrors:
        try:
            _download(f"{mirror}{name}.gz", target)
            _load_idx_file(target.parent, name, digest)
            return
        except (OSError, DataError) as error:
            errors.append(f"{mirror}: {error}")
            target.unlink(missing_ok=True)
    raise DataError(f"Could not download a verified {name}.gz: " + "; ".join(errors))


def _download(url: str, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            _progress(target.name, done, total)
    sys.stderr.write("\n")
    partial.replace(target)


def _progress(name: str, done: int, total: int) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{name} [{'#' * filled}{'.' * (30 - filled)}] {done * 100 // total:3d}%")
    else:
        sys.stderr.write(f"\r{name} {done // 1024} KiB")
    sys.stderr.flush()
