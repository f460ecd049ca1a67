"""Archive runs: Dask against plain ``glassbox predict``, scale, and crash safety, in one run.

    nice -n 5 .venv/bin/python benchmarks/archive_predict.py [--images 200] [--scale 1000] [--kills 20]

1. speed: plain ``glassbox predict`` and ``glassbox predict --workers 2`` on the same
   ``--images`` dev_val photographs (commands timed end to end, start-up included);
   the ratio plain/Dask (1.0 = no overhead) and whether every mask is byte-identical;
2. scale: ``--scale`` photographs through a local cluster (chunks of 16): images per
   second, and the workers' idle time per task (wall x workers - busy seconds, over
   tasks: scheduling, transfers and ramp-up together); a projection for 100,000 images;
3. crash safety: ``glassbox predict --resume`` killed with SIGKILL (whole process group)
   ``--kills`` times, each at a random moment within ``--kill-window`` seconds after that
   run wrote its first new mask (so the kills land while masks are being written), then run to the end with ``--resume``: every mask
   present, valid, identical to the plain run's, and no temporary file left behind.

Prints a Markdown report; ``--json`` keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
ISIC = ROOT.parent / "shared" / "data" / "isic2018_task1_512"
GLASSBOX = [sys.executable, "-m", "glassbox_xai.cli"]


def image_list(folder: Path, count: int, name: str) -> Path:
    """A list file of the first ``count`` dev_val (then dev_train) photographs."""
    ids = (ISIC / "dev_val.txt").read_text().split() + (ISIC / "dev_train.txt").read_text().split()
    if count > len(ids):
        raise SystemExit(f"only {len(ids)} images are available, asked for {count}")
    path = folder / f"{name}.txt"
    path.write_text("".join(f"{ISIC / 'ISIC2018_Task1-2_Training_Input' / i}.jpg\n" for i in ids[:count]))
    return path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def same_masks(a: Path, b: Path) -> tuple[int, int]:
    """(masks in a, masks whose bytes differ from b's or are missing there)."""
    masks = sorted(a.glob("*_segmentation.png"))
    differ = sum(1 for m in masks if not (b / m.name).is_file() or (b / m.name).read_bytes() != m.read_bytes())
    return len(masks), differ


def speed(work: Path, count: int, workers: int) -> dict:
    listing = image_list(work, count, "speed")
    plain = timed(GLASSBOX + ["predict", str(listing), "-o", str(work / "plain")])
    dask = timed(GLASSBOX + ["predict", str(listing), "-o", str(work / "dask"), "--workers", str(workers)])
    n, differ = same_masks(work / "plain", work / "dask")
    return {"images": count, "workers": workers, "plain_s": plain, "dask_s": dask, "ratio": plain / dask, "masks": n, "differ": differ}


def scale(work: Path, count: int, workers: int) -> dict:
    from glassbox_xai.batch.commands import collect
    from glassbox_xai.batch.dask_runner import dask_client
    from glassbox_xai.batch.jobs import Item, Job, ModelSpec
    from glassbox_xai.batch.runner import run_batch
    from glassbox_xai.data.layout import mask_name
    from glassbox_xai.model.registry import resolve_bundle

    samples = collect([image_list(work, count, "scale")])
    out = work / "scale"
    items = [Item(s.id, str(s.image), None, str(out / mask_name(s.image))) for s in samples]
    with dask_client(workers) as client:
        client.wait_for_workers(workers)
        start = time.perf_counter()
        results = [r for r in run_batch(ModelSpec(str(resolve_bundle(None, None))), Job("predict"), items, client) if isinstance(r, dict)]
        wall = time.perf_counter() - start
    busy = sum(r["seconds"] for r in results)
    return {"images": count, "workers": workers, "tasks": len(results), "wall_s": wall, "images_per_s": count / wall,
            "busy_s": busy, "idle_per_task_s": max(0.0, wall * workers - busy) / len(results),
            "written": sum(r["status"] == "written" for res in results for r in res["records"])}


def crash(work: Path, count: int, kills: int, reference: Path, workers: int, seed: int, window: float) -> dict:
    """Start the run, wait until it writes its first new mask, kill -9 its whole process
    group at a random moment within ``window`` seconds after that; ``kills`` times."""
    listing = image_list(work, count, "speed")
    out = work / "crash"
    command = GLASSBOX + ["predict", str(listing), "-o", str(out), "--resume"] + (["--workers", str(workers)] if workers else [])
    rng = random.Random(seed)
    killed_after, masks_after_each = [], []
    for _ in range(kills):
        before = len(list(out.glob("*_segmentation.png")))
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while process.poll() is None and len(list(out.glob("*_segmentation.png"))) <= before:
            time.sleep(0.02)
        moment = rng.uniform(0.0, window)
        try:
            process.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed_after.append(round(moment, 2))
        masks_after_each.append(len(list(out.glob("*_segmentation.png"))))
    leftovers = len(list(out.glob(".*.tmp")))
    invalid = sum(1 for m in out.glob("*_segmentation.png") if not _valid(m))
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n, differ = same_masks(reference, out)
    return {"images": count, "kills": len(killed_after), "killed_after_first_mask_s": killed_after, "masks_after_each": masks_after_each,
            "invalid_masks_after_kills": invalid, "temporaries_after_kills": leftovers, "temporaries_at_end": len(list(out.glob(".*.tmp"))),
            "masks": len(list(out.glob("*_segmentation.png"))), "differ_from_plain": differ, "plain_masks": n}


def _valid(mask: Path) -> bool:
    from glassbox_xai.batch.resume import mask_is_complete

    return mask_is_complete(mask, ISIC / "ISIC2018_Task1-2_Training_Input" / (mask.name[: -len("_segmentation.png")] + ".jpg"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--scale", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--crash-workers", type=int, default=0, help="kill runs on a local cluster of this many workers (default: in-process)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kill-window", type=float, default=5.0, help="kill within this many seconds after a run's first new mask")
    parser.add_argument("--skip", nargs="*", default=[], choices=("speed", "scale", "crash"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    report: dict = {"cpus": len(os.sched_getaffinity(0)), "load_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="glassbox-archive-") as tmp:
        work = Path(tmp)
        if "speed" not in args.skip:
            report["speed"] = speed(work, args.images, args.workers)
            print(json.dumps(report["speed"]), flush=True)
        if "scale" not in args.skip:
            report["scale"] = scale(work, args.scale, args.workers)
            print(json.dumps(report["scale"]), flush=True)
        if "crash" not in args.skip:
            if "speed" in args.skip:
                subprocess.run(GLASSBOX + ["predict", str(image_list(work, args.images, "speed")), "-o", str(work / "plain")], check=True, stdout=subprocess.DEVNULL)
            report["crash"] = crash(work, args.images, args.kills, work / "plain", args.crash_workers, args.seed, args.kill_window)
            print(json.dumps(report["crash"]), flush=True)
    report["load_at_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = [f"{report['cpus']} CPU(s); load average {report['load_at_start']:.1f} at start, {report['load_at_end']:.1f} at end", ""]
    if "speed" in report:
        s = report["speed"]
        lines += [f"| {s['images']} images | plain predict | --workers {s['workers']} | plain/Dask |", "| --- | --- | --- | --- |",
                  f"| seconds | {s['plain_s']:.1f} | {s['dask_s']:.1f} | {s['ratio']:.2f}x |",
                  f"masks identical: {s['masks'] - s['differ']} of {s['masks']}", ""]
    if "scale" in report:
        s = report["scale"]
        per_machine_h = 100_000 / s["images_per_s"] / 3600
        lines += [f"scale: {s['images']} images, {s['tasks']} tasks on {s['workers']} workers: {s['images_per_s']:.2f} images/s, "
                  f"worker idle {s['idle_per_task_s'] * 1000:.0f} ms per task; 100,000 images: {per_machine_h:.1f} h on one such machine, "
                  + ", ".join(f"{per_machine_h / n:.1f} h on {n}" for n in (4, 16, 64)), ""]
    if "crash" in report:
        c = report["crash"]
        lines += [f"crash: {c['kills']} kill -9 of the whole run (masks on disk after each: {c['masks_after_each']}); "
                  f"invalid masks after the kills: {c['invalid_masks_after_kills']}; then --resume: {c['masks']} of {c['images']} masks present, "
                  f"{c['differ_from_plain']} differ from the plain run; temporaries left by the kills {c['temporaries_after_kills']}, at the end {c['temporaries_at_end']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
