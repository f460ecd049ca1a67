"""Are the shipped models' pixel probabilities calibrated, and does the uncertainty map find
the wrong pixels? Measured on dev_val for each variant; writes a reliability diagram and a
table to ``training/reports/calibration``:

    nice -n 5 .venv/bin/python -m training.calibration            # measure, then report
    .venv/bin/python -m training.calibration --from-counts        # report from saved counts
    .venv/bin/python -m training.calibration --from-counts --write-cards   # store temperatures

Every variant runs as shipped (its card's threshold, test-time flips and post-processing)
through :class:`~glassbox_xai.inference.Segmenter`; every pixel of the 512 px expert masks is
scored (the logits brought to the masks' resolution, as ``glassbox evaluate`` scores them).
The pixel counts (:class:`~glassbox_xai.calibration.CalibrationCounts`) of the even- and
odd-numbered images are kept apart, so a temperature fitted on one half is also checked on
the other; the temperature stored in a card is fitted on all of dev_val.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "training" / "reports" / "calibration"
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"
VARIANTS = ("dice", "balanced", "recall")
FIELDS = ("total", "lesion", "wrong")


def measure(variant: str, samples) -> tuple[list, float]:
    """The calibration counts of the even- and odd-numbered samples, and the card threshold."""
    from glassbox_xai.calibration import CalibrationCounts
    from glassbox_xai.data.io import read_mask
    from glassbox_xai.inference import Failure, Progress, Segmenter
    from glassbox_xai.model.registry import resolve_bundle

    segmenter = Segmenter.from_bundle(resolve_bundle(variant, None), batch_size=8, temperature=1.0)
    halves = [CalibrationCounts(), CalibrationCounts()]
    index = {id(s): i for i, s in enumerate(samples)}
    for item in segmenter.predict_samples(samples):
        if isinstance(item, Failure):
            raise RuntimeError(f"{variant}: dev_val image {item.sample.image} could not be read: {item.message}")
        if isinstance(item, Progress):
            print(f"\r{variant}: {item.done}/{item.total}", end="", file=sys.stderr, flush=True)
            continue
        sample, prediction = item
        truth = read_mask(sample.mask, expected_shape=prediction.shape)
        halves[index[id(sample)] % 2].add(prediction.logits, truth, prediction.mask)
    print(file=sys.stderr)
    return halves, segmenter.threshold


def save_counts(path: Path, counts: dict, thresholds: dict) -> None:
    arrays = {f"{v}_{h}_{f}": getattr(counts[v][h], f) for v in counts for h in (0, 1) for f in FIELDS}
    np.savez_compressed(path, thresholds=json.dumps(thresholds), **arrays)


def load_counts(path: Path) -> tuple[dict, dict]:
    from glassbox_xai.calibration import CalibrationCounts

    data = np.load(path)
    thresholds = json.loads(str(data["thresholds"]))
    counts = {v: [CalibrationCounts(*(data[f"{v}_{h}_{f}"] for f in FIELDS)) for h in (0, 1)] for v in thresholds}
    return counts, thresholds


def numbers(halves: list, threshold: float) -> dict:
    """Every number of the table for one variant."""
    whole = halves[0] + halves[1]
    t = whole.fit_temperature()
    crossed = [halves[1 - h].ece(halves[h].fit_temperature()) for h in (0, 1)]  # fitted on one half, read on the other
    centre = float(np.log(threshold / (1 - threshold)))
    undecided = np.abs(whole.logits) < np.log(0.95 / 0.05)  # fine bins with 0.05 < p < 0.95 as shipped
    return {
        "threshold": threshold, "n_pixels": whole.n_pixels, "error_rate": whole.summary()["error_rate"],
        "ece": whole.ece(1.0), "mce": whole.reliability(1.0).mce, "nll": whole.nll(1.0),
        "temperature": t, "ece_calibrated": whole.ece(t), "mce_calibrated": whole.reliability(t).mce, "nll_calibrated": whole.nll(t),
        "ece_calibrated_held_out": float(np.mean(crossed)), "temperatures_of_halves": [halves[h].fit_temperature() for h in (0, 1)],
        "uncertainty_auroc": whole.uncertainty_auroc(), "threshold_distance_auroc": whole.uncertainty_auroc(centre),
        "share_undecided": float(whole.total[undecided].sum() / whole.n_pixels),
        "share_of_errors_confident": float(whole.wrong[~undecided].sum() / whole.wrong.sum()),
    }


def table(results: dict) -> str:
    rows = ["| variant | threshold | ECE | MCE | NLL | temperature | ECE at T | ECE at T, held-out half | NLL at T "
            "| uncertainty AUROC | AUROC, distance to threshold | wrong pixels | pixels with 0.05 < p < 0.95 "
            "| wrong pixels at p <= 0.05 or >= 0.95 |",
            "| --- |" + " ---: |" * 13]
    for variant, r in results.items():
        rows.append(f"| {variant} | {r['threshold']:.2f} | {r['ece']:.4f} | {r['mce']:.3f} | {r['nll']:.4f} | {r['temperature']:.3f} "
                    f"| {r['ece_calibrated']:.4f} | {r['ece_calibrated_held_out']:.4f} | {r['nll_calibrated']:.4f} "
                    f"| {r['uncertainty_auroc']:.4f} | {r['threshold_distance_auroc']:.4f} | {r['error_rate']:.2%} | {r['share_undecided']:.2%} "
                    f"| {r['share_of_errors_confident']:.1%} |")
    return "\n".join(rows)


def figure(counts: dict, results: dict, path: Path) -> Path:
    """Reliability diagrams (top) and pixel counts per bin (bottom, log scale), one column per variant."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from glassbox_xai.figures import DISCLAIMER, save_figure

    fig, axes = plt.subplots(2, len(counts), figsize=(4.2 * len(counts), 6.4), dpi=120, sharex=True,
                             gridspec_kw={"height_ratios": (3, 1)})
    for column, (variant, halves) in enumerate(counts.items()):
        whole, r = halves[0] + halves[1], results[variant]
        top, bottom = axes[0, column], axes[1, column]
        top.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
        for t, colour, label in ((1.0, "#d62728", f"as shipped, ECE {r['ece']:.4f}"),
                                 (r["temperature"], "#1f77b4", f"T = {r['temperature']:.2f}, ECE {r['ece_calibrated']:.4f}")):
            rel = whole.reliability(t)
            full = rel.count > 0
            top.plot(rel.confidence[full], rel.frequency[full], "o-", color=colour, ms=4, lw=1.4, label=label)
        top.set_title(f"{variant} (threshold {r['threshold']:.2f})\nuncertainty AUROC {r['uncertainty_auroc']:.3f}", fontsize=10)
        top.set_ylabel("share of lesion pixels" if column == 0 else "")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.legend(fontsize=7.5, loc="upper left")
        rel = whole.reliability(1.0)
        centres = (rel.edges[:-1] + rel.edges[1:]) / 2
        bottom.bar(centres, rel.count, width=np.diff(rel.edges) * 0.9, color="#d62728", alpha=0.7)
        bottom.set_yscale("log")
        bottom.set_xlabel("predicted lesion probability (bin mean)")
        bottom.set_ylabel("pixels (as shipped)" if column == 0 else "")
    fig.suptitle("Pixel reliability on dev_val (400 images, 512 px masks)", fontsize=11)
    fig.text(0.5, 0.005, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return save_figure(fig, path)


def card_calibration(halves: list, r: dict) -> dict:
    """The ``calibration`` block of a card: the temperature, the numbers and the reliability table at it."""
    whole = halves[0] + halves[1]
    table = whole.reliability(r["temperature"])
    rounded = lambda values: [None if not np.isfinite(v) else round(float(v), 4) for v in values]  # noqa: E731
    return {"temperature": round(r["temperature"], 4), "ece": round(r["ece_calibrated"], 5), "ece_uncalibrated": round(r["ece"], 5),
            "uncertainty_auroc": round(r["uncertainty_auroc"], 4), "split": "dev_val (400 images, 512 px masks)", "n_bins": len(table.count),
            "reliability": {"confidence": rounded(table.confidence), "frequency": rounded(table.frequency),
                            "share": rounded(table.count / table.count.sum())}}


def write_cards(counts: dict, results: dict) -> None:
    """Store each variant's temperature and its measured calibration in its card. card.json is
    not hashed, so the bundle still verifies; the masks do not change (the threshold stays)."""
    from glassbox_xai.model.card import read_card, write_card
    from glassbox_xai.model.registry import resolve_bundle

    for variant, r in results.items():
        folder = resolve_bundle(variant, None)
        write_card(replace(read_card(folder), calibration=card_calibration(counts[variant], r)), folder)
        print(f"{variant}: temperature {r['temperature']:.4f} written to {folder / 'card.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--from-counts", action="store_true", help=f"report from {OUT / 'counts.npz'} instead of running the models")
    parser.add_argument("--write-cards", action="store_true", help="store the fitted temperatures in the shipped cards")
    parser.add_argument("--limit", type=int, help="only the first N dev_val images (smoke runs)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_counts:
        counts, thresholds = load_counts(args.out / "counts.npz")
    else:
        from glassbox_xai.data.layout import discover
        from glassbox_xai.tf_import import import_tensorflow

        import_tensorflow()
        ids = (DATA / "dev_val.txt").read_text().split()[: args.limit]
        samples = discover([DATA / "ISIC2018_Task1-2_Training_Input" / f"{i}.jpg" for i in ids],
                           masks_dir=DATA / "ISIC2018_Task1_Training_GroundTruth", require_masks=True)
        counts, thresholds = {}, {}
        for variant in VARIANTS:
            counts[variant], thresholds[variant] = measure(variant, samples)
        save_counts(args.out / "counts.npz", counts, thresholds)
    results = {v: numbers(counts[v], thresholds[v]) for v in counts}
    (args.out / "calibration.json").write_text(json.dumps(results, indent=2) + "\n")
    n_images = "400 images" if args.limit is None else f"first {args.limit} images"
    (args.out / "calibration.md").write_text(
        f"# Pixel calibration on dev_val ({n_images}, 512 px masks)\n\n" + table(results) + "\n\n" + NOTES + "\n")
    figure(counts, results, args.out / "reliability.png")
    print(table(results))
    if args.write_cards:
        write_cards(counts, results)
    return 0


NOTES = """ECE and MCE: 15 equal-width bins of the lesion probability, every pixel of every image pooled.
NLL: mean binary cross-entropy per pixel. T: the one temperature on the logits that minimises the
NLL on all of dev_val; "held-out half": fitted on the even-numbered images and read on the odd
ones, and the other way round, averaged. Uncertainty AUROC: the map 1 - |2p - 1| against the
pixels where the shipped mask differs from the expert's (a temperature cannot change it);
"distance to threshold": the same with uncertainty peaking at the card's threshold instead of
at 0.5. Produced by `python -m training.calibration`; the counts are in counts.npz."""


if __name__ == "__main__":
    raise SystemExit(main())
