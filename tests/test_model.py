"""The CNN builder and the pictures logged with each run."""

from __future__ import annotations

import numpy as np
import pytest


def test_build_model_shapes_and_softmax():
    from training.model import build_model

    model = build_model(width=8)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    probabilities = model(np.zeros((3, 28, 28, 1), dtype=np.float32), training=False).numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "settings", [dict(width=0), dict(dropout_rate=1.0), dict(num_classes=1), dict(input_shape=(32, 32, 1))]
)
def test_build_model_rejects_bad_settings(settings):
    from training.model import build_model

    with pytest.raises(ValueError):
        build_model(**settings)


def test_compiled_classifier_matches_the_model():
    from registry.keras_models import make_classifier
    from training.model import build_model

    model = build_model(width=8)
    images = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    expected = model(images[..., None], training=False).numpy()
    assert np.allclose(make_classifier(model)(images), expected, atol=1e-5)
    assert make_classifier(model)(np.zeros((0, 28, 28), np.float32)).shape == (0, 10)


def test_confusion_matrix_counts_pairs():
    from training.plots import confusion_matrix

    counts = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), num_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
