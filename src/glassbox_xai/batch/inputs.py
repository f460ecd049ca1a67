"""What a batch job runs on: folders, list files of paths, and deterministic shards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..data.layout import Sample, discover, mask_name

LIST_SUFFIXES = (".txt", ".lst", ".list")


class InputError(ValueError):
    """A batch input (list file, shard, duplicate name) is not usable; the message names it."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based: ``0/4`` .. ``3/4``)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """Read ``I/N`` (0 <= I < N), as a batch scheduler's array index gives it."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise InputError(f"--shard {text!r}: expected I/N, e.g. 0/4 for the first of four shards")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 0 <= index < count:
            raise InputError(f"--shard {text!r}: expected 0 <= I < N (shards are numbered from 0)")
        return cls(index, count)

    def select(self, samples: Sequence[Sample]) -> list[Sample]:
        """This shard's samples: every N-th in order of (id, path), starting at I.

        The order does not depend on the order the inputs were given in, so the N
        shards are disjoint, cover the input, and differ in size by at most one.
        """
        ordered = sorted(samples, key=lambda s: (s.id, str(s.image)))
        return ordered[self.index :: self.count]


def read_list_file(path: Path) -> list[Path]:
    """Paths listed one per line (blank lines and ``#`` comments skipped); relative
    paths are taken from the list file's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list file {path}: {exc}") from None
    listed = [(number, line.strip()) for number, line in enumerate(lines, start=1)]
    listed = [(number, Path(e) if Path(e).is_absolute() else path.parent / e) for number, e in listed if e and not e.startswith("#")]
    if not listed:
        raise InputError(f"the list file {path} names no images (one path per line expected)")
    missing = [(number, p) for number, p in listed if not p.exists()]
    if missing:
        shown = "; ".join(f"line {number}: {p}" for number, p in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"the list file {path} names {len(missing)} path(s) that do not exist ({shown}{more}); "
                         "expected one image file or folder per line, relative paths from the list file's folder")
    return [p for _, p in listed]


def collect(paths: Iterable[str | Path], masks_dir: str | Path | None = None, require_masks: bool = False) -> list[Sample]:
    """Every sample under ``paths``: image files, folders, and list files (``.txt``, ``.lst``)
    of image files or folders. Ids must be unique (each names one output).

    Raises:
        InputError: a list file is unreadable or empty, or two images share an id.
        NoImagesError, MaskError: as :func:`~glassbox_xai.data.layout.discover`.
    """
    expanded: list[Path] = []
    for path in map(Path, paths):
        expanded.extend(read_list_file(path) if path.is_file() and path.suffix.lower() in LIST_SUFFIXES else [path])
    samples = unique(discover(expanded, masks_dir=masks_dir, require_masks=require_masks))
    refuse_duplicate_ids(samples)
    return samples


def refuse_duplicate_ids(samples: Iterable[Sample]) -> None:
    """Raise :class:`InputError` when two images would write the same output."""
    seen: dict[str, Path] = {}
    for sample in samples:
        if sample.id in seen and seen[sample.id] != sample.image:
            raise InputError(f"{sample.image} and {seen[sample.id]} would both write {mask_name(sample.image)}; "
                             "process them into separate output folders")
        seen[sample.id] = sample.image


def unique(samples: Iterable[Sample]) -> list[Sample]:
    """``samples`` without repeats of the same image file (a folder listed twice)."""
    seen: set[Path] = set()
    kept = []
    for sample in samples:
        if sample.image.resolve() not in seen:
            seen.add(sample.image.resolve())
            kept.append(sample)
    return kept
