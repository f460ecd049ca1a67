"""Paired comparison of two evaluations of the same images (the levers' "+0.0008 ± 0.0025").

    python -m training.paired training/reports/dice/per_image.csv training/reports/failures/dice_boundary_lever/per_image.csv

Reads two ``per_image.csv`` files (``training.evaluate`` and ``glassbox evaluate`` write them),
pairs the images both scored, and prints each side's macro Dice, the mean per-image difference
B - A with its 95% interval (normal approximation, 1.96 standard errors), how many images moved
by more than 0.005 either way, and the count below Dice 0.7 on each side.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def read_scores(path: Path, column: str = "dice") -> dict[str, float]:
    """Per-image ``column`` of a per_image.csv, by image id."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "id" not in rows[0] or column not in rows[0]:
        raise ValueError(f"{path}: expected a per_image.csv with columns 'id' and {column!r}")
    return {row["id"]: float(row[column]) for row in rows}


def paired(a: dict[str, float], b: dict[str, float], moved: float = 0.005, below: float = 0.7) -> dict[str, float]:
    """Summary of B - A over the images both hold."""
    ids = sorted(set(a) & set(b))
    if len(ids) < 2:
        raise ValueError(f"the two evaluations share {len(ids)} image(s); a paired comparison needs at least 2")
    diff = [b[i] - a[i] for i in ids]
    n = len(diff)
    mean = sum(diff) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1))
    return {"n": n, "a": sum(a[i] for i in ids) / n, "b": sum(b[i] for i in ids) / n, "difference": mean,
            "half_width": 1.96 * sd / math.sqrt(n), "better": sum(d > moved for d in diff), "worse": sum(d < -moved for d in diff),
            "a_below": sum(a[i] < below for i in ids), "b_below": sum(b[i] < below for i in ids)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.paired", description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="per_image.csv of the reference (A)")
    parser.add_argument("b", type=Path, help="per_image.csv of the candidate (B)")
    parser.add_argument("--column", default="dice", help="the per-image score to compare (default dice)")
    args = parser.parse_args(argv)
    s = paired(read_scores(args.a, args.column), read_scores(args.b, args.column))
    print(f"{s['n']} images: A {s['a']:.4f}, B {s['b']:.4f}; B - A {s['difference']:+.4f} ± {s['half_width']:.4f} (95%); "
          f"{s['better']} better by more than 0.005, {s['worse']} worse; below 0.7: A {s['a_below']}, B {s['b_below']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
