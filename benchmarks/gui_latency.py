"""napari responsiveness: time from pressing Segment to the layers being shown, and the
longest stall of the Qt event loop while segmentation and integrated gradients run.

    xvfb-run -a .venv/bin/python benchmarks/gui_latency.py [--variant dice | --model BUNDLE] [--repeats 5]

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
    args = parser.parse_args(argv)

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
            widget._model.value = common.BUNDLE_ON_DISK
            widget._bundle.value = args.model
        else:
            widget._model.value = args.variant
        widget._image.value = layer
    exp._methods.value = ["ig"]

    def press(widget) -> float:
        name = f"{image_id} prediction"
        started = time.perf_counter()
        widget.run()
        while widget._job is not None or not widget._run.enabled:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
