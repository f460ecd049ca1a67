"""Model bundles: round trip, provenance, tamper and corruption detection, safe mode."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.model.bundle import load_bundle, save_bundle
from glassbox_xai.model.card import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, BundleError, ModelCard, manifest_sha256, read_card, sha256_file
from glassbox_xai.model.registry import NoTrainedModelError, installed_bundles, resolve_bundle


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


def test_round_trip_gives_the_same_outputs(tiny_config, tmp_path):
    model = build_attention_unet(tiny_config)
    card = ModelCard(
        variant="dice",
        loss="dice",
        threshold=0.45,
        training_data={"n_images": 2, "sha256": manifest_sha256(["ISIC_0000001", "ISIC_0000000"])},
        validation_metrics={"dice": 0.5},
        parent="ab" * 32,
    )
    written = save_bundle(model, tiny_config, card, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded.model(x)), np.asarray(model(x)), atol=1e-6)
    assert loaded.config == tiny_config
    assert loaded.card == written == read_card(tmp_path / "b")
    assert written.weights_sha256 == sha256_file(tmp_path / "b" / WEIGHTS_FILE)
    assert written.config_sha256 == sha256_file(tmp_path / "b" / CONFIG_FILE)
    assert {"python", "keras", "tensorflow", "numpy"} <= set(written.software)
    assert written.created.endswith("+00:00") and written.parent == "ab" * 32
    assert written.training_data["sha256"] == manifest_sha256(["ISIC_0000000", "ISIC_0000001"])


def test_save_refuses_to_overwrite_and_leaves_no_staging(tiny_bundle, tiny_config, tmp_path):
    model = build_attention_unet(tiny_config)
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(model, tiny_config, ModelCard(variant="custom", loss="none"), tiny_bundle)
    assert sorted(p.name for p in tiny_bundle.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, CARD_FILE])
    assert not [p for p in tiny_bundle.parent.iterdir() if p.name.startswith(".")]


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: _flip_byte(b / WEIGHTS_FILE, 200), r"model.keras does not match its model card .*modified"),
        (lambda b: (b / WEIGHTS_FILE).write_bytes((b / WEIGHTS_FILE).read_bytes()[:1000]), r"model.keras does not match its model card .*truncated"),
        (lambda b: (b / WEIGHTS_FILE).unlink(), r"is missing model.keras"),
        (lambda b: (b / CONFIG_FILE).write_text(json.dumps({"input_size": 64, "base_filters": 4, "depth": 2})), r"config.json does not match its model card"),
        (lambda b: (b / CARD_FILE).unlink(), r"has no card.json"),
        (lambda b: (b / CARD_FILE).write_text("{truncated"), r"card.json is not valid JSON"),
        (lambda b: shutil.rmtree(b), r"is not a folder"),
    ],
    ids=["flipped-byte", "truncated", "missing-weights", "edited-config", "missing-card", "corrupt-card", "missing-folder"],
)
def test_damaged_bundle_names_the_file_and_the_problem(bundle_copy, damage, message):
    damage(bundle_copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_safe_mode_refuses_code_in_a_model_file(tiny_config, tmp_path):
    """A bundle whose model holds a Lambda layer (arbitrary code) does not load, even with valid hashes."""
    inputs = keras.Input((32, 32, 3), name="image")
    outputs = keras.layers.Lambda(lambda t: t[..., :1] * 2.0)(inputs)
    save_bundle(keras.Model(inputs, outputs), tiny_config, ModelCard(variant="custom", loss="none"), tmp_path / "evil")
    with pytest.raises(BundleError, match="could not be loaded as a Keras model"):
        load_bundle(tmp_path / "evil")


def test_registry_says_plainly_when_no_model_is_installed(tmp_path, tiny_bundle):
    with pytest.raises(NoTrainedModelError, match="no trained model is installed for variant 'recall'"):
        resolve_bundle("recall", root=tmp_path)
    shutil.copytree(tiny_bundle, tmp_path / "dice")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / CARD_FILE).write_text("not json")
    assert list(installed_bundles(tmp_path)) == ["dice"]
    assert resolve_bundle("dice", root=tmp_path) == tmp_path / "dice"
    with pytest.raises(BundleError, match="does not exist"):
        resolve_bundle(model=tmp_path / "nowhere")


def test_a_compiled_model_is_saved_without_its_optimizer(tiny_config, tmp_path):
    model = build_attention_unet(tiny_config)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)
    model.train_on_batch(x, np.zeros((2, 32, 32, 1), np.float32))
    save_bundle(model, tiny_config, ModelCard(variant="custom", loss="mse"), tmp_path / "b")
    import zipfile

    with zipfile.ZipFile(tmp_path / "b" / WEIGHTS_FILE) as archive, archive.open("model.weights.h5") as weights:
        import h5py

        with h5py.File(weights) as h5:
            assert "optimizer" not in h5
    np.testing.assert_allclose(np.asarray(load_bundle(tmp_path / "b").model(x)), np.asarray(model(x)), atol=1e-6)


def test_card_calibration_is_optional_and_its_temperature_checked(bundle_copy):
    card = json.loads((bundle_copy / CARD_FILE).read_text())
    card.pop("calibration", None)  # a card written before calibration existed
    (bundle_copy / CARD_FILE).write_text(json.dumps(card))
    assert read_card(bundle_copy).calibration == {}
    assert ModelCard(variant="custom", loss="dice", calibration={"temperature": 2.2}).calibration["temperature"] == 2.2
    for bad in (0, -1.0, True, "2"):
        with pytest.raises(BundleError, match="temperature"):
            ModelCard(variant="custom", loss="dice", calibration={"temperature": bad})
