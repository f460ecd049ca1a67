"""List the training images a model segments worst, for a recipe's ``data.oversample``.

The shipped dice model fits its own training images unevenly: at model resolution 34 of the
1,600 dev_train images score Dice below 0.7 (issue 11). Seeing them more often in a further
stage is the "hard images" lever. Only the training split is scored; validation images never
enter the list.

    python -m training.hard_ids --bundle src/glassbox_xai/weights/dice --below 0.8 \\
        --out training/configs/levers/hard/dev_train_below08.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def hard_ids(ids: list[str], dice: np.ndarray, below: float) -> list[str]:
    """The ids whose Dice is below ``below``, worst first (ties in list order)."""
    order = np.argsort(dice, kind="stable")
    return [ids[i] for i in order if dice[i] < below]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.hard_ids", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    parser.add_argument("--below", type=float, default=0.8, help="list images under this Dice at model resolution (default %(default)s)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/isic2018_task1_512"))
    parser.add_argument("--split", default="dev_train.txt", help="list file of the training split, in --data (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="text file to write, one id a line")
    parser.add_argument("--limit", type=int, help="score only the first N images (smoke runs)")
    args = parser.parse_args(argv)
    if not 0.0 < args.below <= 1.0:
        parser.error(f"--below must be in (0, 1], got {args.below}")

    from glassbox_xai.data.layout import listed_samples
    from glassbox_xai.hitl.finetune import model_probabilities
    from glassbox_xai.learn.dataset import load_pairs
    from glassbox_xai.learn.fit import per_image_dice
    from glassbox_xai.model.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    samples = listed_samples(args.data, args.data / args.split, args.limit)
    images, masks = load_pairs(samples, bundle.config.input_size)
    dice = per_image_dice(model_probabilities(bundle.model, images, tta=False) > bundle.card.threshold, masks)
    listed = hard_ids([s.id for s in samples], dice, args.below)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(f"{i}\n" for i in listed))
    print(f"{len(listed)} of {len(samples)} images of {args.split} under Dice {args.below} at {bundle.config.input_size} px "
          f"(mean {dice.mean():.4f}; below 0.7: {(dice < 0.7).sum()}); written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
