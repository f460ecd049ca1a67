"""Calibration maths against hand-computable truths: ECE, temperature, uncertainty AUROC,
and the streaming counts against the exact array functions."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox_xai.calibration import (
    CalibrationCounts,
    auroc,
    binary_nll,
    calibrated_threshold,
    expected_calibration_error,
    fit_temperature,
    reliability,
    temper,
    uncertainty_auroc,
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_reliability_by_hand():
    # bin [0.1, 0.2): confidence 0.1, half lesion; bin [0.9, 1]: confidence 0.9, all lesion
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 1, 1, 1], bool)
    table = reliability(p, y, n_bins=10)
    assert table.count[1] == 2 and table.count[9] == 2 and table.count.sum() == 4
    assert table.confidence[1] == pytest.approx(0.1) and table.frequency[1] == pytest.approx(0.5)
    assert table.confidence[9] == pytest.approx(0.9) and table.frequency[9] == pytest.approx(1.0)
    assert table.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert table.mce == pytest.approx(0.4)


@pytest.mark.parametrize("p, lesion, expected", [(0.8, True, 0.2), (0.8, False, 0.8), (0.0, False, 0.0), (1.0, True, 0.0)])
def test_constant_probability_ece_is_its_gap(p, lesion, expected):
    assert expected_calibration_error(np.full(100, p), np.full(100, lesion)) == pytest.approx(expected)


def test_perfectly_calibrated_probabilities_have_ece_near_zero(rng):
    p = rng.uniform(size=1_000_000)
    y = rng.uniform(size=p.size) < p
    assert expected_calibration_error(p, y) < 0.003
    # the same outcomes shown 1.5x further from 0.5: the gap is |p - 0.5| / 2 where unclipped
    # (1/18 over p in [1/6, 5/6]), p or 1 - p where clipped to 0 or 1 (1/36): 1/12 in all
    overconfident = np.clip(0.5 + 1.5 * (p - 0.5), 0, 1)
    assert expected_calibration_error(overconfident, y) == pytest.approx(1 / 12, abs=0.003)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_known_temperature_is_recovered(rng, temperature):
    z = rng.normal(0.0, 4.0, size=400_000)
    y = rng.uniform(size=z.size) < _sigmoid(z / temperature)
    assert fit_temperature(z, y) == pytest.approx(temperature, rel=0.03)
    assert binary_nll(z, y, temperature) < binary_nll(z, y, 1.0) or temperature == 1.0
    counts = CalibrationCounts()
    counts.add(z, y, z > 0)
    assert counts.fit_temperature() == pytest.approx(temperature, rel=0.03)
    assert counts.ece(temperature) < 0.005


@pytest.mark.parametrize("scores, labels, expected", [
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),        # perfect
    ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),        # reversed
    ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),        # all tied
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),      # 3 of 4 pairs ordered
    ([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.875),      # one tied pair counts half
])
def test_auroc_by_hand(scores, labels, expected):
    assert auroc(np.array(scores), np.array(labels, bool)) == pytest.approx(expected)


def test_auroc_of_one_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        auroc(np.arange(4.0), np.ones(4, bool))


def test_uncertainty_that_marks_every_error_scores_one(rng):
    truth = rng.uniform(size=(64, 64)) < 0.4
    mask = truth.copy()
    wrong = rng.uniform(size=truth.shape) < 0.05
    mask[wrong] = ~mask[wrong]
    # right pixels are shown sure (p near 0 or 1), wrong ones undecided (p near 0.5)
    p = np.where(mask, 0.99, 0.01)
    p[wrong] = np.where(mask[wrong], 0.55, 0.45)
    assert uncertainty_auroc(p, truth, mask) == pytest.approx(1.0)
    counts = CalibrationCounts()
    counts.add(np.log(p / (1 - p)), truth, mask)
    assert counts.uncertainty_auroc() == pytest.approx(1.0)


def test_counts_agree_with_the_exact_functions(rng):
    z = rng.normal(0.5, 5.0, size=(3, 128, 128))
    y = rng.uniform(size=z.shape) < _sigmoid(z / 1.7)
    mask = z > 0.4
    counts = CalibrationCounts()
    for image in range(3):  # one image at a time, as over a data set
        counts.add(z[image], y[image], mask[image])
    assert counts.n_pixels == z.size
    for t in (1.0, 1.7):
        assert counts.ece(t) == pytest.approx(expected_calibration_error(_sigmoid(z / t), y), abs=2e-3)
        assert counts.nll(t) == pytest.approx(binary_nll(z, y, t), abs=1e-3)
    assert counts.uncertainty_auroc() == pytest.approx(uncertainty_auroc(_sigmoid(z), y, mask), abs=2e-3)
    halves = CalibrationCounts(), CalibrationCounts()
    halves[0].add(z[0], y[0], mask[0])
    halves[1].add(z[1:], y[1:], mask[1:])
    assert np.array_equal((halves[0] + halves[1]).total, counts.total)


@pytest.mark.parametrize("threshold, temperature", [(0.35, 1.6), (0.55, 0.7), (0.3, 1.0)])
def test_calibrated_threshold_keeps_the_mask(rng, threshold, temperature):
    z = rng.normal(0.0, 3.0, size=100_000)
    plain = _sigmoid(z) > threshold
    calibrated = _sigmoid(z / temperature) > calibrated_threshold(threshold, temperature)
    assert np.array_equal(plain, calibrated)


@pytest.mark.parametrize("call, message", [
    (lambda: reliability(np.zeros(3), np.zeros(4)), "same shape"),
    (lambda: reliability(np.array([0.5, 1.5]), np.zeros(2)), r"\[0, 1\]"),
    (lambda: binary_nll(np.array([np.nan]), np.zeros(1)), "NaN"),
    (lambda: calibrated_threshold(1.0, 2.0), "threshold"),
    (lambda: CalibrationCounts().add(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(3)), "mask has 3 pixels"),
])
def test_bad_input_says_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_temper_divides_the_logits_by_the_temperature(rng):
    z = rng.normal(0.0, 4.0, size=10_000)
    p = _sigmoid(z).astype(np.float32)
    assert temper(p, 1.0) is p
    np.testing.assert_allclose(temper(p, 2.0), _sigmoid(z / 2.0), atol=1e-5)
    assert temper(np.array([0.0, 1.0], np.float32), 2.0).tolist() == pytest.approx([0.0, 1.0], abs=1e-5)
