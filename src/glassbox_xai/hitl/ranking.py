"""The ranking CSV of ``glassbox rank``: images most uncertain first, as the Review widget
orders them, so an archive's review can start from a ranking computed in batch.

Pure Python: no TensorFlow, no napari.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

HEADER = ["rank", "id", "score", "boundary", "mc_dropout", "image"]


class RankingError(ValueError):
    """A ranking CSV is unreadable or lacks the columns ``glassbox rank`` writes."""


def ranking_rows(records: Iterable[dict]) -> list[list]:
    """CSV rows for scored records (``id``, ``image``, ``boundary``, ``mc_dropout``), most uncertain first.

    The score is the mean of the two, as :class:`~glassbox_xai.hitl.uncertainty.Ranked` has it;
    ties keep id order.
    """
    scored = sorted(records, key=lambda r: r["id"])
    scored.sort(key=lambda r: (r["boundary"] + r["mc_dropout"]) / 2, reverse=True)
    return [[n, r["id"], f"{(r['boundary'] + r['mc_dropout']) / 2:.6f}", f"{r['boundary']:.6f}", f"{r['mc_dropout']:.6f}", r["image"]]
            for n, r in enumerate(scored, start=1)]


def read_ranking(path: str | Path) -> list[tuple[str, float]]:
    """(id, score) pairs of a ranking CSV, in its order (most uncertain first).

    Raises:
        RankingError: the file is unreadable, lacks ``id`` or ``score``, or a score is not a number.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RankingError(f"cannot read the ranking {path}: {exc}") from None
    if rows and not {"id", "score"} <= rows[0].keys():
        raise RankingError(f"{path} has columns {', '.join(rows[0])}; expected those of glassbox rank ({', '.join(HEADER)})")
    pairs = []
    for line, row in enumerate(rows, start=2):
        try:
            pairs.append((row["id"], float(row["score"])))
        except (TypeError, ValueError):
            raise RankingError(f"{path}, line {line}: score {row.get('score')!r} is not a number") from None
    return pairs
