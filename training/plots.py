"""Pictures logged with each run: confusion matrix, misclassified digits, learning curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from demnistify.constants import CLASS_NAMES


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """Counts[true, predicted] as an int array."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(int), predictions.astype(int)), 1)
    return counts


def confusion_figure(counts: np.ndarray) -> Figure:
    """Heat map of the confusion matrix with the count in each cell."""
    figure = Figure(figsize=(6, 5.5), dpi=100)
    axes = figure.subplots()
    # A log scale keeps the off-diagonal errors visible beside a diagonal of ~1000 each.
    image = axes.imshow(np.log1p(counts), cmap="Blues")
    for (row, column), value in np.ndenumerate(counts):
        color = "white" if row == column else "black"
        axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color=color)
    axes.set(
        xticks=range(len(counts)),
        yticks=range(len(counts)),
        xlabel="predicted",
        ylabel="true",
        title="Confusion matrix (MNIST test)",
    )
    figure.colorbar(image, ax=axes, label="log(1 + count)")
    return figure


def misclassified_figure(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, limit: int = 64) -> Figure:
    """Grid of the misclassified test digits, worst first, titled `true->predicted (p)`."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])][:limit]
    columns = 8
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    figure = Figure(figsize=(columns * 1.1, rows * 1.25 + 0.4), dpi=100)
    figure.suptitle(f"{int((predictions != labels).sum())} misclassified test digits (most confident first)")
    for slot, index in enumerate(wrong):
        axes = figure.add_subplot(rows, columns, slot + 1)
        axes.imshow(images[index], cmap="gray_r")
        axes.set_title(f"{labels[index]}->{predictions[index]} ({probabilities[index].max():.2f})", fontsize=7)
        axes.axis("off")
    return figure


def learning_curves_figure(history: dict[str, list[float]]) -> Figure:
    """Loss and accuracy per epoch, training beside validation."""
    figure = Figure(figsize=(10, 4), dpi=100)
    for axes, metric in zip(figure.subplots(1, 2), ("loss", "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            values = history.get(prefix + metric, [])
            axes.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + metric, markersize=3)
        axes.set(xlabel="epoch", ylabel=metric, title=f"Learning curve: {metric}")
        axes.grid(alpha=0.3)
        axes.legend()
    return figure
