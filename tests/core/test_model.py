"""The Attention U-Net: config checks, shapes, named stages, logits, attention outputs, learning."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids
from glassbox_xai.data.io import read_image, read_mask
from glassbox_xai.data.resize import to_model_input
from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.model.attention_unet import STAGES, build_attention_unet, layer_stage, layers_by_stage, with_attention_outputs
from glassbox_xai.model.config import ConfigError, ModelConfig


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"input_size": 100, "depth": 3}, "divisible by 2**depth"),
        ({"input_size": 16}, "input_size must be an integer in [32, 1024]"),
        ({"base_filters": 0}, "base_filters"),
        ({"depth": 7}, "depth"),
        ({"dropout": 1.0}, "dropout must be a number in [0, 1)"),
        ({"normalization": "layer"}, "normalization must be one of"),
        ({"in_channels": 4}, "in_channels must be 3"),
        ({"input_size": 64.0}, "input_size must be an integer"),
        ({"context": "aspp"}, "context must be one of ('none', 'pool')"),
    ],
)
def test_config_refuses_bad_values_by_name(kwargs, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        ModelConfig(**kwargs)
    assert fragment in str(info.value)


def test_config_json_round_trip_and_unknown_keys(tmp_path):
    config = ModelConfig(input_size=128, base_filters=8, depth=3, dropout=0.2, normalization="group")
    config.save(tmp_path / "config.json")
    assert ModelConfig.load(tmp_path / "config.json") == config
    (tmp_path / "bad.json").write_text(json.dumps({**config.to_dict(), "filters": 3}))
    with pytest.raises(ConfigError, match=r"bad.json: unknown model config keys \['filters'\]"):
        ModelConfig.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json is not valid JSON"):
        ModelConfig.load(tmp_path / "broken.json")


def test_context_is_written_only_when_used(tmp_path):
    """Bundles without the context block keep the config.json they always had (and older
    GlassBox versions, which refuse unknown keys, still read them)."""
    plain = ModelConfig(input_size=64)
    assert "context" not in plain.to_dict()
    pooled = ModelConfig(input_size=64, context="pool")
    pooled.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["context"] == "pool"
    assert ModelConfig.load(tmp_path / "config.json") == pooled


def test_context_block_starts_as_the_model_without_it():
    """Warm-starting a model with the global-context block from one without it (training.run's
    grow_blocks) computes the same logits until the block learns."""
    from training.grow import grow_blocks

    plain = build_attention_unet(ModelConfig(input_size=32, base_filters=4, depth=2))
    for layer in plain.layers:  # not the initial weights: make the copy matter
        layer.set_weights([np.random.default_rng(2).normal(0, 0.3, w.shape).astype(w.dtype) for w in layer.get_weights()])
    grown = grow_blocks(plain, ModelConfig(input_size=32, base_filters=4, depth=2, context="pool"))
    added = [layer.name for layer in grown.layers if "_context_" in layer.name]
    assert added == [f"encoder2_context_{part}" for part in ("pool", "reduce", "expand", "tile", "add")]
    assert all(layer_stage(name) == "encoder" for name in added)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(grown(x)), np.asarray(plain(x)), atol=1e-6)
    assert grown.count_params() > plain.count_params()


@pytest.mark.parametrize("normalization", ["batch", "none"])
def test_widened_model_starts_as_its_parent_and_then_learns(normalization, tmp_path):
    """grow_width (base_filters 4 -> 6) keeps the parent's logits exactly, in inference and in
    training mode (batch statistics included), then trains its new channels; it saves and reloads."""
    from glassbox_xai.model.bundle import load_bundle, save_bundle
    from glassbox_xai.model.card import ModelCard
    from training.grow import can_grow_width, grow_width

    small = ModelConfig(input_size=32, base_filters=4, depth=2, dropout=0.0, normalization=normalization)
    wide = ModelConfig(input_size=32, base_filters=6, depth=2, dropout=0.0, normalization=normalization)
    assert can_grow_width(small, wide) and not can_grow_width(wide, small)
    assert not can_grow_width(small, ModelConfig(input_size=32, base_filters=6, depth=3, normalization=normalization))
    plain = build_attention_unet(small)
    rng = np.random.default_rng(3)
    for layer in plain.layers:  # not the initial weights: make the copy matter
        layer.set_weights([(rng.normal(0, 0.3, w.shape) + (1.0 if "variance" in v.path else 0.0)).astype(w.dtype)
                           for w, v in zip(layer.get_weights(), layer.weights)])
    grown = grow_width(plain, wide, small)
    assert grown.get_layer("encoder0_conv1").filters == 6 and grown.get_layer("decoder0_conv1").kernel.shape == (3, 3, 12, 6)
    x = rng.random((4, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(grown(x)), np.asarray(plain(x)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(grown(x, training=True)), np.asarray(plain(x, training=True)), atol=1e-4)
    with pytest.raises(ValueError, match="only base_filters"):
        grow_width(plain, ModelConfig(input_size=32, base_filters=6, depth=3), small)

    new_channel = grown.get_layer("encoder1_conv2").kernel.numpy()[..., 8:].copy()
    grown.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    grown.fit(x, (x[..., :1] > 0.5).astype(np.float32), epochs=2, batch_size=4, verbose=0)
    assert np.abs(grown.get_layer("encoder1_conv2").kernel.numpy()[..., 8:] - new_channel).max() > 0
    assert np.abs(grown.get_layer("decoder1_conv1").kernel.numpy()[:, :, 8:12, :8]).max() > 0  # new inputs now reach old outputs

    save_bundle(grown, wide, ModelCard(variant="dice", loss="bce"), tmp_path / "wide")
    loaded = load_bundle(tmp_path / "wide")
    assert loaded.config == wide
    np.testing.assert_allclose(np.asarray(loaded.model(x)), np.asarray(grown(x)), atol=1e-5)


@pytest.mark.parametrize("normalization", ["batch", "group", "none"])
@pytest.mark.parametrize("depth", [1, 3])
def test_shapes_and_attention_outputs(normalization, depth):
    config = ModelConfig(input_size=32, base_filters=4, depth=depth, normalization=normalization)
    model = build_attention_unet(config)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    assert model(x).shape == (2, 32, 32, 1)
    outputs = with_attention_outputs(model)(x)
    assert set(outputs) == {"logits", *(f"attention{i}" for i in range(depth))}
    for i in range(depth):
        alpha = np.asarray(outputs[f"attention{i}"])
        assert alpha.shape == (2, 32 // 2**i, 32 // 2**i, 1)
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    np.testing.assert_allclose(np.asarray(outputs["logits"]), np.asarray(model(x)), atol=1e-5)


def test_attention_view_shares_weights_with_the_model(tiny_config):
    model = build_attention_unet(tiny_config)
    view = with_attention_outputs(model)
    assert {id(w) for w in view.weights} == {id(w) for w in model.weights}


def test_every_layer_is_named_by_stage(tiny_config):
    model = build_attention_unet(tiny_config)
    named = [layer.name for layer in model.layers if layer.name != "image"]
    assert all(layer_stage(name) in STAGES for name in named), [n for n in named if layer_stage(n) is None]
    grouped = layers_by_stage(model)
    assert grouped["encoder"][0] == "encoder0_conv1"
    assert "encoder2_conv2" in grouped["encoder"]  # the bottleneck is the deepest encoder stage
    assert grouped["attention"] and all(n.startswith("attention") for n in grouped["attention"])
    assert "decoder0_up" in grouped["decoder"]
    assert grouped["output"] == ["output_logits"]


def test_output_is_logits_not_probabilities(tiny_config):
    model = build_attention_unet(tiny_config)
    out_layer = model.get_layer("output_logits")
    assert out_layer.activation is keras.activations.linear
    # Scaling the last kernel scales the logits: a sigmoid output could not exceed 1.
    kernel, bias = out_layer.get_weights()
    out_layer.set_weights([kernel * 50.0, bias + 3.0])
    x = np.random.default_rng(1).random((1, 32, 32, 3), dtype=np.float32)
    logits = np.asarray(model(x))
    assert logits.max() > 1.0 or logits.min() < 0.0


def test_default_model_fits_the_size_budget():
    model = build_attention_unet(ModelConfig())
    assert model.count_params() * 4 < 13 * 2**20  # three variants must stay under ~40 MB together


@pytest.mark.slow
def test_tiny_model_learns_a_tiny_real_subset():
    """A tiny model trained briefly on 32 real pairs beats its untrained self on 16 held-out pairs."""
    keras.utils.set_random_seed(7)
    size = 64
    train = _load_pairs(split_ids("dev_train")[:32], size)
    held = _load_pairs(split_ids("dev_val")[:16], size)
    # Group norm: batch norm's moving statistics need far more than 100 steps to settle.
    model = build_attention_unet(ModelConfig(input_size=size, base_filters=8, depth=2, dropout=0.0, normalization="group"))
    before = _mean_dice(model, *held)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(*train, batch_size=8, epochs=25, verbose=0)
    after = _mean_dice(model, *held)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    assert after > 0.75 and after > before + 0.3, (before, after)


def _load_pairs(ids, size):
    images = np.stack([to_model_input(read_image(ISIC_IMAGES / f"{i}.jpg"), size) for i in ids])
    masks = []
    for i in ids:
        mask = read_mask(ISIC_MASKS / f"{i}_segmentation.png").astype(np.float32)
        masks.append(to_model_input(np.repeat((mask * 255).astype(np.uint8)[..., None], 3, -1), size)[..., :1] > 0.5)
    return images, np.stack(masks).astype(np.float32)


def _mean_dice(model, images, masks):
    logits = np.asarray(model.predict(images, verbose=0))
    return float(np.mean([scores(Confusion.from_masks(l > 0, m > 0.5))["dice"] for l, m in zip(logits, masks)]))
