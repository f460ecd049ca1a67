"""Single-photograph prediction speed against this machine's convolution ceiling (issue 11).

``.venv/bin/python benchmarks/predict_speed.py [--variant dice] [--repeats 5]``

1. The largest native photograph in ``../shared/data/native_samples`` (a JPEG of about
   10 MP) to its mask PNG, with the model warm, broken into its steps: read, resize to
   the model, model call, back to native size and threshold, write the PNG; for each
   test-time augmentation mode and with guided refinement on and off.
2. The model's forward pass against the machine's convolution throughput measured in
   the same run: the fastest of three large 3x3 convolutions (the ceiling, GFLOP/s), and the model's
   convolution GFLOP per image over its forward time at batch 1, 4 (one photograph with
   the card's four flips, the shipped prediction's model call) and 16: the bundle's
   model as saved and the folded one :class:`Segmenter` runs (batch normalisation folded
   into the convolutions, ``model/fold.py``), in the same run.
Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import median_time  # noqa: E402


CEILING_SHAPES = ((128, 64), (64, 128), (32, 256))  # (side, channels) of 3x3 convolutions like the model's, 16 images each


def conv_rates(tf, repeats: int) -> dict[str, float]:
    """GFLOP/s of three large 3x3 convolutions (channels in = out) on a batch of 16:
    64 channels at 128 x 128, 128 at 64 x 64 and 256 at 32 x 32, each a bias add and ReLU after it
    as in the model (TensorFlow fuses them into the convolution on a CPU). The fastest is the ceiling."""
    rates = {}
    for side, channels in CEILING_SHAPES:
        x = tf.random.normal((16, side, side, channels))
        k = tf.random.normal((3, 3, channels, channels))
        b = tf.random.normal((channels,))
        conv = tf.function(lambda x=x, k=k, b=b: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, k, 1, "SAME"), b)))
        seconds = median_time(lambda: conv().numpy(), repeats)  # warmed first
        rates[f"{channels}->{channels} at {side}x{side}"] = 2 * 16 * side * side * 9 * channels * channels / seconds / 1e9
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="dice")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/native_samples")
    args = parser.parse_args(argv)

    from glassbox_xai.tf_import import import_tensorflow

    tf = import_tensorflow()
    from glassbox_xai.data.io import read_image, write_mask
    from glassbox_xai.data.resize import to_model_input
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.model.registry import resolve_bundle
    from training.levers import conv_gflops

    photos = sorted(args.data.glob("ISIC_*[0-9].jpg"), key=lambda p: p.stat().st_size)
    photo = photos[-1]
    image = read_image(photo)
    bundle_path = resolve_bundle(args.variant)
    print(f"device: {Segmenter.from_bundle(bundle_path).device}; model {bundle_path.name}; photograph {photo.name} "
          f"{image.shape[1]}x{image.shape[0]} ({image.shape[0] * image.shape[1] / 1e6:.1f} MP); median of {args.repeats}\n")
    print("| tta | refine | read (s) | to model (s) | model (s) | native + threshold (s) | write PNG (s) | total (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mask.png"
        for tta in (False, "flips", "d4"):
            for refine in (False, True):
                seg = Segmenter.from_bundle(bundle_path, tta=tta, refine=refine)
                seg.predict(image)  # warm
                t_read = median_time(lambda: read_image(photo), args.repeats)
                x = to_model_input(image, seg.input_size)[None]
                t_in = median_time(lambda: to_model_input(image, seg.input_size), args.repeats)
                t_model = median_time(lambda: seg.model_logits(x), args.repeats)
                logits = seg.model_logits(x)[0]
                t_native = median_time(lambda: seg._to_prediction(logits, image.shape[:2], image), args.repeats)
                mask = seg._to_prediction(logits, image.shape[:2], image).mask
                t_write = median_time(lambda: write_mask(out, mask), args.repeats)

                def whole():
                    im = read_image(photo)
                    write_mask(out, seg.predict(im).mask)

                t_total = median_time(whole, args.repeats)
                print(f"| {tta or 'none'} | {'on' if refine else 'off'} | {t_read:.3f} | {t_in:.3f} | {t_model:.3f} | {t_native:.3f} | {t_write:.3f} | {t_total:.3f} |")

    seg = Segmenter.from_bundle(bundle_path, tta=False)
    gflop = conv_gflops(seg.bundle.model)
    rates = conv_rates(tf, args.repeats)
    ceiling = max(rates.values())
    print("\n3x3 convolutions with bias and ReLU, batch 16: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()) + " GFLOP/s")
    print(f"convolution ceiling (the fastest): {ceiling:.1f} GFLOP/s")
    for name, model in (("bundle's model (batch normalisation layers)", seg.bundle.model), ("folded (what Segmenter runs)", seg.forward)):
        for batch in (1, 4, 16):
            xb = np.random.default_rng(0).random((batch, seg.input_size, seg.input_size, 3), dtype=np.float32)
            seconds = median_time(lambda: model.predict_on_batch(xb), args.repeats)
            rate = gflop * batch / seconds
            print(f"{name}, batch {batch}: {seconds * 1000:.1f} ms, {gflop:.2f} GFLOP/image, {rate:.1f} GFLOP/s = {100 * rate / ceiling:.0f}% of the ceiling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
