"""Elastic weight consolidation for fine-tuning: the Fisher diagonal, the pull towards the
parent's weights during the fit, and its removal afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox_xai.model.bundle import load_bundle


def _pairs(rng, n):
    return (rng.random((n, 32, 32, 3)) * 255).astype(np.uint8), (rng.random((n, 32, 32)) > 0.5).astype(np.uint8)


def test_fisher_diagonal_has_one_non_negative_array_per_trainable_variable(tiny_bundle, rng):
    from glassbox_xai.hitl.consolidation import fisher_diagonal
    from glassbox_xai.learn.losses import make_loss

    model = load_bundle(tiny_bundle).model
    images = rng.random((3, 32, 32, 3)).astype(np.float32)
    fisher = fisher_diagonal(model, images, (rng.random((3, 32, 32)) > 0.5), make_loss("bce_dice"))
    assert [f.shape for f in fisher] == [tuple(v.shape) for v in model.trainable_variables]
    assert all((f >= 0).all() for f in fisher) and sum(float(f.sum()) > 0 for f in fisher) > len(fisher) // 2
    single = fisher_diagonal(model, images[:1], np.zeros((1, 32, 32)), make_loss("bce_dice"))
    with pytest.raises(ValueError, match="expected as many targets as images \\(at least 1\\), got 2 and 3"):
        fisher_diagonal(model, images, np.zeros((2, 32, 32)), make_loss("bce_dice"))
    assert not all(np.allclose(a, b) for a, b in zip(single, fisher))  # the mean depends on the images


def test_consolidation_keeps_the_fit_near_the_parent_and_is_removed_after(tiny_bundle, tmp_path, rng):
    from glassbox_xai.hitl.finetune import FinetuneSettings, adapt

    corrections, original = _pairs(rng, 6), _pairs(rng, 8)
    parent = load_bundle(tiny_bundle).model.get_weights()

    def distance(consolidation):
        model = load_bundle(tiny_bundle).model
        summary = adapt(model, corrections, original, FinetuneSettings(epochs=2, learning_rate=1e-2, consolidation=consolidation),
                        tmp_path / f"run{consolidation}")
        assert all(v.regularizer is None for v in model.trainable_variables)  # the pull ends with the fit
        moved = sum(float(np.sum(np.square(w - p))) for w, p in zip(model.get_weights(), parent))
        return moved, summary

    free, summary_free = distance(0.0)
    pulled, summary = distance(1e4)
    assert "consolidated_variables" not in summary_free and summary["consolidated_variables"] > 0
    assert 0 < pulled < 0.5 * free  # still learns, but stays nearer the parent


def test_consolidation_without_original_pairs_or_below_zero_is_refused(tiny_bundle, tmp_path, rng):
    from glassbox_xai.hitl.finetune import FinetuneSettings, adapt

    with pytest.raises(ValueError, match="consolidation needs original pairs"):
        adapt(load_bundle(tiny_bundle).model, _pairs(rng, 4), None, FinetuneSettings(epochs=1, consolidation=10.0), tmp_path / "run")
    with pytest.raises(ValueError, match="consolidation is a strength, 0 or more; got -1.0"):
        FinetuneSettings(consolidation=-1.0)
