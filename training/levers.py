"""Measure inference-time levers of a model on dev_val at the masks' 512 px (issue 11).

``python -m training.levers --model runs/continued/bundle --name continued`` scores,
from one model pass per test-time augmentation mode, every combination of

- test-time augmentation: none, the four flips, all eight flips and 90-degree rotations (D4);
- guided refinement of the probabilities with the photograph (:mod:`glassbox_xai.refine`);
- the threshold (0.20 to 0.70),

and prints one Markdown row per (tta, refine) at its best threshold: GFLOP per image
(convolutions of one model call, times the views), CPU latency per 512 px image with the
model warm, macro Dice, thresholded Jaccard, precision, recall, and the count of images
below Dice 0.7. ``--json FILE`` keeps every row.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from glassbox_xai.refine import GuidedRefinement

THRESHOLDS = tuple(np.round(np.arange(0.20, 0.701, 0.05), 2))
MODES = (False, "flips", "d4")


def conv_gflops(model) -> float:
    """Multiply-adds x 2 of the convolutions of one forward pass of one image, in GFLOP."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            out = layer.output.shape
            kernel = layer.kernel.shape  # (kh, kw, in, out) or (kh, kw, out, in) for transposed
            total += 2 * out[1] * out[2] * int(np.prod(kernel))
    return total / 1e9


def best_threshold(per_image_at, thresholds=THRESHOLDS) -> tuple[float, dict]:
    """The threshold of ``thresholds`` with the highest macro Dice, and its macro summary plus
    ``below_0.7`` (images below Dice 0.7); ``per_image_at(t)`` gives the per-image scores at ``t``."""
    from glassbox_xai.metrics import macro_average

    best = None
    for threshold in thresholds:
        per_image = per_image_at(float(threshold))
        summary = macro_average(per_image)
        summary["below_0.7"] = int(sum(s["dice"] < 0.7 for s in per_image))
        if best is None or summary["dice"] > best[1]["dice"]:
            best = (float(threshold), summary)
    return best


METRIC_COLUMNS = (("dice", lambda r: f"{r['dice']:.4f}"), ("threshold_jaccard", lambda r: f"{r['threshold_jaccard']:.4f}"),
                  ("precision", lambda r: f"{r['precision']:.4f}"), ("recall", lambda r: f"{r['sensitivity']:.4f}"),
                  ("below 0.7", lambda r: str(r["below_0.7"])))


def print_rows(rows: list[dict], lead: list[tuple[str, str, Callable[[dict], str]]], json_path: Path | None = None) -> None:
    """Print ``rows`` as a Markdown table: the ``lead`` columns (header, alignment rule, cell of a row),
    then the metrics every lever reports (the fields :func:`best_threshold` gives); write them to ``json_path``."""
    columns = [(header, rule, cell) for header, rule, cell in lead] + [(header, "---:", cell) for header, cell in METRIC_COLUMNS]
    print("| " + " | ".join(c[0] for c in columns) + " |")
    print("| " + " | ".join(c[1] for c in columns) + " |")
    for r in rows:
        print("| " + " | ".join(c[2](r) for c in columns) + " |")
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.levers", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="bundle folder")
    parser.add_argument("--name", default=None, help="row label (default: the bundle folder's parent name)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/isic2018_task1_512"))
    parser.add_argument("--limit", type=int, help="first N dev_val images only")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--radius", type=float, default=GuidedRefinement().radius_model_px, help="guided window radius in model pixels")
    args = parser.parse_args(argv)

    from glassbox_xai.tf_import import import_tensorflow

    import_tensorflow()
    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.data.layout import listed_samples
    from glassbox_xai.data.resize import to_model_input, to_native
    from glassbox_xai.inference import Segmenter, sigmoid
    from glassbox_xai.metrics import Confusion, scores
    from glassbox_xai.model.bundle import load_bundle
    from glassbox_xai.refine import guided_refine

    refinement = GuidedRefinement(radius_model_px=args.radius)

    samples = listed_samples(args.data, args.data / "dev_val.txt", args.limit)
    bundle = load_bundle(args.model)
    name = args.name or args.model.parent.name
    size = bundle.config.input_size
    gflop = conv_gflops(bundle.model)
    confusions: dict[tuple, list] = {}
    seconds: dict[tuple, float] = {}
    for start in range(0, len(samples), 16):
        chunk = samples[start : start + 16]
        images = [read_image(s.image) for s in chunk]
        truths = [read_mask(s.mask, expected_shape=im.shape[:2]) for s, im in zip(chunk, images)]
        batch = np.stack([to_model_input(im, size) for im in images])
        for mode in MODES:
            segmenter = Segmenter(bundle, tta=mode, batch_size=16)
            began = time.perf_counter()
            logits = segmenter.model_logits(batch)
            model_time = time.perf_counter() - began
            for refine in (False, True):
                began = time.perf_counter()
                probs = []
                for image, l in zip(images, logits):
                    p = sigmoid(to_native(l, image.shape[:2]))
                    probs.append(guided_refine(p, image, size, refinement) if refine else p)
                seconds[(mode, refine)] = seconds.get((mode, refine), 0.0) + model_time + time.perf_counter() - began
                for threshold in THRESHOLDS:
                    confusions.setdefault((mode, refine, float(threshold)), []).extend(
                        Confusion.from_masks(p > threshold, t) for p, t in zip(probs, truths))
        print(f"\r{min(start + 16, len(samples))}/{len(samples)}", end="", flush=True)
    print()
    rows = []
    for mode in MODES:
        for refine in (False, True):
            best = best_threshold(lambda t: [scores(c) for c in confusions[(mode, refine, t)]])
            views = {False: 1, "flips": 4, "d4": 8}[mode]
            rows.append({"model": name, "tta": mode or "none", "refine": refine, "threshold": best[0],
                         "gflop": gflop * views, "ms_per_image": 1000 * seconds[(mode, refine)] / len(samples), **best[1]})
    print(f"guided radius {args.radius} model px")
    print_rows(rows, [("model", "---", lambda r: r["model"]), ("tta", "---", lambda r: r["tta"]),
                      ("refine", "---", lambda r: "on" if r["refine"] else "off"), ("threshold", "---:", lambda r: f"{r['threshold']:.2f}"),
                      ("GFLOP/image", "---:", lambda r: f"{r['gflop']:.2f}"), ("CPU ms/image", "---:", lambda r: f"{r['ms_per_image']:.0f}")], args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
