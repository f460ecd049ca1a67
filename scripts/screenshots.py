"""Render screenshots of the widgets in use on a real ISIC image (run under Xvfb).

    xvfb-run -a .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--image-id ISIC_0000000] [--variant dice]

Opens napari, loads a dev_val photograph and its expert mask from ../shared/data,
docks the Segment widget, runs the shipped model (or ``--model BUNDLE``), and saves
the whole window as PNG files; last, the Compare widget over 20 dev_val images, and
the first of its bad explanations opened from the galleries.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "isic2018_task1_512"


def wait(app, condition, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.05)


def compare_folder(app, viewer, widget, path: Path, n_images: int = 20) -> None:
    """The Compare widget over a folder of dev_val photographs with masks (links in a
    temporary folder), with the worst image of the first variant opened."""
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / f"dev_val_{n_images}"
        folder.mkdir()
        for image_id in (DATA / "dev_val.txt").read_text().split()[:n_images]:
            (folder / f"{image_id}.jpg").symlink_to(DATA / "ISIC2018_Task1-2_Training_Input" / f"{image_id}.jpg")
            mask = f"{image_id}_segmentation.png"
            (folder / mask).symlink_to(DATA / "ISIC2018_Task1_Training_GroundTruth" / mask)
        widget.folder.value = folder
        widget.compare_folder()
        wait(app, lambda: not widget.running and widget.run_button.enabled, 600)
        for layer in viewer.layers:
            layer.visible = False
        worst = widget.result["variants"][0]["picks"]["worst"][0]
        widget.cases.value = (0, "worst", worst)
        wait(app, lambda: not widget.running and widget.run_button.enabled, 600)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(path)
        print(f"saved {path}")
        open_gallery_case(app, viewer, widget, "bad explanations", path.with_name("compare_galleries.png"))


def open_gallery_case(app, viewer, widget, group: str, path: Path) -> None:
    """Click the first case of a gallery group, as a user would, and save the window with the list scrolled to it."""
    from PIL import Image
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    listed = widget.galleries[group].native
    widget.native.ensureWidgetVisible(listed)
    widget.native.horizontalScrollBar().setValue(0)  # the labels stay in view
    app.processEvents()
    QTest.mouseClick(listed.viewport(), Qt.MouseButton.LeftButton, pos=listed.visualItemRect(listed.item(0)).center())
    wait(app, lambda: not widget.running and widget.run_button.enabled, 600)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(path)
    print(f"saved {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--image-id", default=(DATA / "dev_val.txt").read_text().split()[3])
    parser.add_argument("--variant", default="dice")
    parser.add_argument("--model", type=Path, help="a bundle folder instead of a shipped variant")
    args = parser.parse_args(argv)

    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from glassbox_xai.data.io import read_image, read_mask
    from glassbox_xai.napari import segment_widget as sw

    image = read_image(DATA / "ISIC2018_Task1-2_Training_Input" / f"{args.image_id}.jpg")
    truth = read_mask(DATA / "ISIC2018_Task1_Training_GroundTruth" / f"{args.image_id}_segmentation.png")
    viewer = napari.Viewer(title="GlassBox-XAI")
    viewer.window._qt_window.resize(1500, 950)
    layer = viewer.add_image(image, name=args.image_id, rgb=True)
    gt = viewer.add_labels(truth.astype("uint8"), name=f"{args.image_id} ground truth", opacity=0.9)
    gt.contour = 2
    app = QApplication.instance()
    args.out.mkdir(parents=True, exist_ok=True)

    def use(name: str):
        dock, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", name)
        if widget.has_model_picker:
            if args.model:
                widget.model.value = sw.BUNDLE_ON_DISK
                widget.bundle.value = args.model
            else:
                widget.model.value = args.variant
        widget.image.value, widget.truth.value = layer, gt
        return dock, widget

    def press(widget, shot: str, prepare=None) -> None:
        widget.run()
        wait(app, lambda: not widget.running and widget.run_button.enabled, 600)
        if prepare:
            prepare()
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        path = args.out / shot
        Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(path)
        print(f"saved {path}")

    dock, widget = use("Segment lesion")
    press(widget, "segment.png")
    viewer.window.remove_dock_widget(dock)

    dock, widget = use("Explain segmentation")

    def show_map(map_name: str) -> None:
        """Select a map in the layer list as a user would: the Explain widget shows it alone, with its legend."""
        from glassbox_xai.napari.layers import map_layer_name

        gt.visible = map_name == "integrated gradients"
        viewer.layers.selection.active = viewer.layers[map_layer_name(args.image_id, map_name, widget.result["card"]["variant"])]

    def show_gradcam():
        show_map("gradcam")
        viewer.dims.set_current_step(0, 3)

    press(widget, "explain_gradcam.png", show_gradcam)

    show_map("integrated gradients")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(args.out / "explain_ig.png")
    print(f"saved {args.out / 'explain_ig.png'}")
    viewer.window.remove_dock_widget(dock)

    for other in viewer.layers:
        other.visible = other.name in (args.image_id, gt.name)
    dock, widget = use("Compare variants")
    press(widget, "compare.png")
    compare_folder(app, viewer, widget, args.out / "compare_folder.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
