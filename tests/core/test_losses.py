"""Segmentation losses on logits: hand-computed values, batch averaging, gradients, specs."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from glassbox_xai.learn.losses import (
    SMOOTH,
    bce_loss,
    boundary_bce_loss,
    describe_loss,
    dice_loss,
    focal_tversky_loss,
    lovasz_hinge_loss,
    make_loss,
    tversky_loss,
    weighted_sum,
)

LOSS_NAMES = ["bce", "bce_dice", "bce_lovasz", "bce_tversky", "boundary_bce", "dice", "dice_boundary", "dice_lovasz", "focal_tversky",
              "hybrid", "lovasz", "tversky"]
LOVASZ_NAMES = ["bce_lovasz", "dice_lovasz", "lovasz"]
BIG = 20.0  # sigmoid(20) = 1 - 2.1e-9: a confident logit


def value(loss, y_true, logits) -> float:
    return float(keras.ops.convert_to_numpy(loss(np.asarray(y_true, np.float32), np.asarray(logits, np.float32))))


def square_mask(n: int = 4, side: int = 2) -> np.ndarray:
    """(1, n, n, 1) mask with a side x side square of ones in the top-left corner."""
    mask = np.zeros((1, n, n, 1), np.float32)
    mask[0, :side, :side, 0] = 1
    return mask


def confident(pred: np.ndarray) -> np.ndarray:
    """Logits of +-BIG for a 0/1 prediction."""
    return np.where(pred > 0, BIG, -BIG).astype(np.float32)


def counts(y_true, logits):
    """Soft tp, fp, fn per image, in float64."""
    y = np.asarray(y_true, np.float64)
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    axes = (1, 2, 3)
    return (y * p).sum(axes), ((1 - y) * p).sum(axes), (y * (1 - p)).sum(axes)


def test_smooth_is_one():
    assert SMOOTH == 1.0  # the hand-computed values below assume it


# ---------------------------------------------------------------- known values

# logits 0 everywhere (p = 0.5) on a 4x4 image with a 2x2 lesion: tp = 2, fp = 6, fn = 2
HALF_CASES = [
    ("dice", dice_loss, 1 - (2 * 2 + 1) / (2 * 2 + 6 + 2 + 1)),  # 8/13
    ("tversky 0.3/0.7", tversky_loss(0.3, 0.7), 1 - (2 + 1) / (2 + 0.3 * 6 + 0.7 * 2 + 1)),  # 1 - 3/6.2
    ("tversky 0.7/0.3", tversky_loss(0.7, 0.3), 1 - (2 + 1) / (2 + 0.7 * 6 + 0.3 * 2 + 1)),  # 1 - 3/7.8
    ("focal 0.3/0.7/0.75", focal_tversky_loss(0.3, 0.7, 0.75), (1 - 3 / 6.2) ** 0.75),
    ("focal 0.3/0.7/2", focal_tversky_loss(0.3, 0.7, 2.0), (1 - 3 / 6.2) ** 2),
    ("bce", bce_loss, math.log(2.0)),
    ("lovasz", lovasz_hinge_loss, 1.0),  # every hinge error is 1, and the Lovasz weights sum to the final Jaccard loss, 1
]


@pytest.mark.parametrize("label,loss,expected", HALF_CASES, ids=[c[0] for c in HALF_CASES])
def test_values_at_half_probability(label, loss, expected):
    assert value(loss, square_mask(), np.zeros((1, 4, 4, 1))) == pytest.approx(expected, abs=1e-6)


REGION_LOSSES = [
    ("dice", dice_loss),
    ("tversky", tversky_loss(0.3, 0.7)),
    ("tversky_recall", tversky_loss(0.25, 0.75)),
    ("tversky_half", tversky_loss(0.5, 0.5)),
    ("focal_tversky", focal_tversky_loss(0.3, 0.7, 0.75)),
    ("lovasz", lovasz_hinge_loss),
]


@pytest.mark.parametrize("name,loss", REGION_LOSSES, ids=[c[0] for c in REGION_LOSSES])
def test_perfect_prediction_gives_zero(name, loss):
    mask = square_mask(8, 3)
    got = value(loss, mask, confident(mask))
    # focal Tversky floors 1 - TI at 1e-7 before the power: 1e-7 ** 0.75 = 5.6e-6
    assert 0.0 <= got < 1e-5


@pytest.mark.parametrize("n,side", [(4, 2), (8, 3), (16, 1)])
@pytest.mark.parametrize(
    "name,loss,alpha,beta,gamma",
    [
        ("dice", dice_loss, None, None, None),
        ("tversky", tversky_loss(0.3, 0.7), 0.3, 0.7, None),
        ("tversky_fp", tversky_loss(0.8, 0.2), 0.8, 0.2, None),
        ("focal_tversky", focal_tversky_loss(0.3, 0.7, 0.75), 0.3, 0.7, 0.75),
    ],
)
def test_fully_wrong_prediction_gives_one_minus_smoothing(n, side, name, loss, alpha, beta, gamma):
    mask = square_mask(n, side)
    got = value(loss, mask, confident(1 - mask))  # every pixel wrong: tp = 0
    pos, neg = side * side, n * n - side * side  # fn = pos, fp = neg
    if alpha is None:
        expected = 1 - SMOOTH / (neg + pos + SMOOTH)
    else:
        expected = 1 - SMOOTH / (alpha * neg + beta * pos + SMOOTH)
        if gamma is not None:
            expected **= gamma
    assert got == pytest.approx(expected, abs=1e-5)
    assert got < 1.0


def test_dice_of_random_probabilities_matches_formula(rng):
    y = (rng.random((3, 16, 16, 1)) > 0.6).astype(np.float32)
    logits = rng.normal(0, 2, y.shape).astype(np.float32)
    tp, fp, fn = counts(y, logits)
    expected = np.mean(1 - (2 * tp + 1) / (2 * tp + fp + fn + 1))
    assert value(dice_loss, y, logits) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("alpha,beta,gamma", [(0.3, 0.7, 0.75), (0.5, 0.5, 1.0), (0.2, 0.8, 1.5), (0.7, 0.3, 3.0)])
def test_focal_tversky_is_one_minus_index_to_gamma(rng, alpha, beta, gamma):
    y = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    logits = rng.normal(0, 2, y.shape).astype(np.float32)
    tp, fp, fn = counts(y, logits)
    index = (tp + 1) / (tp + alpha * fp + beta * fn + 1)
    expected = np.mean((1 - index) ** gamma)
    assert value(focal_tversky_loss(alpha, beta, gamma), y, logits) == pytest.approx(expected, abs=1e-6)
    # gamma = 1 is the plain Tversky loss
    if gamma == 1.0:
        assert value(tversky_loss(alpha, beta), y, logits) == pytest.approx(expected, abs=1e-6)


def test_tversky_half_half_equals_dice(rng):
    """alpha = beta = 0.5 is Dice. SMOOTH is added to tp (not 2 tp) in Tversky, so the
    two agree exactly only up to that smoothing: TI(0.5, 0.5) = (2tp + 2) / (2tp + fp + fn + 2),
    which differs from the Dice index by (fp + fn) / ((S + 1)(S + 2)) <= 1 / (S + 2), S = 2tp + fp + fn."""
    y = (rng.random((4, 48, 48, 1)) > 0.5).astype(np.float32)
    logits = rng.normal(0, 1.5, y.shape).astype(np.float32)
    tversky, dice = value(tversky_loss(0.5, 0.5), y, logits), value(dice_loss, y, logits)
    tp, fp, fn = counts(y, logits)
    s = 2 * tp + fp + fn
    assert tversky == pytest.approx(np.mean(1 - (2 * tp + 2) / (s + 2)), abs=1e-6)
    assert abs(tversky - dice) <= np.max(1 / (s + 2)) + 1e-6
    assert tversky == pytest.approx(dice, abs=1e-3)
    # and exactly equal where nothing is wrong
    mask = square_mask(8, 4)
    assert value(tversky_loss(0.5, 0.5), mask, confident(mask)) == pytest.approx(value(dice_loss, mask, confident(mask)), abs=1e-7)


def fn_only_and_fp_only():
    """Two 8x8 cases with tp = 4 and 4 wrong pixels: missed lesion (FN) or extra lesion (FP)."""
    fn_mask = np.zeros((1, 8, 8, 1), np.float32)
    fn_mask[0, 0, :8, 0] = 1  # 8 lesion pixels
    fn_pred = fn_mask.copy()
    fn_pred[0, 0, 4:, 0] = 0  # 4 of them missed
    fp_mask = np.zeros((1, 8, 8, 1), np.float32)
    fp_mask[0, 0, :4, 0] = 1  # 4 lesion pixels
    fp_pred = fp_mask.copy()
    fp_pred[0, 0, 4:, 0] = 1  # 4 extra pixels
    return (fn_mask, confident(fn_pred)), (fp_mask, confident(fp_pred))


@pytest.mark.parametrize(
    "alpha,beta,relation",
    [(0.3, 0.7, "fn>fp"), (0.25, 0.75, "fn>fp"), (0.1, 0.9, "fn>fp"), (0.7, 0.3, "fp>fn"), (0.5, 0.5, "equal")],
)
def test_tversky_weighs_false_negatives_by_beta(alpha, beta, relation):
    (fn_y, fn_l), (fp_y, fp_l) = fn_only_and_fp_only()
    loss = tversky_loss(alpha, beta)
    fn_loss, fp_loss = value(loss, fn_y, fn_l), value(loss, fp_y, fp_l)
    assert fn_loss == pytest.approx(1 - 5 / (4 + beta * 4 + 1), abs=1e-6)
    assert fp_loss == pytest.approx(1 - 5 / (4 + alpha * 4 + 1), abs=1e-6)
    if relation == "fn>fp":
        assert fn_loss > fp_loss + 0.05
    elif relation == "fp>fn":
        assert fp_loss > fn_loss + 0.05
    else:
        assert fn_loss == pytest.approx(fp_loss, abs=1e-7)


def test_dice_weighs_false_negatives_and_positives_alike():
    (fn_y, fn_l), (fp_y, fp_l) = fn_only_and_fp_only()
    assert value(dice_loss, fn_y, fn_l) == pytest.approx(value(dice_loss, fp_y, fp_l), abs=1e-7)
    assert value(dice_loss, fn_y, fn_l) == pytest.approx(1 - 9 / 13, abs=1e-6)


def test_bce_matches_keras(rng):
    y = (rng.random((3, 16, 16, 1)) > 0.5).astype(np.float32)
    logits = rng.normal(0, 4, y.shape).astype(np.float32)
    reference = float(keras.losses.BinaryCrossentropy(from_logits=True)(y, logits))
    assert value(bce_loss, y, logits) == pytest.approx(reference, abs=1e-6)
    # and the plain formula in float64
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert value(bce_loss, y, logits) == pytest.approx(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))), abs=1e-5)


def test_bce_of_confident_predictions():
    mask = square_mask(8, 3)
    assert value(bce_loss, mask, confident(mask)) < 1e-8
    assert value(bce_loss, mask, confident(1 - mask)) == pytest.approx(BIG, abs=1e-5)  # -log(sigmoid(-20)) ~ 20


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_composites_are_weighted_sums(rng, name):
    y = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    logits = rng.normal(0, 2, y.shape).astype(np.float32)
    parts = {
        "dice": [(1.0, dice_loss)],
        "bce": [(1.0, bce_loss)],
        "bce_dice": [(1.0, bce_loss), (1.0, dice_loss)],
        "tversky": [(1.0, tversky_loss(0.3, 0.7))],
        "focal_tversky": [(1.0, focal_tversky_loss(0.3, 0.7, 0.75))],
        "hybrid": [(0.5, dice_loss), (0.5, tversky_loss(0.3, 0.7))],
        "bce_tversky": [(1.0, bce_loss), (1.0, tversky_loss(0.3, 0.7))],
        "lovasz": [(1.0, lovasz_hinge_loss)],
        "bce_lovasz": [(1.0, bce_loss), (1.0, lovasz_hinge_loss)],
        "dice_lovasz": [(1.0, dice_loss), (1.0, lovasz_hinge_loss)],
        "boundary_bce": [(1.0, boundary_bce_loss(3, 4.0))],
        "dice_boundary": [(1.0, dice_loss), (1.0, boundary_bce_loss(3, 4.0))],
    }[name]
    expected = sum(w * value(fn, y, logits) for w, fn in parts)
    assert value(make_loss(name), y, logits) == pytest.approx(expected, abs=1e-6)
    assert value(weighted_sum(parts, "x"), y, logits) == pytest.approx(expected, abs=1e-6)


def test_weighted_sum_name_and_weights(rng):
    y = (rng.random((1, 8, 8, 1)) > 0.5).astype(np.float32)
    logits = rng.normal(0, 2, y.shape).astype(np.float32)
    loss = weighted_sum([(2.0, dice_loss), (0.25, bce_loss)], "mix")
    assert loss.__name__ == "mix"
    assert value(loss, y, logits) == pytest.approx(2 * value(dice_loss, y, logits) + 0.25 * value(bce_loss, y, logits), abs=1e-6)


# ------------------------------------------------------------- batch averaging


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_batch_is_mean_of_single_images(rng, name):
    loss = make_loss(name)
    y = np.zeros((2, 16, 16, 1), np.float32)
    y[0, 2:5, 3:6] = 1  # small lesion
    y[1, 1:14, 2:15] = 1  # large lesion
    logits = rng.normal(0, 2, y.shape).astype(np.float32)
    batch = value(loss, y, logits)
    singles = [value(loss, y[i : i + 1], logits[i : i + 1]) for i in range(2)]
    assert batch == pytest.approx(np.mean(singles), abs=1e-6)
    assert singles[0] != pytest.approx(singles[1], abs=1e-3)  # the test can tell them apart


def test_dice_is_per_image_not_pooled():
    """A tiny lesion missed entirely counts as much as a large one found exactly."""
    y = np.zeros((2, 16, 16, 1), np.float32)
    y[0, 0, 0] = 1  # one-pixel lesion, predicted empty
    y[1, :12, :12] = 1  # 144-pixel lesion, predicted exactly
    logits = confident(np.stack([np.zeros_like(y[0]), y[1]]))
    per_image = value(dice_loss, y, logits)
    assert per_image == pytest.approx(0.5 * (1 - 1 / 2) + 0.5 * 0.0, abs=1e-6)  # image 0: 1 - 1/(1 + 1)
    pooled = 1 - (2 * 144 + 1) / (2 * 144 + 1 + 1)
    assert per_image > 50 * pooled


# ------------------------------------------------------------------- gradients


def _masks():
    rng = np.random.default_rng(3)
    lesion = np.zeros((2, 16, 16, 1), np.float32)
    lesion[:, 4:11, 5:12] = 1
    return {
        "lesion": lesion,
        "random": (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32),
        "empty": np.zeros((2, 16, 16, 1), np.float32),
        "full": np.ones((2, 16, 16, 1), np.float32),
    }


MASKS = _masks()
LOGITS = {
    "normal": np.random.default_rng(4).normal(0, 2, (2, 16, 16, 1)).astype(np.float32),
    "zero": np.zeros((2, 16, 16, 1), np.float32),
    "plus_1e4": np.full((2, 16, 16, 1), 1e4, np.float32),
    "minus_1e4": np.full((2, 16, 16, 1), -1e4, np.float32),
    "mixed_1e4": np.where(np.random.default_rng(5).random((2, 16, 16, 1)) > 0.5, 1e4, -1e4).astype(np.float32),
}


def gradient(loss, y, logits):
    var = tf.Variable(logits)
    with tf.GradientTape() as tape:
        out = loss(tf.constant(y), var)
    return out.numpy(), tape.gradient(out, var).numpy()


@pytest.mark.parametrize("logits_kind", sorted(LOGITS))
@pytest.mark.parametrize("mask_kind", sorted(MASKS))
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradients_are_finite(name, mask_kind, logits_kind):
    out, grad = gradient(make_loss(name), MASKS[mask_kind], LOGITS[logits_kind])
    assert np.ndim(out) == 0 and np.isfinite(out) and out >= 0
    assert grad.shape == LOGITS[logits_kind].shape
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", sorted(set(LOSS_NAMES) - set(LOVASZ_NAMES)))
def test_gradient_points_towards_the_mask(name):
    """At p = 0.5, descending the loss raises lesion logits and lowers background logits.

    (The Lovasz hinge is tested below: at tied logits it weighs the background pixels
    sorted after the last lesion pixel by zero.)"""
    y = MASKS["lesion"]
    _, grad = gradient(make_loss(name), y, LOGITS["zero"])
    assert np.all(grad[y > 0] < 0)
    assert np.all(grad[y == 0] > 0)


# ---------------------------------------------------------------- Lovasz hinge


def lovasz_reference(y_true, logits) -> float:
    """The Lovasz hinge of Berman et al., written out per image with a Python loop."""
    losses = []
    for y, z in zip(np.asarray(y_true, np.float64), np.asarray(logits, np.float64)):
        y, z = y.ravel(), z.ravel()
        errors = 1.0 - z * (2 * y - 1)
        order = np.argsort(-errors, kind="stable")
        lesion = y.sum()
        jaccards, inside, outside = [], 0.0, 0.0
        for i in order:  # the Jaccard loss of the mask made of the first k pixels' mistakes
            inside += y[i]
            outside += 1 - y[i]
            jaccards.append(1 - (lesion - inside) / (lesion + outside))
        weights = np.diff(np.concatenate([[0.0], jaccards]))
        losses.append(float(np.sum(np.maximum(errors[order], 0) * weights)))
    return float(np.mean(losses))


@pytest.mark.parametrize("mask_kind", sorted(MASKS))
def test_lovasz_matches_reference(mask_kind):
    y = MASKS[mask_kind]
    logits = LOGITS["normal"]
    assert value(lovasz_hinge_loss, y, logits) == pytest.approx(lovasz_reference(y, logits), rel=1e-5)


def test_lovasz_of_one_wrong_pixel_is_its_jaccard_loss():
    """One background pixel predicted as lesion with margin 1 (hinge error 2) beside a
    4-pixel lesion found with margin: IoU 4/5, so the loss is 2 * (1 - 4/5)."""
    mask = square_mask(4, 2)
    logits = confident(mask) / BIG * 3.0  # margin 3 everywhere: hinge errors -2
    logits[0, 3, 3, 0] = 1.0  # wrong: hinge error 1 - (1 * -1) = 2
    assert value(lovasz_hinge_loss, mask, logits) == pytest.approx(2 * (1 - 4 / 5), abs=1e-6)


def test_lovasz_gradient_descends_towards_the_mask():
    y = MASKS["lesion"]
    logits = LOGITS["normal"]
    loss, grad = gradient(lovasz_hinge_loss, y, logits)
    assert np.all(grad[y > 0] <= 0) and np.all(grad[y == 0] >= 0)
    assert np.count_nonzero(grad) > y.size // 2
    stepped, _ = gradient(lovasz_hinge_loss, y, logits - 0.05 * grad / np.abs(grad).max())
    assert stepped < loss


# ------------------------------------------------------------ specs and errors


def test_unknown_loss_lists_every_name():
    with pytest.raises(ValueError, match="unknown loss 'boundary'") as info:
        make_loss("boundary")
    assert str(LOSS_NAMES) in str(info.value)  # this file covers every loss make_loss knows


def test_spec_without_name_is_refused():
    with pytest.raises(ValueError, match="unknown loss None"):
        make_loss({"alpha": 0.3})


@pytest.mark.parametrize(
    "spec,bad",
    [
        ({"name": "dice", "alpha": 0.3}, "alpha"),
        ({"name": "bce", "beta": 0.7}, "beta"),
        ({"name": "bce_dice", "weight": 2}, "weight"),
        ({"name": "tversky", "gamma": 1.0}, "gamma"),
        ({"name": "hybrid", "gamma": 1.0}, "gamma"),
        ({"name": "bce_tversky", "delta": 1.0}, "delta"),
        ({"name": "focal_tversky", "alfa": 0.3}, "alfa"),
    ],
)
def test_wrong_parameter_names_the_loss(spec, bad):
    with pytest.raises(ValueError) as info:
        make_loss(spec)
    message = str(info.value)
    assert repr(spec["name"]) in message and bad in message


@pytest.mark.parametrize("alpha,beta", [(-0.1, 0.7), (0.3, 1.5), (1.01, 0.0), (0.0, 0.0), (0.5, -0.5)])
@pytest.mark.parametrize("builder", ["tversky_loss", "focal_tversky_loss", "make_tversky", "make_hybrid", "make_bce_tversky", "make_focal"])
def test_tversky_weights_are_checked(builder, alpha, beta):
    build = {
        "tversky_loss": lambda: tversky_loss(alpha, beta),
        "focal_tversky_loss": lambda: focal_tversky_loss(alpha, beta),
        "make_tversky": lambda: make_loss({"name": "tversky", "alpha": alpha, "beta": beta}),
        "make_hybrid": lambda: make_loss({"name": "hybrid", "alpha": alpha, "beta": beta}),
        "make_bce_tversky": lambda: make_loss({"name": "bce_tversky", "alpha": alpha, "beta": beta}),
        "make_focal": lambda: make_loss({"name": "focal_tversky", "alpha": alpha, "beta": beta}),
    }[builder]
    with pytest.raises(ValueError, match="alpha and beta must be in"):
        build()


@pytest.mark.parametrize("alpha,beta", [(0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.5)])
def test_tversky_weights_at_the_edges_are_accepted(alpha, beta):
    mask = square_mask(8, 3)
    assert value(tversky_loss(alpha, beta), mask, confident(mask)) < 1e-6


@pytest.mark.parametrize("gamma", [0.0, -0.5, 3.01, 10.0])
def test_focal_gamma_is_checked(gamma):
    with pytest.raises(ValueError, match="gamma must be in"):
        focal_tversky_loss(0.3, 0.7, gamma)
    with pytest.raises(ValueError, match="gamma must be in"):
        make_loss({"name": "focal_tversky", "gamma": gamma})


@pytest.mark.parametrize("gamma", [0.01, 0.75, 3.0])
def test_focal_gamma_in_range_is_accepted(gamma):
    assert make_loss({"name": "focal_tversky", "gamma": gamma}).__name__ == f"focal_tversky_a0.3_b0.7_g{gamma}"


def test_make_loss_does_not_change_its_spec():
    spec = {"name": "tversky", "alpha": 0.25, "beta": 0.75}
    loss = make_loss(spec)
    assert spec == {"name": "tversky", "alpha": 0.25, "beta": 0.75}
    assert loss.__name__ == "tversky_a0.25_b0.75"


@pytest.mark.parametrize(
    "spec,name",
    [
        ("dice", "dice_loss"),
        ("bce", "bce_loss"),
        ("bce_dice", "bce_dice"),
        ("hybrid", "hybrid"),
        ("bce_tversky", "bce_tversky"),
        ("lovasz", "lovasz_hinge_loss"),
        ("bce_lovasz", "bce_lovasz"),
        ({"name": "tversky", "alpha": 0.1, "beta": 0.9}, "tversky_a0.1_b0.9"),
        ({"name": "focal_tversky", "alpha": 0.4, "beta": 0.6, "gamma": 1.5}, "focal_tversky_a0.4_b0.6_g1.5"),
    ],
)
def test_loss_names(spec, name):
    assert make_loss(spec).__name__ == name


@pytest.mark.parametrize(
    "spec,text",
    [
        ("dice", "dice"),
        ({"name": "dice"}, "dice"),
        ({"name": "tversky", "beta": 0.7, "alpha": 0.3}, "tversky(alpha=0.3, beta=0.7)"),
        ({"name": "focal_tversky", "gamma": 0.75, "alpha": 0.3, "beta": 0.7}, "focal_tversky(alpha=0.3, beta=0.7, gamma=0.75)"),
        ({"name": "hybrid", "alpha": 0.5, "beta": 0.5}, "hybrid(alpha=0.5, beta=0.5)"),
    ],
)
def test_describe_loss(spec, text):
    original = dict(spec) if isinstance(spec, dict) else spec
    assert describe_loss(spec) == text
    assert spec == original


def test_boundary_bce_weighs_a_mistake_on_the_outline_more_than_one_inside():
    """Width 1: the band is the ring of pixels one step either side of the outline (dilation minus
    erosion); a wrong pixel there costs 1 + weight times a wrong pixel deep inside. Weight 0 is BCE."""
    mask = np.zeros((1, 12, 12, 1), np.float32)
    mask[0, 2:10, 2:10] = 1
    band = np.zeros((12, 12), bool)
    band[1:11, 1:11] = True
    band[3:9, 3:9] = False
    loss = boundary_bce_loss(1, 4.0)
    weights = 1.0 + 4.0 * band
    wrong = -math.log(1.0 / (1.0 + math.exp(BIG)))  # BCE of a lesion pixel at logit -BIG: -log(sigmoid(-BIG)), about BIG

    def one_wrong(y, x):
        logits = confident(mask)
        logits[0, y, x, 0] = -BIG
        return value(loss, mask, logits)

    assert one_wrong(2, 5) == pytest.approx(wrong * 5.0 / weights.sum(), rel=1e-4)  # on the outline's inner side
    assert one_wrong(5, 5) == pytest.approx(wrong * 1.0 / weights.sum(), rel=1e-4)  # deep inside
    y = (np.random.default_rng(1).random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    logits = np.random.default_rng(2).normal(0, 2, y.shape).astype(np.float32)
    assert value(boundary_bce_loss(2, 0.0), y, logits) == pytest.approx(value(bce_loss, y, logits), abs=1e-6)
    with pytest.raises(ValueError, match="integer width in \\[1, 32\\]"):
        boundary_bce_loss(0, 4.0)
