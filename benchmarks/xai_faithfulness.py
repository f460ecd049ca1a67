"""ROAD faithfulness of every attribution method on real photographs, against a random
pixel order, for the shipped model.

    .venv/bin/python benchmarks/xai_faithfulness.py [--model BUNDLE] [--n 10] [--target prediction]

For each of the first ``--n`` dev_val images of ISIC 2018 (512 px copies), runs the
explanation panel and prints, per method, the mean deletion and insertion areas
(ROAD noisy linear imputation, target probability), the same areas for a random
pixel order, and their gaps (random - deletion, insertion - random), as Markdown.
A faithful map has a deletion area below the random one and an insertion area above.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from glassbox_xai.tf_import import import_tensorflow  # noqa: E402

METHODS = ("saliency", "saliency-sigmoid", "ig", "gradcam", "hirescam", "gradcam++", "scorecam")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped dice variant)")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--target", default="prediction", choices=("prediction", "truth", "background"))
    args = parser.parse_args(argv)
    import_tensorflow()
    from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids

    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.jobs import drive
    from glassbox_xai.model.registry import resolve_bundle
    from glassbox_xai.xai.panel import explain

    bundle = args.model or resolve_bundle("dice")
    segmenter = Segmenter.from_bundle(bundle)
    keys = ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")
    rows: dict[str, list[list[float]]] = {m: [] for m in METHODS}
    started = time.perf_counter()
    for image_id in split_ids("dev_val")[: args.n]:
        image = read_image(ISIC_IMAGES / f"{image_id}.jpg")
        truth = read_mask(ISIC_MASKS / f"{image_id}_segmentation.png") if args.target == "truth" else None
        panel = drive(explain(segmenter, image, METHODS, args.target, truth))
        for method in METHODS:
            numbers = panel.faithfulness[method]
            rows[method].append([numbers[k] for k in keys])
            if "degenerate" in numbers:
                print(f"{image_id} {method}: {numbers['degenerate']}")
        print(f"{image_id}: " + ", ".join(f"{m} {panel.faithfulness[m]['deletion_auc']:.3f}" for m in METHODS)
              + f" (random {panel.faithfulness[METHODS[0]]['random_deletion_auc']:.3f})", flush=True)
    print(f"\nmodel {bundle}; {args.n} dev_val images; target {args.target}; {time.perf_counter() - started:.0f} s\n")
    print("| method | deletion ↓ | random deletion | gap (random - deletion) | insertion ↑ | random insertion | gap (insertion - random) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method, values in rows.items():
        d, rd, i, ri = np.mean(values, axis=0)
        print(f"| {method} | {d:.3f} | {rd:.3f} | {rd - d:+.3f} | {i:.3f} | {ri:.3f} | {i - ri:+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
