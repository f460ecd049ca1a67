"""Batch normalisation folded into the convolutions for prediction (model/fold.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from data_paths import ISIC_IMAGES, split_ids
from glassbox_xai.data.io import read_image
from glassbox_xai.data.resize import to_model_input
from glassbox_xai.inference import Segmenter
from glassbox_xai.model.attention_unet import batchnorm_layers, build_attention_unet
from glassbox_xai.model.bundle import load_bundle
from glassbox_xai.model.config import ModelConfig
from glassbox_xai.model.fold import fold_batchnorm, normalised_layer
from glassbox_xai.model.registry import resolve_bundle

TINY = dict(input_size=32, base_filters=4, depth=2)


def _trained_looking(config: ModelConfig, seed: int = 0) -> keras.Model:
    """A tiny model whose batch normalisation is far from the identity (as after training):
    random scales, shifts, means and variances, and a non-zero context projection."""
    model = build_attention_unet(config)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2.0, channels), rng.normal(0, 0.5, channels),
                               rng.normal(0, 0.3, channels), rng.uniform(0.2, 3.0, channels)])
        elif layer.name.endswith("context_expand"):
            layer.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("options", [{}, {"context": "pool"}, {"colour": "shades_of_gray"}], ids=["plain", "context", "colour"])
def test_the_folded_model_computes_the_same_logits(options):
    config = ModelConfig(**TINY, **options)
    model = _trained_looking(config)
    folded = fold_batchnorm(model, config)
    assert batchnorm_layers(model) and not batchnorm_layers(folded)
    assert {layer.name for layer in folded.layers} == {layer.name for layer in model.layers} - {n.name for n in batchnorm_layers(model)}
    x = np.random.default_rng(1).random((3, 32, 32, 3), dtype=np.float32)
    before, after = np.asarray(model.predict_on_batch(x)), np.asarray(folded.predict_on_batch(x))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    for norm in batchnorm_layers(model):  # the statistics matter: without them the logits are others
        norm.set_weights([np.ones_like(w) if i in (0, 3) else np.zeros_like(w) for i, w in enumerate(norm.get_weights())])
    assert np.abs(np.asarray(model.predict_on_batch(x)) - before).mean() > 100 * np.abs(after - before).max()
    assert model.get_weights()[0] is not folded.get_weights()[0]


@pytest.mark.parametrize("normalization", ["group", "none"])
def test_without_batch_normalisation_the_model_is_used_as_it_is(normalization):
    config = ModelConfig(**TINY, normalization=normalization)
    model = build_attention_unet(config)
    assert fold_batchnorm(model, config) is model


def test_a_model_not_built_from_the_config_is_refused():
    model = build_attention_unet(ModelConfig(**TINY))
    with pytest.raises(ValueError, match="model has no layer 'encoder3_conv1'; it was not built from"):
        fold_batchnorm(model, ModelConfig(**{**TINY, "depth": 3}))
    with pytest.raises(ValueError, match="batch normalisation follows no convolution named .*'encoder2_conv1'"):
        fold_batchnorm(model, ModelConfig(**{**TINY, "depth": 1}))


def test_normalisation_names_map_to_the_convolution_they_follow():
    assert normalised_layer("encoder0_norm1") == "encoder0_conv1"
    assert normalised_layer("decoder3_norm2") == "decoder3_conv2"
    assert normalised_layer("attention1_out_norm") == "attention1_out"
    with pytest.raises(ValueError, match="not a normalisation layer name"):
        normalised_layer("encoder0_relu1")


def test_the_shipped_model_segments_real_photographs_as_before():
    """On ISIC dev_val photographs the shipped dice model, folded, gives the unfolded model's
    logits to float rounding and the same mask at the card's threshold; the segmenter, with
    its flips, runs the folded model and finds the lesions."""
    bundle = load_bundle(resolve_bundle("dice"))
    segmenter = Segmenter(bundle)
    assert segmenter.tta and segmenter.forward is not bundle.model
    x = np.stack([to_model_input(read_image(ISIC_IMAGES / f"{i}.jpg"), bundle.config.input_size) for i in split_ids("dev_val")[:4]])
    unfolded = np.asarray(bundle.model.predict_on_batch(x), dtype=np.float32)[..., 0]
    folded = np.asarray(segmenter.forward.predict_on_batch(x), dtype=np.float32)[..., 0]
    np.testing.assert_allclose(folded, unfolded, atol=1e-3)
    logit = np.log(segmenter.threshold / (1 - segmenter.threshold))
    near = np.abs(unfolded - logit) < 1e-3  # the only pixels rounding could flip
    assert ((folded > logit) == (unfolded > logit))[~near].all()
    assert (segmenter.model_logits(x) > logit).mean() > 0.05  # lesions were found


def test_a_segmenter_at_another_threshold_shares_the_folded_model():
    bundle = load_bundle(resolve_bundle("dice"))
    segmenter = Segmenter(bundle)
    other = segmenter.at_threshold(0.6)
    assert "forward" not in segmenter._shared  # not built for a request that only explains
    assert other.threshold == 0.6 and segmenter.threshold == bundle.card.threshold
    assert other.forward is segmenter.forward and other.bundle is segmenter.bundle  # built once, by the copy
    assert segmenter.at_threshold(0.4).forward is other.forward
    assert segmenter.at_threshold(None).threshold == bundle.card.threshold
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        segmenter.at_threshold(1.5)


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_a_normalisation_without_a_learnt_shift_or_scale_folds_too(center, scale):
    from glassbox_xai.model.fold import _folded

    rng = np.random.default_rng(2)
    x = rng.random((2, 8, 8, 3), dtype=np.float32)
    conv = keras.layers.Conv2D(5, 3, padding="same", use_bias=False)
    norm = keras.layers.BatchNormalization(center=center, scale=scale)
    norm(conv(x), training=False)  # builds both layers
    norm.moving_mean.assign(rng.normal(0, 0.3, 5))
    norm.moving_variance.assign(rng.uniform(0.2, 3.0, 5))
    if scale:
        norm.gamma.assign(rng.uniform(0.5, 2.0, 5))
    if center:
        norm.beta.assign(rng.normal(0, 0.5, 5))
    expected = np.asarray(norm(conv(x), training=False))
    folded = keras.layers.Conv2D(5, 3, padding="same")
    folded.build(x.shape)
    folded.set_weights(_folded(conv.get_weights(), norm))
    np.testing.assert_allclose(np.asarray(folded(x)), expected, rtol=1e-4, atol=1e-5)
