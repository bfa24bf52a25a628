"""MNIST loading: verified IDX and npz files, and clear errors for missing, corrupt or truncated ones."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from demnistify.constants import MNIST_FILES
from training.data import DataError, load_mnist, parse_idx


def copy_mnist(source, target):
    target.mkdir()
    for name, _ in MNIST_FILES.values():
        shutil.copy(source / f"{name}.gz", target / f"{name}.gz")
    return target


def test_load_mnist_gives_verified_arrays(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 28, 28)
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_raw_idx_files_are_accepted(mnist_dir, tmp_path):
    folder = copy_mnist(mnist_dir, tmp_path / "raw")
    for name, _ in MNIST_FILES.values():
        (folder / name).write_bytes(gzip.decompress((folder / f"{name}.gz").read_bytes()))
        (folder / f"{name}.gz").unlink()
    assert load_mnist(folder).train_labels.shape == (60000,)


def test_keras_npz_is_accepted(mnist, tmp_path):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=mnist.train_images,
        y_train=mnist.train_labels,
        x_test=mnist.test_images,
        y_test=mnist.test_labels,
    )
    loaded = load_mnist(tmp_path)
    assert np.array_equal(loaded.test_labels, mnist.test_labels)


def test_altered_npz_is_rejected(mnist, tmp_path):
    altered = mnist.test_labels.copy()
    altered[0] = (altered[0] + 1) % 10
    np.savez(
        tmp_path / "mnist.npz",
        x_train=mnist.train_images,
        y_train=mnist.train_labels,
        x_test=mnist.test_images,
        y_test=altered,
    )
    with pytest.raises(DataError, match="test_labels"):
        load_mnist(tmp_path)


def test_corrupted_idx_names_file_and_expected_checksum(mnist_dir, tmp_path):
    folder = copy_mnist(mnist_dir, tmp_path / "corrupt")
    name, digest = MNIST_FILES["test_labels"]
    content = bytearray(gzip.decompress((folder / f"{name}.gz").read_bytes()))
    content[100] ^= 0xFF
    (folder / f"{name}.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=rf"{name}\.gz.*expected {digest}"):
        load_mnist(folder)


def test_truncated_gzip_is_a_clear_error(mnist_dir, tmp_path):
    folder = copy_mnist(mnist_dir, tmp_path / "truncated")
    name, _ = MNIST_FILES["train_labels"]
    path = folder / f"{name}.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=rf"{name}\.gz.*truncated"):
        load_mnist(folder)


def test_missing_file_and_folder_are_named(mnist_dir, tmp_path):
    folder = copy_mnist(mnist_dir, tmp_path / "missing")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is missing"):
        load_mnist(folder)
    with pytest.raises(DataError, match="does not exist.*MNIST_DIR"):
        load_mnist(tmp_path / "nowhere")


def test_parse_idx_rejects_bad_headers_and_sizes():
    header = (2049).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert parse_idx(header + bytes([1, 2, 3])).tolist() == [1, 2, 3]
    with pytest.raises(DataError, match="expected 11"):
        parse_idx(header + bytes([1, 2]))
    with pytest.raises(DataError, match="magic"):
        parse_idx((1234).to_bytes(4, "big") + bytes(8))
    with pytest.raises(DataError, match="too short"):
        parse_idx(b"\x00\x00")


def serve_folder(folder):
    """A loopback HTTP server for a folder, standing in for a public mirror."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def test_download_verifies_and_skips_a_mirror_with_altered_files(mnist_dir, tmp_path, capsys):
    from training.data import download_mnist

    good = copy_mnist(mnist_dir, tmp_path / "good")
    bad = copy_mnist(mnist_dir, tmp_path / "bad")
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(8)))
    bad_server, bad_url = serve_folder(bad)
    good_server, good_url = serve_folder(good)
    try:
        target = download_mnist(tmp_path / "downloaded", mirrors=(bad_url, good_url))
    finally:
        bad_server.shutdown(), good_server.shutdown()
    assert np.array_equal(load_mnist(target).train_labels, load_mnist(good).train_labels)
    assert "100%" in capsys.readouterr().err


def test_download_fails_clearly_when_no_mirror_has_a_verified_file(mnist_dir, tmp_path):
    from training.data import download_mnist

    bad = copy_mnist(mnist_dir, tmp_path / "bad")
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    server, url = serve_folder(bad)
    try:
        with pytest.raises(DataError, match="Could not download a verified t10k-labels"):
            download_mnist(tmp_path / "downloaded", mirrors=(url,))
    finally:
        server.shutdown()
    assert not (tmp_path / "downloaded" / "t10k-labels-idx1-ubyte.gz").exists()
