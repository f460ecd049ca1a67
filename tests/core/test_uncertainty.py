"""Uncertainty scores for ordering the review queue."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox_xai.data.layout import discover
from glassbox_xai.hitl.uncertainty import boundary_band, boundary_uncertainty, dropout_only, mc_dropout_disagreement, rank_by_uncertainty
from glassbox_xai.inference import Segmenter
from glassbox_xai.jobs import drive
from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.model.config import ModelConfig


def test_boundary_uncertainty_by_hand():
    certain = np.zeros((100, 100), np.float32)
    certain[30:70, 30:70] = 1.0
    assert boundary_uncertainty(certain) == 0.0
    unsure = np.where(certain > 0, 0.6, 0.4).astype(np.float32)
    assert boundary_uncertainty(unsure) == pytest.approx(0.8)
    band = boundary_band(certain > 0.5, 3)
    assert band[30, 50] and band[27, 50] and not band[50, 50] and not band[5, 5]


def test_mc_dropout_is_zero_without_dropout_and_keeps_batch_norm_frozen(rng):
    x = rng.random((1, 32, 32, 3), dtype=np.float32)
    still = build_attention_unet(ModelConfig(input_size=32, base_filters=4, depth=2, dropout=0.0))
    assert mc_dropout_disagreement(still, x, passes=4) == pytest.approx(0.0, abs=1e-6)
    noisy = build_attention_unet(ModelConfig(input_size=32, base_filters=4, depth=2, dropout=0.5))
    norm = noisy.get_layer("encoder0_norm1")
    before = [w.copy() for w in norm.get_weights()]
    assert mc_dropout_disagreement(noisy, x, passes=4) > 0.0
    assert all(np.array_equal(a, b) for a, b in zip(before, norm.get_weights()))
    assert norm.trainable  # restored after the passes
    with dropout_only(noisy):
        assert not norm.trainable
    with pytest.raises(ValueError, match="at least 2 passes"):
        mc_dropout_disagreement(noisy, x, passes=1)


def test_rank_orders_most_uncertain_first(tiny_bundle, native_images):
    segmenter = Segmenter.from_bundle(tiny_bundle)
    ranked = drive(rank_by_uncertainty(segmenter, discover(native_images[:3]), passes=3))
    assert len(ranked) == 3 and all(0.0 <= r.boundary <= 1.0 and 0.0 <= r.mc_dropout for r in ranked)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
