"""Evaluation reports: files written, review picks, metric tables, curves."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from glassbox_xai.metrics import Confusion, Evaluation
from glassbox_xai.report import metric_table, review_picks, write_report


def _evaluation(n=9):
    confusions = [Confusion(tp=10 * i, fp=10, fn=10, tn=1000) for i in range(n)]
    return Evaluation([f"ISIC_{i:07d}" for i in range(n)], confusions)


def test_review_picks_best_worst_and_typical():
    picks = review_picks(_evaluation(9), n=3)
    assert picks["best"] == [8, 7, 6]
    assert picks["worst"] == [0, 1, 2]
    assert picks["typical"][0] == 4 and set(picks["typical"]) == {3, 4, 5}


def test_metric_table_is_markdown_with_one_row_per_model():
    summary = _evaluation().summary()
    table = metric_table({"dice": summary, "recall": summary}).splitlines()
    assert table[0].startswith("| model | dice | jaccard | threshold_jaccard")
    assert len(table) == 4 and table[2].startswith("| dice | ")


def test_write_report_writes_every_file(tmp_path, rng):
    evaluation = _evaluation(7)
    image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    truth = np.zeros((40, 50), bool)
    truth[10:30, 10:40] = True
    pred = np.ones((40, 50), bool)  # a mask touching the border must still be outlined
    log = [{"epoch": 0.0, "loss": 1.0, "val_dice": 0.5}, {"epoch": 1.0, "loss": 0.5, "val_dice": 0.7}]
    summary = write_report(tmp_path, "demo", evaluation, lambda i: (image, truth, pred), log)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"metrics.json", "metrics.md", "confusion_matrix.png", "per_image.csv", "training_curves.png",
                     "review_typical.png", "review_best.png", "review_worst.png"}
    assert json.loads((tmp_path / "metrics.json").read_text())["dice"] == summary["dice"]
    rows = list(csv.DictReader(open(tmp_path / "per_image.csv")))
    assert len(rows) == 7 and float(rows[3]["dice"]) == evaluation.per_image[3]["dice"]
    for name in ("review_best.png", "training_curves.png", "confusion_matrix.png"):
        with Image.open(tmp_path / name) as im:
            assert im.width > 300 and im.height > 200
