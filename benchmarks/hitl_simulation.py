"""Does human-in-the-loop fine-tuning help? A simulation of the loop on real ISIC data.

    nice -n 10 .venv/bin/python benchmarks/hitl_simulation.py [--rounds 4] [--round-size 25] [--epochs 3]

``dev_val`` (400 images nobody trained on) is split with a fixed seed into a *pool*
(the images an annotator would review) and a *test set* (never trained on). The
parent is the shipped ``dice`` bundle (or ``--bundle``); round 0 is its Dice on the
test set. Each round, every strategy adds ``--round-size`` images to its own
retraining set and fine-tunes the parent afresh on all of them so far, mixed with as
many original ``dev_train`` pairs (the library's :func:`finetune`, whose card and
validation split are those of the real loop), then scores the child on the test set:

* ``uncertainty``: pool images in :func:`rank_by_uncertainty` order of the parent
  (most uncertain first), "corrected" to the expert mask;
* ``random``: pool images in a seeded random order, corrected the same way;
* ``baseline``: the same number of random ``dev_train`` images (already seen in
  training, no new corrections): what the extra fine-tuning steps alone give.

The ``baseline`` images are held out of the original-pair mix (so no strategy sees
them twice); every strategy mixes from the same remaining ``dev_train`` pairs with
the same seed. Dice is the macro mean over test images at the bundle's threshold and
test-time settings (:func:`evaluate_model`). Writes ``hitl_simulation.{csv,md,json,png}``
under ``--out`` and prints the table. Fine-tuned bundles are deleted once scored.
Research use only; not a medical device.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"  # as tests/data_paths.py resolves it
RESULTS = ROOT / "benchmarks" / "results"
NAME = "hitl_simulation"
IMAGES_DIR = "ISIC2018_Task1-2_Training_Input"
MASKS_DIR = "ISIC2018_Task1_Training_GroundTruth"
STRATEGIES = ("uncertainty", "random", "baseline")
LABELS = {
    "uncertainty": "uncertainty-first corrections",
    "random": "random corrections",
    "baseline": "baseline: random dev_train images (no new data)",
}

_START = time.perf_counter()


def say(message: str) -> None:
    """A progress line with wall-clock time and seconds since the start."""
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - _START:7.1f}s] {message}", flush=True)


# --- data -------------------------------------------------------------------------

def read_split(data: Path, name: str) -> list[str]:
    """Ids listed in ``<data>/<name>.txt``."""
    path = data / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected the ISIC 2018 Task 1 folder with dev_train.txt and dev_val.txt (--data)")
    ids = path.read_text().split()
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path} lists some ids twice; expected unique ids")
    return ids


def isic_sample(data: Path, image_id: str):
    """The :class:`Sample` of one ISIC id (photograph and expert mask), checked to exist."""
    from glassbox_xai.data.layout import Sample, mask_name

    image = data / IMAGES_DIR / f"{image_id}.jpg"
    mask = data / MASKS_DIR / mask_name(image)
    for path in (image, mask):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; expected the photograph and expert mask of {image_id} under {data}")
    return Sample(image_id, image, mask)


def split_dev_val(ids: list[str], pool_size: int, test_size: int | None, seed: int) -> tuple[list[str], list[str]]:
    """A seeded split of ``dev_val`` into the pool to correct and a disjoint test set
    (``test_size=None``: every id not in the pool)."""
    rest = len(ids) - pool_size
    if pool_size < 1 or rest < 1:
        raise ValueError(f"--pool-size must be between 1 and {len(ids) - 1} (dev_val has {len(ids)} ids), got {pool_size}")
    test_size = rest if test_size is None else test_size
    if not 1 <= test_size <= rest:
        raise ValueError(f"--test-size must be between 1 and {rest} (the dev_val ids outside the pool), got {test_size}")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    return order[:pool_size], order[pool_size : pool_size + test_size]


def link_pairs(samples: list, folder: Path) -> Path:
    """A flat folder of symlinks to image/mask pairs, as :func:`discover` reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        for source in (sample.image, sample.mask):
            link = folder / source.name
            if not link.is_symlink():
                link.symlink_to(source)
    return folder


# --- model steps --------------------------------------------------------------------

