"""List a model's failures on dev_val and describe each, to sort them by cause (issue 11).

``python -m training.failures --per-image training/reports/dice/per_image.csv --variant dice``
reads a report's per-image CSV, takes the images below ``--below`` Dice (0.7), predicts
them again with the model, and writes into ``--out`` (``training/reports/failures``):

- ``failures.png``: a review sheet, photograph with the expert (green) and predicted
  (magenta, dashed) outlines, one panel per failure, worst first;
- ``failures.csv``: per failure, measured descriptors that help name the cause:
  predicted / expert area ratio, the expert lesion's share of the frame, whether either
  mask touches the frame, connected components of each, lesion-to-skin contrast, and a
  ``cause`` column. Causes are read off the sheet by a person (they are judgements, not
  measurements); ``--causes FILE`` merges an ``id,cause`` CSV written after looking.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

CAUSES = ("artefact", "low contrast", "fills frame", "multiple regions", "annotation ambiguity")


def describe(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Measured descriptors of one (photograph, expert mask, predicted mask) triple."""
    from skimage.measure import label

    truth, pred = truth.astype(bool), pred.astype(bool)
    border = np.zeros_like(truth)
    border[[0, -1], :] = border[:, [0, -1]] = True
    gray = image.astype(np.float32).mean(axis=2)
    inside = gray[truth].mean() if truth.any() else np.nan
    outside = gray[~truth].mean() if (~truth).any() else np.nan
    return {
        "area_ratio": float(pred.sum() / max(truth.sum(), 1)),
        "lesion_share": float(truth.mean()),
        "truth_touches_frame": bool((truth & border).any()),
        "pred_touches_frame": bool((pred & border).any()),
        "truth_components": int(label(truth).max()),
        "pred_components": int(label(pred).max()),
        "contrast": float((outside - inside) / 255.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.failures", description=__doc__.splitlines()[0])
    parser.add_argument("--per-image", type=Path, required=True, help="a report's per_image.csv")
    parser.add_argument("--out", type=Path, default=Path("training/reports/failures"), help="where the sheet and table go")
    parser.add_argument("--variant", default="dice", help="installed variant that made the report (default dice)")
    parser.add_argument("--model", type=Path, help="or a bundle folder")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/isic2018_task1_512"))
    parser.add_argument("--below", type=float, default=0.7, help="Dice below which an image is a failure (0.7)")
    parser.add_argument("--causes", type=Path, help="CSV id,cause of causes read off the sheet")
    args = parser.parse_args(argv)

    from glassbox_xai.tf_import import import_tensorflow

    import_tensorflow()
    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.data.layout import discover
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.model.registry import resolve_bundle
    from glassbox_xai.report import overlay_sheet

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.per_image, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["dice"]) < args.below]
    rows.sort(key=lambda r: float(r["dice"]))
    causes = {}
    if args.causes:
        with open(args.causes, newline="") as handle:
            causes = {r["id"]: r["cause"] for r in csv.DictReader(handle)}
    by_id = {s.id: s for s in discover(args.data, require_masks=True)}
    segmenter = Segmenter.from_bundle(resolve_bundle(args.variant if args.model is None else None, args.model))
    panels, table = [], []
    for row in rows:
        sample = by_id[row["id"]]
        image, truth = read_image(sample.image), read_mask(sample.mask)
        pred = segmenter.predict(image).mask
        table.append({"id": row["id"], "dice": float(row["dice"]), **describe(image, truth, pred), "cause": causes.get(row["id"], "")})
        panels.append((image, truth, pred, f"{row['id']}  Dice {float(row['dice']):.3f}"))
    overlay_sheet(panels, args.out / "failures.png", f"{len(rows)} dev_val images below Dice {args.below}")
    with open(args.out / "failures.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]) if table else ["id"])
        writer.writeheader()
        writer.writerows(table)
    if causes:
        counts = {c: sum(1 for t in table if t["cause"] == c) for c in sorted({t["cause"] for t in table})}
        print("| cause | images |\n| --- | ---: |\n" + "\n".join(f"| {c} | {n} |" for c, n in counts.items()))
    print(f"{len(rows)} failures written to {args.out / 'failures.png'} and failures.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
