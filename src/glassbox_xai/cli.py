"""The ``glassbox`` command: predict, evaluate, rank, explain, explain-folder, finetune, versions and info.

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
from .batch.options import add_batch_args
from .batch.options import requested as batch_requested
from .data.layout import NoImagesError, discover, mask_name
from .figures import DISCLAIMER
from .model.card import BundleError, read_card
from .model.registry import VARIANT_NAMES, NoTrainedModelError, installed_bundles, resolve_bundle

GALLERY_METHODS = ("gradcam", "hirescam", "gradcam++", "scorecam", "saliency", "ig")  # xai.gallery's, without importing TensorFlow
EXPECTED_ERRORS = (NoTrainedModelError, BundleError, NoImagesError, ImageReadError, MaskError, OSError, ValueError)


class CommandError(Exception):
    """A problem to report in one line, with exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glassbox`` console command."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.simplefilter("always")  # every warning about the user's data is said, each time
    # Deprecations are for the developers of the code that triggers them, not for the person
    # running the command: one in Keras (numpy 2's __array__ copy keyword) printed 432 lines
    # during a 1-epoch `glassbox finetune`.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
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
    predict.add_argument("--json", type=Path, help="write a run report here: masks written, and every image skipped with the reason")
    add_batch_args(predict)
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser("evaluate", help="score a model or existing predictions as the ISIC challenge does")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, nargs="+", help="folders, image files or list files of images to segment and score")
    source.add_argument("--predictions", type=Path, help="folder of existing <id>_segmentation.png masks")
    evaluate.add_argument("--masks", type=Path, required=True, help="folder of expert <id>_segmentation.png masks")
    _model_args(evaluate)
    evaluate.add_argument("--json", type=Path, help="write the metrics as JSON here")
    evaluate.add_argument("--per-image", type=Path, help="write per-image metrics as CSV here")
    evaluate.add_argument("--figure", type=Path, help="confusion-matrix PNG (default: beside --json, else ./confusion_matrix.png)")
    add_batch_args(evaluate, records=True)
    evaluate.set_defaults(func=cmd_evaluate)

    rank = sub.add_parser("rank", help="uncertainty of every image, most uncertain first, as CSV (the Review widget's order)")
    rank.add_argument("inputs", nargs="+", type=Path, help="image files, folders or list files of paths")
    rank.add_argument("-o", "--output", type=Path, required=True, help="the ranking CSV to write")
    rank.add_argument("--passes", type=int, default=8, help="Monte Carlo dropout passes per image (default 8)")
    _model_args(rank)
    add_batch_args(rank, records=True)
    rank.set_defaults(func=cmd_rank)

    explain = sub.add_parser("explain", help="confidence, saliency, integrated gradients and Grad-CAM maps with faithfulness numbers")
    explain.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    explain.add_argument("-o", "--output", type=Path, required=True, help="folder for the maps (one subfolder per image)")
    explain.add_argument("--method", choices=("confidence", "saliency", "saliency-sigmoid", "ig", "gradcam", "hirescam", "gradcam++", "scorecam", "all"), default="all",
                         help="the map to make (default: all of them)")
    explain.add_argument("--target", choices=("prediction", "truth", "background"), default="prediction",
                         help="pixels to explain (truth needs <stem>_segmentation.png beside the image)")
    explain.add_argument("--steps", type=int, default=32, help="integrated-gradients quadrature points (default 32)")
    explain.add_argument("--baseline", choices=("black", "blur"), default="black", help="integrated-gradients baseline (default: black)")
    explain.add_argument("--sanity", action="store_true", help="also run the model-randomisation check for every attribution method")
    explain.add_argument("--save-maps", action="store_true",
                         help="also write every map as a float32 TIFF at the photograph's size under maps/ (about 40 MB a map for "
                              "a 10 MP photograph); by default all maps go into one maps.npz, float16, at most 512 px a side")
    _model_args(explain)
    explain.set_defaults(func=cmd_explain)

    gallery = sub.add_parser("explain-folder", help="galleries over images with masks: failures, good and bad explanations (PNG sheets, CSV)")
    gallery.add_argument("inputs", nargs="+", type=Path, help="folders or image files, each image with its expert mask")
    gallery.add_argument("--masks", type=Path, help="folder of the expert <id>_segmentation.png masks (default: beside the images, "
                                                    "or the ISIC _GroundTruth folder)")
    gallery.add_argument("-o", "--output", type=Path, required=True, help="folder for the three sheets, gallery.csv and gallery.json")
    gallery.add_argument("--method", action="append", choices=GALLERY_METHODS,
                         help="a map to show; repeat for several, the first ranks the explanations (default: gradcam)")
    gallery.add_argument("--layer", action="append", default=[],
                         help="layer the CAM methods explain; repeat for several (default: the last decoder convolution)")
    gallery.add_argument("--target", choices=("prediction", "truth"), default="prediction",
                         help="region the maps explain: the model's predicted lesion (default) or the expert mask")
    gallery.add_argument("--rows", type=int, default=8, help="images per sheet (default 8)")
    _model_args(gallery)
    gallery.set_defaults(func=cmd_explain_folder)

    tune = sub.add_parser("finetune", help="fine-tune a variant on expert corrections: a retraining set or any annotated folder")
    _finetune_args(tune)
    _model_args(tune, inference=False)
    tune.set_defaults(func=cmd_finetune)

    models = sub.add_parser("versions", help="list the shipped models and fine-tuned versions; choose the active one")
    models.add_argument("--activate", metavar="NAME", help="make this model the default of the napari widgets")
    models.set_defaults(func=cmd_versions)

    info = sub.add_parser("info", help="device, installed models and library versions")
    info.set_defaults(func=cmd_info)
    return parser


def _model_args(parser: argparse.ArgumentParser, inference: bool = True) -> None:
    """``--variant`` or ``--model``; with ``inference``, also how to run it (threshold, batch size, flips, post-processing)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--variant", choices=VARIANT_NAMES, help="shipped model variant (default: dice)")
    group.add_argument("--model", type=Path, help="a model bundle folder")
    if not inference:
        return
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the model card's)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per model call (default 4)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, help="average over flips (default: the model card's)")
    parser.add_argument("--postprocess", action=argparse.BooleanOptionalAction, help="keep the largest lesion, fill holes (default: the model card's)")


def cmd_predict(args: argparse.Namespace) -> int:
    bundle_path = resolve_bundle(args.variant, args.model)
    if batch_requested(args, args.inputs):
        from .batch import commands as batch

        return batch.predict(args, bundle_path)
    samples = discover(args.inputs)
    _refuse_duplicate_names(samples)
    out = args.output
    _make_output_folder(out, "-o")
    existing = [s for s in samples if (out / mask_name(s.image)).exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{len(existing)} mask(s) already exist in {out}, e.g. {mask_name(existing[0].image)}; pass --overwrite to replace them")
    segmenter = _segmenter(bundle_path, args)
    from .data.io import write_mask

    written, failures = 0, []

    def write(item) -> None:
        nonlocal written
        sample, prediction = item
        write_mask(out / mask_name(sample.image), prediction.mask)
        written += 1

    _drive(segmenter.predict_samples(samples), "predict", failures, on_item=write)
    print(f"wrote {written} mask(s) to {out} (model {segmenter.bundle.path.name}, threshold {segmenter.threshold}, device {segmenter.device})")
    report = {"model": str(bundle_path), "output": str(out), "n_written": written, "failures": _failure_records(failures)}
    ok = args.json is None or _write_json(args.json, report, "--json", "run report")
    return _report_failures(failures) or (0 if ok else 2)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_model, evaluate_predictions

    failures: list = []
    if args.images is not None and batch_requested(args, args.images):
        from .batch import commands as batch

        evaluation, source, status = batch.evaluate(args, resolve_bundle(args.variant, args.model))
        summary = evaluation.summary()
        print(_metric_table(summary, source))
        _write_outputs(args, evaluation, summary)
        return status
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
    if not evaluation.ids:
        print(f"glassbox evaluate: no image could be scored ({len(failures)} failure(s), listed above)", file=sys.stderr)
        if args.json:
            _write_json(args.json, {"n_images": 0, "failures": _failure_records(failures)}, "--json", "failures")
        return 1
    summary = {**evaluation.summary(), "failures": _failure_records(failures)}
    print(_metric_table(summary, source))
    ok = _write_outputs(args, evaluation, summary)
    return _report_failures(failures) or (0 if ok else 2)


def cmd_rank(args: argparse.Namespace) -> int:
    from .batch import commands as batch

    return batch.rank(args, resolve_bundle(args.variant, args.model))


def cmd_explain(args: argparse.Namespace) -> int:
    from .xai import METHODS  # not .xai.panel: it imports Keras, and so TensorFlow, before _segmenter can silence it

    bundle_path = resolve_bundle(args.variant, args.model)
    samples = discover(args.inputs)
    _refuse_duplicate_names(samples)
    _make_output_folder(args.output, "-o")
    if args.target == "truth" and any(s.mask is None for s in samples):
        missing = next(s for s in samples if s.mask is None)
        raise CommandError(f"--target truth needs a mask for every image; {missing.image} has none ({mask_name(missing.image)})")
    segmenter = _segmenter(bundle_path, args)
    methods = METHODS if args.method == "all" else (args.method,)
    failures: list = []
    explained = []
    for n, sample in enumerate(samples, start=1):
        try:  # one bad photograph is reported and skipped; the run goes on
            folder, panel = _explain_one(args, segmenter, bundle_path, sample, methods, f"explain {n}/{len(samples)}", failures)
        except Exception as exc:
            failures.append(_skipped(sample, exc))
            continue
        explained.append({"id": sample.id, "path": str(sample.image), "folder": str(folder)})
        summary = ", ".join(f"{k} {v:.1f}s" for k, v in panel.seconds.items())
        print(f"{sample.image.name}: {len(panel.maps)} map(s) in {folder} ({summary})")
        for method, numbers in panel.faithfulness.items():  # flagged numbers are said, not only stored
            for key in ("completeness_warning", "degenerate"):
                if key in numbers:
                    print(f"  warning, {method}: {numbers[key]}")
    report = {"model": str(bundle_path), "target": args.target, "explained": explained, "failures": _failure_records(failures)}
    ok = _write_json(args.output / "explain_run.json", report, "-o", "run report")
    return _report_failures(failures) or (0 if ok else 2)


def _explain_one(args: argparse.Namespace, segmenter, bundle_path: Path, sample, methods, label: str, failures: list):
    """Explain one photograph at the working resolution and write its folder: the compact map
    store, and with ``--save-maps`` also full-resolution float32 maps."""
    from .data.io import read_image, read_mask
    from .xai.explain_files import explain_bounded, write_panel

    image = read_image(sample.image)
    truth = read_mask(sample.mask, expected_shape=image.shape[:2]) if sample.mask else None
    native_shape = image.shape[:2]
    job = explain_bounded(segmenter, image, methods, args.target, truth, args.steps, args.baseline, sanity=args.sanity)
    del image, truth  # the working copy is all the panel needs; the native maps are made one at a time
    small, panel = _drive(job, label, failures)
    meta = {"image": str(sample.image), "model": str(bundle_path), "target": args.target, "photograph_shape": list(native_shape)}
    folder = write_panel(args.output / sample.image.stem, small, panel, meta, native_shape if args.save_maps else None)
    return folder, panel


def cmd_explain_folder(args: argparse.Namespace) -> int:
    from .xai.gallery import map_choices, score_folder
    from .xai.gallery_sheets import write_gallery

    if args.rows < 1:
        raise CommandError(f"--rows must be at least 1, got {args.rows}")
    bundle_path = resolve_bundle(args.variant, args.model)
    samples = discover(args.inputs, masks_dir=args.masks, require_masks=True)
    _make_output_folder(args.output, "-o")
    segmenter = _segmenter(bundle_path, args)
    choices = map_choices(segmenter.bundle.model, args.method or ["gradcam"], args.layer)
    gallery = _drive(score_folder(segmenter, samples, choices, args.target, args.rows), "score", [])
    for failure in gallery.failures:
        print(f"skipped {failure['id']}: {failure['message']}", file=sys.stderr)
    if not gallery.cases:
        raise CommandError(f"none of the {len(samples)} images could be read")
    meta = {"model": str(bundle_path), "threshold": segmenter.threshold}
    paths = _drive(write_gallery(segmenter, samples, gallery, choices, args.output, meta=meta), "draw", [])
    for group, ids in gallery.groups.items():
        print(f"{group}: {len(ids)} image(s) in {paths[group]}")
    print(f"Dice and attribution shares of {len(gallery.cases)} image(s) in {paths['csv']}; groups in {paths['json']}")
    return 1 if gallery.failures else 0


def _finetune_args(tune: argparse.ArgumentParser) -> None:
    """Options of ``glassbox finetune``; their defaults are :class:`FinetuneSettings`' (measured on PH2)."""
    from .hitl.finetune import FinetuneSettings

    d = FinetuneSettings()
    tune.add_argument("--set", type=Path, required=True, dest="set_dir",
                      help="a retraining set made in napari, or any folder of images with <id>_segmentation.png masks (flat or ISIC layout)")
    tune.add_argument("--out", type=Path, dest="bundle_out", help="write the new bundle to this folder (default: <output>/<name>/bundle)")
    tune.add_argument("-o", "--output", type=Path, help="folder for the run and bundle when --out is not given (default: <set>/models)")
    tune.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over the corrections and mixed pairs (default {d.epochs})")
    tune.add_argument("--learning-rate", type=float, default=d.learning_rate, help=f"peak Adam learning rate (default {d.learning_rate:g})")
    tune.add_argument("--train-layers", choices=("all", "decoder"), default=d.train_layers,
                      help=f"layers that learn; decoder keeps the encoder frozen (default {d.train_layers})")
    tune.add_argument("--adapt-batchnorm", action=argparse.BooleanOptionalAction, default=d.adapt_batchnorm,
                      help="re-estimate batch-norm statistics on the corrected photographs first (AdaBN)")
    tune.add_argument("--freeze-batchnorm", action=argparse.BooleanOptionalAction, default=d.freeze_batchnorm,
                      help="keep batch-norm statistics fixed while fitting")
    tune.add_argument("--choose-threshold", action=argparse.BooleanOptionalAction, default=d.choose_threshold,
                      help="re-choose the probability threshold on the corrections after fitting")
    tune.add_argument("--weight-average", type=float, default=d.weight_average, metavar="SHARE",
                      help=f"share of the fitted weights kept, the rest the parent's: below 1 the new model forgets less of the "
                           f"parent's data and gains less on yours (default {d.weight_average:g}; see the README's PH2 table)")
    tune.add_argument("--mix-original", type=Path, help="a folder of original image/mask pairs to mix in (against forgetting)")
    tune.add_argument("--mix-ratio", type=float, default=d.mix_ratio, help=f"original pairs per correction (default {d.mix_ratio:g})")
    tune.add_argument("--original-targets", choices=("truth", "parent"), default=d.original_targets,
                      help="fit the mixed original pairs to their own masks, or to the parent's masks on them "
                           f"(Learning without Forgetting; default {d.original_targets})")
    tune.add_argument("--evaluate-on", type=Path, help="a held-out folder of images with masks: compare before and after")
    tune.add_argument("--threshold", type=float, help="probability threshold of both models in --evaluate-on (default: each model card's)")


