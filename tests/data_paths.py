"""Where the real ISIC data lives: ../shared/data beside the repository (never inside it)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISIC = DATA / "isic2018_task1_512"
ISIC_IMAGES = ISIC / "ISIC2018_Task1-2_Training_Input"
ISIC_MASKS = ISIC / "ISIC2018_Task1_Training_GroundTruth"
NATIVE = DATA / "native_samples"


def split_ids(name: str) -> list[str]:
    """Ids of a development split file (``dev_train`` or ``dev_val``)."""
    return (ISIC / f"{name}.txt").read_text().split()
