"""Speed of our attribution methods against peers, on the same model, input and target.

    .venv/bin/python benchmarks/xai_speed.py [--model BUNDLE] [--image PHOTO] [--repeats 5] [--panel | --panel-only] [--megapixels 12]

* saliency: ours vs tf-keras-vis ``Saliency`` (PyPI tf-keras-vis), same score;
* Grad-CAM of every convolution: ours (one forward and one backward pass) vs
  tf-keras-vis ``Gradcam`` called once per layer;
* integrated gradients (32 steps): ours (path points batched) vs a step-at-a-time loop;
* HiRes-CAM of every convolution against Grad-CAM of every convolution (ours both),
  and both from the one shared forward and backward pass;
* Grad-CAM++ of every convolution: ours (the shared pass) vs tf-keras-vis
  ``GradcamPlusPlus`` once per layer, with the largest map difference;
* Score-CAM of one layer (``--scorecam-layer``) against tf-keras-vis ``Scorecam`` on the
  same model, layer and target: the segmentation model wrapped to output the logit
  vector [0, z], z the target region's mean logit, so the softmax tf-keras-vis applies
  gives sigmoid(z) and our class target scores the same number; all channels on both
  sides, and ours with a channel budget against the peer's full map (agreement:
  Pearson correlation of the layer-resolution maps);
* with ``--panel``, the whole panel for one photograph at native resolution, and how it splits:
  the median wall time of ``--repeats`` panels after a warm-up, with the CPU seconds of
  every thread (what an idle 2-core machine's wall time would be at most); then the same
  as the napari worker computes it (``op_explain``: on a copy at most 1,024 px a side,
  shrunk by an integer step). ``--panel-only`` times nothing else, and ``--megapixels M``
  first upscales the photograph (bicubic) to about M megapixels (issue 11's target: a
  12 MP photograph's panel in under 10 s).

Both sides of each pair run at model resolution (no resizing back) and are timed as
the median of ``--repeats`` runs after one warm-up (the HiRes-CAM and Score-CAM pairs
in alternation, so a busy machine slows both sides alike). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import median_time  # noqa: E402
from glassbox_xai.tf_import import import_tensorflow  # noqa: E402

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "native_samples" / "ISIC_0013082.jpg"


def interleaved(first, second, repeats: int) -> tuple[float, float]:
    """Medians of ``first`` and ``second`` timed in alternation after one warm-up each, so a
    busy machine's drift hits both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped dice variant)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--scorecam-layer", default="decoder2_conv2")
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 8], help="Score-CAM channel budgets to time")
    parser.add_argument("--panel", action="store_true", help="also time the whole panel at native resolution")
    parser.add_argument("--panel-only", action="store_true", help="time only the whole panel")
    parser.add_argument("--megapixels", type=float, help="upscale the photograph to about this many megapixels first")
    args = parser.parse_args(argv)
    tf = import_tensorflow()
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam

    from glassbox_xai.data.io import read_image
    from glassbox_xai.inference import Segmenter, compute_device
    from glassbox_xai.model.attention_unet import layers_by_stage
    from glassbox_xai.model.registry import resolve_bundle
    from glassbox_xai.xai.base import Explainer
    from glassbox_xai.xai.gradcam import compute_gradcam
    from glassbox_xai.xai.gradcam import cam
    from glassbox_xai.xai.gradcam_plus import compute_gradcam_plus, gradcam_pp
    from glassbox_xai.xai.hirescam import compute_hirescam, hires_cam
    from glassbox_xai.xai.integrated_gradients import gauss_legendre
    from glassbox_xai.xai.layer_pass import layer_pass
    from glassbox_xai.xai.scorecam import compute_scorecam, correlation
    from glassbox_xai.xai.targets import ClassTarget

    bundle = args.model or resolve_bundle("dice")
    segmenter = Segmenter.from_bundle(bundle)
    model = segmenter.bundle.model
    image = read_image(args.image)
    if args.megapixels:
        image = upscaled(image, args.megapixels)
    if args.panel_only:
        report_panels(segmenter, image, args.steps, args.repeats)
        return 0
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

    ours_hires, cam_again = interleaved(lambda: compute_hirescam(explainer, small, target=small_target),
                                        lambda: compute_gradcam(explainer, small, target=small_target), args.repeats)

    def both_from_one_pass():
        recorded = layer_pass(explainer, x, target)
        return [(cam(recorded.activations[n], recorded.gradients[n]), hires_cam(recorded.activations[n], recorded.gradients[n])) for n in names]

    ours_both, cam_third = interleaved(both_from_one_pass, lambda: compute_gradcam(explainer, small, target=small_target), args.repeats)
    vis_plus = GradcamPlusPlus(model, clone=False)
    ours_plus = median_time(lambda: compute_gradcam_plus(explainer, small, target=small_target), args.repeats)
    peer_plus = median_time(lambda: [vis_plus(score, x, penultimate_layer=n, expand_cam=False) for n in names], max(1, args.repeats // 2))
    recorded = layer_pass(explainer, x, target)
    plus_agreement = [correlation(gradcam_pp(recorded.activations[n], recorded.gradients[n]),
                                  np.asarray(vis_plus(score, x, penultimate_layer=n, expand_cam=False, normalize_cam=False))[0]) for n in names]

    import keras

    region = tf.constant(target.weights)
    vector = keras.layers.Lambda(lambda out: tf.stack([tf.zeros_like(out[:, 0, 0, 0]), tf.reduce_sum(out[..., 0] * region, axis=(1, 2)) / tf.reduce_sum(region)], axis=1))
    wrapped = keras.Model(model.input, vector(model.output))
    wrapped_explainer = Explainer(wrapped)
    layer = args.scorecam_layer
    channels = int(model.get_layer(layer).output.shape[-1])
    vis_score = Scorecam(wrapped, clone=False)
    class_target = ClassTarget(1, "target region (sigmoid of its mean logit)")

    def ours_score(budget):
        return compute_scorecam(wrapped_explainer, small, target=class_target, layer=layer, budget=budget, output="sigmoid", batch=32).model_map

    def peer_score(budget):
        return np.asarray(vis_score(lambda p: p[:, 1], x, penultimate_layer=layer, max_N=budget, batch_size=32, expand_cam=False, normalize_cam=True))[0]

    score_rows = []
    peer_full = peer_score(None)
    for budget in [None, *args.budgets]:
        mine_time, peer_full_time = interleaved(lambda: ours_score(budget), lambda: peer_score(None), 1)
        score_rows.append((budget, mine_time, peer_full_time, correlation(ours_score(budget), peer_full)))
    for budget in args.budgets:
        mine_time, peer_time = interleaved(lambda: ours_score(budget), lambda: peer_score(budget), 3)
        score_rows.append((f"{budget} both", mine_time, peer_time, correlation(ours_score(budget), peer_score(budget))))

    print(f"device: {compute_device()}; model {bundle} ({model.input_shape[1]} px); image {args.image.name} {image.shape[1]}x{image.shape[0]}; "
          f"{len(names)} convolution layers; median of {args.repeats}\n")
    print("| method | ours (s) | peer (s) | peer / ours |")
    print("| --- | --- | --- | --- |")
    print(f"| saliency vs tf-keras-vis Saliency | {ours_sal:.3f} | {peer_sal:.3f} | {peer_sal / ours_sal:.1f}x |")
    print(f"| Grad-CAM, all {len(names)} layers, vs tf-keras-vis Gradcam once per layer | {ours_cam:.3f} | {peer_cam:.3f} | {peer_cam / ours_cam:.1f}x |")
    print(f"| integrated gradients, {args.steps} steps, vs one step at a time | {ours_ig:.3f} | {peer_ig:.3f} | {peer_ig / ours_ig:.1f}x |")
    print(f"| HiRes-CAM, all {len(names)} layers (ours) vs Grad-CAM, all layers (ours) | {ours_hires:.3f} | {cam_again:.3f} | {cam_again / ours_hires:.1f}x |")
    print(f"| Grad-CAM and HiRes-CAM, all layers, one shared pass vs Grad-CAM alone | {ours_both:.3f} | {cam_third:.3f} | {cam_third / ours_both:.1f}x |")
    print(f"| Grad-CAM++, all {len(names)} layers, vs tf-keras-vis GradcamPlusPlus once per layer | {ours_plus:.3f} | {peer_plus:.3f} | {peer_plus / ours_plus:.1f}x |")
    for budget, mine_time, peer_time, agree in score_rows:
        if isinstance(budget, str):
            label = f"Score-CAM {layer}, budget {budget.split()[0]} of {channels} channels on both sides (map correlation {agree:.3f})"
        else:
            label = (f"Score-CAM {layer}, ours {'all' if budget is None else budget} of {channels} channels vs tf-keras-vis Scorecam, "
                     f"all channels (map correlation {agree:.3f})")
        print(f"| {label} | {mine_time:.3f} | {peer_time:.3f} | {peer_time / mine_time:.1f}x |")
    print(f"\nsaliency maps agree with tf-keras-vis to {agreement:.1e} (max difference / max value); "
          f"Grad-CAM++ maps: correlation with tf-keras-vis median {np.median(plus_agreement):.4f}, lowest {min(plus_agreement):.4f} "
          f"({names[int(np.argmin(plus_agreement))]}), above 0.99 in {sum(c > 0.99 for c in plus_agreement)} of {len(names)} layers")
    if args.panel:
        print()
        report_panels(segmenter, image, args.steps, args.repeats)
    return 0


def upscaled(image: np.ndarray, megapixels: float) -> np.ndarray:
    """``image`` resized (bicubic, aspect kept) to about ``megapixels`` million pixels."""
    import cv2

    scale = (megapixels * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    return cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)


def report_panels(segmenter, image: np.ndarray, steps: int, repeats: int) -> None:
    """Time and print the whole panel at native resolution, then as the napari worker computes
    it (``worker.server.op_explain``): on a copy shrunk by the integer step that brings the
    longest side to at most ``MAX_MAP_SIDE``."""
    from glassbox_xai.worker.server import MAX_MAP_SIDE
    from glassbox_xai.xai import METHODS
    from glassbox_xai.xai.explain_files import explain_bounded
    from glassbox_xai.xai.panel import explain

    step = max(1, int(np.ceil(max(image.shape[:2]) / MAX_MAP_SIDE)))

    def bounded():
        _, panel = yield from explain_bounded(segmenter, image, METHODS, ig_steps=steps, step=step)
        return panel

    print_panel(image, "at native resolution", *time_panel(lambda: explain(segmenter, image, ig_steps=steps), repeats))
    print_panel(image, f"as the napari worker computes it (a copy shrunk by {step})", *time_panel(bounded, repeats))


def time_panel(job, repeats: int):
    """(median wall seconds, median CPU seconds of every thread, the last panel) of ``repeats``
    runs of the panel ``job()`` after one warm-up run."""
    from glassbox_xai.jobs import drive

    drive(job())  # warm-up: graphs traced, explainer cached
    walls, cpus, panel = [], [], None
    for _ in range(max(repeats, 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        panel = drive(job())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), panel


def print_panel(image: np.ndarray, how: str, wall: float, cpu: float, panel) -> None:
    split = ", ".join(f"{k} {v:.2f} s" for k, v in panel.seconds.items())
    print(f"whole panel for one {image.shape[1]}x{image.shape[0]} photograph ({image.shape[0] * image.shape[1] / 1e6:.1f} MP) {how}: "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU (every thread), 1-minute load after {os.getloadavg()[0]:.1f} ({split})")


if __name__ == "__main__":
    raise SystemExit(main())
