"""The compact store of one photograph's explanation maps: a single compressed ``maps.npz``.

One entry per map, named as the panel names it (``"saliency"``, ``"gradcam decoder0_conv2"``),
each a 2-D array of one shape. Maps are float16 (three significant digits) unless their
largest magnitude is outside float16's normal range (below 6.1e-5 or above 65,504), in
which case they stay float32, so no map loses more than about 0.1% of its own peak.

It is an ordinary NumPy archive: ``numpy.load(path)`` opens it lazily (each map is read
and decompressed when it is first accessed) and needs nothing but NumPy.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

STORE_NAME = "maps.npz"
FLOAT16_NORMAL = (2.0**-14, 65504.0)
"""Peaks float16 holds to 11 significant bits; a map whose peak is outside this range stays float32."""

LEVEL = 1
"""zlib level: smooth float16 maps compress about as well at level 1 as at level 6, and twice as fast."""


def compact(values: np.ndarray) -> np.ndarray:
    """``values`` as float16 when its peak (largest magnitude) fits float16's normal range, else float32.

    Raises:
        ValueError: ``values`` is not a 2-D array of finite numbers.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"a map must be 2-D (rows, cols), got shape {values.shape}")
    values = values.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        raise ValueError("a map must hold finite numbers only; got NaN or infinity")
    peak = float(np.abs(values).max()) if values.size else 0.0
    fits = peak == 0.0 or FLOAT16_NORMAL[0] <= peak <= FLOAT16_NORMAL[1]
    return values.astype(np.float16) if fits else values


def write_maps(path: str | Path, maps: dict[str, np.ndarray], level: int = LEVEL) -> dict[str, str]:
    """Write ``maps`` (name -> 2-D array, all of one shape) to one compressed ``.npz`` at ``path``,
    through a temporary file, so a reader never sees half a store. Returns each map's stored dtype."""
    path = Path(path)
    shapes = {np.shape(v) for v in maps.values()}
    if len(shapes) > 1:
        raise ValueError(f"every map in {path.name} must have one shape; got {sorted(shapes)}")
    partial = path.with_name(path.name + ".partial")
    dtypes: dict[str, str] = {}
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, values in maps.items():
            stored = compact(values)
            dtypes[name] = stored.dtype.name
            with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, stored, allow_pickle=False)
    os.replace(partial, path)
    return dtypes


def read_maps(path: str | Path, names=None) -> dict[str, np.ndarray]:
    """The maps of a store (all, or those in ``names``) as float32 arrays, by name.

    Raises:
        KeyError: a name in ``names`` is not in the store (the message lists those that are).
    """
    with np.load(path, allow_pickle=False) as store:
        wanted = list(store.files) if names is None else list(names)
        missing = [n for n in wanted if n not in store.files]
        if missing:
            raise KeyError(f"{path} has no map(s) {missing}; it holds {sorted(store.files)}")
        return {name: store[name].astype(np.float32) for name in wanted}
