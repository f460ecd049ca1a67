"""Average the weights of models fine-tuned from one parent into one model (a uniform "model soup").

Wortsman et al. 2022 ("Model soups") found that models fine-tuned from the same start lie in one
basin, where the average of their weights often scores better than each of them. The result
is one network of the same size and compute (no ensemble: one forward pass per view).

    python -m training.soup --models runs/dice/bundle runs/dice_lovasz/bundle --out runs/soup
    python -m training.evaluate --run runs/soup --config training/configs/dice.yaml --copy-to /tmp/soup

``--out`` becomes a run folder with ``bundle/`` (so ``training.evaluate`` can score it). Batch
normalisation statistics are averaged like every other weight, or re-estimated on training images
with ``--batchnorm-images N``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def average_weights(weight_lists: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of several models' weight lists (same architecture, same order)."""
    shapes = [[w.shape for w in weights] for weights in weight_lists]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ValueError("the models differ in architecture: their weights cannot be averaged")
    return [np.mean([weights[i] for weights in weight_lists], axis=0).astype(weight_lists[0][i].dtype) for i in range(len(shapes[0]))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.soup", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="bundle folders fine-tuned from one parent")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write (bundle/ inside)")
    parser.add_argument("--batchnorm-images", type=int, default=0, help="re-estimate batch-norm statistics on this many dev_train images (0: average them)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/isic2018_task1_512"))
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("--models needs at least two bundles")

    from dataclasses import replace

    from glassbox_xai.model.bundle import load_bundle, save_bundle

    bundles = [load_bundle(path) for path in args.models]
    first = bundles[0]
    if any(b.config != first.config for b in bundles[1:]):
        raise SystemExit(f"the models' configs differ: {[b.config for b in bundles]}")
    model = first.model
    model.set_weights(average_weights([b.model.get_weights() for b in bundles]))
    adapted = 0
    if args.batchnorm_images:
        from glassbox_xai.data.layout import listed_samples
        from glassbox_xai.hitl.finetune import adapt_batchnorm
        from glassbox_xai.learn.dataset import load_pairs

        samples = listed_samples(args.data, args.data / "dev_train.txt", args.batchnorm_images)
        images, _ = load_pairs(samples, first.config.input_size)
        adapted = adapt_batchnorm(model, images.astype(np.float32) / 255.0)
    ingredients = [{"path": str(b.path), "weights_sha256": b.card.weights_sha256, "name": b.card.name} for b in bundles]
    card = replace(first.card, name=f"soup of {len(bundles)}", parent=first.card.parent, validation_metrics={},  # not the first model's: evaluate it
                   notes=json.dumps({"soup_of": ingredients, "batchnorm_reestimated_layers": adapted}))
    save_bundle(model, first.config, card, args.out / "bundle", overwrite=True)
    print(f"averaged {len(bundles)} models into {args.out / 'bundle'} (batch-norm layers re-estimated: {adapted})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
