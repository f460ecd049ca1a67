"""Guided refinement at native resolution: scores and a close-up of the boundary (issue 11).

``.venv/bin/python benchmarks/refine_native.py [--variant dice] [--out benchmarks/results/refine]``

On each native-resolution photograph of ``../shared/data/native_samples`` (1 to 10 MP),
with the model card's settings: Dice of the plain (bilinear) mask and of the guided
one against the expert mask, and the time the refinement adds. Then, for the largest
photograph, a PNG close-up of a stretch of boundary with the expert outline (green),
the plain mask (magenta) and the refined mask (cyan), for looking at.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def close_up(image, truth, plain, refined, path: Path, size: int = 600) -> Path:
    """A ``size``-px square around the point of the expert boundary where the masks differ most."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glassbox_xai.figures import save_figure

    diff = cv2.blur((plain != refined).astype(np.float32), (size // 4, size // 4))
    y, x = np.unravel_index(np.argmax(diff), diff.shape)
    y0, x0 = max(0, min(y - size // 2, image.shape[0] - size)), max(0, min(x - size // 2, image.shape[1] - size))
    crop = (slice(y0, y0 + size), slice(x0, x0 + size))
    fig, ax = plt.subplots(figsize=(7, 7), dpi=100)
    ax.imshow(image[crop])
    for mask, colour in ((truth, "#00ff66"), (plain, "#ff00cc"), (refined, "#00e5ff")):
        ax.contour(mask[crop].astype(np.uint8), levels=[0.5], colors=colour, linewidths=1.5)
    ax.set_title(f"{size}x{size} px close-up at ({x0}, {y0}): expert green, plain magenta, guided cyan", fontsize=9)
    ax.axis("off")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="dice")
    parser.add_argument("--model", type=Path, help="a bundle folder instead of an installed variant")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/native_samples")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/refine")
    args = parser.parse_args(argv)

    from glassbox_xai.tf_import import import_tensorflow

    import_tensorflow()
    from glassbox_xai.data.layout import discover
    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.metrics import Confusion, scores
    from glassbox_xai.model.bundle import load_bundle
    from glassbox_xai.model.registry import resolve_bundle

    bundle = load_bundle(args.model or resolve_bundle(args.variant))
    plain_seg, guided_seg = Segmenter(bundle, refine=False), Segmenter(bundle, refine=True)
    samples = sorted(discover(args.data, require_masks=True), key=lambda s: s.image.stat().st_size)
    print(f"model {bundle.path}; threshold {plain_seg.threshold}; tta {plain_seg.tta}\n")
    print("| photograph | size | Dice plain | Dice guided | refinement (s) |")
    print("| --- | --- | ---: | ---: | ---: |")
    dices = []
    for sample in samples:
        image, truth = read_image(sample.image), read_mask(sample.mask)
        plain = plain_seg.predict(image)
        began = time.perf_counter()
        guided = guided_seg.predict(image)
        extra = time.perf_counter() - began
        began = time.perf_counter()
        plain_seg.predict(image)
        extra -= time.perf_counter() - began
        d = (scores(Confusion.from_masks(plain.mask, truth))["dice"], scores(Confusion.from_masks(guided.mask, truth))["dice"])
        dices.append(d)
        print(f"| {sample.id} | {image.shape[1]}x{image.shape[0]} | {d[0]:.4f} | {d[1]:.4f} | {max(extra, 0):.2f} |")
    mean = np.mean(dices, axis=0)
    print(f"| mean | | {mean[0]:.4f} | {mean[1]:.4f} | |")
    args.out.mkdir(parents=True, exist_ok=True)
    path = close_up(image, truth, plain.mask, guided.mask, args.out / f"{samples[-1].id}_closeup.png")
    print(f"\nclose-up: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
