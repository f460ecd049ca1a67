"""Training throughput, input-pipeline wait share, and single-image CPU latency.

    .venv/bin/python benchmarks/train_speed.py [--config training/configs/base.yaml] [--steps 20]

Measures, in one run and on the same model and data:

* training images per second with the project's pipeline (parallel map + prefetch)
  and with a serial peer pipeline (no parallel map, no prefetch), and the share of
  each step spent waiting for the next batch;
* single-image latency of the shipped default model (or ``--model``) at its input
  size: the model call alone, and a whole ``Segmenter.predict`` from a 512 px photo.

Prints a Markdown table. Numbers depend on the machine; compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glassbox_xai.tf_import import import_tensorflow  # noqa: E402


def timed_steps(model, dataset, steps: int) -> tuple[float, float]:
    """(images per second, share of time waiting for input) over ``steps`` steps."""
    iterator = iter(dataset)
    x, y = next(iterator)
    model.train_on_batch(x, y)  # warm-up: tracing and first allocation
    wait = total = 0.0
    images = 0
    for _ in range(steps):
        start = time.perf_counter()
        x, y = next(iterator)
        fetched = time.perf_counter()
        model.train_on_batch(x, y)
        end = time.perf_counter()
        wait += fetched - start
        total += end - start
        images += int(x.shape[0])
    return images / total, wait / total


def serial_dataset(images, masks, batch_size, augment, seed):
    """The peer: the same augmentation, one element at a time, no prefetch."""
    import tensorflow as tf

    from glassbox_xai.learn.dataset import _Augmenter, epoch_plan

    augmenter = _Augmenter(images, masks, augment)
    plan = epoch_plan(len(images), batch_size, seed, 0, 4)
    size = images.shape[1]

    def one(index, element_seed):
        image, mask = tf.numpy_function(augmenter, [index, element_seed], [tf.uint8, tf.uint8], stateful=False)
        image.set_shape((size, size, 3))
        mask.set_shape((size, size))
        return tf.cast(image, tf.float32) / 255.0, tf.cast(mask, tf.float32)[..., None]

    return tf.data.Dataset.from_tensor_slices((plan[:, 0], plan[:, 1])).map(one).batch(batch_size, drop_remainder=True).repeat()


def latency(model_path: Path, photo: Path, repeats: int) -> tuple[float, float, int]:
    """Median seconds of one model call and of one whole predict, and the input size."""
    from glassbox_xai.data.io import read_image
    from glassbox_xai.data.resize import to_model_input
    from glassbox_xai.inference import Segmenter

    segmenter = Segmenter.from_bundle(model_path, tta=False, postprocess=False)
    image = read_image(photo)
    x = to_model_input(image, segmenter.input_size)[None]
    segmenter.model_logits(x)
    segmenter.predict(image)
    calls, predicts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        segmenter.model_logits(x)
        calls.append(time.perf_counter() - start)
        start = time.perf_counter()
        segmenter.predict(photo)
        predicts.append(time.perf_counter() - start)
    return statistics.median(calls), statistics.median(predicts), segmenter.input_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("training/configs/base.yaml"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", type=Path, help="bundle for the latency test (default: the shipped dice variant)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    import_tensorflow()
    import keras

    from glassbox_xai.inference import compute_device
    from glassbox_xai.learn.dataset import load_pairs, train_dataset
    from glassbox_xai.learn.fit import _optimizer
    from glassbox_xai.learn.losses import make_loss
    from glassbox_xai.learn.recipe import load_recipe
    from glassbox_xai.model.attention_unet import build_attention_unet
    from glassbox_xai.model.registry import resolve_bundle
    from training.run import split_samples

    recipe = load_recipe(args.config)
    batch = recipe.fit.batch_size
    samples = split_samples(recipe, "train", limit=batch * 8)
    images, masks = load_pairs(samples, recipe.model.input_size)
    rows = []
    for name, dataset in (
        ("glassbox (parallel map + prefetch)", train_dataset(images, masks, batch, recipe.augment, recipe.fit.seed, epochs=4)),
        ("peer: serial map, no prefetch", serial_dataset(images, masks, batch, recipe.augment, recipe.fit.seed)),
    ):
        keras.utils.set_random_seed(0)
        model = build_attention_unet(recipe.model)
        model.compile(optimizer=_optimizer(recipe.fit, 100), loss=make_loss(recipe.loss))
        rate, wait = timed_steps(model, dataset, args.steps)
        rows.append((name, rate, wait))
    print(f"device: {compute_device()}; model {recipe.model.input_size} px, {recipe.model.base_filters} base filters; batch {batch}; {args.steps} steps\n")
    print("| input pipeline | training images/s | step time waiting on input |")
    print("| --- | --- | --- |")
    for name, rate, wait in rows:
        print(f"| {name} | {rate:.1f} | {wait:.1%} |")
    print(f"\nthroughput ratio glassbox / peer: {rows[0][1] / rows[1][1]:.2f}x")

    bundle = args.model or resolve_bundle("dice")
    photo = Path(recipe.data["root"]) / "ISIC2018_Task1-2_Training_Input" / f"{samples[0].id}.jpg"
    call, predict, size = latency(bundle, photo, args.repeats)
    print(f"\nsingle-image CPU latency ({Path(bundle).name}, {size} px input, median of {args.repeats}):")
    print(f"- model call: {call * 1000:.1f} ms")
    print(f"- whole predict from a 512 px JPEG (read, resize, model, resize back, threshold): {predict * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
