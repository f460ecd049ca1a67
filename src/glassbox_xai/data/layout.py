"""Finding images and their masks: ISIC 2018 layouts, flat folders and single files.

Recognised layouts:

* the ISIC 2018 release: ``ISIC2018_Task1-2_{Training,Validation,Test}_Input/``
  beside ``ISIC2018_Task1_{...}_GroundTruth/`` (masks ``<id>_segmentation.png``),
  given as the parent folder or as one ``_Input`` folder;
* a folder of images with ``<stem>_segmentation.png`` masks beside them;
* a folder of images alone, or single image files;
* any of these with an explicit ``masks_dir``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .io import IMAGE_EXTENSIONS, MaskError

MASK_SUFFIX = "_segmentation"
_ISIC_INPUT = re.compile(r"^ISIC2018_Task1-2_(Training|Validation|Test)_Input$")
_NOT_PHOTOS = ("_segmentation", "_superpixels", "_mask")


class NoImagesError(FileNotFoundError):
    """A path holds no image of a supported type."""


@dataclass(frozen=True)
class Sample:
    """One photograph and, when there is one, its expert mask."""

    id: str
    image: Path
    mask: Path | None = None


def mask_name(image: str | Path) -> str:
    """The ISIC mask file name for an image: ``<stem>_segmentation.png``."""
    return f"{Path(image).stem}{MASK_SUFFIX}.png"


def require_masks(samples: Iterable[Sample], why: str) -> None:
    """Refuse samples of which some have no mask, naming the first; ``why`` says what needs them.

    Raises:
        MaskError: an image has no mask.
    """
    missing = [s for s in samples if s.mask is None]
    if missing:
        raise MaskError(f"{len(missing)} image(s) have no mask, e.g. {missing[0].image}; {why}")


def listed_samples(root: str | Path, id_list: str | Path, limit: int | None = None) -> list[Sample]:
    """The image/mask pairs under ``root`` whose ids the text file ``id_list`` lists (e.g. a
    split's ``dev_val.txt``), in its order, the first ``limit`` of them.

    Raises:
        FileNotFoundError: a listed id has no pair under ``root`` (the message names the list and one id).
    """
    root = Path(root)
    ids = Path(id_list).read_text().split()
    by_id = {s.id: s for s in discover(root, require_masks=True)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise FileNotFoundError(f"{len(missing)} id(s) of {id_list} have no image in {root}, e.g. {missing[0]}")
    return [by_id[i] for i in ids[:limit]]


def discover(paths: str | Path | Iterable[str | Path], masks_dir: str | Path | None = None, require_masks: bool = False) -> list[Sample]:
    """All samples under ``paths`` (files or folders), sorted by id within each path.

    Raises:
        NoImagesError: a path does not exist or holds no supported image.
        MaskError: ``require_masks`` is set and an image has no mask.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    samples: list[Sample] = []
    for path in map(Path, paths):
        samples.extend(_discover_one(path, Path(masks_dir) if masks_dir else None))
    if require_masks:
        missing = [s for s in samples if s.mask is None]
        if missing:
            where = Path(masks_dir) if masks_dir else _default_masks_dir(missing[0].image.parent)
            raise MaskError(
                f"{len(missing)} image(s) have no mask, e.g. {missing[0].image.name}: expected "
                f"{where / mask_name(missing[0].image)}"
            )
    return samples


def _discover_one(path: Path, masks_dir: Path | None) -> list[Sample]:
    if not path.exists():
        raise NoImagesError(f"{path} does not exist")
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise NoImagesError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(IMAGE_EXTENSIONS)}")
        return [_sample(path, masks_dir or _default_masks_dir(path.parent))]
    isic_inputs = sorted(p for p in path.iterdir() if p.is_dir() and _ISIC_INPUT.match(p.name))
    if isic_inputs:
        return [s for d in isic_inputs for s in _discover_one(d, masks_dir)]
    if masks_dir is None:
        masks_dir = _default_masks_dir(path)
    images = sorted(p for p in path.iterdir() if _is_photo(p))
    if not images:
        raise NoImagesError(f"no images found in {path} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return [_sample(p, masks_dir) for p in images]


def _default_masks_dir(folder: Path) -> Path:
    """Where masks of the images in ``folder`` are: the ISIC ``_GroundTruth`` folder
    beside an ISIC ``_Input`` folder, otherwise ``folder`` itself."""
    match = _ISIC_INPUT.match(folder.name)
    return folder.parent / f"ISIC2018_Task1_{match.group(1)}_GroundTruth" if match else folder


def _is_photo(path: Path) -> bool:
    return (
        path.is_file()
        and not path.name.startswith(".")
        and path.suffix.lower() in IMAGE_EXTENSIONS
        and not path.stem.endswith(_NOT_PHOTOS)
    )


def _sample(image: Path, masks_dir: Path) -> Sample:
    mask = masks_dir / mask_name(image)
    return Sample(id=image.stem, image=image, mask=mask if mask.is_file() else None)
