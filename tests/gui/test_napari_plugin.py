"""The plugin inside a real napari viewer (Xvfb): discovery, sample data, a screenshot."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from PIL import Image

from glassbox_xai.data.synthetic import synthetic_lesion


def test_manifest_is_discovered_and_valid():
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("glassbox-xai")
    assert manifest.display_name == "GlassBox-XAI"
    assert [s.key for s in manifest.contributions.sample_data] == ["synthetic_lesion"]


def test_viewer_opens_the_sample_and_renders_it(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1200, 800)
    viewer.open_sample("glassbox-xai", "synthetic_lesion")
    image_layer, truth_layer = viewer.layers
    assert image_layer.name == "synthetic lesion (generated, not real)" and image_layer.rgb
    assert truth_layer.data.shape == image_layer.data.shape[:2]
    truth_layer.visible = False
    shot = viewer.screenshot(canvas_only=True, flash=False)
    Image.fromarray(shot).save(tmp_path / "sample.png")
    assert shot.ndim == 3 and shot.shape[-1] == 4 and min(shot.shape[:2]) > 200
    # The rendered canvas shows the image: a dark lesion in the middle of lighter skin.
    rgb = shot[..., :3].astype(float)
    rows, cols = rgb.shape[:2]
    centre = rgb[rows // 2 - 10 : rows // 2 + 10, cols // 2 - 10 : cols // 2 + 10].mean()
    image, mask = synthetic_lesion()
    assert centre < 140 and image[mask].mean() < 140
    skin = rgb[rows // 2, cols // 2 :].max(axis=-1)
    assert skin.max() > 170  # lighter skin between the lesion and the image border


def test_napari_process_never_imports_tensorflow(display):
    """Opening napari with the plugin's contributions leaves TensorFlow unimported."""
    code = textwrap.dedent(
        """
        import sys
        import napari
        viewer = napari.Viewer(show=False)
        viewer.open_sample("glassbox-xai", "synthetic_lesion")
        import glassbox_xai.napari, glassbox_xai.napari.sample_data, glassbox_xai.napari.segment_widget, glassbox_xai.napari.explain_widget, glassbox_xai.napari.io_hooks
        import glassbox_xai.data, glassbox_xai.metrics, glassbox_xai.model.registry
        assert len(viewer.layers) == 2, viewer.layers
        heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
        print("HEAVY", heavy)
        viewer.close()
        """
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout
