"""Evaluate a trained run on dev_val at the masks' full resolution, choose its inference
settings, and write its report: ``python -m training.evaluate --run runs/dice``.

1. One pass over dev_val scores every combination of test-time flips (off/on),
   post-processing (off/on) and threshold (0.30..0.70) from the same logits; the
   table goes to ``report/ablation.md``.
2. The settings are chosen by the variant's rule (dev_val is the selection split):
   base/dice: best Dice; balanced: best Dice with |precision - recall| <= 0.01;
   recall: best Dice with recall >= 0.93.
3. The bundle's card gets the chosen threshold and settings and the full-resolution
   validation metrics, computed again through ``Segmenter`` + ``evaluate_model``, the
   code path of ``glassbox evaluate``; the report (metrics, confusion matrix,
   per-image CSV, curves, review sheets) goes to ``<run>/report``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from glassbox_xai.tf_import import import_tensorflow

THRESHOLDS = tuple(np.round(np.arange(0.30, 0.701, 0.05), 2))
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"
SHIPPED_REPORTS = Path(__file__).resolve().parent / "reports"
BALANCE = 0.01  # the balanced variant: macro precision and macro recall at most this far apart


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder with bundle/ and log.csv")
    parser.add_argument("--config", type=Path, help="recipe (default: training/configs/<run name>.yaml)")
    parser.add_argument("--copy-to", type=Path, help="folder the report is copied into, as <run name>/ (default: training/reports for "
                        "the shipped recipes, training/configs/*.yaml; none for a lever's, whose run may share a shipped name)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N validation images (smoke runs)")
    args = parser.parse_args(argv)
    import_tensorflow()
    from glassbox_xai.learn.recipe import load_recipe

    config = args.config or SHIPPED_CONFIGS / f"{args.run.name}.yaml"
    recipe = load_recipe(config)
    copy_root = args.copy_to or default_copy_root(config)
    if copy_root is None:
        print(f"{config} is not a shipped recipe: the report stays in {args.run / 'report'} (pass --copy-to to copy it)", file=sys.stderr)
    summary = evaluate_run(args.run, recipe, copy_root / args.run.name if copy_root else None, limit=args.limit)
    print(json.dumps(summary, indent=2))
    return 0


def default_copy_root(config: Path) -> Path | None:
    """training/reports for a shipped recipe (directly in training/configs/); None for any other,
    so that a lever's run named like a shipped one (levers/r192/dice.yaml makes a run "dice") does
    not replace the shipped model's report."""
    return SHIPPED_REPORTS if config.resolve().parent == SHIPPED_CONFIGS.resolve() else None


