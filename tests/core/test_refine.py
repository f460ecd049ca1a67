"""Guided refinement of the probability map, and the eight-view test-time augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from glassbox_xai.refine import GuidedRefinement, _coefficients, guided_refine


def _naive_coefficients(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter written from its definition: per window, least squares p ~ a I + b."""
    pad_i = np.pad(guide, r, mode="symmetric")
    pad_p = np.pad(src, r, mode="symmetric")
    a = np.zeros_like(guide)
    b = np.zeros_like(guide)
    for y in range(guide.shape[0]):
        for x in range(guide.shape[1]):
            wi = pad_i[y : y + 2 * r + 1, x : x + 2 * r + 1]
            wp = pad_p[y : y + 2 * r + 1, x : x + 2 * r + 1]
            a[y, x] = (np.mean(wi * wp) - wi.mean() * wp.mean()) / (wi.var() + eps)
            b[y, x] = wp.mean() - a[y, x] * wi.mean()
    pad_a, pad_b = np.pad(a, r, mode="symmetric"), np.pad(b, r, mode="symmetric")
    mean_a = np.array([[pad_a[y : y + 2 * r + 1, x : x + 2 * r + 1].mean() for x in range(guide.shape[1])] for y in range(guide.shape[0])])
    mean_b = np.array([[pad_b[y : y + 2 * r + 1, x : x + 2 * r + 1].mean() for x in range(guide.shape[1])] for y in range(guide.shape[0])])
    return mean_a, mean_b


def test_box_filter_form_equals_the_definition(rng):
    guide = rng.random((23, 31)).astype(np.float32)
    src = rng.random((23, 31)).astype(np.float32)
    a, b = _coefficients(guide, src, radius=2, eps=1e-2)
    na, nb = _naive_coefficients(guide.astype(np.float64), src.astype(np.float64), 2, 1e-2)
    # OpenCV's BORDER_REFLECT is numpy's "symmetric" padding
    np.testing.assert_allclose(a, na, atol=1e-4)
    np.testing.assert_allclose(b, nb, atol=1e-4)


def _edge_column(mask: np.ndarray) -> float:
    """Mean column where each row's mask ends (the mask covers the left part)."""
    return float(np.mean(mask.sum(axis=1)))


def test_a_boundary_does_not_move_where_the_photograph_has_no_edge():
    rows, cols = 600, 800
    ramp = 1.0 / (1.0 + np.exp((np.arange(cols) - 400.0) / 12.0))  # a smooth model boundary at column 400
    prob = np.tile(ramp.astype(np.float32), (rows, 1))
    flat = np.full((rows, cols, 3), 140, np.uint8)
    noisy = np.clip(flat + np.random.default_rng(1).normal(0, 4, flat.shape), 0, 255).astype(np.uint8)
    for photo in (flat, noisy):
        refined = guided_refine(prob, photo, input_size=128)
        assert abs(_edge_column(refined > 0.5) - _edge_column(prob > 0.5)) <= 1.0


def test_a_boundary_moves_to_the_photographs_edge():
    rows, cols = 512, 512
    photo = np.full((rows, cols, 3), 200, np.uint8)
    photo[:, :380] = 90  # the lesion really ends at column 380
    ramp = 1.0 / (1.0 + np.exp((np.arange(cols) - 384.0) / 6.0))  # the coarse map says 384 (one model pixel off)
    prob = np.tile(ramp.astype(np.float32), (rows, 1))
    refined = guided_refine(prob, photo, input_size=128)
    before, after = _edge_column(prob > 0.5), _edge_column(refined > 0.5)
    assert before == 384 and abs(after - 380) <= abs(before - 380) / 2


@pytest.mark.parametrize("shape", [(300, 400), (1, 500), (10000, 10), (7000, 700)])
def test_refinement_keeps_the_size_and_a_binary_mask(shape, rng):
    prob = cv2.resize(rng.random((8, 8)).astype(np.float32), (shape[1], shape[0]))
    photo = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    refined = guided_refine(prob, photo, input_size=128)
    assert refined.shape == shape and refined.dtype == np.float32
    assert 0.0 <= refined.min() and refined.max() <= 1.0
    mask = refined > 0.5
    assert mask.dtype == bool and set(np.unique(mask)) <= {False, True}


def test_settings_are_checked():
    with pytest.raises(ValueError, match="radius_model_px"):
        GuidedRefinement(radius_model_px=0)
    with pytest.raises(ValueError, match="differ in size"):
        guided_refine(np.zeros((4, 4), np.float32), np.zeros((5, 4, 3), np.uint8), 128)


def test_segmenter_refines_at_native_sizes(tiny_bundle, rng):
    from glassbox_xai.inference import Segmenter

    segmenter = Segmenter.from_bundle(tiny_bundle, refine=True, threshold=0.5)
    for shape in [(300, 420), (7000, 350)]:
        prediction = segmenter.predict(rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
        assert prediction.mask.shape == shape and prediction.mask.dtype == bool
        assert prediction.probabilities.shape == shape and prediction.logits.shape == shape


def test_eight_view_augmentation_matches_a_manual_computation(tiny_bundle, rng):
    from glassbox_xai.inference import Segmenter

    plain = Segmenter.from_bundle(tiny_bundle, tta=False)
    d4 = Segmenter.from_bundle(tiny_bundle, tta="d4")
    x = rng.random((2, plain.input_size, plain.input_size, 3)).astype(np.float32)
    views = []
    for k in range(4):
        for flip in (False, True):
            v = np.rot90(x, k, axes=(1, 2))
            v = v[:, :, ::-1] if flip else v
            out = plain.model_logits(np.ascontiguousarray(v))
            out = out[:, :, ::-1] if flip else out
            views.append(np.rot90(out, -k, axes=(1, 2)))
    np.testing.assert_allclose(d4.model_logits(x), np.mean(views, axis=0), atol=1e-5)


def test_tta_modes_are_checked(tiny_bundle):
    from glassbox_xai.inference import Segmenter, tta_mode

    assert tta_mode(True) == "flips" and tta_mode(False) is False and tta_mode("d4") == "d4"
    with pytest.raises(ValueError, match="tta must be"):
        Segmenter.from_bundle(tiny_bundle, tta="sideways")
