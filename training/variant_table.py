"""Print the README's variant table from the evaluation reports in training/reports/.

    .venv/bin/python -m training.variant_table
"""

from __future__ import annotations

import json
from pathlib import Path

REPORTS = Path(__file__).resolve().parent / "reports"
COLUMNS = ("dice", "jaccard", "threshold_jaccard", "precision", "sensitivity", "specificity", "accuracy", "f1")


def f1_of_macros(metrics: dict) -> float:
    """The original project's F1: the harmonic mean of macro precision and macro recall
    (not the per-image F1 averaged, which equals the macro Dice)."""
    p, r = metrics["precision"], metrics["sensitivity"]
    return 2 * p * r / (p + r) if p + r else 0.0


def main() -> int:
    print("| variant | settings | " + " | ".join(COLUMNS) + " | F1 of macro P and R |")
    print("| --- | --- |" + " --- |" * (len(COLUMNS) + 1))
    for variant in ("dice", "balanced", "recall"):
        path = REPORTS / variant / "metrics.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        chosen = (REPORTS / variant / "ablation.md").read_text().splitlines()[-1].split(": ", 1)[-1]
        print(f"| {variant} | {chosen} | " + " | ".join(f"{metrics[c]:.4f}" for c in COLUMNS) + f" | {f1_of_macros(metrics):.4f} |")
    print("| probe (issue 3) | 128 px, 25 epochs | 0.884 | | 0.766 | | | | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
