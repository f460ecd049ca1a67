"""The galleries on disk: one PNG sheet per group, a CSV of every image's Dice and
attribution shares, and a JSON of the groups.

A sheet has one row per image: the photograph with the expert (green) and predicted
(magenta, dashed) outlines, then each chosen map over it with the expert outline.
Maps are computed again for the images drawn (at most three groups of ``n``), so
scoring a whole folder never holds more than one image's maps.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

import numpy as np

from ..data.layout import Sample
from ..figures import DISCLAIMER, save_figure
from ..jobs import Progress, relay
from ..report import EXPERT_COLOR, MODEL_COLOR, mask_outline
from .base import Explainer, TargetError
from .explain_files import to_working
from .gallery import DEFAULT_SIDE, GROUPS, CaseScore, Gallery, MapChoice, case_maps, dice_of, read_case, shrink_mask

SHEET_FILES = {"failures": "failures.png", "good explanations": "good_explanations.png", "bad explanations": "bad_explanations.png"}
MAP_NOTE = "maps: absolute attribution, each scaled to its 99.5th percentile; transparent where zero"


@dataclass
class SheetRow:
    """One image of a sheet, at the size its maps were computed on."""

    image: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray
    maps: dict[str, np.ndarray]
    score: CaseScore


def group_title(group: str, rank_by: str, shown: int, total: int, target: str) -> str:
    """What a sheet shows, in one line."""
    what = {"failures": "lowest Dice, worst first",
            "good explanations": f"highest share of {rank_by} attribution inside the expert mask",
            "bad explanations": f"lowest share of {rank_by} attribution inside the expert mask, lowest first"}[group]
    region = {"prediction": "the model's predicted lesion", "truth": "the expert mask"}.get(target, target)
    return f"{group.capitalize()}: {shown} of {total} images, {what}\n(maps explain {region})"


def gallery_sheet(rows: Sequence[SheetRow], maps: Sequence[str], path: str | Path, title: str) -> Path:
    """Draw one group as a PNG: a row per image, the photograph with both outlines, then each map."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cols = 1 + len(maps)
    fig, axes = plt.subplots(max(1, len(rows)), cols, figsize=(2.7 * cols + 0.9, 2.75 * max(1, len(rows)) + 0.9), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no image in this group", ha="center", va="center", transform=axes[0, 0].transAxes)
    heat = None
    for r, row in enumerate(rows):
        axes[r, 0].imshow(row.image)
        mask_outline(axes[r, 0], row.truth, EXPERT_COLOR, "-")
        mask_outline(axes[r, 0], row.prediction, MODEL_COLOR, "--")
        axes[r, 0].set_title(f"{row.score.id}\nDice {row.score.dice:.3f} · mask {row.score.mask_area:.0%} of frame", fontsize=8)
        for c, name in enumerate(maps, start=1):
            heat = _map_panel(axes[r, c], row, name) or heat
    fig.suptitle(title, fontsize=10)
    fig.text(0.5, 0.012, f"green: expert mask · magenta dashed: model · {MAP_NOTE}\n{DISCLAIMER}", ha="center", fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.03, 0.9, 0.97))
    if heat is not None:
        bar = fig.colorbar(heat, cax=fig.add_axes((0.91, 0.3, 0.012, 0.4)))
        bar.set_label("attribution (scaled)", fontsize=7)
    return save_figure(fig, path)


def _map_panel(ax, row: SheetRow, name: str):
    """One map over the photograph with the expert outline; the image artist, or None without a map."""
    ax.imshow(row.image)
    mask_outline(ax, row.truth, EXPERT_COLOR, "-", linewidth=0.9)
    share = row.score.shares.get(name, math.nan)
    ax.set_title(f"{name}\n{_percent(share)} inside expert mask", fontsize=8)
    values = row.maps.get(name)
    if values is None:
        ax.text(0.5, 0.5, "no lesion predicted:\nnothing to explain", ha="center", va="center", color="white", fontsize=8, transform=ax.transAxes)
        return None
    shown = display_values(values)
    return ax.imshow(shown, cmap="inferno", vmin=0.0, vmax=1.0, alpha=0.8 * shown)


