"""GUI tests: a virtual display is started when none is set.

Xvfb and a Mesa GL driver are installed by ``scripts/install_display.sh`` (the
test script runs it); a missing Xvfb is an error here, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids


def _start_xvfb() -> subprocess.Popen:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise RuntimeError("GUI tests need a display: no DISPLAY is set and Xvfb is not installed; run scripts/install_display.sh")
    for number in range(99, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    proc = subprocess.Popen([xvfb, f":{number}", "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            os.environ["DISPLAY"] = f":{number}"
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"Xvfb did not start on display :{number}")


@pytest.fixture(scope="session", autouse=True)
def display():
    """The display GUI tests draw on: the user's, or a fresh Xvfb one."""
    assert "tensorflow" not in sys.modules, "TensorFlow is loaded in the GUI test process; a viewer would crash"
    if os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb":
        yield os.environ["DISPLAY"]
        return
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    proc = _start_xvfb()
    yield os.environ["DISPLAY"]
    proc.terminate()
    proc.wait(timeout=10)


BUILD = """
import sys, keras
from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.model.bundle import save_bundle
from glassbox_xai.model.card import ModelCard
from glassbox_xai.model.config import ModelConfig
keras.utils.set_random_seed(0)
config = ModelConfig(input_size=32, base_filters=4, depth=2)
save_bundle(build_attention_unet(config), config, ModelCard(variant="custom", loss="none", name="tiny-untrained"), sys.argv[1])
"""


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny untrained bundle, built in a subprocess: this process must never load TensorFlow."""
    path = tmp_path_factory.mktemp("bundles") / "tiny"
    subprocess.run([sys.executable, "-c", BUILD, str(path)], check=True, capture_output=True, timeout=300)
    return path


@pytest.fixture
def photo():
    """A real dev_val photograph with its expert mask: (id, image, mask)."""
    from glassbox_xai.data.io import read_image, read_mask

    image_id = split_ids("dev_val")[0]
    return image_id, read_image(ISIC_IMAGES / f"{image_id}.jpg"), read_mask(ISIC_MASKS / f"{image_id}_segmentation.png")




@pytest.fixture
def errors(monkeypatch):
    """Error notifications the widgets showed, in order."""
    from glassbox_xai.napari import common

    seen: list[str] = []
    monkeypatch.setattr(common, "show_error", seen.append)
    return seen


JOB_TIMEOUT_MS = 300_000


@pytest.fixture
def finish(qtbot):
    """``finish(widget)``: wait until the widget's job is over (its run button is enabled again)."""
    def wait(widget, timeout: int = JOB_TIMEOUT_MS) -> None:
        qtbot.waitUntil(lambda: not widget.running and widget.run_button.enabled, timeout=timeout)

    return wait


@pytest.fixture
def press(finish):
    """``press(widget)``: press the widget's run button as a user would and wait for the job."""
    def run(widget, timeout: int = JOB_TIMEOUT_MS) -> None:
        widget.result = None
        widget.run_button.clicked.emit()
        finish(widget, timeout)

    return run