def cmd_finetune(args: argparse.Namespace) -> int:
    from .hitl.finetune import FinetuneSettings, finetune
    from .tf_import import import_tensorflow

    settings = FinetuneSettings(epochs=args.epochs, learning_rate=args.learning_rate, train_layers=args.train_layers, mix_ratio=args.mix_ratio,
                                adapt_batchnorm=args.adapt_batchnorm, freeze_batchnorm=args.freeze_batchnorm, choose_threshold=args.choose_threshold,
                                weight_average=args.weight_average, original_targets=args.original_targets)  # refused before TensorFlow loads
    if args.original_targets == "parent" and not args.mix_original:
        raise CommandError("--original-targets parent needs --mix-original DIR: the original images the parent's own masks are drawn on")
    parent = resolve_bundle(args.variant, args.model)
    import_tensorflow()
    from .evaluation import evaluate_model
    from .inference import Segmenter

    out = args.output or args.set_dir / "models"

    def report(epoch: int, total: int, logs: dict) -> None:
        if "batch" not in logs:  # epoch ends only (batch reports drive the widget's progress bar)
            print(f"epoch {epoch}/{total}: loss {logs.get('loss', float('nan')):.4f}, Dice on corrections {logs.get('val_dice', float('nan')):.4f}")

    bundle, summary = finetune(parent, args.set_dir, out, settings, original=args.mix_original, report=report, bundle_dir=args.bundle_out)
    threshold = (f"threshold {summary['threshold']:.2f} (re-chosen on the corrections)" if summary["threshold"] is not None
                 else f"the parent's threshold {read_card(bundle).threshold:.2f}")
    print(f"new model bundle: {bundle} (parent {parent}; {summary['n_corrections_trained']} corrections, {summary['n_original_mixed']} original pairs; {threshold})")
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
    name = summary["version"]  # registered by finetune itself
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
    from .model import versions

    made_here, active = versions.versions(), versions.active()
    print(f"fine-tuned versions: {len(made_here) or 'none'} (active model: {active or 'dice, the default'})")
    for name, entry in made_here.items():
        print(f"  {'*' if name == active else ' '} {name:<32} {entry.get('created', '')}  [{entry['path']}]")
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


