"""Size and wall time of ``glassbox explain --method all`` on a native photograph, cold and warm.

    .venv/bin/python benchmarks/explain_output.py [--model BUNDLE] [--megapixels 12] [--repeats 1] [--src OTHER/src --src-label TEXT]

The photograph is the largest of ``shared/data/native_samples`` (3,872 x 2,592, 10 MP);
``--megapixels 12`` adds the same photograph upscaled (bicubic) to 12 MP, as a JPEG in a
temporary folder (never in the repository). For each photograph:

* **cold**: the command itself in a fresh process (``python -m glassbox_xai.cli explain
  PHOTO -o OUT --method all``), from start-up (TensorFlow's import, the model's loading)
  to exit; the bytes it wrote; its CPU seconds (user + system, every thread); and any
  TensorFlow start-up line it printed.
* **warm**: in one fresh process, the model loaded once, then the command's own
  per-photograph step (``cli._explain_one``: read, explain, write the folder) twice; the
  second call is the warm time (the napari worker's case: its model stays loaded).

The machine is shared, so every row carries the 1-minute load average before and after
it. A process's CPU seconds barely depend on the load, and on an idle 2-core machine its
wall time would be at most about its CPU seconds (and at least half of them).

``--src`` runs the cold command from another checkout's ``src`` (e.g. an older commit
unpacked with ``git archive``), for a before/after table in one session.

Writes ``benchmarks/results/explain_output.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT.parent / "shared" / "data" / "native_samples"
RESULTS = ROOT / "benchmarks" / "results"
NOISE = re.compile(r"absl::InitializeLog|oneDNN|cuda|cpu_feature_guard|^[IWE]0000 ", re.MULTILINE)

WARM = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter(); c0 = time.process_time()
from glassbox_xai import cli
from glassbox_xai.data.layout import discover
from glassbox_xai.model.registry import resolve_bundle
from glassbox_xai.xai import METHODS
args = cli._parser().parse_args(["explain", sys.argv[1], "-o", sys.argv[2], "--method", "all", *sys.argv[3:]])
bundle = resolve_bundle(args.variant, args.model)
segmenter = cli._segmenter(bundle, args)
(sample,) = discover([Path(sys.argv[1])])
calls = [{"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}]  # start-up and model
for n in range(2):
    t, c = time.perf_counter(), time.process_time()
    cli._explain_one(args, segmenter, bundle, sample, METHODS, f"call {n + 1}", [])
    calls.append({"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c})
print("RESULT " + json.dumps(calls))
"""


def load() -> float:
    return os.getloadavg()[0]


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def run(argv: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``argv``; return the finished process, its wall seconds and its CPU seconds (user + system)."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done, wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def cold(photo: Path, out: Path, model: list[str], src: Path | None, label: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}  # the command must quieten TensorFlow itself
    if src is not None:
        env["PYTHONPATH"] = str(src)
    load_before = load()
    done, wall, cpu = run([sys.executable, "-m", "glassbox_xai.cli", "explain", str(photo), "-o", str(out), "--method", "all", *model], env)
    written, files = folder_bytes(out)
    noise = [line for line in (done.stderr + done.stdout).splitlines() if NOISE.search(line)]
    return {"run": "cold" if src is None else f"cold, {label or src}", "seconds": wall, "cpu_seconds": cpu, "written_mb": written / 1e6,
            "files": files, "tensorflow_lines": len(noise), "load_before": load_before, "load_after": load()}


def warm(photo: Path, out: Path, model: list[str]) -> dict:
    load_before = load()
    done, _, _ = run([sys.executable, "-c", WARM, str(photo), str(out), *model])
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    start, first, second = json.loads(line[len("RESULT "):])
    written, files = folder_bytes(out)
    return {"run": "warm (2nd call, model loaded)", "seconds": second["seconds"], "cpu_seconds": second["cpu_seconds"],
            "first_call_seconds": first["seconds"], "startup_seconds": start["seconds"], "written_mb": written / 1e6, "files": files,
            "load_before": load_before, "load_after": load()}


def upscaled(folder: Path, megapixels: float) -> Path:
    """The largest native sample resized (bicubic) to about ``megapixels`` MP, as a JPEG."""
    import cv2

    source = largest()
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    factor = (megapixels * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    path = folder / f"{source.stem}.jpg"
    cv2.imwrite(str(path), cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def largest() -> Path:
    from PIL import Image

    def pixels(path: Path) -> int:
        with Image.open(path) as image:
            return image.width * image.height

    return max(NATIVE.glob("ISIC_*[0-9].jpg"), key=pixels)


def table(rows: list[dict]) -> str:
    lines = ["| photograph | run | wall (s) | CPU (s) | written (MB) | files | TF lines | load before / after |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        tf = r.get("tensorflow_lines", "-")
        lines.append(f"| {r['photograph']} | {r['run']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['written_mb']:.1f} | "
                     f"{r['files']} | {tf} | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped dice variant)")
    parser.add_argument("--megapixels", type=float, nargs="*", default=[], help="also the photograph upscaled to these sizes")
    parser.add_argument("--repeats", type=int, default=1, help="cold and warm runs per photograph")
    parser.add_argument("--src", type=Path, help="also run the cold command from this src folder (an older checkout)")
    parser.add_argument("--src-label", default="", help="what --src is, for the table (default: its path)")
    args = parser.parse_args(argv)
    model = ["--model", str(args.model)] if args.model else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="glassbox-explain-output-") as tmp:
        photos = [largest()]
        for mp in args.megapixels:
            (Path(tmp) / f"{mp:g}mp").mkdir()
            photos.append(upscaled(Path(tmp) / f"{mp:g}mp", mp))
        for photo in photos:
            from PIL import Image

            with Image.open(photo) as image:
                label = f"{photo.name} {image.width} x {image.height} ({image.width * image.height / 1e6:.1f} MP)"
            runs = []
            for n in range(args.repeats):
                if args.src is not None:
                    runs.append(cold(photo, Path(tmp) / f"before-{len(rows)}-{n}", model, args.src, args.src_label))
                runs.append(cold(photo, Path(tmp) / f"cold-{len(rows)}-{n}", model, None))
                runs.append(warm(photo, Path(tmp) / f"warm-{len(rows)}-{n}", model))
            for row in runs:
                rows.append({"photograph": label, **row})
                print(rows[-1], file=sys.stderr)
    header = (f"# `glassbox explain --method all`: size and time\n\n{platform.machine()}, {os.cpu_count()} CPU cores "
              f"(shared with other jobs), Python {platform.python_version()}, model {args.model or 'dice (shipped)'}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}.\n\nTargets (issue 13, item 5): at most 60 MB written, 20 s warm and 40 s "
              f"cold on 2 cores. Load = 1-minute load average before / after the run; CPU = user + system seconds of "
              f"every thread (an idle 2-core machine would take at most about that long).\n\n")
    text = header + table(rows) + "\n"
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "explain_output.md").write_text(text, encoding="utf-8")
    (RESULTS / "explain_output.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
