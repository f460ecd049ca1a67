"""What `glassbox explain` writes: one compact map store by default, full-resolution
float32 maps only with --save-maps, and a folder napari opens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from data_paths import NATIVE, split_ids, ISIC_IMAGES
from glassbox_xai.cli import main
from glassbox_xai.xai.explain_files import STORE_SIDE, working_shape
from glassbox_xai.xai.map_store import STORE_NAME, compact, read_maps, write_maps

LARGEST = NATIVE / "ISIC_0013082.jpg"  # 3,872 x 2,592, the largest real photograph we have
SMALLEST = NATIVE / "ISIC_0010459.jpg"  # 1,024 x 768


@pytest.fixture(scope="module")
def explained(tiny_bundle, tmp_path_factory) -> Path:
    """The default output of every map family on the 10 MP photograph (tiny model)."""
    out = tmp_path_factory.mktemp("explained")
    assert main(["explain", str(LARGEST), "-o", str(out), "--model", str(tiny_bundle), "--method", "all", "--steps", "4"]) == 0
    return out / LARGEST.stem


def test_default_output_is_one_compact_store_a_fraction_of_full_size(explained):
    report = json.loads((explained / "explain.json").read_text())
    rows, cols = report["photograph_shape"]
    assert (rows, cols) == (2592, 3872)
    shape = working_shape(report["working_shape"], STORE_SIDE)  # the copy the maps were computed on, at most 512 px a side
    assert report["shape"] == list(shape) == [342, 512] and report["maps_file"] == STORE_NAME
    assert not (explained / "maps").exists() and "full_maps" not in report  # full resolution is opt-in
    with np.load(explained / STORE_NAME) as store:
        assert sorted(store.files) == report["maps"]
        assert {store[name].shape for name in store.files} == {shape}
        for name in store.files:  # float16, unless the map's peak is too small for it (an untrained model's gradients)
            peak = float(np.abs(store[name].astype(np.float32)).max())
            assert store[name].dtype == (np.float16 if peak == 0 or peak >= 2.0**-14 else np.float32), name
            assert report["map_dtypes"][name] == store[name].dtype.name
        n_maps = len(store.files)
    assert n_maps > 20  # every family: confidence, saliency, IG, a CAM per layer, attention
    store_bytes = (explained / STORE_NAME).stat().st_size
    assert store_bytes < n_maps * shape[0] * shape[1] * 2  # under 2 bytes a stored pixel
    written = sum(f.stat().st_size for f in explained.rglob("*") if f.is_file())
    assert written < 0.01 * n_maps * rows * cols * 4  # under 1% of the same maps as float32 at full size
    assert max(f.stat().st_size for f in explained.glob("*.png")) < 1_500_000


def test_save_maps_adds_full_resolution_float32_tiffs(tiny_bundle, tmp_path):
    out = tmp_path / "out"
    assert main(["explain", str(SMALLEST), "-o", str(out), "--model", str(tiny_bundle), "--method", "saliency", "--save-maps"]) == 0
    folder = out / SMALLEST.stem
    report = json.loads((folder / "explain.json").read_text())
    assert report["full_maps"] == {"folder": "maps", "shape": [768, 1024], "dtype": "float32", "files": {"saliency": "saliency.tif"}}
    full = tifffile.imread(folder / "maps" / "saliency.tif")
    assert full.shape == (768, 1024) and full.dtype == np.float32
    small = read_maps(folder / STORE_NAME)["saliency"]
    assert small.shape == (384, 512) == tuple(report["shape"])
    assert np.abs(full[1::2, 1::2] - small).max() < 0.05 * np.abs(full).max()  # the same map, at half the size


@pytest.mark.parametrize("peak, stored", [(1.0, np.float16), (0.013, np.float16), (2.0**-14, np.float16), (0.0, np.float16),
                                          (1e-6, np.float32), (1e6, np.float32)])
def test_store_keeps_every_map_to_a_thousandth_of_its_peak(peak, stored, tmp_path, rng):
    values = (rng.standard_normal((40, 60)) * peak).astype(np.float32)
    values.flat[0] = peak  # the peak itself is in the map
    assert compact(values).dtype == stored
    write_maps(tmp_path / STORE_NAME, {"a map": values})
    back = read_maps(tmp_path / STORE_NAME)["a map"]
    assert back.dtype == np.float32 and back.shape == values.shape
    assert np.abs(back - values).max() <= 1e-3 * (np.abs(values).max() or 1.0)


def test_store_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="one shape"):
        write_maps(tmp_path / STORE_NAME, {"a": np.zeros((4, 4)), "b": np.zeros((4, 5))})
    with pytest.raises(ValueError, match="finite"):
        write_maps(tmp_path / STORE_NAME, {"a": np.full((4, 4), np.nan)})
    with pytest.raises(ValueError, match="2-D"):
        compact(np.zeros((2, 4, 4)))
    assert not (tmp_path / STORE_NAME).exists()  # nothing half-written is left under the final name
    write_maps(tmp_path / STORE_NAME, {"a": np.ones((4, 4))})
    with pytest.raises(KeyError, match="holds \\['a'\\]"):
        read_maps(tmp_path / STORE_NAME, ["b"])


def test_napari_reader_lays_every_map_over_the_photograph(explained):
    from glassbox_xai.napari.explain_reader import explanation_layers
    from glassbox_xai.napari.io_hooks import get_reader, read_explanation

    assert get_reader(str(explained)) is read_explanation
    assert get_reader(str(explained / STORE_NAME)) is read_explanation
    layers = explanation_layers(explained)
    (photo, photo_kwargs, kind), *maps = layers
    assert kind == "image" and photo.shape == (2592, 3872, 3) and photo_kwargs["rgb"]
    report = json.loads((explained / "explain.json").read_text())
    stacked = [kw for data, kw, _ in maps if data.ndim == 3]
    assert {kw["metadata"]["glassbox_map"] for kw in stacked} == {"gradcam", "hirescam"}
    assert sum(data.shape[0] for data, _, _ in maps if data.ndim == 3) + len(maps) - len(stacked) == len(report["maps"])
    for data, kwargs, kind in maps:
        assert kind == "image" and data.shape[-2:] == tuple(report["shape"]) and data.dtype == np.float32
        rows, cols = (data.shape[-2] - 1) * kwargs["scale"][-2] + 1, (data.shape[-1] - 1) * kwargs["scale"][-1] + 1
        top, left = kwargs["translate"][-2:]
        assert 2592 == pytest.approx(rows + 2 * top) and 3872 == pytest.approx(cols + 2 * left)  # spans the photograph
        assert kwargs["metadata"]["meaning"] and kwargs["colormap"]["name"].startswith("glassbox")
    assert [kw["visible"] for _, kw, _ in maps] == [True] + [False] * (len(maps) - 1)


def test_reader_leaves_full_resolution_tiffs_to_napari(tiny_bundle, tmp_path):
    from glassbox_xai.napari.io_hooks import get_reader

    shutil.copy(ISIC_IMAGES / f"{split_ids('dev_val')[0]}.jpg", tmp_path / "photo.jpg")
    assert main(["explain", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "out"), "--model", str(tiny_bundle),
                 "--method", "confidence", "--save-maps"]) == 0
    assert get_reader(str(tmp_path / "out" / "photo" / "maps" / "confidence.tif")) is None  # a float map, not a photograph
    assert get_reader(str(tmp_path / "photo.jpg")) is not None
