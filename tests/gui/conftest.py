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
