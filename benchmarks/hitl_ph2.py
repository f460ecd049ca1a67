"""Does the correction loop adapt a model to a new clinic? A simulation on PH2.

    nice -n 15 .venv/bin/python benchmarks/hitl_ph2.py [--seeds 1 2 3 4 5] [--rounds 5] [--round-size 10]

``../shared/data/ph2_shifted`` (100 PH2 photographs with expert masks, another
hospital and dermoscope than ISIC) is split with each seed into a *pool* of 50 that
an annotator would correct and a *test set* of 50 never trained on. Round 0 is the
parent (the shipped ``dice`` bundle). Each round adds ``--round-size`` corrections
(the expert mask stands in for the corrected mask) in one of two orders:

* ``uncertainty``: the parent's :func:`rank_by_uncertainty` order (most uncertain first);
* ``random``: a seeded random order of the pool;

and adapts the parent afresh, with three methods of increasing cost, all from the
library (:mod:`glassbox_xai.hitl.finetune`):

* ``threshold``: the parent, its probability threshold re-chosen on the corrections;
* ``adabn``: batch-norm statistics re-estimated on the corrected photographs, then the threshold;
* ``finetune``: :func:`adapt` with the given settings (default: :class:`FinetuneSettings`),
  corrections mixed with as many ISIC ``dev_train`` pairs.

Dice is the per-image Dice at the photograph's native size (model logits averaged
over flips as the card says, resized bilinearly, then thresholded), macro-averaged
over the test set. The table gives the mean over splits of the change versus the
parent with a paired 95% t interval over splits. The fine-tuned model of the last
round is also scored on ``--isic-check`` ISIC ``dev_val`` images (forgetting).
Writes ``hitl_ph2.{json,md,png}`` under ``--out``. Research use only; not a medical device.

``--data`` takes any folder of image/mask pairs in place of ``ph2_shifted``. Given pairs from
ISIC ``dev_train`` it is the control with no new clinic: the fit has nothing new to learn,
so the ISIC check measures what fitting itself costs (README, "How much of the forgetting
is fine-tuning itself").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PH2 = SHARED / "ph2_shifted"
ISIC = SHARED / "isic2018_task1_512"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "hitl_ph2"
STRATEGIES = ("uncertainty", "random")
METHODS = ("threshold", "adabn", "finetune")
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}

_START = time.perf_counter()


def say(message: str) -> None:
    """A progress line with wall-clock time and seconds since the start."""
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - _START:7.1f}s] {message}", flush=True)


@dataclass
class Domain:
    """Pairs in memory: model-resolution arrays for training, native masks for scoring."""

    samples: list
    images: np.ndarray  # (N, size, size, 3) uint8
    masks: np.ndarray  # (N, size, size) uint8 {0, 1}
    truth: list  # native-size bool masks

    def take(self, index) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.masks[index]


def load_domain(samples: list, size: int) -> Domain:
    """Read and resize every pair once."""
    from glassbox_xai.data.io import read_mask
    from glassbox_xai.learn.dataset import load_pairs

    images, masks = load_pairs(samples, size)
    return Domain(samples, images, masks, [read_mask(s.mask) for s in samples])


def native_dice(model, domain: Domain, index, threshold: float, tta: bool) -> np.ndarray:
    """Per-image Dice at native size of ``model`` on ``domain[index]`` (as :class:`Segmenter` predicts)."""
    return dice_table(model, domain, index, [threshold], tta)[:, 0]


def dice_table(model, domain: Domain, index, thresholds, tta: bool) -> np.ndarray:
    """Per-image native Dice at every threshold, shape (len(index), len(thresholds)): one model pass."""
    from glassbox_xai.data.resize import to_native
    from glassbox_xai.hitl.finetune import model_logits

    index = np.asarray(index)
    logits = model_logits(model, domain.images[index].astype(np.float32) / 255.0, tta)
    cuts = np.log(np.asarray(thresholds) / (1.0 - np.asarray(thresholds)))
    table = np.empty((len(index), len(cuts)))
    for row, (l, i) in enumerate(zip(logits, index)):
        truth = domain.truth[i]
        native = to_native(l, truth.shape)
        for col, cut in enumerate(cuts):
            pred = native > cut
            denom = pred.sum() + truth.sum()
            table[row, col] = 2.0 * np.count_nonzero(pred & truth) / denom if denom else 1.0
    return table


def split(n: int, pool_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of indices 0..n-1 into pool and test (the rest)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:pool_size]), np.sort(order[pool_size:])


def uncertainty_scores(bundle: Path, domain: Domain, passes: int) -> np.ndarray:
    """The parent's :func:`rank_by_uncertainty` score of every image (higher: review first).
    Scores are per image, so ranking all images once and keeping a split's pool in
    score order is that pool's ranking."""
    import keras

    from glassbox_xai.hitl.uncertainty import rank_by_uncertainty
    from glassbox_xai.inference import Segmenter

    keras.utils.set_random_seed(0)
    ranked = _result(rank_by_uncertainty(Segmenter.from_bundle(bundle), domain.samples, passes))
    score = {r.id: r.score for r in ranked}
    return np.array([score[s.id] for s in domain.samples])


