"""The ``glassbox`` command: predict, evaluate and info.

Research use only; not a medical device.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Generator, Sequence

from . import __version__
from .data.io import ImageReadError, MaskError
from .data.layout import NoImagesError, discover, mask_name
from .figures import DISCLAIMER
from .model.card import BundleError
from .model.registry import VARIANT_NAMES, NoTrainedModelError, installed_bundles, resolve_bundle

EXPECTED_ERRORS = (NoTrainedModelError, BundleError, NoImagesError, ImageReadError, MaskError, OSError, ValueError)


class CommandError(Exception):
    """A problem to report in one line, with exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glassbox`` console command."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.simplefilter("always")
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except EXPECTED_ERRORS + (CommandError,) as exc:
        print(f"glassbox {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"glassbox {args.command}: interrupted; files already written are complete", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glassbox", description=f"GlassBox-XAI skin-lesion segmentation. {DISCLAIMER}")
    parser.add_argument("--version", action="version", version=f"glassbox-xai {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    predict = sub.add_parser("predict", help="write <stem>_segmentation.png masks for images")
    predict.add_argument("inputs", nargs="+", type=Path, help="image files or folders (ISIC layout or flat)")
    predict.add_argument("-o", "--output", type=Path, required=True, help="folder for the masks")
    _model_args(predict)
    predict.add_argument("--overwrite", action="store_true", help="replace masks already in the output folder")
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser("evaluate", help="score a model or existing predictions as the ISIC challenge does")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of images to segment and score")
    source.add_argument("--predictions", type=Path, help="folder of existing <id>_segmentation.png masks")
    evaluate.add_argument("--masks", type=Path, required=True, help="folder of expert <id>_segmentation.png masks")
    _model_args(evaluate)
    evaluate.add_argument("--json", type=Path, help="write the metrics as JSON here")
    evaluate.add_argument("--per-image", type=Path, help="write per-image metrics as CSV here")
    evaluate.add_argument("--figure", type=Path, help="confusion-matrix PNG (default: beside --json, else ./confusion_matrix.png)")
    evaluate.set_defaults(func=cmd_evaluate)

    explain = sub.add_parser("explain", help="confidence, saliency, integrated gradients and Grad-CAM maps with faithfulness numbers")
    explain.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    explain.add_argument("-o", "--output", type=Path, required=True, help="folder for the maps (one subfolder per image)")
    explain.add_argument("--method", choices=("confidence", "saliency", "saliency-sigmoid", "ig", "gradcam", "all"), default="all")
    explain.add_argument("--target", choices=("prediction", "truth", "background"), default="prediction",
                         help="pixels to explain (truth needs <stem>_segmentation.png beside the image)")
    explain.add_argument("--steps", type=int, default=32, help="integrated-gradients quadrature points (default 32)")
    explain.add_argument("--baseline", choices=("black", "blur"), default="black", help="integrated-gradients baseline")
    explain.add_argument("--sanity", action="store_true", help="also run the model-randomisation check on saliency")
    _model_args(explain)
    explain.set_defaults(func=cmd_explain)

    tune = sub.add_parser("finetune", help="fine-tune a variant on a retraining set of expert corrections")
    tune.add_argument("--set", type=Path, required=True, dest="set_dir", help="the retraining set folder")
    tune.add_argument("--epochs", type=int, default=5)
    tune.add_argument("--mix-original", type=Path, help="a folder of original image/mask pairs to mix in (against forgetting)")
    tune.add_argument("--evaluate-on", type=Path, help="a held-out folder of images with masks: compare before and after")
    tune.add_argument("-o", "--output", type=Path, help="where the new bundle goes (default: <set>/models)")
    _model_args(tune)
    tune.set_defaults(func=cmd_finetune)

    models = sub.add_parser("versions", help="list the shipped models and fine-tuned versions; choose the active one")
    models.add_argument("--activate", metavar="NAME", help="make this model the default of the napari widgets")
    models.set_defaults(func=cmd_versions)

    info = sub.add_parser("info", help="device, installed models and library versions")
    info.set_defaults(func=cmd_info)
    return parser


def _model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--variant", choices=VARIANT_NAMES, help="shipped model variant (default: dice)")
    group.add_argument("--model", type=Path, help="a model bundle folder")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the model card's)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per model call (default 4)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, help="average over flips (default: the model card's)")
    parser.add_argument("--postprocess", action=argparse.BooleanOptionalAction, help="keep the largest lesion, fill holes (default: the model card's)")


