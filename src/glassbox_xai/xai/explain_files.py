"""Writing an explanation panel to disk: float TIFF maps at native resolution, overlay
PNGs, Grad-CAM sheets per stage, and a JSON of faithfulness numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..figures import DISCLAIMER
from .figures import map_figure, stage_sheet
from .panel import Panel


def slug(name: str) -> str:
    """A file-name-safe version of a map name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def write_panel(folder: str | Path, image: np.ndarray, panel: Panel, meta: dict) -> Path:
    """Write every map of ``panel`` into ``folder``; return the folder."""
    import tifffile

    folder = Path(folder)
    (folder / "maps").mkdir(parents=True, exist_ok=True)
    for name, values in panel.maps.items():
        tifffile.imwrite(folder / "maps" / f"{slug(name)}.tif", values.astype(np.float32), compression="zlib")
        if not name.startswith("gradcam "):
            map_figure(image, panel.prediction.mask, values, name, folder / f"{slug(name)}.png")
    for stage, layers in panel.gradcam_stages.items():
        maps = {layer: panel.maps[f"gradcam {layer}"] for layer in layers}
        if maps:
            stage_sheet(image, maps, stage, folder / f"gradcam_{stage}.png")
    report = {
        **meta,
        "disclaimer": DISCLAIMER,
        "shape": list(image.shape[:2]),
        "threshold": panel.prediction.threshold,
        "maps": sorted(panel.maps),
        "faithfulness": panel.faithfulness,
        "seconds": panel.seconds,
    }
    if "ig" in panel.faithfulness:
        report["completeness_error"] = panel.faithfulness["ig"]["completeness_error"]
    (folder / "explain.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    return folder