def display_values(values: np.ndarray) -> np.ndarray:
    """|map| divided by its 99.5th percentile and clipped to [0, 1] (zeros stay zero)."""
    magnitude = np.abs(np.asarray(values, np.float32))
    top = float(np.percentile(magnitude, 99.5)) or float(magnitude.max()) or 1.0
    return np.clip(magnitude / top, 0.0, 1.0)


def _percent(share: float) -> str:
    return f"{share:.1%}" if math.isfinite(share) else "n/a"


def write_scores(gallery: Gallery, path: str | Path) -> Path:
    """Every image's Dice, attribution share per map (empty: no attribution) and groups, as CSV."""
    member = {i: [g for g in GROUPS if i in gallery.groups[g]] for i in (c.id for c in gallery.cases)}
    path = Path(path)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "dice", "mask area", *(f"share {m}" for m in gallery.maps), "groups"])
        for case in gallery.cases:
            shares = [f"{case.shares[m]:.4f}" if math.isfinite(case.shares[m]) else "" for m in gallery.maps]
            writer.writerow([case.id, f"{case.dice:.4f}", f"{case.mask_area:.4f}", *shares, "; ".join(member[case.id])])
    return path


def write_gallery(segmenter, samples: Sequence[Sample], gallery: Gallery, choices: Sequence[MapChoice], out: str | Path,
                  side: int = DEFAULT_SIDE, meta: dict | None = None) -> Generator[Progress, None, dict[str, Path]]:
    """Draw the three sheets of a scored :class:`~.gallery.Gallery` into ``out`` and write
    ``gallery.csv`` and ``gallery.json``; the paths written, by group and ``csv``, ``json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_id = {s.id: s for s in samples}
    picked = list(dict.fromkeys(i for g in GROUPS for i in gallery.groups[g]))
    explainer = Explainer.for_model(segmenter.bundle.model, segmenter.threshold)
    rows = {}
    for k, image_id in enumerate(picked):
        yield Progress(k, len(picked) + 1, f"drawing {image_id}")
        rows[image_id] = yield from _sheet_row(segmenter, explainer, by_id[image_id], gallery, choices, side,
                                               lambda p, k=k, i=image_id: Progress(k, len(picked) + 1, f"drawing {i}: {p.message}"))
    yield Progress(len(picked), len(picked) + 1, "writing the sheets")
    paths: dict[str, Path] = {}
    for group in GROUPS:
        title = group_title(group, gallery.maps[0], len(gallery.groups[group]), len(gallery.cases), gallery.target)
        paths[group] = gallery_sheet([rows[i] for i in gallery.groups[group]], gallery.maps, out / SHEET_FILES[group], title)
    paths["csv"] = write_scores(gallery, out / "gallery.csv")
    paths["json"] = out / "gallery.json"
    summary = {**(meta or {}), "disclaimer": DISCLAIMER, "n_images": len(gallery.cases), "ranked_by": gallery.maps[0],
               "share": "share of the map's absolute attribution inside the expert mask", "mean_share": mean_shares(gallery),
               "sheets": {g: paths[g].name for g in GROUPS}, **gallery.as_dict()}
    paths["json"].write_text(json.dumps(summary, indent=2, default=float) + "\n")
    yield Progress(len(picked) + 1, len(picked) + 1, "done")
    return paths


def _sheet_row(segmenter, explainer: Explainer, sample: Sample, gallery: Gallery, choices: Sequence[MapChoice], side: int,
               progress) -> Generator[Progress, None, SheetRow]:
    image, truth = read_case(sample)
    _, prediction = dice_of(segmenter, image, truth)
    small, small_truth = to_working(image, truth, side)
    try:
        maps = yield from relay(case_maps(explainer, small, small_truth, choices, gallery.target), progress)
    except TargetError:
        maps = {}
    return SheetRow(small, small_truth, shrink_mask(prediction, small.shape[:2]), maps, gallery.case(sample.id))


def mean_shares(gallery: Gallery) -> dict[str, float | None]:
    """Mean attribution share per map over the images that have one (None when none has)."""
    out = {}
    for name in gallery.maps:
        values = [c.shares[name] for c in gallery.cases if math.isfinite(c.shares[name])]
        out[name] = float(np.mean(values)) if values else None
    return out
