"""Segmentation losses on logits: Dice, Tversky, focal Tversky, BCE, boundary-weighted BCE, Lovász hinge and their sums.

Every loss takes ``(y_true, logits)`` with ``y_true`` in {0, 1} and shape
(N, H, W, 1), applies the sigmoid itself, and averages a per-image value over
the batch, so an image with a small lesion counts as much as one with a large
lesion (as the per-image challenge metrics do). They are built from one spec,
e.g. ``{"name": "hybrid", "alpha": 0.3, "beta": 0.7}``, with :func:`make_loss`.
"""

from __future__ import annotations

from typing import Any, Callable

from keras import ops

SMOOTH = 1.0
LossFn = Callable[[Any, Any], Any]


def _soft_counts(y_true, logits):
    y_true = ops.cast(y_true, "float32")
    prob = ops.sigmoid(ops.cast(logits, "float32"))
    axes = (1, 2, 3)
    tp = ops.sum(y_true * prob, axis=axes)
    fp = ops.sum((1.0 - y_true) * prob, axis=axes)
    fn = ops.sum(y_true * (1.0 - prob), axis=axes)
    return tp, fp, fn


def dice_loss(y_true, logits):
    """1 - soft Dice per image, averaged over the batch."""
    tp, fp, fn = _soft_counts(y_true, logits)
    return ops.mean(1.0 - (2.0 * tp + SMOOTH) / (2.0 * tp + fp + fn + SMOOTH))


def tversky_loss(alpha: float = 0.3, beta: float = 0.7) -> LossFn:
    """1 - Tversky index; ``beta > alpha`` weighs false negatives more (favours recall)."""
    _check_weights(alpha, beta)

    def loss(y_true, logits):
        tp, fp, fn = _soft_counts(y_true, logits)
        return ops.mean(1.0 - (tp + SMOOTH) / (tp + alpha * fp + beta * fn + SMOOTH))

    loss.__name__ = f"tversky_a{alpha}_b{beta}"
    return loss


def focal_tversky_loss(alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75) -> LossFn:
    """(1 - Tversky) ** gamma (Abraham & Khan 2019); gamma < 1 focuses on hard images."""
    _check_weights(alpha, beta)
    if not 0.0 < gamma <= 3.0:
        raise ValueError(f"focal Tversky gamma must be in (0, 3], got {gamma}")

    def loss(y_true, logits):
        tp, fp, fn = _soft_counts(y_true, logits)
        index = (tp + SMOOTH) / (tp + alpha * fp + beta * fn + SMOOTH)
        return ops.mean(ops.power(ops.maximum(1.0 - index, 1e-7), gamma))

    loss.__name__ = f"focal_tversky_a{alpha}_b{beta}_g{gamma}"
    return loss


def bce_loss(y_true, logits):
    """Binary cross-entropy on logits, mean over pixels and batch."""
    y_true = ops.cast(y_true, "float32")
    return ops.mean(ops.binary_crossentropy(y_true, ops.cast(logits, "float32"), from_logits=True))


def boundary_bce_loss(width: int = 3, weight: float = 4.0) -> LossFn:
    """Binary cross-entropy with the pixels within ``width`` of the expert outline weighing
    ``1 + weight`` (the rest 1), normalised per image by its total weight, averaged over the batch.

    The band is the mask's dilation minus its erosion by a (2 * width + 1) square, both max
    pools, so it follows the (augmented) mask of every batch with no distance map to store.
    """
    if not (isinstance(width, int) and 1 <= width <= 32) or not 0.0 <= weight <= 100.0:
        raise ValueError(f"boundary BCE needs an integer width in [1, 32] and a weight in [0, 100], got {width}, {weight}")
    size = 2 * width + 1

    def loss(y_true, logits):
        y = ops.cast(y_true, "float32")
        dilated = ops.max_pool(y, size, strides=1, padding="same")
        eroded = 1.0 - ops.max_pool(1.0 - y, size, strides=1, padding="same")
        weights = 1.0 + weight * (dilated - eroded)
        pixel = ops.binary_crossentropy(y, ops.cast(logits, "float32"), from_logits=True)
        if len(pixel.shape) == 3:  # keras reduces the channel axis
            pixel = ops.expand_dims(pixel, -1)
        return ops.mean(ops.sum(weights * pixel, axis=(1, 2, 3)) / ops.sum(weights, axis=(1, 2, 3)))

    loss.__name__ = f"boundary_bce_w{width}_x{weight:g}"
    return loss