def _drive(job: Generator, label: str, failures: list, on_item=None):
    """Run a job to its end with a progress bar on stderr and return its result. Images
    it skips are printed and collected in ``failures``; anything else it yields goes to
    ``on_item``."""
    from tqdm import tqdm

    from .inference import Failure
    from .jobs import drive

    bar = None

    def progress(item) -> None:
        nonlocal bar
        bar = bar or tqdm(total=item.total, desc=label, unit="img", file=sys.stderr, disable=None)
        bar.n = item.done
        bar.refresh()

    def other(item) -> None:
        if isinstance(item, Failure):
            failures.append(item)
            tqdm.write(f"skipped {item.sample.image}: {item.message}", file=sys.stderr)  # above the bar, no blank line in a log
        elif on_item is not None:
            on_item(item)
        else:
            raise TypeError(f"{label}: the job yielded a {type(item).__name__}; expected progress or skipped images")

    try:
        return drive(job, progress, on_item=other)
    finally:
        if bar is not None:
            bar.close()


def _skipped(sample, exc: Exception):
    """A per-image failure record for an exception, printed as one line (traceback with -v)."""
    from .inference import Failure

    expected = isinstance(exc, EXPECTED_ERRORS)
    reason = str(exc) if expected else f"{type(exc).__name__}: {exc}"
    logging.getLogger("glassbox_xai.cli").info("traceback of %s", sample.image, exc_info=exc)
    print(f"skipped {sample.image}: {reason}", file=sys.stderr)
    return Failure(sample, reason)


