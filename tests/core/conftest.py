"""Fixtures for the core (model) tests: real ISIC data and tiny model bundles.

These tests import TensorFlow; the GUI tests never run in the same process
(see tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_paths import NATIVE, split_ids


@pytest.fixture(scope="session")
def val_ids() -> list[str]:
    return split_ids("dev_val")


@pytest.fixture(scope="session")
def native_images() -> list[Path]:
    return sorted(NATIVE.glob("ISIC_*[0-9].jpg"))


@pytest.fixture(scope="session")
def tiny_config():
    from glassbox_xai.model.config import ModelConfig

    return ModelConfig(input_size=32, base_filters=4, depth=2, dropout=0.1)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_config) -> Path:
    """An untrained tiny model saved as a bundle (for plumbing tests, not accuracy)."""
    import keras

    from glassbox_xai.model.attention_unet import build_attention_unet
    from glassbox_xai.model.bundle import save_bundle
    from glassbox_xai.model.card import ModelCard

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("bundles") / "tiny"
    save_bundle(build_attention_unet(tiny_config), tiny_config, ModelCard(variant="custom", loss="none", name="tiny-untrained"), folder)
    return folder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def linear():
    """A one-layer model, logits = W . x + 0.1 per pixel: every attribution is known in closed form."""
    import keras

    from xai_truths import S, W

    inputs = keras.Input((S, S, 3))
    conv = keras.layers.Conv2D(1, 1, name="output_logits")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([W.reshape(1, 1, 3, 1), np.array([0.1], np.float32)])
    return model


@pytest.fixture
def image(rng) -> np.ndarray:
    """A random S x S RGB photograph."""
    from xai_truths import S

    return rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