def run_job(job, what: str, every: int = 50, on_item=None):
    """Run a library job to its end (:func:`glassbox_xai.jobs.drive`) with a progress line every
    ``every`` steps; return its result. ``on_item`` receives what it yields besides progress.

    Raises:
        RuntimeError: an image could not be processed (the simulation needs every one).
    """
    from glassbox_xai.inference import Failure
    from glassbox_xai.jobs import drive

    def report(progress) -> None:
        if progress.done and (progress.done % every == 0 or progress.done == progress.total):
            say(f"  {what}: {progress.done}/{progress.total}")

    def other(item) -> None:
        if isinstance(item, Failure):
            raise RuntimeError(f"{what}: could not process {item.sample.image}: {item.message}")
        if on_item is None:
            raise TypeError(f"{what}: the job yielded a {type(item).__name__}; expected progress")
        on_item(item)

    return drive(job, report, on_item=other)


def score_on_test(bundle: Path, samples: list) -> dict[str, Any]:
    """Macro Dice of a bundle on the test samples (its own threshold and TTA/postprocess),
    with the per-image Dice for paired comparisons."""
    from glassbox_xai.evaluation import evaluate_model
    from glassbox_xai.inference import Segmenter

    segmenter = Segmenter.from_bundle(bundle)
    evaluation = run_job(evaluate_model(segmenter, samples), f"test Dice of {bundle.parent.name if bundle.name == 'bundle' else bundle.name}")
    per_image = [row["dice"] for row in evaluation.per_image]
    return {"dice": float(np.mean(per_image)), "jaccard": evaluation.summary()["jaccard"], "per_image": dict(zip(evaluation.ids, per_image)),
            "threshold": segmenter.threshold, "tta": segmenter.tta, "postprocess": segmenter.postprocess}


def rank_pool(bundle: Path, samples: list, passes: int) -> list[dict[str, Any]]:
    """The pool ranked by the parent's uncertainty, most uncertain first."""
    from glassbox_xai.hitl.uncertainty import rank_by_uncertainty
    from glassbox_xai.inference import Segmenter

    import keras

    keras.utils.set_random_seed(0)  # the dropout passes: the same ranking on every run
    ranked = run_job(rank_by_uncertainty(Segmenter.from_bundle(bundle), samples, passes), "uncertainty ranking")
    return [{"id": r.id, "score": r.score, "boundary": r.boundary, "mc_dropout": r.mc_dropout} for r in ranked]


def parent_masks(bundle: Path, samples: list) -> dict[str, np.ndarray]:
    """The parent's predicted masks (what the annotator would start from), by id."""
    from glassbox_xai.inference import Segmenter

    masks: dict[str, np.ndarray] = {}
    run_job(Segmenter.from_bundle(bundle).predict_samples(samples), "parent predictions",
        on_item=lambda item: masks.__setitem__(item[0].id, item[1].mask))
    return masks


def correct(store, sample, predicted: np.ndarray, parent_card, strategy: str) -> dict[str, Any]:
    """Save the expert mask as the "correction" of the parent's prediction."""
    from glassbox_xai.data.io import read_mask

    truth = read_mask(sample.mask, expected_shape=predicted.shape)
    provenance = {"weights_sha256": parent_card.weights_sha256, "variant": parent_card.variant, "bundle": parent_card.name,
                  "threshold": parent_card.threshold, "annotator": f"simulation:{strategy}", "seconds": 0.0}
    return store.save(sample.image, predicted.shape, truth, predicted, provenance)


def finetune_round(parent: Path, store, out_dir: Path, settings, original: Path) -> tuple[Path, dict[str, Any]]:
    """Fine-tune the parent afresh on everything in ``store`` (the library's loop)."""
    from glassbox_xai.hitl.finetune import finetune

    def report(epoch: int, epochs: int, logs: dict) -> None:
        if "batch" in logs:
            return  # a progress report within the epoch
        say(f"  epoch {epoch}/{epochs}: loss {logs.get('loss', float('nan')):.4f}, val_dice {logs.get('val_dice', float('nan')):.4f}")

    return finetune(parent, store, out_dir, settings, original=original, report=report, register=False)


