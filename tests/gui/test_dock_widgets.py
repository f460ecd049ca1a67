"""What every GlassBox dock shows before any run: a tooltip on every control, the device
the model will use, a scroll area instead of a dock taller than the window, and the
public controls its docstring lists."""

from __future__ import annotations

import inspect
import itertools
import re

import numpy as np
import pytest
from magicgui.widgets import Container, Label, Widget

from glassbox_xai.napari.common import JobWidget

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


def documented_controls(cls) -> list[str]:
    """The names under "Controls" in the docstrings of ``cls`` and the classes it builds on."""
    names = []
    for klass in cls.__mro__:
        lines = inspect.cleandoc(klass.__dict__.get("__doc__") or "").splitlines()
        start = next((n for n, line in enumerate(lines) if line.startswith("Controls")), None)
        for line in [] if start is None else itertools.takewhile(str.strip, lines[start + 1:]):
            if match := re.match(r"    (\w+): ", line):  # a name; deeper lines continue its description
                names.append(match.group(1))
    return names


def _documented(widget, name) -> list[Widget]:
    control = getattr(widget, name)
    return list(control.values()) if isinstance(control, dict) else [control]  # Compare's galleries: one list per group


def test_every_dock_widget_documents_its_public_controls(make_napari_viewer):
    """Each dock widget of the manifest lists its controls in its docstring; each listed name is a
    magicgui widget of the instance, and every control in the dock a user can change is one of
    them (or inside one), so a script never needs a private attribute."""
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    contributions = manager.get_manifest("glassbox-xai").contributions.widgets
    assert len(contributions) == 5
    viewer = make_napari_viewer()
    for contribution in contributions:
        _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", contribution.display_name)
        names = documented_controls(type(widget))
        assert [n for n in names if n not in documented_controls(JobWidget)], f"{contribution.display_name}: no controls of its own"
        assert len(set(names)) == len(names), names
        for name in names:
            assert not name.startswith("_") and not hasattr(Container, name), name  # public, and not a Container member it hides
            controls = _documented(widget, name)
            assert controls and all(isinstance(w, Widget) for w in controls), (contribution.display_name, name)
        documented = [w for name in names for w in _documented(widget, name)]
        undocumented = [w.label or getattr(w, "text", "") or type(w).__name__ for w in _inputs(widget, documented)]
        assert undocumented == [], (contribution.display_name, undocumented)


def _inputs(container: Container, documented: list):
    """The controls in ``container`` a user can change (not read-only labels) that are not
    documented and not inside a documented container."""
    for widget in container:
        if any(widget is w for w in documented):
            continue
        if isinstance(widget, Container):
            yield from _inputs(widget, documented)
        elif not isinstance(widget, Label):
            yield widget
