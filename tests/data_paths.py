"""Where the real ISIC data lives: ../shared/data beside the repository (never inside it)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISIC = DATA / "isic2018_task1_512"
ISIC_IMAGES = ISIC / "ISIC2018_Task1-2_Training_Input"
ISIC_MASKS = ISIC / "ISIC2018_Task1_Training_GroundTruth"
NATIVE = DATA / "native_samples"
PH2 = DATA / "ph2_shifted"


def split_ids(name: str) -> list[str]:
    """Ids of a development split file (``dev_train`` or ``dev_val``)."""
    return (ISIC / f"{name}.txt").read_text().split()


def copy_dev_val(folder: Path, n: int, masks: bool = True) -> list[str]:
    """Copy the first ``n`` dev_val photographs (and their expert masks) into ``folder``,
    created if need be, so a test can work on real files without touching the data."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    ids = split_ids("dev_val")[:n]
    for image_id in ids:
        shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", folder)
        if masks:
            shutil.copy(ISIC_MASKS / f"{image_id}_segmentation.png", folder)
    return ids