def paired_change(child: dict[str, float], parent: dict[str, float]) -> tuple[float, float]:
    """Mean per-image Dice change versus the parent and its 95% half-width (normal approximation)."""
    diffs = np.array([child[i] - parent[i] for i in parent])
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return float(diffs.mean()), float(half)


# --- the simulation ---------------------------------------------------------------------

def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Ids of the pool, test set, baseline reserve and mix; orders of every strategy (no model needed)."""
    data = Path(args.data)
    train_ids, val_ids = read_split(data, "dev_train"), read_split(data, "dev_val")
    leaked = set(train_ids) & set(val_ids)
    if leaked:
        raise ValueError(f"dev_train and dev_val share {len(leaked)} id(s), e.g. {min(leaked)}; expected disjoint splits")
    needed = args.rounds * args.round_size
    if args.rounds < 1 or args.round_size < 1:
        raise ValueError(f"--rounds and --round-size must be at least 1, got {args.rounds} and {args.round_size}")
    if needed > args.pool_size:
        raise ValueError(f"{args.rounds} rounds of {args.round_size} need {needed} pool images; --pool-size is {args.pool_size}")
    if needed >= len(train_ids):
        raise ValueError(f"the baseline needs {needed} dev_train images and must leave some to mix in; dev_train has {len(train_ids)}")
    pool, test = split_dev_val(val_ids, args.pool_size, args.test_size, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    shuffled_train = [train_ids[i] for i in rng.permutation(len(train_ids))]
    return {
        "pool": pool,
        "test": test,
        "random_order": [pool[i] for i in rng.permutation(len(pool))],
        "baseline_order": shuffled_train[:needed],
        "mix": sorted(shuffled_train[needed:]),
    }


def simulate(args: argparse.Namespace, on_round: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every strategy for every round; return the results (``on_round`` sees them after each round)."""
    from glassbox_xai.hitl.finetune import FinetuneSettings
    from glassbox_xai.hitl.store import RetrainingSet
    from glassbox_xai.model.card import read_card

    started = time.perf_counter()
    data, parent = Path(args.data), Path(args.bundle)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="hitl-sim-"))
    ids = plan(args)
    sample = {i: isic_sample(data, i) for i in {*ids["pool"], *ids["test"], *ids["baseline_order"], *ids["mix"]}}
    test = [sample[i] for i in ids["test"]]
    original = link_pairs([sample[i] for i in ids["mix"]], work / "original_dev_train")
    settings = FinetuneSettings(epochs=args.epochs, seed=args.seed, learning_rate=args.learning_rate, freeze_batchnorm=args.freeze_batchnorm)
    card = read_card(parent)
    say(f"parent {parent} ({card.variant}, threshold {card.threshold}); pool {len(ids['pool'])}, test {len(test)}, "
        f"{args.rounds} round(s) of {args.round_size}, {args.epochs} epoch(s); work folder {work}")

    results: dict[str, Any] = {"settings": settings_record(args, settings, parent, card, work), "ids": ids, "rounds": [], "timings": {}}
    t = time.perf_counter()
    say(f"round 0: the parent on {len(test)} test images")
    round0 = score_on_test(parent, test)
    results["timings"]["parent_eval_s"] = time.perf_counter() - t
    results["rounds"].append(round_record(0, 0, {s: (round0, None, None, []) for s in STRATEGIES}, round0))
    say(f"round 0: parent test Dice {round0['dice']:.4f}")

    t = time.perf_counter()
    ranking = rank_pool(parent, [sample[i] for i in ids["pool"]], args.passes)
    results["timings"]["ranking_s"] = time.perf_counter() - t
    results["ranking"] = ranking
    orders = {"uncertainty": [r["id"] for r in ranking], "random": ids["random_order"], "baseline": ids["baseline_order"]}
    needed = args.rounds * args.round_size
    t = time.perf_counter()
    masks = parent_masks(parent, [sample[i] for i in sorted({i for order in orders.values() for i in order[:needed]})])
    results["timings"]["parent_predictions_s"] = time.perf_counter() - t
    if on_round:
        on_round(results)

    stores = {s: RetrainingSet(work / "sets" / s, copy_images=False) for s in STRATEGIES}
    context = Context(parent, card, settings, original, test, sample, masks, work, round0)
    for n in range(1, args.rounds + 1):
        outcome = {strategy: strategy_round(context, strategy, stores[strategy], orders[strategy], n, args.round_size)
                   for strategy in STRATEGIES}
        results["rounds"].append(round_record(n, n * args.round_size, outcome, round0))
        if on_round:
            on_round(results)
    results["timings"]["total_s"] = time.perf_counter() - started
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return results


