"""Rows in reading order: blobs grouped by vertical overlap, stray fragments joined, lone marks dropped."""

from __future__ import annotations

import statistics

from pipeline.segment import FRAGMENT_FRACTION, SIDE_GAP, Blob

# A row whose blobs are all fragments is not a line of digits but a detached part of one
# (the floating bar of a 5, the stem of a 9): each fragment joins the blob of another row
# that it is beside, up to this many digit heights above or below it.
STRAY_GAP = 0.6
# A mark that joined no other piece and spans less than this fraction of the digit height is
# not a digit but a stray stroke (or the dots some MNIST scans carry beside a digit), and is
# dropped like a speck rather than read as an unsure extra digit.
LONE_MARK_FRACTION = 0.4
# Two components are on the same row when they overlap vertically by this fraction of the
# shorter one.
ROW_OVERLAP = 0.35


def join_stray_rows(blobs: list[Blob], digit_height: float) -> list[list[Blob]]:
    """Rows of blobs (see group_rows), after fragments alone in a row join a blob of another row."""
    rows = group_rows(blobs)
    strays = [
        blob for row in rows if max(blob.height for blob in row) < FRAGMENT_FRACTION * digit_height for blob in row
    ]
    if len(rows) < 2 or not strays:
        return rows
    blobs = list(blobs)
    for stray in strays:
        partners = [blob for blob in blobs if blob is not stray and _near_above_or_below(stray, blob, digit_height)]
        # A stray already taken in by an earlier one is no longer its own blob.
        if partners and stray in blobs:
            partner = min(partners, key=lambda blob: abs(blob.top + blob.bottom - stray.top - stray.bottom))
            blobs = [blob for blob in blobs if blob is not stray and blob is not partner] + [partner.union(stray)]
    return group_rows(blobs)


def drop_lone_marks(rows: list[list[Blob]], digit_height: float) -> list[list[Blob]]:
    """The rows without the blobs too small to be digits on their own; rows left empty go too."""
    limit = LONE_MARK_FRACTION * digit_height
    return [kept for row in rows if (kept := [blob for blob in row if blob.extent >= limit])]


def _near_above_or_below(stray: Blob, other: Blob, digit_height: float) -> bool:
    gap = max(stray.left, other.left) - min(stray.right, other.right)
    rise = max(stray.top, other.top) - min(stray.bottom, other.bottom)
    return gap <= SIDE_GAP * digit_height and 0 < rise <= STRAY_GAP * digit_height and other.height >= stray.height


def group_rows(blobs: list[Blob]) -> list[list[Blob]]:
    """Group blobs into rows of vertically overlapping blobs, rows top to bottom, each left to right."""
    parent = list(range(len(blobs)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for i, first in enumerate(blobs):
        for j in range(i + 1, len(blobs)):
            if _row_overlap(first, blobs[j]) >= ROW_OVERLAP:
                parent[root(j)] = root(i)
    rows: dict[int, list[Blob]] = {}
    for index, blob in enumerate(blobs):
        rows.setdefault(root(index), []).append(blob)
    ordered = sorted(rows.values(), key=lambda row: statistics.median((b.top + b.bottom) / 2 for b in row))
    return [sorted(row, key=lambda blob: (blob.left + blob.right) / 2) for row in ordered]


def _row_overlap(first: Blob, second: Blob) -> float:
    overlap = min(first.bottom, second.bottom) - max(first.top, second.top)
    return overlap / max(min(first.height, second.height), 1e-6)