def _failure_records(failures: list) -> list[dict]:
    """``{"id", "path", "reason"}`` (and ``"mask"`` where there is one) per failed item."""
    records = []
    for item in failures:
        sample = item.sample
        record = {"id": sample.id, "path": str(sample.image), "reason": item.message}
        if sample.mask is not None:
            record["mask"] = str(sample.mask)
        records.append(record)
    return records


def _output_problem(path: Path, option: str) -> str | None:
    """Why ``path`` cannot be written as a file (a folder is in the way, or a file stands
    where a folder is needed), in words a person can act on; ``None`` if it can."""
    if path.is_dir():
        return f"{option} {path} is an existing folder; give a file name (e.g. {path / 'metrics.json'}) or another path"
    blocker = _blocking_file(path.parent)
    return f"{option} {path}: {blocker} exists and is a file, not a folder; choose another path" if blocker else None


def _blocking_file(folder: Path) -> Path | None:
    """The existing file (not a folder) at ``folder`` or above it that stops it being a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _make_output_folder(folder: Path, option: str) -> None:
    """Create an output folder, or say plainly why it cannot be one."""
    blocker = _blocking_file(folder)
    if blocker == folder:
        raise CommandError(f"{option} {folder} exists and is a file; {option} names a folder: choose another path")
    if blocker:
        raise CommandError(f"{option} {folder}: {blocker} exists and is a file, not a folder; choose another path")
    folder.mkdir(parents=True, exist_ok=True)


def _write_output(path: Path, option: str, what: str, write) -> bool:
    """Write one output through ``write(path)``; on failure say why in one line and return False,
    so the command's other outputs are still written."""
    problem = _output_problem(path, option)
    if problem is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written = write(path)
            print(f"{what} written to {written if isinstance(written, Path) else path}")
            return True
        except OSError as exc:
            problem = f"{option} {path}: cannot write it ({exc.strerror or exc}); choose another path"
    print(f"glassbox: {what} not written: {problem}", file=sys.stderr)
    return False