@dataclass(frozen=True)
class Context:
    """What every round of every strategy shares."""

    parent: Path
    card: Any
    settings: Any
    original: Path
    test: list
    sample: dict
    masks: dict
    work: Path
    round0: dict


def strategy_round(context: Context, strategy: str, store, order: list[str], n: int, size: int) -> tuple:
    """Round ``n`` of one strategy: correct its next ``size`` images, fine-tune the parent
    on the whole set, score the child on the test set and delete it.

    Returns (scores, fit summary, ids added, edit statistics of the added images).
    """
    chosen = order[(n - 1) * size : n * size]
    edits = [correct(store, context.sample[i], context.masks[i], context.card, strategy)["edits"] for i in chosen]
    say(f"round {n}, {strategy}: +{len(chosen)} image(s), {n * size} in the set; fine-tuning")
    t = time.perf_counter()
    out_dir = context.work / "models" / f"{strategy}-round{n}"
    child, summary = finetune_round(context.parent, store, out_dir, context.settings, context.original)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    scored = score_on_test(child, context.test)
    scored.update(finetune_s=fit_s, eval_s=time.perf_counter() - t, best_val_dice=summary["best_val_dice"],
                  best_epoch=summary["best_epoch"], epochs_run=summary["epochs_run"])
    shutil.rmtree(out_dir)
    _forget_models()
    say(f"round {n}, {strategy}: test Dice {scored['dice']:.4f} (parent {context.round0['dice']:.4f}; "
        f"fit {fit_s:.0f}s, eval {scored['eval_s']:.0f}s)")
    return scored, summary, chosen, edits


def _forget_models() -> None:
    """Free the Keras graphs of the models just trained and scored (many rounds in one process)."""
    import keras

    keras.backend.clear_session()


