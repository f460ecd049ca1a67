"""Speed of our attribution methods against peers, on the same model, input and target.

    .venv/bin/python benchmarks/xai_speed.py [--model BUNDLE] [--image PHOTO] [--repeats 5]

* saliency: ours vs tf-keras-vis ``Saliency`` (PyPI tf-keras-vis), same score;
* Grad-CAM of every convolution: ours (one forward and one backward pass) vs
  tf-keras-vis ``Gradcam`` called once per layer;
* integrated gradients (32 steps): ours (path points batched) vs a step-at-a-time loop;
* the whole panel for one photograph at native resolution (confidence, both
  saliencies, integrated gradients, all-layer Grad-CAM), and how it splits.

Both sides of each pair run at model resolution (no resizing back) and are timed as
the median of ``--repeats`` runs after one warm-up. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glassbox_xai.tf_import import import_tensorflow  # noqa: E402

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "native_samples" / "ISIC_0013082.jpg"


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped dice variant)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args(argv)
    tf = import_tensorflow()
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency

    from glassbox_xai.data.io import read_image
    from glassbox_xai.inference import Segmenter, compute_device, run_to_end
    from glassbox_xai.model.attention_unet import layers_by_stage
    from glassbox_xai.model.registry import resolve_bundle
    from glassbox_xai.xai.base import Explainer
    from glassbox_xai.xai.gradcam import compute_gradcam
    from glassbox_xai.xai.integrated_gradients import gauss_legendre
    from glassbox_xai.xai.panel import explain

    bundle = args.model or resolve_bundle("dice")
    segmenter = Segmenter.from_bundle(bundle)
    model = segmenter.bundle.model
    image = read_image(args.image)
    explainer = Explainer(model, segmenter.threshold)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, "prediction")
    weights = tf.constant(target.weights)

    def score(output):
        return tf.reduce_sum(output[..., 0] * weights, axis=(1, 2)) / tf.reduce_sum(weights)

    names = [n for group in layers_by_stage(model).values() for n in group]
    small = np.zeros((model.input_shape[1],) * 2 + (3,), np.uint8)  # model-size image: no native resizing in the timing
    small[:] = (x[0] * 255).astype(np.uint8)
    small_target = target.weights > 0.5

    vis_saliency = Saliency(model, clone=False)
    vis_gradcam = Gradcam(model, clone=False)
    ours_sal = median_time(lambda: explainer.scores_and_gradients(x, target, "logits"), args.repeats)
    peer_sal = median_time(lambda: vis_saliency(score, x), args.repeats)
    ours_cam = median_time(lambda: compute_gradcam(explainer, small, target=small_target), args.repeats)
    peer_cam = median_time(lambda: [vis_gradcam(score, x, penultimate_layer=n, expand_cam=False) for n in names], max(1, args.repeats // 2))

    alphas, quad = gauss_legendre(args.steps)

    def ig_batched():
        path = alphas[:, None, None, None].astype(np.float32) * x
        return explainer.scores_and_gradients(path, target, "logits")[1].T @ quad

    def ig_stepwise():
        total = 0
        for a, w in zip(alphas, quad):
            total = total + w * explainer.scores_and_gradients(np.float32(a) * x, target, "logits")[1][0]
        return total

    ours_ig = median_time(ig_batched, args.repeats)
    peer_ig = median_time(ig_stepwise, max(1, args.repeats // 2))

    ours = explainer.scores_and_gradients(x, target, "logits")[1][0]
    ours_map = np.abs(ours).max(-1)
    peer_map = np.asarray(vis_saliency(score, x, normalize_map=False))[0]
    agreement = float(np.abs(ours_map - peer_map).max() / max(np.abs(peer_map).max(), 1e-12))

    run_to_end(explain(segmenter, image, ig_steps=args.steps))  # warm-up
    started = time.perf_counter()
    panel = run_to_end(explain(segmenter, image, ig_steps=args.steps))[-1]
    whole = time.perf_counter() - started

    print(f"device: {compute_device()}; model {bundle} ({model.input_shape[1]} px); image {args.image.name} {image.shape[1]}x{image.shape[0]}; "
          f"{len(names)} convolution layers; median of {args.repeats}\n")
    print("| method | ours (s) | peer (s) | peer / ours |")
    print("| --- | --- | --- | --- |")
    print(f"| saliency vs tf-keras-vis Saliency | {ours_sal:.3f} | {peer_sal:.3f} | {peer_sal / ours_sal:.1f}x |")
    print(f"| Grad-CAM, all {len(names)} layers, vs tf-keras-vis Gradcam once per layer | {ours_cam:.3f} | {peer_cam:.3f} | {peer_cam / ours_cam:.1f}x |")
    print(f"| integrated gradients, {args.steps} steps, vs one step at a time | {ours_ig:.3f} | {peer_ig:.3f} | {peer_ig / ours_ig:.1f}x |")
    print(f"\nsaliency maps agree with tf-keras-vis to {agreement:.1e} (max difference / max value)")
    split = ", ".join(f"{k} {v:.2f} s" for k, v in panel.seconds.items())
    print(f"\nwhole panel for one {image.shape[1]}x{image.shape[0]} photograph: {whole:.2f} s ({split})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
