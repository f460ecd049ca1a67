"""Crash injection for the retraining set: kill -9 a process accepting corrections at random moments.

    nice -n 5 .venv/bin/python benchmarks/store_crash.py [--kills 200] [--seed 0] [--json PATH]

Each round starts a child process that opens the set (``RetrainingSet(root)``: leftovers
removed, copies re-derived) and then saves corrections of a few real ISIC photographs
through the public :meth:`RetrainingSet.save`, each a different random mask, printing
``ack <id> <version> <sha256>`` once a save has returned. The parent kills it with
SIGKILL at a random moment: a fifth of the kills while it is opening the set
(recovering from the previous kill), the others while it is saving. After the last round the parent
reopens the set and checks every acknowledged version through
:meth:`RetrainingSet.read_version`:

* ``lost``: an acknowledged version that no longer exists;
* ``different``: it exists but its mask is not the one that was saved;
* ``unreadable``: it exists but cannot be read or fails its checksum;
* ``reused``: one (id, version) acknowledged twice with different masks (a version overwritten);
* ``temporary_files_left``: dot-files or staging folders anywhere in the set after reopening;
* ``damaged``: ids :meth:`RetrainingSet.check` reports (a damaged version, or ``masks/`` /
  ``sidecars/`` copies that are not the latest version);
* ``manifest_not_latest``: manifest items that do not name the newest published version;
* ``failed_to_open``: a child or the final check could not open the set after a kill (the run
  stops there, and every acknowledged version counts as unreadable).

All must be 0. Prints one result line and writes the numbers as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"  # as tests/data_paths.py resolves it
IMAGES = DATA / "ISIC2018_Task1-2_Training_Input"
PROVENANCE = {"weights_sha256": "0" * 64, "variant": "crash-test", "threshold": 0.5, "annotator": "crash", "seconds": 1.0}
CHECKS = ("lost", "different", "unreadable", "reused", "temporary_files_left", "damaged", "manifest_not_latest",
          "failed_to_open")


def mask_digest(mask: np.ndarray) -> str:
    mask = np.asarray(mask) > 0
    return hashlib.sha256(repr(mask.shape).encode() + np.packbits(mask).tobytes()).hexdigest()


def random_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """An ellipse of random centre and radii (a plausible lesion outline)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    cy, cx = rng.uniform(0.2, 0.8, 2) * shape
    ry, rx = rng.uniform(0.05, 0.4, 2) * shape
    return ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0


def image_paths(count: int) -> list[Path]:
    ids = (DATA / "dev_val.txt").read_text().split()[:count]
    return [IMAGES / f"{image_id}.jpg" for image_id in ids]


def child(root: Path, seed: int, images: int) -> None:
    """Open the set, then save corrections until killed, acknowledging each on stdout."""
    sys.path.insert(0, str(ROOT / "src"))
    from glassbox_xai.hitl.store import RetrainingSet

    store = RetrainingSet(root)
    print("ready", flush=True)
    rng = np.random.default_rng(seed)
    paths = image_paths(images)
    shape = (512, 512)
    while True:
        path = paths[rng.integers(len(paths))]
        corrected, predicted = random_mask(rng, shape), random_mask(rng, shape)
        side = store.save(path, shape, corrected, predicted, PROVENANCE)
        print(f"ack {side['id']} {side['version']} {mask_digest(corrected)}", flush=True)