def sweep(segmenter, samples) -> dict[tuple[bool, bool, float], list]:
    """Confusions of every (tta, postprocess, threshold) on every sample, from one model pass."""
    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.data.resize import to_model_input, to_native
    from glassbox_xai.inference import largest_component_filled, sigmoid
    from glassbox_xai.metrics import Confusion

    results: dict[tuple[bool, bool, float], list] = {k: [] for k in itertools.product((False, True), (False, True), THRESHOLDS)}
    size = segmenter.input_size
    for start in range(0, len(samples), 16):
        chunk = samples[start : start + 16]
        images = [read_image(s.image) for s in chunk]
        batch = np.stack([to_model_input(im, size) for im in images])
        segmenter.tta = False
        plain = segmenter.model_logits(batch)
        segmenter.tta = "flips"
        flipped = segmenter.model_logits(batch)
        for sample, image, logits_plain, logits_tta in zip(chunk, images, plain, flipped):
            truth = read_mask(sample.mask, expected_shape=image.shape[:2])
            for tta, logits in ((False, logits_plain), (True, logits_tta)):
                prob = sigmoid(to_native(logits, image.shape[:2]))
                for threshold in THRESHOLDS:
                    mask = prob > threshold
                    results[(tta, False, threshold)].append(Confusion.from_masks(mask, truth))
                    results[(tta, True, threshold)].append(Confusion.from_masks(largest_component_filled(mask), truth))
        print(f"\rsweep {min(start + 16, len(samples))}/{len(samples)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return results


def choose(variant: str, table: dict[tuple[bool, bool, float], dict]) -> tuple[bool, bool, float]:
    """The settings the variant's selection rule picks from the sweep table."""
    if variant == "balanced":
        close = {k: v for k, v in table.items() if abs(v["precision"] - v["sensitivity"]) <= BALANCE}
        return max(close or table, key=lambda k: table[k]["dice"])
    if variant == "recall":
        sensitive = {k: v for k, v in table.items() if v["sensitivity"] >= 0.93}
        if sensitive:
            return max(sensitive, key=lambda k: table[k]["dice"])
        return max(table, key=lambda k: table[k]["sensitivity"])
    return max(table, key=lambda k: table[k]["dice"])


def evaluate_run(run: Path, recipe, copy_to: Path | None, limit: int | None = None) -> dict:
    """Sweep, choose by the recipe's variant rule, report and write the card of ``run``'s bundle. The
    report names its rows after the run folder, so a run scored with another run's recipe (a weight
    average) keeps its own name."""
    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.evaluation import evaluate_model
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.jobs import drive
    from glassbox_xai.learn.fit import read_log
    from glassbox_xai.metrics import macro_average, scores
    from glassbox_xai.model.bundle import load_bundle
    from glassbox_xai.model.card import write_card
    from glassbox_xai.report import metric_table, write_report
    from training.run import split_samples

    samples = split_samples(recipe, "val", limit)
    bundle = load_bundle(run / "bundle")
    segmenter = Segmenter(bundle, batch_size=16)
    confusions = sweep(segmenter, samples)
    table = {k: macro_average([scores(c) for c in v]) for k, v in confusions.items()}
    tta, postprocess, threshold = choose(recipe.variant, table)
    report_dir = run / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    rows = {f"tta={'on' if k[0] else 'off'} post={'on' if k[1] else 'off'} t={k[2]:.2f}": v for k, v in table.items() if k[2] == 0.5 or k == (tta, postprocess, threshold)}
    (report_dir / "ablation.md").write_text(
        f"# {run.name}: dev_val ({len(samples)} images, 512 px masks), macro averages\n\n"
        + metric_table(rows)
        + f"\n\nChosen ({recipe.variant} rule): tta={tta}, postprocess={postprocess}, threshold={threshold:.2f}\n"
    )
    (report_dir / "sweep.json").write_text(json.dumps([{"tta": k[0], "postprocess": k[1], "threshold": float(k[2]), **v} for k, v in table.items()], indent=1))

    segmenter = Segmenter(bundle, threshold=float(threshold), batch_size=16, tta=tta, postprocess=postprocess)
    failures: list = []
    evaluation = drive(evaluate_model(segmenter, samples), on_item=failures.append)
    for failure in failures:  # a dev_val image that could not be scored is named, not hidden
        print(f"evaluate: skipped {failure.sample.image}: {failure.message}", file=sys.stderr)
    by_index = {i: s for i, s in enumerate(samples)}

    def load_panel(i: int):
        image = read_image(by_index[i].image)
        return image, read_mask(by_index[i].mask), segmenter.predict(image).mask

    summary = write_report(report_dir, run.name, evaluation, load_panel, read_log(run / "log.csv"))
    card = replace(
        bundle.card,
        threshold=float(threshold),
        inference={"tta": tta, "postprocess": postprocess},
        validation_metrics={**{k: round(float(summary[k]), 6) for k in ("dice", "jaccard", "threshold_jaccard", "precision", "sensitivity", "specificity", "accuracy", "f1")},
                            "split": f"{recipe.data['val']} ({len(samples)} images, 512 px)"},
    )
    write_card(card, run / "bundle")
    if copy_to is not None:
        if copy_to.exists():
            shutil.rmtree(copy_to)
        shutil.copytree(report_dir, copy_to)
        if (run / "log.csv").is_file():  # a run made without training (a weight average) has no log
            shutil.copy(run / "log.csv", copy_to / "log.csv")
    return {"run": str(run), "tta": tta, "postprocess": postprocess, "threshold": float(threshold),
            **{k: summary[k] for k in ("dice", "jaccard", "threshold_jaccard", "precision", "sensitivity", "f1")}}


if __name__ == "__main__":
    raise SystemExit(main())
