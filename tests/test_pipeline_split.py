"""The split scorer on lattices whose pieces' readings are given: which cuts of a blob win."""

from __future__ import annotations

from pipeline.segment import Blob
from pipeline.split import best_split, min_piece_height


def split_of(pieces: dict, size: float = 100.0, atoms: int = 2) -> list:
    """The best reading of a stroke lattice of `atoms` atoms whose parts read as `pieces` says: (p, box)."""
    return best_split(("strokes", list(range(atoms + 1))), lambda part: pieces.get(part[1:]), size)[1]


def test_a_piece_much_wider_than_a_digit_loses_to_plausible_halves():
    # Two overlapping 7s read as one 7 (p 0.99) 1.6 digit heights wide, or as two 7s (p 0.85).
    whole, left, right = (0.99, (0, 0, 160, 100)), (0.85, (0, 0, 70, 100)), (0.85, (80, 0, 80, 100))
    assert split_of({(0, 2): whole, (0, 1): left, (1, 2): right}) == [("strokes", 0, 1), ("strokes", 1, 2)]
    # A digit as wide as it is tall stays whole against the same halves.
    assert split_of({(0, 2): (0.99, (0, 0, 100, 100)), (0, 1): left, (1, 2): right}) == [("strokes", 0, 2)]


def test_a_blob_read_at_chance_as_one_digit_loses_to_halves_read_as_digits():
    # Two condensed digits run together, as wide as one digit, that the model reads at chance
    # whole (p 0.15): halves it reads fairly surely (p 0.35 each) win.
    whole, left, right = (0.15, (0, 0, 90, 100)), (0.35, (0, 0, 40, 100)), (0.35, (50, 0, 40, 100))
    assert split_of({(0, 2): whole, (0, 1): left, (1, 2): right}) == [("strokes", 0, 1), ("strokes", 1, 2)]
    # Read a little more surely whole (p 0.25), it stays one digit against the same halves.
    assert split_of({(0, 2): (0.25, (0, 0, 90, 100)), (0, 1): left, (1, 2): right}) == [("strokes", 0, 2)]


def test_pieces_read_in_drawing_order_never_step_back_to_the_left():
    # A 0 whose right side was traced first: the right stroke alone reads 7, the left one 1,
    # each more surely than the whole reads 0; a number is not written right to left.
    whole, right, left = (0.97, (0, 0, 90, 100)), (0.99, (35, 10, 55, 90)), (1.0, (0, 10, 45, 90))
    assert split_of({(0, 2): whole, (0, 1): right, (1, 2): left}) == [("strokes", 0, 2)]
    # The same pieces drawn left to right do read as two digits.
    assert split_of({(0, 2): whole, (0, 1): left, (1, 2): right}) == [("strokes", 0, 1), ("strokes", 1, 2)]


def test_a_short_digit_counts_as_one_in_a_row_of_touching_digits_only():
    # A sloping row of touching digits is taller than its digits, so a digit half the
    # drawing's digit height tall is still a digit there; in a blob one digit wide it is a
    # fragment (the loop of a 6 beside its stem).
    short, tall = (0.99, (0, 50, 50, 50)), (0.99, (55, 0, 70, 95))
    for width, expected in ((160, [("strokes", 0, 1), ("strokes", 1, 2)]), (100, [("strokes", 0, 2)])):
        least = min_piece_height(Blob(0, 0, width, 100, (1,)), 100.0)
        pieces = {(0, 2): (0.9, (0, 0, width, 100)), (0, 1): short, (1, 2): tall}
        reading = best_split(
            ("strokes", [0, 1, 2]), lambda part, pieces=pieces: pieces.get(part[1:]), 100.0, min_height=least
        )
        assert reading[1] == expected


def test_a_stem_within_its_neighbours_width_goes_back_to_its_bar():
    # A condensed 5 then 7, drawn 5's strokes, the 7's bar, the 7's stem: the 5 with the bar
    # read 5 and the stem alone read 1 as surely as the 5 and the 7 read, but the stem lies
    # within the width of the piece before it.
    five, five_and_bar = (1.0, (0, 0, 40, 100)), (1.0, (0, 0, 75, 100))
    seven, stem, whole = (0.99, (40, 0, 35, 100)), (1.0, (58, 5, 12, 95)), (0.1, (0, 0, 75, 100))
    pieces = {(0, 1): five, (0, 2): five_and_bar, (1, 3): seven, (2, 3): stem, (0, 3): whole}
    assert split_of(pieces, atoms=3) == [("strokes", 0, 1), ("strokes", 1, 3)]
    # A stem standing clear of the 5-and-bar's width is a 1 after a 5.
    pieces[(2, 3)] = (1.0, (78, 5, 12, 95))
    assert split_of(pieces, atoms=3) == [("strokes", 0, 2), ("strokes", 2, 3)]
