"""Per-image decision lever (issue 11): the mask that maximises the model's own expected Dice.

A fixed threshold is not the Dice-optimal decision for a probability map: for pixel
probabilities ``p`` the expected Dice of a mask ``S`` is about ``2 * sum(p[S]) / (|S| + sum(p))``,
largest for the ``k`` most probable pixels with the best ``k`` found per image (Nowozin 2014,
"Optimal decisions from probabilistic models: the intersection-over-union case"). Uncertain
images then get larger masks, confident ones the usual. The temperature ``T`` softens the
logits first (the shipped models are over-confident).

    python -m training.expected_dice --model src/glassbox_xai/weights/dice --json out.json

scores it on dev_val at 512 px (with the card's flips) against the card's threshold, paired.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TEMPERATURES = (1.0, 1.5, 2.0, 3.0)


def expected_dice_mask(probabilities: np.ndarray) -> tuple[np.ndarray, float]:
    """The mask of highest expected Dice under ``probabilities`` (its top-``k`` pixels), and that expectation."""
    flat = np.asarray(probabilities, dtype=np.float64).ravel()
    order = np.argsort(-flat, kind="stable")
    expected = 2.0 * np.cumsum(flat[order]) / (np.arange(1, flat.size + 1) + flat.sum())
    k = int(np.argmax(expected)) + 1
    mask = np.zeros(flat.size, dtype=bool)
    mask[order[:k]] = True
    return mask.reshape(np.shape(probabilities)), float(expected[k - 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.expected_dice", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="bundle folder")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/isic2018_task1_512"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N dev_val images")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args(argv)

    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.data.layout import listed_samples
    from glassbox_xai.data.resize import to_model_input, to_native
    from glassbox_xai.inference import Segmenter, sigmoid
    from glassbox_xai.metrics import Confusion, scores

    from .paired import paired

    samples = listed_samples(args.data, args.data / "dev_val.txt", args.limit)
    segmenter = Segmenter.from_bundle(args.model)
    threshold = segmenter.threshold
    columns = ["card"] + [f"T={t:g}" for t in TEMPERATURES]
    dice: dict[str, dict[str, float]] = {c: {} for c in columns}  # per decision, per image id
    for start in range(0, len(samples), 16):
        chunk = samples[start : start + 16]
        images = [read_image(s.image) for s in chunk]
        logits = segmenter.model_logits(np.stack([to_model_input(im, segmenter.input_size) for im in images]))
        for sample, image, logit in zip(chunk, images, logits):
            truth = read_mask(sample.mask, expected_shape=image.shape[:2]).astype(bool)
            native = to_native(logit, image.shape[:2])
            dice["card"][sample.id] = scores(Confusion.from_masks(sigmoid(native) > threshold, truth))["dice"]
            for t in TEMPERATURES:
                dice[f"T={t:g}"][sample.id] = scores(Confusion.from_masks(expected_dice_mask(sigmoid(native / t))[0], truth))["dice"]
        print(f"\r{min(start + 16, len(samples))}/{len(samples)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    summary = {"model": str(args.model), "threshold": threshold, "tta": segmenter.tta, "n": len(samples), "rows": {}}
    print(f"| decision | dice | paired vs the card's threshold (95%) | below 0.7 |\n| --- | ---: | ---: | ---: |")
    for column in columns:
        s = paired(dice["card"], dice[column])
        summary["rows"][column] = {"dice": s["b"], "paired": s["difference"], "half_width": s["half_width"], "below_0.7": s["b_below"]}
        print(f"| {column} | {s['b']:.4f} | {s['difference']:+.4f} ± {s['half_width']:.4f} | {s['b_below']} |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
