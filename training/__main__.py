"""Run one training recipe: ``python -m training --config training/configs/base.yaml``.

Writes into ``runs/<name>/`` (or ``--runs DIR``): ``log.csv`` (one row per epoch),
``best.keras`` (best validation Dice), ``backup/`` (resume state) and, when
fitting ends, ``bundle/`` (model.keras + config.json + card.json). Run it again
after an interruption and it resumes from the last finished epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from glassbox_xai.tf_import import import_tensorflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder for run outputs (default: runs/)")
    parser.add_argument("--limit", type=int, help="use only the first N training and N/4 validation images (smoke runs)")
    parser.add_argument("--mixed-precision", action="store_true", help="float16 compute on a GPU (the logits stay float32)")
    parser.add_argument("--multi-gpu", action="store_true", help="replicate over all visible GPUs with tf.distribute.MirroredStrategy")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from glassbox_xai.learn.recipe import RecipeError, load_recipe

    try:
        recipe = load_recipe(args.config)
    except RecipeError as exc:
        print(f"training: error: {exc}", file=sys.stderr)
        return 2
    tf = import_tensorflow()
    from training.run import train_recipe

    gpus = tf.config.list_physical_devices("GPU")
    if (args.mixed_precision or args.multi_gpu) and not gpus:
        print("training: error: --mixed-precision and --multi-gpu need a GPU; TensorFlow sees none", file=sys.stderr)
        return 2
    if args.mixed_precision:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy() if args.multi_gpu else None
    try:
        summary = train_recipe(recipe, args.runs, limit=args.limit, strategy=strategy)
    except RecipeError as exc:  # a value only checkable against the data, e.g. an oversampled id outside the training split
        print(f"training: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
