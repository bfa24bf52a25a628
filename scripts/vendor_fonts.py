"""Rebuild training/fonts/: the digits of Google Fonts' handwriting families, from the npm registry.

Run by a maintainer, never by training or CI (the result is committed):

    .venv/bin/pip install fonttools && .venv/bin/python scripts/vendor_fonts.py

It lists the "handwriting" category from `google-font-metadata` (fontsource's metadata of all
Google Fonts), downloads each family's `@fontsource/<id>` package, keeps up to three weights of
its latin file cut down to the ten digits (fontTools' subsetter), and writes each family's
license beside its fonts. Families held out for evaluation (training/fonts/HELD_OUT.txt) and
their variants are never downloaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

FONTS_DIR = Path(__file__).resolve().parent.parent / "training" / "fonts"
METADATA_PACKAGE = "google-font-metadata@6.0.8"
DIGITS = "0123456789"
# Variants that draw ruling lines, arrows or dots around the glyphs, or repeat another id's digits.
SKIPPED_SUFFIXES = ("-guides", "-arrows", "-dots", "-arabic", "-deva", "-hebrew", "-thai")
# Families whose digits carry ornaments no pen draws: butterflies, paint splashes, hollow outlines.
DECORATED = {"butterfly-kids", "neonderthaw", "splash"}


def npm_pack(name: str, into: Path) -> Path:
    """Download one npm package tarball and unpack it; returns its `package/` folder."""
    out = subprocess.run(["npm", "pack", name, "--silent"], cwd=into, check=True, capture_output=True, text=True)
    target = into / name.replace("/", "-").replace("@", "").split("@")[0]
    with tarfile.open(into / out.stdout.strip().splitlines()[-1]) as archive:
        archive.extractall(target, filter="data")
    return target / "package"


def handwriting_ids(scratch: Path, held_out: set[str]) -> list[str]:
    """Ids of the handwriting families, less the held-out ones and any variant of them."""
    fonts = json.loads((npm_pack(METADATA_PACKAGE, scratch) / "data" / "google-fonts-v2.json").read_text())
    ids = sorted(font["id"] for font in fonts.values() if font["category"] == "handwriting")
    return [
        i for i in ids if not i.endswith(SKIPPED_SUFFIXES) and i not in DECORATED and not _near_held_out(i, held_out)
    ]


def _near_held_out(family: str, held_out: set[str]) -> bool:
    # "delius-unicase" is Delius redrawn and "patrick-hand-sc" is Patrick Hand: both held out.
    return any(family == h or family.startswith(h + "-") or h.startswith(family + "-") for h in held_out) or (
        family.split("-")[0] in {h.split("-")[0] for h in held_out if h.startswith("nanum")}
    )


def vendor_family(family: str, scratch: Path) -> dict | None:
    """Subset and copy one family's digits and license; None when it has no usable digits."""
    package = npm_pack(f"@fontsource/{family}", scratch)
    meta = json.loads((package / "metadata.json").read_text())
    weights = sorted(set(_chosen_weights(meta["weights"])))
    files = {w: package / "files" / f"{family}-latin-{w}-normal.woff" for w in weights}
    files = {w: path for w, path in files.items() if path.exists() and _has_digits(path)}
    if not files:
        return None
    target = FONTS_DIR / family
    target.mkdir(parents=True, exist_ok=True)
    for weight, path in files.items():
        _subset_digits(path, target / f"{weight}.ttf")
    (target / "LICENSE").write_text((package / "LICENSE").read_text())
    return {
        "id": family,
        "family": meta["family"],
        "weights": sorted(files),
        "version": meta["version"],
        "license": meta["license"]["type"],
    }


def _chosen_weights(weights: list[int]) -> list[int]:
    # The lightest, the regular (or nearest) and the boldest cover the pens people use.
    return [min(weights), min(weights, key=lambda w: abs(w - 400)), max(weights)]


def _has_digits(path: Path) -> bool:
    cmap = TTFont(path).getBestCmap()
    return all(ord(d) in cmap for d in DIGITS)


def _subset_digits(source: Path, target: Path) -> None:
    options = subset.Options()
    options.flavor = None
    options.layout_features = []
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=DIGITS)
    subsetter.subset(font)
    font.flavor = None
    font.save(target)


def main() -> int:
    held_out = set((FONTS_DIR / "HELD_OUT.txt").read_text().split())
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        families = handwriting_ids(scratch, held_out)
        print(f"{len(families)} handwriting families to vendor", file=sys.stderr)
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda f: _try_vendor(f, scratch), families))
    kept = [r for r in results if r is not None]
    (FONTS_DIR / "families.json").write_text(json.dumps(kept, indent=1) + "\n")
    print(f"{len(kept)} families with ten digits written to {FONTS_DIR}", file=sys.stderr)
    return 0


def _try_vendor(family: str, scratch: Path) -> dict | None:
    try:
        return vendor_family(family, scratch)
    except (subprocess.CalledProcessError, OSError, KeyError, ValueError) as error:
        print(f"skipped {family}: {error}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
