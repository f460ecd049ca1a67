"""Shared fixtures: real ISIC data from ../shared/data and tiny model bundles.

TensorFlow is imported here, before any test can create a napari viewer: an
import of TensorFlow after napari's GL context exists crashes the process under
Mesa GL drivers (Xvfb included). The napari plugin itself never imports it; a
GUI test checks that in a clean subprocess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glassbox_xai.tf_import import import_tensorflow

import_tensorflow()

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISIC = DATA / "isic2018_task1_512"
ISIC_IMAGES = ISIC / "ISIC2018_Task1-2_Training_Input"
ISIC_MASKS = ISIC / "ISIC2018_Task1_Training_GroundTruth"
NATIVE = DATA / "native_samples"


def pytest_configure(config):
    if not ISIC_IMAGES.is_dir() or not NATIVE.is_dir():
        raise pytest.UsageError(
            f"the real ISIC data is expected at {DATA} (the shared/ folder beside the repository); "
            "see the README's 'Data' section"
        )


def split_ids(name: str) -> list[str]:
    """Ids of a development split file (``dev_train`` or ``dev_val``)."""
    return (ISIC / f"{name}.txt").read_text().split()


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