def _write_json(path: Path, data: dict, option: str, what: str) -> bool:
    return _write_output(path, option, what, lambda p: p.write_text(json.dumps(data, indent=2, default=float) + "\n", encoding="utf-8"))


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
    if "calibration" in summary:
        lines.append(_calibration_line(summary["calibration"]))
    if summary.get("empty_truth"):
        empty = summary["empty_truth"]
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        lines.append(f"warning: {len(empty)} expert mask(s) outline no lesion ({shown}); each scores Dice 0 unless "
                     "its prediction is empty too (2TP / (2TP + FP + FN) with no TP). Check that they are the right files.")
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def _calibration_line(cal: dict) -> str:
    """ECE of the pixel probabilities (at the card's temperature, and before it) and the AUROC
    of the uncertainty map against wrong pixels, in one line."""
    before = f" ({cal['ece_uncalibrated']:.4f} at temperature 1)" if "ece_uncalibrated" in cal else ""
    auroc = "undefined (no wrong pixels, or no right ones)" if cal["uncertainty_auroc"] is None else f"{cal['uncertainty_auroc']:.4f}"
    return (f"calibration: ECE {cal['ece']:.4f} at temperature {cal['temperature']:.3g}{before}, {cal['n_bins']} bins; "
            f"uncertainty 1-|2p-1| finds wrong pixels with AUROC {auroc}")


def _write_outputs(args: argparse.Namespace, evaluation, summary: dict) -> bool:
    """Write the JSON, the per-image CSV and the confusion figure; one that cannot be
    written is reported and the others are still written. True when all were."""
    from .figures import confusion_figure
    from .report import write_per_image

    json_ok = _write_json(args.json, summary, "--json", "metrics") if args.json else False
    ok = json_ok or not args.json
    if args.per_image:
        ok &= _write_output(args.per_image, "--per-image", "per-image metrics", lambda p: write_per_image(p, evaluation))
    beside_json = json_ok and args.figure is None  # the default place; ./ when the JSON's place is unusable
    figure = args.figure or (args.json.with_name(args.json.stem + "_confusion.png") if beside_json else Path("confusion_matrix.png"))
    option = "--figure" if args.figure else "the default figure path"
    ok &= _write_output(figure, option, "confusion matrix", lambda p: confusion_figure(evaluation.pooled, p))
    return bool(ok)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Images are read in threads: tqdm.write holds tqdm's lock while it writes, so two warnings
    # do not run into one line ("...the channelwarning: ..."), and clears a progress bar first.
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