def _result(job):
    """Run a library generator to its end and return its value."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


class Runner:
    """The parent's outputs computed once, and adaptations of fresh copies of it."""

    def __init__(self, bundle: Path, ph2: Domain, isic_mix: tuple | None, isic_check: Domain | None, work: Path, passes: int = 0,
                 scores: dict[str, float] | None = None):
        from glassbox_xai.hitl.finetune import THRESHOLDS, model_probabilities
        from glassbox_xai.model.bundle import load_bundle

        self.bundle, self.ph2, self.isic_mix, self.isic_check, self.work = bundle, ph2, isic_mix, isic_check, work
        parent = load_bundle(bundle)
        self.card = parent.card
        self.tta = bool((parent.card.inference or {}).get("tta", False))
        self.thresholds = [float(t) for t in THRESHOLDS]
        everything = np.arange(len(ph2.samples))
        self.parent_table = dice_table(parent.model, ph2, everything, self.thresholds + [self.card.threshold], self.tta)
        self.parent_prob = model_probabilities(parent.model, ph2.images, self.tta)
        self.parent_isic = None
        if isic_check is not None:
            self.parent_isic = native_dice(parent.model, isic_check, np.arange(len(isic_check.samples)), self.card.threshold, self.tta)
        if scores is not None:  # an earlier run's ranking of the same images by the same parent
            self.uncertainty = np.array([scores[s.id] for s in ph2.samples])
        else:
            self.uncertainty = uncertainty_scores(bundle, ph2, passes) if passes else None

    def fresh(self):
        import keras

        from glassbox_xai.model.bundle import load_bundle

        keras.backend.clear_session()
        return load_bundle(self.bundle).model

    def parent_dice(self, test: np.ndarray) -> np.ndarray:
        """Per-image test Dice of the parent at its card's threshold."""
        return self.parent_table[test, -1]

    def method(self, name: str, settings, chosen: list[int], test: np.ndarray, check_isic: bool = False) -> dict[str, Any]:
        """Adapt with one method on the corrections ``chosen``; per-image test Dice and the threshold used."""
        from glassbox_xai.hitl.finetune import adapt, best_threshold

        chosen = np.asarray(chosen)
        if name == "threshold":  # the parent as it is, its threshold re-chosen: no model call needed
            threshold, _ = best_threshold(self.parent_prob[chosen], self.ph2.masks[chosen])
            return {"dice": self.parent_table[test, self.thresholds.index(threshold)], "threshold": threshold, "seconds": 0.0}
        if name == "adabn":
            settings = replace(settings, epochs=0, adapt_batchnorm=True, choose_threshold=True)
        model = self.fresh()
        mix = self.isic_mix if settings.epochs and settings.mix_ratio > 0 else None
        t = time.perf_counter()
        run_dir = tempfile.mkdtemp(dir=self.work)
        summary = adapt(model, self.ph2.take(chosen), mix, settings, run_dir, tta=self.tta, parent_threshold=self.card.threshold)
        seconds = time.perf_counter() - t
        shutil.rmtree(run_dir, ignore_errors=True)
        threshold = summary["threshold"] or self.card.threshold
        record = {"dice": native_dice(model, self.ph2, test, threshold, self.tta), "threshold": threshold, "seconds": seconds}
        if check_isic and self.isic_check is not None:
            # also at the parent's threshold (one model pass): how much of the loss is the threshold chosen for the new clinic
            table = dice_table(model, self.isic_check, np.arange(len(self.isic_check.samples)), [threshold, self.card.threshold], self.tta)
            record["isic_dice"], record["isic_dice_parent_threshold"] = table[:, 0], table[:, 1]
        return record


