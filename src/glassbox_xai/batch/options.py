"""Command-line options of archive runs; light to import (no model, no Dask)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .inputs import LIST_SUFFIXES, Shard

CHUNK = 16  # images per task: small enough to lose little on a crash, large enough to hide scheduling


def add_batch_args(parser: argparse.ArgumentParser, records: bool = False) -> None:
    """The options every batch command shares."""
    group = parser.add_argument_group("archive runs")
    group.add_argument("--resume", action="store_true", help="keep outputs already complete and valid; do the rest")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on a running Dask cluster, e.g. tcp://10.0.0.1:8786")
    group.add_argument("--shard", type=Shard.parse, metavar="I/N", help="process only shard I of N (0 <= I < N), for array jobs")
    group.add_argument("--failures", type=Path, metavar="CSV", help="where to list images that failed, with the reason")
    if records:
        group.add_argument("--state", type=Path, metavar="DIR", help="folder of per-image results kept for --resume (default: beside the output, <name>_records)")
    group.add_argument("--chunk-size", type=int, default=CHUNK, help=f"images per task (default {CHUNK})")


def requested(args: argparse.Namespace, inputs: list[Path] | None = None) -> bool:
    """Whether a command must go through the batch runner (an archive option or a list file)."""
    options = any(getattr(args, name, None) for name in ("resume", "workers", "scheduler", "shard", "failures"))
    return options or any(Path(p).suffix.lower() in LIST_SUFFIXES for p in inputs or [])
