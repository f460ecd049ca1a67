"""Screenshots of the human-in-the-loop widgets on real ISIC images (run under Xvfb).

    xvfb-run -a .venv/bin/python scripts/screenshots_hitl.py [--out docs/screenshots] [--variant dice]

Reviews a small folder of dev_val photographs (links in a temporary folder) with
the shipped model: the prediction is corrected with a brush stroke, accepted,
the folder is ordered by uncertainty, and a version is fine-tuned for one epoch
from the accepted corrections. Nothing is written outside the temporary folder
and ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import wait  # noqa: E402


def link_folder(ids: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for image_id in ids:
        (folder / f"{image_id}.jpg").symlink_to(DATA / "ISIC2018_Task1-2_Training_Input" / f"{image_id}.jpg")
        (folder / f"{image_id}_segmentation.png").symlink_to(DATA / "ISIC2018_Task1_Training_GroundTruth" / f"{image_id}_segmentation.png")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--variant", default="dice")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="glassbox-shots-"))
    os.environ["GLASSBOX_HOME"] = str(scratch / "home")  # versions made here stay out of the user's list

    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    ids = (DATA / "dev_val.txt").read_text().split()
    folder = link_folder(ids[20:32], scratch / "to-review")
    held_out = link_folder(ids[40:60], scratch / "held-out")
    viewer = napari.Viewer(title="GlassBox-XAI")
    viewer.window._qt_window.resize(1500, 950)
    app = QApplication.instance()
    args.out.mkdir(parents=True, exist_ok=True)

    def settle(shot: str | None = None) -> None:
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        if shot:
            Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(args.out / shot)
            print(f"saved {args.out / shot}")

    def finished(widget) -> bool:
        return not widget.running and widget.run_button.enabled

    dock, review = viewer.window.add_plugin_dock_widget("glassbox-xai", "Review and correct")
    review.model.value = args.variant
    review.annotator.value = "screenshot script"
    review.retraining_set.value = scratch / "corrections"
    review.rank()  # needs an open folder: tells the user so
    review.open_folder(folder)
    wait(app, lambda: finished(review), 600)
    review.rank()
    wait(app, lambda: finished(review), 600)
    for _ in range(2):
        wait(app, lambda: finished(review), 600)
        labels = review.prediction_layer()
        mask = labels.data > 0
        labels.brush_size = 24
        columns = [c for c in range(0, mask.shape[1], 12) if mask[:, c].any()]
        for c in columns[len(columns) // 3 : 2 * len(columns) // 3]:  # widen the lower edge, as a brush stroke would
            labels.paint((min(mask.shape[0] - 1, int(mask[:, c].nonzero()[0].max()) + 8), c), 1)
        review.accept()
    wait(app, lambda: finished(review), 600)
    review.prediction_layer().brush_size = 30
    settle("review.png")
    viewer.window.remove_dock_widget(dock)

    dock, tune = viewer.window.add_plugin_dock_widget("glassbox-xai", "Fine-tune from corrections")
    tune.model.value = args.variant
    tune.retraining_set.value, tune.epochs.value, tune.held_out.value = scratch / "corrections", 1, held_out
    tune.run()
    wait(app, lambda: finished(tune), 900)
    settle("finetune.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
