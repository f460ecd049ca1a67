"""Checks for the whole suite: the real data is present, and model tests and GUI
tests never share a process.

TensorFlow and a napari viewer cannot live in one process here: with Mesa's GL
driver (Xvfb included) a viewer crashes with TensorFlow loaded, whichever was
imported first (seen with napari 0.9.2, TensorFlow 2.21, Mesa llvmpipe and
softpipe). The product keeps TensorFlow in a worker process; the suite keeps the
model tests (tests/core, which import TensorFlow) and the GUI tests (tests/gui,
which never do) in separate pytest runs. scripts/test.sh runs both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from data_paths import DATA, ISIC_IMAGES, NATIVE

TESTS = Path(__file__).resolve().parent


def pytest_configure(config):
    if not ISIC_IMAGES.is_dir() or not NATIVE.is_dir():
        raise pytest.UsageError(
            f"the real ISIC data is expected at {DATA} (the shared/ folder beside the repository)"
        )


def pytest_collection_modifyitems(config, items):
    groups = {Path(item.path).resolve().relative_to(TESTS).parts[0] for item in items}
    if "gui" in groups and len(groups) > 1:
        raise pytest.UsageError(
            "GUI tests (tests/gui) must run in their own pytest process, apart from the model tests "
            "(TensorFlow and a napari viewer crash in one process under Mesa GL): run "
            "`pytest tests/core` and `pytest tests/gui`, or scripts/test.sh"
        )


@pytest.fixture(autouse=True)
def glassbox_home(tmp_path, monkeypatch):
    """Model versions and default retraining sets of each test go to its own folder, never the user's."""
    home = tmp_path / "glassbox-home"
    monkeypatch.setenv("GLASSBOX_HOME", str(home))
    return home