def paired_interval(changes: list[float]) -> tuple[float, float]:
    """Mean of per-split changes and the 95% t half-width (paired: each split against its own parent)."""
    x = np.asarray(changes, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(T95.get(len(x) - 1, 1.96) * x.std(ddof=1) / np.sqrt(len(x)))


# --- the simulation -------------------------------------------------------------------

def simulate(args, runner: Runner, settings, out: Path) -> dict[str, Any]:
    """Every split, strategy, round and method; results written after each round."""
    ids = [s.id for s in runner.ph2.samples]
    results: dict[str, Any] = {"settings": {"flags": {k: str(v) for k, v in vars(args).items()}, "finetune": asdict(settings),
                                            "parent": {"path": str(runner.bundle), "weights_sha256": runner.card.weights_sha256,
                                                       "threshold": runner.card.threshold, "tta": runner.tta}},
                               "uncertainty": None if runner.uncertainty is None else dict(zip(ids, map(float, runner.uncertainty))),
                               "splits": []}
    rounds = args.at or list(range(args.round_size, args.rounds * args.round_size + 1, args.round_size))
    for seed in args.seeds:
        pool, test = split(len(ids), args.pool_size, seed)
        parent = runner.parent_dice(test)
        orders = {"random": [int(i) for i in np.random.default_rng(seed + 1).permutation(pool)]}
        if "uncertainty" in args.strategies:
            orders["uncertainty"] = [int(i) for i in sorted(pool, key=lambda i: -runner.uncertainty[i])]
        record = {"seed": seed, "pool": [ids[i] for i in pool], "test": [ids[i] for i in test], "parent": float(parent.mean()),
                  "parent_isic": None if runner.parent_isic is None else float(runner.parent_isic.mean()),
                  "orders": {s: [ids[i] for i in o] for s, o in orders.items()}, "rounds": []}
        results["splits"].append(record)
        say(f"split {seed}: parent test Dice {parent.mean():.4f}")
        for n in rounds:
            row: dict[str, Any] = {"n": n}
            for strategy in args.strategies:
                for name in args.methods:
                    if name != "threshold" and args.finetune_at and n not in args.finetune_at:
                        continue
                    last = n == max(args.finetune_at or rounds) and name == "finetune" and strategy == args.strategies[0]
                    r = runner.method(name, settings, orders[strategy][:n], test, check_isic=last)
                    row[f"{strategy}/{name}"] = {"dice": float(r["dice"].mean()), "threshold": r["threshold"], "seconds": r["seconds"],
                                                 **{k: float(r[k].mean()) for k in ("isic_dice", "isic_dice_parent_threshold") if k in r}}
                    say(f"split {seed}, n={n}, {strategy}/{name}: {r['dice'].mean():.4f} ({r['dice'].mean() - parent.mean():+.4f}); "
                        f"threshold {r['threshold']:.2f}; {r['seconds']:.0f}s" + (f"; ISIC {r['isic_dice'].mean():.4f} ({r['isic_dice_parent_threshold'].mean():.4f} at the parent's threshold)"
                                                                      if "isic_dice" in r else ""))
            record["rounds"].append(row)
            write_outputs(results, out, args.name)
    return results


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per round and arm: mean test Dice, mean change versus the parent and its paired 95% half-width over the splits that ran it."""
    splits = results["splits"]
    rows = [{"n": 0, "arm": "parent", "dice": float(np.mean([s["parent"] for s in splits])), "change": 0.0, "ci95": 0.0, "splits": len(splits)}]
    cells = {}
    for s in splits:
        for r in s["rounds"]:
            for arm, value in r.items():
                if arm != "n":
                    cells.setdefault((r["n"], arm), []).append((value["dice"], s["parent"]))
    for (n, arm), pairs in sorted(cells.items()):
        change, half = paired_interval([d - p for d, p in pairs])
        rows.append({"n": n, "arm": arm, "dice": float(np.mean([d for d, _ in pairs])), "change": change, "ci95": half, "splits": len(pairs)})
    return rows


def markdown(results: dict[str, Any]) -> str:
    """Rounds as rows, arms as columns: mean Dice (change ± paired 95% half-width)."""
    rows = summarise(results)
    arms = sorted({r["arm"] for r in rows if r["arm"] != "parent"}, key=lambda a: (a.split("/")[1] != "finetune", a))
    lines = ["| corrections | " + " | ".join(arms) + " |", "|---:|" + "---:|" * len(arms),
             "| 0 (parent) | " + " | ".join(f"{rows[0]['dice']:.4f}" for _ in arms) + " |"]
    for n in sorted({r["n"] for r in rows if r["n"]}):
        cells = {r["arm"]: r for r in rows if r["n"] == n}
        lines.append(f"| {n} | " + " | ".join(f"{cells[a]['dice']:.4f} ({cells[a]['change']:+.4f} ± {cells[a]['ci95']:.4f}, {cells[a]['splits']})"
                                            if a in cells else "–" for a in arms) + " |")
    splits = results["splits"]
    folder = Path(results["settings"].get("flags", {}).get("data", str(PH2))).name  # ph2_shifted, unless --data named another folder
    lines += ["", f"Mean test Dice over the splits of {folder} ({len(splits[0]['test']) if splits else 0} test images each); "
              "in brackets the change versus the same splits' parent, ± the paired 95% t half-width over splits, and the number of splits."]
    isic = [(s["parent_isic"], v["isic_dice"]) for s in splits for r in s["rounds"] for v in r.values() if isinstance(v, dict) and "isic_dice" in v]
    if isic:
        change, half = paired_interval([b - a for a, b in isic])
        runs = [results["settings"], *results["settings"].get("merged_from", {}).values()]
        n_check = max(int(r["flags"].get("isic_check", 0)) for r in runs)
        lines.append(f"ISIC dev_val check ({n_check} images, never trained on): parent {np.mean([a for a, _ in isic]):.4f}, "
                     f"fine-tuned after the last round {np.mean([b for _, b in isic]):.4f} ({change:+.4f} ± {half:.4f}, {len(isic)} model(s)).")
        at_parent = [(s["parent_isic"], v["isic_dice_parent_threshold"]) for s in splits for r in s["rounds"] for v in r.values()
                     if isinstance(v, dict) and "isic_dice_parent_threshold" in v]
        if at_parent:
            change, half = paired_interval([b - a for a, b in at_parent])
            lines.append(f"The same fine-tuned models at the parent's threshold instead of the one chosen on the corrections: "
                         f"{np.mean([b for _, b in at_parent]):.4f} ({change:+.4f} ± {half:.4f}).")
    lines.append("Research use only; not a medical device.")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> Path:
    """Test Dice against corrections, one line per order and method, with the 95% band of the change."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from glassbox_xai.figures import DISCLAIMER, save_figure

    rows = summarise(results)
    parent = rows[0]["dice"]
    fig, ax = plt.subplots(figsize=(6.6, 4.6), dpi=120)
    styles = {"uncertainty": "-", "random": "--"}
    colours = {"threshold": "tab:gray", "adabn": "tab:orange", "finetune": "tab:blue"}
    for arm in dict.fromkeys(r["arm"] for r in rows if r["arm"] != "parent"):
        strategy, method = arm.split("/")
        pts = [r for r in rows if r["arm"] == arm]
        n = [0] + [r["n"] for r in pts]
        dice = parent + np.array([0.0] + [r["change"] for r in pts])  # paired: arms run on fewer splits stay comparable
        half = np.nan_to_num(np.array([0.0] + [r["ci95"] for r in pts]))
        counts = sorted({r["splits"] for r in pts})
        splits = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        ax.plot(n, dice, styles[strategy], marker="o", ms=3, color=colours.get(method), label=f"{method}, {strategy} order ({splits} splits)")
        if strategy == "uncertainty":
            ax.fill_between(n, dice - half, dice + half, color=colours.get(method), alpha=0.12, linewidth=0)
    ax.axhline(parent, color="0.5", linestyle=":", linewidth=1, label="parent (shipped dice)")
    ax.set_xlabel("corrected PH2 images")
    ax.set_ylabel("parent's mean Dice + mean paired change")
    ax.set_title(f"Correction loop on a new clinic (PH2): Dice on 50 held-out images per split", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, handlelength=4)  # long enough handles to tell the dashed order from the solid one
    fig.text(0.5, 0.01, f"{DISCLAIMER} Bands: paired 95% interval over splits (uncertainty order).", ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path)


def write_outputs(results: dict[str, Any], out: Path, name: str = NAME) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{name}.{ext}" for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(results, indent=1) + "\n")
    paths["md"].write_text(markdown(results))
    if any(s["rounds"] for s in results["splits"]):
        plot(results, paths["png"])
    return paths


def merge(paths: list[Path]) -> dict[str, Any]:
    """Results of several runs (e.g. run in parallel, one per order or split) as one: splits by seed,
    rounds by number of corrections, arms side by side. Every run must have the same parent."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    parents = {r["settings"]["parent"]["weights_sha256"] for r in runs}
    if len(parents) != 1:
        raise ValueError(f"the runs have different parents ({', '.join(sorted(parents))}); expected one")
    merged: dict[str, Any] = {"settings": {**runs[0]["settings"], "merged_from": {str(p): r["settings"] for p, r in zip(paths, runs)}},
                              "uncertainty": next((r["uncertainty"] for r in runs if r.get("uncertainty")), None), "splits": []}
    by_seed: dict[int, dict] = {}
    for run in runs:
        for split in run["splits"]:
            into = by_seed.setdefault(split["seed"], {**split, "rounds": [], "orders": {}})
            if into["test"] != split["test"] or abs(into["parent"] - split["parent"]) > 1e-9:
                raise ValueError(f"split {split['seed']} differs between runs; expected the same test set and parent")
            into["orders"].update(split["orders"])
            if split.get("parent_isic") is not None:
                into["parent_isic"] = split["parent_isic"]
            rounds = {r["n"]: r for r in into["rounds"]}
            for r in split["rounds"]:
                rounds.setdefault(r["n"], {"n": r["n"]}).update({k: v for k, v in r.items() if k != "n"})
            into["rounds"] = [rounds[n] for n in sorted(rounds)]
    merged["splits"] = [by_seed[seed] for seed in sorted(by_seed)]
    return merged


# --- set-up -----------------------------------------------------------------------------

def isic_pairs(ids: list[str]):
    """ISIC samples of the given ids (photograph and expert mask)."""
    from glassbox_xai.data.layout import Sample

    return [Sample(i, ISIC / "ISIC2018_Task1-2_Training_Input" / f"{i}.jpg", ISIC / "ISIC2018_Task1_Training_GroundTruth" / f"{i}_segmentation.png")
            for i in ids]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from glassbox_xai.hitl.finetune import AUGMENTS, OPTIMIZERS, FinetuneSettings

    d = FinetuneSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="one split per seed (default 1 2 3 4 5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of corrections (default 5)")
    parser.add_argument("--round-size", type=int, default=10, help="corrections per round (default 10)")
    parser.add_argument("--at", type=int, nargs="+", default=None, help="only these numbers of corrections (default: every round)")
    parser.add_argument("--finetune-at", type=int, nargs="+", default=None,
                        help="run the costly methods (adabn, finetune) only at these numbers of corrections (default: every round)")
    parser.add_argument("--pool-size", type=int, default=50, help="PH2 images that can be corrected; the rest are the test set (default 50)")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES), help="correction orders (default both)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["threshold", "finetune"],
                        help="adaptation methods (default threshold finetune; adabn measured worse)")
    parser.add_argument("--scores", type=Path, default=None, help="take the uncertainty scores from an earlier run's JSON (same parent, same images)")
    parser.add_argument("--passes", type=int, default=8, help="Monte Carlo dropout passes of the uncertainty ranking (default 8)")
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
    parser.add_argument("--augment", choices=sorted(AUGMENTS), default=d.augment,
                        help="the fit's augmentations: light, or the shipped dice recipe's (default %(default)s)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="the fit's optimizer (default %(default)s)")
    parser.add_argument("--loss", default=d.loss, help="fine-tuning loss, a name make_loss knows (default %(default)s)")
    parser.add_argument("--mix-ratio", type=float, default=d.mix_ratio, help="ISIC dev_train pairs mixed in per correction")
    parser.add_argument("--train-layers", choices=("all", "decoder"), default=d.train_layers)
    parser.add_argument("--adapt-batchnorm", action=argparse.BooleanOptionalAction, default=d.adapt_batchnorm)
    parser.add_argument("--freeze-batchnorm", action=argparse.BooleanOptionalAction, default=d.freeze_batchnorm)
    parser.add_argument("--choose-threshold", action=argparse.BooleanOptionalAction, default=d.choose_threshold)
    parser.add_argument("--weight-average", type=float, default=d.weight_average,
                        help="share of the fitted weights kept, the rest the parent's (WiSE-FT; default %(default)s)")
    parser.add_argument("--original-targets", choices=("truth", "parent"), default=d.original_targets,
                        help="fit the mixed ISIC pairs to their expert masks or to the parent's own masks (default %(default)s)")
    parser.add_argument("--consolidation", type=float, default=d.consolidation,
                        help="elastic weight consolidation strength, Fisher from the loaded ISIC pairs (0: off; default %(default)s)")
    parser.add_argument("--isic-check", type=int, default=100, help="ISIC dev_val images to score the last fine-tuned model on (0: none)")
    parser.add_argument("--isic-mix", type=int, default=200, help="ISIC dev_train pairs loaded to mix from (default 200)")
    parser.add_argument("--bundle", type=Path, default=None, help="parent bundle (default: the shipped dice bundle)")
    parser.add_argument("--data", type=Path, default=PH2, help=f"folder of image/mask pairs of the new clinic (default {PH2})")
    parser.add_argument("--images", type=int, default=None, help="use only the first N pairs (tests)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", type=Path, nargs="+", default=None, help="only merge the JSON results of earlier runs into one table and curve")
    parser.add_argument("--name", default=NAME, help=f"file name of the results (default {NAME})")
    args = parser.parse_args(argv)
    if args.rounds * args.round_size > args.pool_size:
        parser.error(f"{args.rounds} rounds of {args.round_size} need {args.rounds * args.round_size} pool images; --pool-size is {args.pool_size}")
    return args


def main(argv: list[str] | None = None) -> int:
    from glassbox_xai.data.layout import discover
    from glassbox_xai.hitl.finetune import FinetuneSettings
    from glassbox_xai.model.bundle import load_bundle
    from glassbox_xai.model.registry import resolve_bundle

    args = parse_args(argv)
    if args.merge:
        results = merge(args.merge)
        paths = write_outputs(results, args.out, args.name)
        print(markdown(results))
        say(f"merged {len(args.merge)} run(s) into {', '.join(str(p) for p in paths.values())}")
        return 0
    bundle = args.bundle or resolve_bundle("dice")
    settings = FinetuneSettings(epochs=args.epochs, learning_rate=args.learning_rate, loss=args.loss, augment=args.augment, optimizer=args.optimizer, mix_ratio=args.mix_ratio, train_layers=args.train_layers,
                                adapt_batchnorm=args.adapt_batchnorm, freeze_batchnorm=args.freeze_batchnorm, choose_threshold=args.choose_threshold,
                                weight_average=args.weight_average, original_targets=args.original_targets,
                                consolidation=args.consolidation)
    size = load_bundle(bundle).config.input_size
    samples = discover(args.data, require_masks=True)[: args.images]
    if len(samples) <= args.pool_size:
        raise ValueError(f"{args.data} holds {len(samples)} pairs; --pool-size {args.pool_size} leaves no test set")
    ph2 = load_domain(samples, size)
    train_ids = (ISIC / "dev_train.txt").read_text().split()
    val_ids = (ISIC / "dev_val.txt").read_text().split()
    rng = np.random.default_rng(2018)
    mix = load_domain(isic_pairs([train_ids[i] for i in rng.choice(len(train_ids), args.isic_mix, replace=False)]), size) if args.isic_mix else None
    check = load_domain(isic_pairs([val_ids[i] for i in rng.choice(len(val_ids), args.isic_check, replace=False)]), size) if args.isic_check else None
    say(f"loaded {len(samples)} pairs from {args.data.name}, {args.isic_mix} ISIC pairs to mix, {args.isic_check} ISIC dev_val pairs to check; settings {settings}")
    with tempfile.TemporaryDirectory(prefix="hitl-ph2-") as work:
        runner = Runner(bundle, ph2, (mix.images, mix.masks) if mix else None, check, Path(work),
                        passes=args.passes if "uncertainty" in args.strategies else 0,
                        scores=json.loads(args.scores.read_text())["uncertainty"] if args.scores else None)
        say(f"parent on all {len(samples)} images of {args.data.name}: Dice {runner.parent_table[:, -1].mean():.4f} at its threshold {runner.card.threshold}")
        results = simulate(args, runner, settings, args.out)
    paths = write_outputs(results, args.out, args.name)
    print(markdown(results))
    say(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
