"""Seconds per explain request on a warm model, as the worker serves them: the explainer
kept per model (its compiled graphs reused) against a fresh explainer per request (every
graph traced again), in the same run, alternating, on real dev_val photographs.

    nice -n 5 .venv/bin/python benchmarks/explain_requests.py --requests 4

Writes benchmarks/results/explain_requests.md (with the load average: timings on a shared
machine say so).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"
METHODS = ("saliency", "saliency-sigmoid", "gradcam")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4, help="requests per setting (default 4)")
    parser.add_argument("--variant", default="dice")
    args = parser.parse_args()

    from glassbox_xai.tf_import import import_tensorflow

    import_tensorflow()
    from glassbox_xai.data.io import read_image
    from glassbox_xai.data.layout import discover
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.jobs import drive
    from glassbox_xai.xai.base import Explainer
    from glassbox_xai.xai.panel import explain

    ids = (DATA / "dev_val.txt").read_text().split()[: 2 * args.requests + 1]
    samples = {s.id: s for s in discover(DATA) if s.id in ids}
    segmenter = Segmenter.from_bundle(ROOT / "src" / "glassbox_xai" / "weights" / args.variant)
    kept_for_model = Explainer.for_model.__func__

    def fresh(cls, model, threshold=0.5):  # the behaviour before: one explainer, and its graphs, per request
        return cls(model, threshold)

    drive(explain(segmenter, read_image(samples[ids[0]].image), methods=METHODS))  # warm-up: the model and the kept graphs
    seconds: dict[str, list[float]] = {"kept": [], "fresh": []}
    for n, image_id in enumerate(ids[1:]):
        setting = ("kept", "fresh")[n % 2]
        Explainer.for_model = classmethod(kept_for_model if setting == "kept" else fresh)
        image = read_image(samples[image_id].image)
        started = time.perf_counter()
        drive(explain(segmenter, image, methods=METHODS))
        seconds[setting].append(time.perf_counter() - started)
        print(f"{setting:5s} {image_id}: {seconds[setting][-1]:.2f} s", flush=True)
    kept, fresh_s = statistics.median(seconds["kept"]), statistics.median(seconds["fresh"])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    text = (f"# Explain requests on a warm model ({args.variant}, {', '.join(METHODS)}, 512 px dev_val photographs)\n\n"
            f"| explainer | requests | median s | all s |\n|---|---|---|---|\n"
            f"| kept per model | {len(seconds['kept'])} | {kept:.2f} | {', '.join(f'{s:.2f}' for s in seconds['kept'])} |\n"
            f"| fresh per request (before) | {len(seconds['fresh'])} | {fresh_s:.2f} | {', '.join(f'{s:.2f}' for s in seconds['fresh'])} |\n\n"
            f"Kept / fresh: **{kept / fresh_s:.2f}x** the time. Load average at the end: {load} (2 cores).\n")
    out = ROOT / "benchmarks" / "results" / "explain_requests.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
