"""Measure multi-scale test-time augmentation of one model on dev_val at 512 px (issue 11).

``python -m training.scale_tta --model src/glassbox_xai/weights/dice --sizes 112 128 144 160 192``
runs the model at each input size (the same weights in a network built for that size:
every layer is size-agnostic, the size only has to divide by 2**depth), with the four
flips the cards use, resizes each size's averaged logits to the mask's 512 px, and
scores every combination of sizes (logits averaged over the sizes in it) at thresholds
0.20-0.90, through the same confusion counts and scores as ``glassbox evaluate``. One
Markdown row per combination at its best threshold: macro Dice, thresholded Jaccard,
precision, recall, and the count of images below Dice 0.7. ``--json FILE`` keeps them.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from training.levers import best_threshold, print_rows

THRESHOLDS = tuple(np.round(np.arange(0.20, 0.901, 0.05), 2))  # wider than training.levers': larger inputs want higher thresholds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.scale_tta", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="bundle folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 128, 144, 160, 192], help="input sizes (each divisible by 2**depth)")
    parser.add_argument("--most", type=int, default=3, help="combinations of at most this many sizes (default 3)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/isic2018_task1_512"))
    parser.add_argument("--limit", type=int, help="first N dev_val images only")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args(argv)

    from glassbox_xai.tf_import import import_tensorflow

    import_tensorflow()
    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.data.layout import listed_samples
    from glassbox_xai.data.resize import to_model_input, to_native
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.metrics import Confusion, scores
    from glassbox_xai.model.attention_unet import build_attention_unet
    from glassbox_xai.model.bundle import load_bundle

    bundle = load_bundle(args.model)
    step = 2 ** bundle.config.depth
    bad = [s for s in args.sizes if s % step]
    if bad:
        parser.error(f"input sizes must divide by {step} (2**depth) for this model; {bad} do not")
    segmenters = {}
    for size in args.sizes:
        config = replace(bundle.config, input_size=size)
        model = build_attention_unet(config)
        model.set_weights(bundle.model.get_weights())
        segmenters[size] = Segmenter(replace(bundle, model=model, config=config), tta="flips", batch_size=16)

    samples = listed_samples(args.data, args.data / "dev_val.txt", args.limit)
    logits = {size: [] for size in args.sizes}  # per size, per image: float16 logits at the mask's size
    truths = []
    for start in range(0, len(samples), 16):
        chunk = samples[start : start + 16]
        images = [read_image(s.image) for s in chunk]
        truths += [read_mask(s.mask, expected_shape=im.shape[:2]) > 0 for s, im in zip(chunk, images)]
        for size, segmenter in segmenters.items():
            out = segmenter.model_logits(np.stack([to_model_input(im, size) for im in images]))
            logits[size] += [to_native(l, im.shape[:2]).astype(np.float16) for l, im in zip(out, images)]
        print(f"\r{min(start + 16, len(samples))}/{len(samples)}", end="", flush=True)
    print()

    rows = []
    combos = [c for r in range(1, args.most + 1) for c in itertools.combinations(args.sizes, r)]
    for combo in combos:
        averaged = [sum(logits[s][i].astype(np.float32) for s in combo) / len(combo) for i in range(len(samples))]

        def at(threshold: float) -> list[dict]:
            cut = float(np.log(threshold / (1.0 - threshold)))
            return [scores(Confusion.from_masks(a > cut, t)) for a, t in zip(averaged, truths)]

        best = best_threshold(at, THRESHOLDS)
        rows.append({"model": args.model.name, "sizes": list(combo), "threshold": best[0], **best[1]})
        print(f"  {combo}: Dice {best[1]['dice']:.4f} at {best[0]:.2f}", flush=True)
    print_rows(rows, [("sizes (4 flips each)", "---", lambda r: " + ".join(map(str, r["sizes"]))),
                      ("threshold", "---:", lambda r: f"{r['threshold']:.2f}")], args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