def cmd_predict(args: argparse.Namespace) -> int:
    bundle_path = resolve_bundle(args.variant, args.model)
    samples = discover(args.inputs)
    _refuse_duplicate_names(samples)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    existing = [s for s in samples if (out / mask_name(s.image)).exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{len(existing)} mask(s) already exist in {out}, e.g. {mask_name(existing[0].image)}; pass --overwrite to replace them")
    segmenter = _segmenter(bundle_path, args)
    from .data.io import write_mask

    written, failures = 0, []
    for item in _with_progress(segmenter.predict_samples(samples), "predict", failures):
        sample, prediction = item
        write_mask(out / mask_name(sample.image), prediction.mask)
        written += 1
    print(f"wrote {written} mask(s) to {out} (model {segmenter.bundle.path.name}, threshold {segmenter.threshold}, device {segmenter.device})")
    return _report_failures(failures)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_model, evaluate_predictions

    failures: list = []
    if args.predictions is not None:
        job = evaluate_predictions(args.predictions, args.masks)
        source = f"predictions in {args.predictions}"
    else:
        bundle_path = resolve_bundle(args.variant, args.model)
        samples = discover(args.images, masks_dir=args.masks, require_masks=True)
        segmenter = _segmenter(bundle_path, args)
        job = evaluate_model(segmenter, samples)
        source = f"model {segmenter.bundle.path.name} ({segmenter.bundle.card.variant}, threshold {segmenter.threshold}) on {segmenter.device}"
    evaluation = _drive(job, "evaluate", failures)
    summary = evaluation.summary()
    print(_metric_table(summary, source))
    _write_outputs(args, evaluation, summary)
    return _report_failures(failures)


def cmd_explain(args: argparse.Namespace) -> int:
    from .data.io import read_image, read_mask
    from .xai.explain_files import write_panel
    from .xai.panel import METHODS, explain

    bundle_path = resolve_bundle(args.variant, args.model)
    samples = discover(args.inputs)
    _refuse_duplicate_names(samples)
    if args.target == "truth" and any(s.mask is None for s in samples):
        missing = next(s for s in samples if s.mask is None)
        raise CommandError(f"--target truth needs a mask for every image; {missing.image} has none ({mask_name(missing.image)})")
    segmenter = _segmenter(bundle_path, args)
    methods = METHODS if args.method == "all" else (args.method,)
    failures: list = []
    for n, sample in enumerate(samples, start=1):
        try:
            image = read_image(sample.image)
            truth = read_mask(sample.mask, expected_shape=image.shape[:2]) if sample.mask else None
            job = explain(segmenter, image, methods, args.target, truth, args.steps, args.baseline, sanity=args.sanity)
            panel = _drive(job, f"explain {n}/{len(samples)}", failures)
        except EXPECTED_ERRORS as exc:
            print(f"skipped {sample.image}: {exc}", file=sys.stderr)
            failures.append(exc)
            continue
        folder = write_panel(args.output / sample.image.stem, image, panel, {"image": str(sample.image), "model": str(bundle_path), "target": args.target})
        summary = ", ".join(f"{k} {v:.1f}s" for k, v in panel.seconds.items())
        print(f"{sample.image.name}: {len(panel.maps)} map(s) in {folder} ({summary})")
    return _report_failures(failures)


def cmd_finetune(args: argparse.Namespace) -> int:
    from .tf_import import import_tensorflow

    parent = resolve_bundle(args.variant, args.model)
    import_tensorflow()
    from .evaluation import evaluate_model
    from .hitl.finetune import FinetuneSettings, finetune
    from .hitl.store import RetrainingSet
    from .inference import Segmenter

    store = RetrainingSet(args.set_dir)
    out = args.output or args.set_dir / "models"
    report = lambda epoch, total, logs: print(f"epoch {epoch}/{total}: loss {logs.get('loss', float('nan')):.4f}, held-out Dice {logs.get('val_dice', float('nan')):.4f}")  # noqa: E731
    bundle, summary = finetune(parent, store, out, FinetuneSettings(epochs=args.epochs), original=args.mix_original, report=report)
    print(f"new model bundle: {bundle} (parent {parent})")
    if args.evaluate_on:
        samples = discover(args.evaluate_on, require_masks=True)
        rows = {}
        for name, path in (("before", parent), ("after", bundle)):
            failures: list = []
            evaluation = _drive(evaluate_model(Segmenter.from_bundle(path, threshold=args.threshold), samples), f"evaluate {name}", failures)
            rows[name] = evaluation.summary()
        from .report import metric_table

        print(metric_table(rows))
        print(DISCLAIMER)
    from .model import versions

    name = versions.register(bundle)
    print(f"registered as version {name}; make it the default of the napari widgets with: glassbox versions --activate {name}")
    print(f"use it with: glassbox predict ... --model {bundle}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from .model import versions

    if args.activate:
        versions.set_active(args.activate)
    active = versions.active() or "dice"
    registered = versions.versions()
    for name in versions.model_names():
        where = registered[name]["path"] if name in registered else str(versions.bundle_for(name))
        print(f"{'*' if name == active else ' '} {name:<40} {where}")
    print("(* = active: the default model of the napari widgets)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from .inference import compute_device
    from .tf_import import import_tensorflow

    import_tensorflow()
    print(f"glassbox-xai {__version__}  ({DISCLAIMER})")
    print(f"device: {compute_device()}")
    bundles = installed_bundles()
    print(f"installed models: {len(bundles) or 'none (train them with the recipes in training/)'}")
    for name, (path, card) in bundles.items():
        print(f"  {card.summary()}  [{path}]")
    print("libraries:")
    for name in ("tensorflow", "keras", "numpy", "scikit-image", "opencv-python-headless", "albumentations", "napari", "npe2"):
        try:
            print(f"  {name:<24} {version(name)}")
        except PackageNotFoundError:
            print(f"  {name:<24} not installed")
    return 0


def _segmenter(path: Path, args: argparse.Namespace):
    from .tf_import import import_tensorflow

    import_tensorflow()
    from .inference import Segmenter

    return Segmenter.from_bundle(path, threshold=args.threshold, batch_size=args.batch_size, tta=args.tta, postprocess=args.postprocess)


def _refuse_duplicate_names(samples) -> None:
    seen: dict[str, Path] = {}
    for sample in samples:
        name = mask_name(sample.image)
        if name in seen:
            raise CommandError(f"{sample.image} and {seen[name]} would both write {name}; predict them into separate folders")
        seen[name] = sample.image


def _drive(job: Generator, label: str, failures: list):
    """Run a job generator with a progress bar; return its return value."""
    items = _with_progress(job, label, failures)
    while True:
        try:
            next(items)
        except StopIteration as stop:
            return stop.value


def _with_progress(job: Generator, label: str, failures: list) -> Generator:
    """Show a progress bar for a job; pass its results through and collect failures."""
    from tqdm import tqdm

    from .inference import Failure, Progress

    bar = None
    try:
        while True:
            try:
                item = next(job)
            except StopIteration as stop:
                return stop.value
            if isinstance(item, Progress):
                bar = bar or tqdm(total=item.total, desc=label, unit="img", file=sys.stderr, disable=None)
                bar.n = item.done
                bar.refresh()
            elif isinstance(item, Failure):
                failures.append(item)
                print(f"\nskipped {item.sample.image}: {item.message}", file=sys.stderr)
            else:
                yield item
    finally:
        if bar is not None:
            bar.close()


def _report_failures(failures: list) -> int:
    if failures:
        print(f"{len(failures)} image(s) could not be processed (listed above)", file=sys.stderr)
        return 1
    return 0


def _metric_table(summary: dict, source: str) -> str:
    names = ("dice", "jaccard", "threshold_jaccard", "precision", "sensitivity", "specificity", "accuracy", "f1")
    lines = [f"{summary['n_images']} image(s), {source}", f"{'metric':<20}{'macro (ISIC)':>14}{'pooled':>10}"]
    lines += [f"{name:<20}{summary[name]:>14.4f}{summary['pooled'][name]:>10.4f}" for name in names]
    c = summary["confusion"]
    lines.append(f"pooled pixels: TP {c['tp']:,}  FP {c['fp']:,}  FN {c['fn']:,}  TN {c['tn']:,}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def _write_outputs(args: argparse.Namespace, evaluation, summary: dict) -> None:
    from .figures import confusion_figure
    from .report import write_per_image

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"metrics written to {args.json}")
    if args.per_image:
        write_per_image(args.per_image, evaluation)
        print(f"per-image metrics written to {args.per_image}")
    figure = args.figure or (args.json.with_name(args.json.stem + "_confusion.png") if args.json else Path("confusion_matrix.png"))
    print(f"confusion matrix saved to {confusion_figure(evaluation.pooled, figure)}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
