"""Peak memory of ``glassbox explain --method all`` on a 7,000 x 7,000 photograph.

    .venv/bin/python benchmarks/explain_memory.py [--model BUNDLE] [--side 7000] [--maps full compact]

A real ISIC photograph (the largest of ``shared/data/native_samples``) is upscaled to
``--side`` x ``--side`` and saved as a JPEG in a temporary folder (never in the
repository). ``glassbox explain`` then runs on it in a child process, once per
``--maps`` choice (``full``: with ``--save-maps``; ``compact``: the default map store
only), while this script samples the resident memory of the child and of every process
it starts (the sum over the process tree: client and any worker) every 0.1 s; the
kernel's own peak (``ru_maxrss`` of the children) is reported beside it.

With ``--reference`` it also runs the whole panel at native resolution in one process
(what ``glassbox explain`` did before it worked on a bounded copy); that needs about
12 GB of free memory.

Prints a Markdown table and writes ``benchmarks/results/explain_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT.parent / "shared" / "data" / "native_samples"
RESULTS = ROOT / "benchmarks" / "results" / "explain_memory.json"

REFERENCE = """
import sys
from glassbox_xai.data.io import read_image
from glassbox_xai.inference import Segmenter
from glassbox_xai.jobs import drive
from glassbox_xai.model.registry import resolve_bundle
from glassbox_xai.xai.panel import METHODS, explain
segmenter = Segmenter.from_bundle(resolve_bundle(None, sys.argv[2] if len(sys.argv) > 2 else None))
panel = drive(explain(segmenter, read_image(sys.argv[1]), METHODS))
print(len(panel.maps), "maps at", panel.prediction.shape)
"""


def make_photograph(folder: Path, side: int) -> Path:
    """The largest real native sample upscaled to side x side (bicubic), as a JPEG."""
    import cv2

    source = max(NATIVE.glob("ISIC_*[0-9].jpg"), key=lambda p: p.stat().st_size)
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    big = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    path = folder / f"{source.stem}_{side}.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def run_measured(argv: list[str]) -> dict:
    """Run ``argv``; return the peak of the summed RSS of its process tree, sampled every 0.1 s."""
    import psutil

    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(child.pid)
    peak, peak_processes = 0, 1
    while child.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            total = sum(p.memory_info().rss for p in tree if p.is_running())
        except psutil.Error:
            continue
        if total > peak:
            peak, peak_processes = total, len(tree)
        time.sleep(0.1)
    output = child.stdout.read()
    maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit code {child.returncode}:\n{output[-3000:]}")
    return {
        "peak_tree_rss_gb": peak / 1e9,
        "processes_at_peak": peak_processes,
        "ru_maxrss_gb": maxrss_kb * 1024 / 1e9 if maxrss_kb > before else None,
        "seconds": time.perf_counter() - started,
        "output_tail": output.strip().splitlines()[-3:],
    }


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped dice variant)")
    parser.add_argument("--side", type=int, default=7000)
    parser.add_argument("--maps", nargs="+", choices=("full", "compact"), default=["full", "compact"],
                        help="full: glassbox explain --save-maps (float32 maps at the photograph's size); compact: without it")
    parser.add_argument("--reference", action="store_true", help="also the whole panel at native resolution (about 12 GB)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="glassbox-explain-memory-") as tmp:
        photo = make_photograph(Path(tmp), args.side)
        model = ["--model", str(args.model)] if args.model else []
        for maps in args.maps:
            out = Path(tmp) / f"out-{maps}"
            flags = ["--save-maps"] if maps == "full" else []
            result = run_measured([sys.executable, "-m", "glassbox_xai.cli", "explain", str(photo), "-o", str(out),
                                   "--method", "all", *flags, *model])
            rows.append({"run": " ".join(["glassbox explain --method all", *flags]), "written_gb": folder_size(out) / 1e9, **result})
            print(rows[-1], file=sys.stderr)
        if args.reference:
            result = run_measured([sys.executable, "-c", REFERENCE, str(photo), *([str(args.model)] if args.model else [])])
            rows.append({"run": "whole panel at native resolution (before)", "written_gb": 0.0, **result})
    print(f"\n{args.side} x {args.side} photograph, {platform.machine()}, Python {platform.python_version()}\n")
    print("| run | peak RSS, process tree (GB) | ru_maxrss (GB) | written (GB) | seconds |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        maxrss = f"{row['ru_maxrss_gb']:.2f}" if row["ru_maxrss_gb"] else "-"
        print(f"| {row['run']} | {row['peak_tree_rss_gb']:.2f} | {maxrss} | {row['written_gb']:.2f} | {row['seconds']:.0f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"side": args.side, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