def settings_record(args: argparse.Namespace, settings, parent: Path, card, work: Path) -> dict[str, Any]:
    """What the run was: flags, fine-tune settings, parent and software."""
    import keras

    return {"flags": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "finetune": asdict(settings),
            "parent": {"path": str(parent), "variant": card.variant, "weights_sha256": card.weights_sha256, "threshold": card.threshold,
                       "inference": card.inference},
            "work": str(work), "cpu_count": os.cpu_count(), "python": platform.python_version(), "keras": keras.__version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def round_record(n: int, n_images: int, outcome: dict[str, tuple], round0: dict[str, Any]) -> dict[str, Any]:
    """One row of the curve: per strategy the test Dice, its paired change versus the parent, and what was added."""
    record: dict[str, Any] = {"round": n, "n_images": n_images, "strategies": {}}
    for strategy, (scored, _summary, chosen, edits) in outcome.items():
        change, half = paired_change(scored["per_image"], round0["per_image"]) if n else (0.0, 0.0)
        record["strategies"][strategy] = {
            "dice": scored["dice"], "jaccard": scored["jaccard"], "change_vs_parent": change, "change_ci95": half,
            "added_ids": chosen, "parent_dice_on_added": float(np.mean([e["dice_prediction_vs_correction"] for e in edits])) if edits else None,
            **{k: scored[k] for k in ("finetune_s", "eval_s", "best_val_dice", "best_epoch", "epochs_run") if k in scored},
            "per_image": scored["per_image"],
        }
    return record


# --- outputs -----------------------------------------------------------------------------

def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The curve as flat rows: round, n images, Dice per strategy."""
    return [{"round": r["round"], "n_images": r["n_images"], **{f"dice_{s}": r["strategies"][s]["dice"] for s in STRATEGIES}}
            for r in results["rounds"]]


def markdown(results: dict[str, Any]) -> str:
    """The curve as a Markdown table, then each round's paired change versus the parent."""
    flags = results["settings"]["flags"]
    lines = [f"| round | n corrected | {' | '.join(STRATEGIES)} |", "|---:|---:|" + "---:|" * len(STRATEGIES)]
    for r in results["rounds"]:
        lines.append(f"| {r['round']} | {r['n_images']} | " + " | ".join(f"{r['strategies'][s]['dice']:.4f}" for s in STRATEGIES) + " |")
    lines += ["", ("Change in test Dice versus the parent (paired over test images, mean ± 95% half-width); "
                   "mean parent Dice on the images added that round:"), "",
              f"| round | {' | '.join(STRATEGIES)} |", "|---:|" + "---:|" * len(STRATEGIES)]
    for r in results["rounds"][1:]:
        cells = [f"{r['strategies'][s]['change_vs_parent']:+.4f} ± {r['strategies'][s]['change_ci95']:.4f} "
                 f"(added {r['strategies'][s]['parent_dice_on_added']:.3f})" for s in STRATEGIES]
        lines.append(f"| {r['round']} | " + " | ".join(cells) + " |")
    lines += ["", (f"Test set: {len(results['ids']['test'])} dev_val images, pool {len(results['ids']['pool'])}, seed {flags['seed']}, "
                   f"{flags['epochs']} epoch(s) per fine-tune; n corrected is the number of images in the retraining set "
                   "(for baseline: re-used dev_train images). Research use only; not a medical device.")]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> Path:
    """Test Dice against the number of images added, one curve per strategy."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from glassbox_xai.figures import DISCLAIMER, save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    n = [r["n_images"] for r in results["rounds"]]
    for strategy, marker in zip(STRATEGIES, "osd"):
        ax.plot(n, [r["strategies"][strategy]["dice"] for r in results["rounds"]], marker=marker, label=LABELS[strategy])
    ax.axhline(results["rounds"][0]["strategies"]["uncertainty"]["dice"], color="0.6", linestyle=":", linewidth=1, label="parent")
    ax.set_xlabel("images in the retraining set")
    ax.set_ylabel(f"macro Dice on {len(results['ids']['test'])} held-out dev_val images")
    ax.set_xticks(n)
    ax.set_title("Human-in-the-loop fine-tuning, simulated with expert masks", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.5, 0.01, f"{DISCLAIMER} Single seed; see {NAME}.md for paired 95% intervals.", ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path)


def write_outputs(results: dict[str, Any], out: Path, with_figure: bool = True) -> dict[str, Path]:
    """Write the CSV, Markdown and JSON (and the PNG) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{NAME}.{ext}" for ext in ("csv", "md", "json", "png")}
    rows = table_rows(results)
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows)
    paths["md"].write_text(markdown(results))
    paths["json"].write_text(json.dumps(results, indent=1) + "\n")
    if with_figure:
        plot(results, paths["png"])
    return paths


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from glassbox_xai.model.registry import resolve_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds of corrections (default 4)")
    parser.add_argument("--round-size", type=int, default=25, help="images corrected per round (default 25)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs per round (default 3)")
    parser.add_argument("--pool-size", type=int, default=200, help="dev_val images available to correct (default 200)")
    parser.add_argument("--test-size", type=int, default=None, help="test images, from the dev_val ids outside the pool (default: all of them)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="fine-tuning learning rate (default 3e-4, the library's)")
    parser.add_argument("--freeze-batchnorm", action="store_true", help="keep the parent's batch-norm statistics while fine-tuning")
    parser.add_argument("--passes", type=int, default=8, help="Monte Carlo dropout passes for the uncertainty ranking (default 8)")
    parser.add_argument("--seed", type=int, default=2018, help="seed of the split, the random orders and fine-tuning (default 2018)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder for retraining sets and models (default: a temporary one, removed)")
    parser.add_argument("--bundle", type=Path, default=None, help="parent model bundle (default: the shipped dice bundle)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"ISIC 2018 Task 1 folder with dev_train.txt and dev_val.txt (default {DATA})")
    args = parser.parse_args(argv)
    args.bundle = args.bundle or resolve_bundle("dice")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = simulate(args, on_round=lambda partial: write_outputs(partial, args.out, with_figure=len(partial["rounds"]) > 1))
    paths = write_outputs(results, args.out)
    print(markdown(results))
    say(f"wrote {', '.join(str(p) for p in paths.values())}; total {results['timings']['total_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
