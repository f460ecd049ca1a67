"""napari responsiveness: time from pressing Segment to the layers being shown, and the
longest stall of the Qt event loop while segmentation and integrated gradients run;
then the Review widget's Previous / Next / Accept on 512 px dev_val photographs and on
the largest native sample (3872x2592, 10 MP).

    xvfb-run -a .venv/bin/python benchmarks/gui_latency.py [--variant dice | --model BUNDLE] [--repeats 5]
        [--review-only] [--review-widget MODULE:CLASS]

``--review-widget`` measures another Review widget class (an earlier version kept
outside the package, say) for a before/after comparison.

A 10 ms QTimer heartbeat records the largest gap between its ticks. The peer is the
same job driven on the GUI thread (what a plugin without a thread worker does): it
shows what the thread worker saves. The worker process is warmed up first (its start
and TensorFlow import happen once per session and are reported separately).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"
NATIVE = ROOT.parent / "shared" / "data" / "native_samples"
LARGEST_NATIVE = "ISIC_0013082"  # 3872x2592


class Heartbeat:
    """Largest gap between ticks of a 10 ms timer."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.worst = 0.0

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last)
        self.last = now

    def start(self):
        self.last, self.worst = None, 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def settle(app, seconds: float) -> None:
    """Let the event loop run (and the heartbeat tick) for a while."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="dice")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--review-only", action="store_true", help="measure only the Review widget")
    parser.add_argument("--review-widget", help="MODULE:CLASS of the Review widget to measure (default: the plugin's)")
    args = parser.parse_args(argv)
    if args.review_only:
        return review_main(args)

    import napari
    from qtpy.QtWidgets import QApplication

    from glassbox_xai.data.io import read_image
    from glassbox_xai.napari import common

    image_id = (DATA / "dev_val.txt").read_text().split()[0]
    image = read_image(DATA / "ISIC2018_Task1-2_Training_Input" / f"{image_id}.jpg")
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    _, seg = viewer.window.add_plugin_dock_widget("glassbox-xai", "Segment lesion")
    _, exp = viewer.window.add_plugin_dock_widget("glassbox-xai", "Explain segmentation")
    for widget in (seg, exp):
        if args.model:
            widget.model.value = common.BUNDLE_ON_DISK
            widget.bundle.value = args.model
        else:
            widget.model.value = args.variant
        widget.image.value = layer
    exp.methods.value = ["ig"]

    def press(widget) -> float:
        name = f"{image_id} prediction"
        started = time.perf_counter()
        widget.run()
        while widget.running or not widget.run_button.enabled:
            app.processEvents()
            time.sleep(0.001)
        assert widget.result is not None, "the job failed; see the notifications"
        assert any(l.name.startswith(name) for l in viewer.layers) or widget is exp
        return time.perf_counter() - started

    started = time.perf_counter()
    press(seg)
    cold = time.perf_counter() - started
    heartbeat = Heartbeat()
    press(seg)  # the layers exist now: later presses update them
    heartbeat.start()
    settle(app, 0.1)
    times = [press(seg) for _ in range(args.repeats)]
    seg_stall = heartbeat.stop()
    press(exp)  # warm the explain path (graph tracing in the worker)
    heartbeat.start()
    settle(app, 0.1)
    ig_time = press(exp)
    ig_stall = heartbeat.stop()

    worker = common.worker_for(viewer)
    bundle = str(seg.bundle_path())
    heartbeat.start()
    settle(app, 0.1)
    started = time.perf_counter()
    for _ in worker.run("segment", image=image, bundle=bundle):  # the peer: driven on the GUI thread
        pass
    peer_time = time.perf_counter() - started
    settle(app, 0.1)
    peer_stall = heartbeat.stop()

    print(f"model: {bundle}; image {image_id} {image.shape[1]}x{image.shape[0]}; device {worker.device or 'see status line'}\n")
    print("| measure | GlassBox (thread worker + model process) | peer: same job on the GUI thread |")
    print("| --- | --- | --- |")
    print(f"| press Segment to layers shown (median of {args.repeats}) | {statistics.median(times) * 1000:.0f} ms | {peer_time * 1000:.0f} ms (no layers, blocked) |")
    print(f"| longest event-loop stall during segmentation | {seg_stall * 1000:.0f} ms | {peer_stall * 1000:.0f} ms |")
    print(f"| longest event-loop stall during integrated gradients ({ig_time:.1f} s) | {ig_stall * 1000:.0f} ms | |")
    print(f"\nfirst Segment of the session (worker start, TensorFlow import, model load): {cold:.1f} s")
    viewer.close()
    common.worker_for(viewer).stop()
    return review_main(args)


def review_folders(scratch: Path) -> dict[str, Path]:
    """Folders of links: four 512 px dev_val photographs, and the largest native sample twice."""
    small, large = scratch / "dev_val_512", scratch / "native_10mp"
    small.mkdir()
    large.mkdir()
    for image_id in (DATA / "dev_val.txt").read_text().split()[:4]:
        (small / f"{image_id}.jpg").symlink_to(DATA / "ISIC2018_Task1-2_Training_Input" / f"{image_id}.jpg")
        (small / f"{image_id}_segmentation.png").symlink_to(DATA / "ISIC2018_Task1_Training_GroundTruth" / f"{image_id}_segmentation.png")
    for name in (LARGEST_NATIVE, "ISIC_9913082"):  # the same photograph under a second name
        (large / f"{name}.jpg").symlink_to(NATIVE / f"{LARGEST_NATIVE}.jpg")
        (large / f"{name}_segmentation.png").symlink_to(NATIVE / f"{LARGEST_NATIVE}_segmentation.png")
    return {"512 px": small, "3872x2592": large}


def review_widget(viewer, spec: str | None):
    if spec is None:
        return viewer.window.add_plugin_dock_widget("glassbox-xai", "Review and correct")[1]
    import importlib

    module, name = spec.split(":")
    widget = getattr(importlib.import_module(module), name)(viewer)
    viewer.window.add_dock_widget(widget, name="Review (measured)")
    return widget


def review_main(args) -> int:
    """Longest event-loop stall and time to the mask shown, per Review action and image size."""
    import os
    import tempfile

    import napari
    from qtpy.QtWidgets import QApplication

    from glassbox_xai.napari import common

    scratch = Path(tempfile.mkdtemp(prefix="glassbox-latency-"))
    os.environ["GLASSBOX_HOME"] = str(scratch / "home")  # the review session and set stay in the scratch folder
    rows = []
    for size, folder in review_folders(scratch).items():
        viewer = napari.Viewer(show=True)
        app = QApplication.instance()
        widget = review_widget(viewer, args.review_widget)
        if args.model:
            widget.model.value = common.BUNDLE_ON_DISK
            widget.bundle.value = args.model
        else:
            widget.model.value = args.variant
        widget.retraining_set.value = scratch / f"set {size}"
        widget.annotator.value = "benchmark"
        widget.skip_corrected.value = False

        def done() -> bool:
            return not widget.running and widget.run_button.enabled and widget.prediction_layer() is not None

        def act(method) -> tuple[float, float]:
            heartbeat = Heartbeat()
            heartbeat.start()
            settle(app, 0.1)
            started = time.perf_counter()
            method()
            settle(app, 0.05)
            while not done():
                app.processEvents()
                time.sleep(0.001)
            took = time.perf_counter() - started
            settle(app, 0.2)
            return took, heartbeat.stop()

        widget.open_folder(folder)
        while not done():  # worker start, TensorFlow import, model load
            app.processEvents()
            time.sleep(0.01)
        settle(app, 0.5)
        measured: dict[str, list[tuple[float, float]]] = {"idle (no action, the machine's own noise)": [], "Next": [], "Previous": [], "Accept": []}
        measured["idle (no action, the machine's own noise)"].append(act(lambda: None))
        for _ in range(max(1, args.repeats // 2)):
            measured["Next"].append(act(widget.next_image))
            measured["Previous"].append(act(widget.previous_image))
        measured["Accept"].append(act(widget.accept))  # saves image 1, moves to image 2
        for action, values in measured.items():
            rows.append((size, action, len(values), statistics.median(t for t, _ in values), max(s for _, s in values)))
        viewer.close()
        common.worker_for(viewer).stop()
    print(f"\nReview widget: {args.review_widget or 'glassbox_xai.napari.review_widget:ReviewWidget'}, model {args.model or args.variant}\n")
    print("| image | action | n | press to mask shown (median) | longest event-loop stall |")
    print("| --- | --- | --- | --- | --- |")
    for size, action, n, took, stall in rows:
        print(f"| {size} | {action} | {n} | {took * 1000:.0f} ms | {stall * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