def lovasz_hinge_loss(y_true, logits):
    """Lovász hinge per image (Berman et al., CVPR 2018), averaged over the batch.

    A convex surrogate of 1 - IoU of the mask thresholded at logit 0: the hinge
    errors ``1 - logit * sign`` are sorted, and each is weighted by how much the
    Jaccard loss grows when that pixel is wrong as well (the Lovász extension's
    gradient). An image without lesion is scored by its largest error, as in the
    reference implementation.
    """
    pixels = 1
    for dim in logits.shape[1:]:
        pixels *= int(dim)
    y = ops.reshape(ops.cast(y_true, "float32"), (-1, pixels))
    z = ops.reshape(ops.cast(logits, "float32"), (-1, pixels))
    errors = 1.0 - z * (2.0 * y - 1.0)
    errors_sorted, order = ops.top_k(errors, k=pixels, sorted=True)
    truth_sorted = ops.take_along_axis(y, order, axis=1)
    lesion = ops.sum(truth_sorted, axis=1, keepdims=True)
    intersection = lesion - ops.cumsum(truth_sorted, axis=1)
    union = lesion + ops.cumsum(1.0 - truth_sorted, axis=1)
    jaccard = 1.0 - intersection / union
    weights = ops.stop_gradient(ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1))
    return ops.mean(ops.sum(ops.relu(errors_sorted) * weights, axis=1))


def weighted_sum(parts: list[tuple[float, LossFn]], name: str) -> LossFn:
    """A loss that adds weighted losses, e.g. BCE + Dice."""

    def loss(y_true, logits):
        return sum(weight * fn(y_true, logits) for weight, fn in parts)

    loss.__name__ = name
    return loss


def make_loss(spec: dict[str, Any] | str) -> LossFn:
    """Build a loss from its spec (a name, or a dict with ``name`` and parameters).

    Names: ``dice``, ``bce``, ``bce_dice``, ``tversky`` (alpha, beta),
    ``focal_tversky`` (alpha, beta, gamma), ``hybrid`` (Dice + Tversky; alpha, beta),
    ``bce_tversky`` (alpha, beta), ``lovasz`` (Lovász hinge), ``bce_lovasz``, ``dice_lovasz``,
    ``boundary_bce`` and ``dice_boundary`` (soft Dice + boundary-weighted BCE; width, weight).
    """
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", None)
    builders: dict[str, Callable[..., LossFn]] = {
        "dice": lambda: dice_loss,
        "bce": lambda: bce_loss,
        "bce_dice": lambda: weighted_sum([(1.0, bce_loss), (1.0, dice_loss)], "bce_dice"),
        "tversky": lambda alpha=0.3, beta=0.7: tversky_loss(alpha, beta),
        "focal_tversky": lambda alpha=0.3, beta=0.7, gamma=0.75: focal_tversky_loss(alpha, beta, gamma),
        "hybrid": lambda alpha=0.3, beta=0.7: weighted_sum([(0.5, dice_loss), (0.5, tversky_loss(alpha, beta))], "hybrid"),
        "bce_tversky": lambda alpha=0.3, beta=0.7: weighted_sum([(1.0, bce_loss), (1.0, tversky_loss(alpha, beta))], "bce_tversky"),
        "lovasz": lambda: lovasz_hinge_loss,
        "bce_lovasz": lambda: weighted_sum([(1.0, bce_loss), (1.0, lovasz_hinge_loss)], "bce_lovasz"),
        "dice_lovasz": lambda: weighted_sum([(1.0, dice_loss), (1.0, lovasz_hinge_loss)], "dice_lovasz"),
        "boundary_bce": lambda width=3, weight=4.0: boundary_bce_loss(width, weight),
        "dice_boundary": lambda width=3, weight=4.0: weighted_sum([(1.0, dice_loss), (1.0, boundary_bce_loss(width, weight))], "dice_boundary"),
    }
    if name not in builders:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(builders)}")
    try:
        return builders[name](**spec)
    except TypeError:
        raise ValueError(f"loss {name!r} does not take {sorted(spec)}") from None


def describe_loss(spec: dict[str, Any] | str) -> str:
    """A short text for model cards, e.g. ``tversky(alpha=0.3, beta=0.7)``."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name")
    args = ", ".join(f"{k}={v}" for k, v in sorted(spec.items()))
    return f"{name}({args})" if args else name


def _check_weights(alpha: float, beta: float) -> None:
    if not (0.0 <= alpha <= 1.0 and 0.0 <= beta <= 1.0 and alpha + beta > 0):
        raise ValueError(f"Tversky alpha and beta must be in [0, 1] and not both 0, got {alpha}, {beta}")
