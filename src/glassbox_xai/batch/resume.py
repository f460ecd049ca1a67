"""What is already done: complete masks, per-chunk record files, the failure report.

Every file is written atomically (temporary file, then rename), so after a kill -9
an output either exists whole or not at all; ``--resume`` trusts a mask only when it
reads back as a binary mask of its photograph's size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Iterable

from PIL import Image, UnidentifiedImageError

from ..data.io import MaskError, atomic_write, read_mask

log = logging.getLogger(__name__)
_SWAPPED = (5, 6, 7, 8)  # EXIF orientations that turn the photograph by 90 degrees


def image_shape(path: str | Path) -> tuple[int, int]:
    """(rows, columns) of a photograph as :func:`~glassbox_xai.data.io.read_image` returns it,
    from the file's header alone (EXIF rotation included)."""
    with Image.open(path) as image:
        columns, rows = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (columns, rows) if orientation in _SWAPPED else (rows, columns)


def mask_is_complete(mask: str | Path, image: str | Path) -> bool:
    """``mask`` exists and reads as a binary mask of ``image``'s size."""
    mask = Path(mask)
    if not mask.is_file():
        return False
    try:
        read_mask(mask, expected_shape=image_shape(image))
    except (MaskError, OSError, UnidentifiedImageError, ValueError) as exc:
        log.info("redoing %s: %s", mask, exc)
        return False
    return True


def remove_stale_temporaries(folder: Path, names: set[str]) -> int:
    """Delete the temporary files a killed run left in ``folder`` for outputs named in
    ``names`` (one listing of the folder, however large); returns how many."""
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.name[1:].rsplit(".", 2)[0] in names:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed


class RecordStore:
    """Per-image results of a job (scores, confusion counts) kept as one JSON file per
    finished chunk in a folder, so a killed run resumes from what it had finished."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def load(self) -> dict[str, dict]:
        """Every record written so far, by image id (damaged files are ignored and redone)."""
        records: dict[str, dict] = {}
        if not self.folder.is_dir():
            return records
        for part in sorted(self.folder.glob("part-*.json")):
            try:
                for record in json.loads(part.read_text(encoding="utf-8"))["records"]:
                    records[record["id"]] = record
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring %s (%s); its images are redone", part, exc)
        return records

    def write(self, records: list[dict]) -> Path | None:
        """Keep ``records`` (one finished chunk); the file name is a hash of their ids."""
        if not records:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1("\n".join(r["id"] for r in records).encode()).hexdigest()[:16]
        data = json.dumps({"records": records}, indent=0).encode()
        return atomic_write(self.folder / f"part-{digest}.json", lambda stream: stream.write(data))


def write_csv(path: str | Path, header: list[str], rows: Iterable[list]) -> Path:
    """Write a CSV file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    return atomic_write(path, lambda stream: stream.write(data))


def write_failure_report(path: str | Path, failures: list[dict]) -> Path:
    """``id,image,reason`` for every image that could not be processed (header only when none)."""
    return write_csv(path, ["id", "image", "reason"], ([f["id"], f["image"], f["message"]] for f in failures))