def run_round(root: Path, seed: int, images: int, delay: float, after_ready: bool = False) -> tuple[list[str], float | None]:
    """One child killed ``delay`` seconds after its start (or after it opened the set, with
    ``after_ready``); its output lines and its start-up time."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, __file__, "--child", str(root), "--seed", str(seed), "--images", str(images)],
                               stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready: list[float] = []
    opened = threading.Event()

    def read() -> None:
        for line in process.stdout:
            if line.startswith("ready"):
                ready.append(time.monotonic() - started)
                opened.set()
            lines.append(line.strip())
        opened.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after_ready:
        opened.wait(120)
        started = time.monotonic()
    time.sleep(max(0.0, delay - (time.monotonic() - started)))
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    reader.join()
    if process.returncode != -signal.SIGKILL:  # it stopped by itself: its traceback is on stderr above
        lines.append(f"failed {process.returncode}")
    return lines, (ready[0] if ready else None)


def verify(root: Path, acked: dict[tuple[str, int], str], reused: int) -> dict[str, int]:
    """Reopen the set and check every acknowledged version."""
    sys.path.insert(0, str(ROOT / "src"))
    from glassbox_xai.hitl.store import RetrainingSet, StoreError

    counts = dict.fromkeys(CHECKS, 0)
    counts["reused"] = reused
    try:
        store = RetrainingSet(root)
    except StoreError as exc:
        print(f"the set cannot be opened after the kills: {exc}", file=sys.stderr)
        return {**counts, "failed_to_open": 1, "unreadable": len(acked), "published_versions": 0}
    for (image_id, version), digest in acked.items():
        if version not in store.versions(image_id):
            counts["lost"] += 1
            continue
        try:
            mask = store.read_version(image_id, version)
        except StoreError:
            counts["unreadable"] += 1
            continue
        counts["different"] += mask_digest(mask) != digest
    counts["temporary_files_left"] = sum(1 for p in root.rglob("*") if p.name.startswith("."))
    counts["damaged"] = len(store.check())
    items = store.manifest()["items"]
    counts["manifest_not_latest"] = sum(items.get(i, {}).get("version") != max(store.versions(i))
                                        for i in {i for i, _ in acked})
    counts["published_versions"] = sum(len(store.versions(i)) for i in items)
    return counts


def crash_run(root: Path, kills: int = 200, seed: int = 0, images: int = 4, window: float = 0.6,
              while_opening: float = 0.2, log=print) -> dict[str, int | float]:
    """``kills`` rounds of save-and-kill on the set at ``root``, then the checks (see the module doc).

    A share ``while_opening`` of the kills lands between the child's start and the moment it has
    opened the set (drawn over the start-up times seen so far); the others land at a random
    moment of the ``window`` seconds after it opened the set, while it saves."""
    rng = random.Random(seed)
    acked: dict[tuple[str, int], str] = {}
    reused = saves = failures = 0
    startups: list[float] = []
    began = time.monotonic()
    rounds = 0
    for round_ in range(kills):
        rounds += 1
        child_seed = seed * 100_003 + round_
        if startups and rng.random() < while_opening:
            lines, ready = run_round(root, child_seed, images, rng.uniform(0.0, float(np.median(startups))))
        else:
            lines, ready = run_round(root, child_seed, images, rng.uniform(0.0, window), after_ready=True)
        startups += [ready] if ready is not None else []
        for line in lines:
            if line.startswith("ack "):
                _, image_id, version, digest = line.split()
                key = (image_id, int(version))
                reused += key in acked and acked[key] != digest
                acked[key] = digest
                saves += 1
        if any(line.startswith("failed") for line in lines):
            failures += 1
            log(f"round {round_ + 1}: the saving process stopped by itself; stopping the run")
            break
        if (round_ + 1) % 20 == 0:
            log(f"{round_ + 1}/{kills} kills, {saves} saves acknowledged")
    counts = verify(root, acked, reused)
    counts["failed_to_open"] += failures
    return {"kills": rounds, "saves_acknowledged": saves, "seconds": round(time.monotonic() - began, 1),
            "child_startup_median_s": round(float(np.median(startups)) if startups else 0.0, 3), **counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="rounds of save-and-kill (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments and the masks")
    parser.add_argument("--images", type=int, default=4, help="photographs the corrections are spread over (default 4)")
    parser.add_argument("--window", type=float, default=0.6, help="seconds of saving after start-up a kill may land in")
    parser.add_argument("--dir", type=Path, help="where to make the set (default: a new temporary folder)")
    parser.add_argument("--json", type=Path, help="write the numbers here as JSON")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.seed, args.images)
        return 0
    root = args.dir or Path(tempfile.mkdtemp(prefix="store-crash-")) / "set"
    result = crash_run(root, args.kills, args.seed, args.images, args.window)
    failed = {k: result[k] for k in CHECKS if result[k]}
    print(f"store_crash: {result['kills']} kill -9, {result['saves_acknowledged']:,} saves acknowledged, "
          f"{result['published_versions']:,} versions published; " + ", ".join(f"{k} {result[k]}" for k in CHECKS)
          + f" ({result['seconds']} s; set at {root})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if not failed and args.dir is None:
        shutil.rmtree(root.parent)  # a failing set is kept for inspection
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
