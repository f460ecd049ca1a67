"""What every GlassBox dock shows before any run: a tooltip on every control, the device
the model will use, and a scroll area instead of a dock taller than the window."""

from __future__ import annotations

import numpy as np
import pytest
from magicgui.widgets import Container

WIDGETS = ["Explain segmentation", "Compare variants", "Fine-tune from corrections"]


def _controls(container: Container):
    for widget in container:
        if isinstance(widget, Container):
            yield from _controls(widget)
        yield widget


@pytest.mark.parametrize("name", WIDGETS)
def test_every_control_has_a_tooltip_and_the_device_shows_at_once(make_napari_viewer, name):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", name)
    controls = list(_controls(widget))
    assert len(controls) >= 8
    assert [c.label or c.name for c in controls if not c.tooltip] == []
    assert widget.status.value.startswith("device: ") and ("CPU" in widget.status.value or "GPU" in widget.status.value)


@pytest.mark.parametrize("name", WIDGETS)
def test_the_dock_scrolls_instead_of_growing_taller_than_the_window(make_napari_viewer, qtbot, name):
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1200, 600)
    viewer.add_image(np.zeros((8, 8, 3), np.uint8), rgb=True, name="photo")
    dock, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", name)
    if hasattr(widget, "image"):  # docked inside its scroll area, the pickers still fill at once
        assert widget.image.value is not None and widget.image.value.name == "photo"
    widget.info.value = "<p>a long table</p>" * 80  # far taller than the window
    assert isinstance(dock.widget(), QScrollArea) and dock.widget() is widget.native
    qtbot.waitUntil(lambda: dock.widget().verticalScrollBar().maximum() > 0)  # the controls scroll...
    assert dock.height() <= viewer.window._qt_window.height() == 600  # ...within a window that kept its size
