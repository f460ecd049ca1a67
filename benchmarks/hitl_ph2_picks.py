"""Why uncertainty-first corrections teach less than random ones on PH2: what the picks are like.

    .venv/bin/python benchmarks/hitl_ph2_picks.py --results benchmarks/results/hitl_ph2_nothr_orders.json

Reads the correction orders of a ``hitl_ph2.py`` run (both orders, every split) and scores the
parent (the shipped ``dice`` bundle, its card's threshold and flips) on every PH2 photograph:
Dice at native size and the *area ratio* (predicted lesion area / expert lesion area; above 1
is over-segmentation, the parent's habit on PH2). For the first 10 and 20 picks of each order it
prints the mean of both against the split's test images. Fine-tuning learns, above all, how much
tighter to draw; corrections whose ratio is unlike the test images' teach the wrong amount.
Writes ``<name>.{json,md}`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hitl_ph2 import PH2, RESULTS, load_domain, say  # noqa: E402


def parent_table(bundle: Path, data: Path) -> dict[str, dict[str, float]]:
    """Per-image Dice and area ratio of the parent on every pair of ``data``."""
    from glassbox_xai.data.layout import discover
    from glassbox_xai.data.resize import to_native
    from glassbox_xai.hitl.finetune import model_logits
    from glassbox_xai.model.bundle import load_bundle

    parent = load_bundle(bundle)
    samples = discover(data, require_masks=True)
    domain = load_domain(samples, parent.config.input_size)
    tta = bool((parent.card.inference or {}).get("tta", False))
    logits = model_logits(parent.model, domain.images.astype(np.float32) / 255.0, tta)
    cut = np.log(parent.card.threshold / (1.0 - parent.card.threshold))
    table = {}
    for sample, logit, truth in zip(samples, logits, domain.truth):
        pred = to_native(logit, truth.shape) > cut
        table[sample.id] = {"dice": 2.0 * np.count_nonzero(pred & truth) / max(pred.sum() + truth.sum(), 1),
                            "area_ratio": float(pred.sum() / max(truth.sum(), 1))}
    return table


def summarise(results: dict, table: dict, counts: tuple[int, ...]) -> list[dict]:
    rows = []
    for split in results["splits"]:
        test = split["test"]
        base = {k: float(np.mean([table[i][k] for i in test])) for k in ("dice", "area_ratio")}
        for order, ids in split["orders"].items():
            for n in counts:
                picks = ids[:n]
                rows.append({"seed": split["seed"], "order": order, "n": n,
                             **{f"picks_{k}": float(np.mean([table[i][k] for i in picks])) for k in ("dice", "area_ratio")},
                             **{f"test_{k}": v for k, v in base.items()}})
    return rows


def markdown(rows: list[dict], counts: tuple[int, ...]) -> str:
    lines = ["| order | corrections | parent Dice on the picks | area ratio of the picks | area ratio of the test images | splits |",
             "|---|---:|---:|---:|---:|---:|"]
    for order in sorted({r["order"] for r in rows}):
        for n in counts:
            sel = [r for r in rows if r["order"] == order and r["n"] == n]
            lines.append(f"| {order} | {n} | {np.mean([r['picks_dice'] for r in sel]):.4f} | {np.mean([r['picks_area_ratio'] for r in sel]):.3f} "
                         f"(spread over splits {np.min([r['picks_area_ratio'] for r in sel]):.2f}-{np.max([r['picks_area_ratio'] for r in sel]):.2f}) | "
                         f"{np.mean([r['test_area_ratio'] for r in sel]):.3f} | {len(sel)} |")
    lines.append("\nArea ratio: the parent's predicted lesion area over the expert's (above 1: over-segmented), mean over images. "
                 "Research use only; not a medical device.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="a hitl_ph2.py JSON with both orders")
    parser.add_argument("--bundle", type=Path, default=None, help="parent bundle (default: the shipped dice bundle)")
    parser.add_argument("--data", type=Path, default=PH2)
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="hitl_ph2_picks")
    args = parser.parse_args(argv)
    from glassbox_xai.model.registry import resolve_bundle

    results = json.loads(args.results.read_text())
    if not all(split.get("orders") for split in results["splits"]):
        raise SystemExit(f"{args.results} holds no correction orders (run hitl_ph2.py with both --strategies)")
    table = parent_table(args.bundle or resolve_bundle("dice"), args.data)
    counts = tuple(args.counts)
    rows = summarise(results, table, counts)
    text = markdown(rows, counts)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps({"results": str(args.results), "rows": rows, "parent": table}, indent=1))
    (args.out / f"{args.name}.md").write_text(text + "\n")
    say(f"wrote {args.out / args.name}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
