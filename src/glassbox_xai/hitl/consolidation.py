"""Elastic weight consolidation (Kirkpatrick et al. 2017) for fine-tuning on a new clinic.

A fine-tune pulls every weight towards the corrections. EWC adds, for each weight, a
quadratic pull back to the parent's value, weighed by how much the parent's own
predictions on its original photographs depend on it (the diagonal of the Fisher
information, estimated from squared per-image gradients). Weights the original domain
barely uses stay free to adapt.

The penalty rides on Keras' per-variable ``regularizer`` hook, so ``model.fit`` adds it to
the loss like any weight decay; :func:`consolidated` removes it again afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np


def fisher_diagonal(model, images: np.ndarray, targets: np.ndarray, loss: Callable) -> list[np.ndarray]:
    """The empirical Fisher diagonal of ``model``'s trainable variables: the mean over images of
    the squared gradient of ``loss(target, logits)`` for one image at a time.

    Args:
        images: (N, size, size, 3) float in [0, 1].
        targets: (N, size, size) or (N, size, size, 1) masks the gradients are taken against
            (the parent's own masks, so no expert labels are needed).
    """
    import tensorflow as tf

    if len(images) == 0 or len(images) != len(targets):
        raise ValueError(f"expected as many targets as images (at least 1), got {len(targets)} and {len(images)}")
    variables = model.trainable_variables
    totals = [np.zeros(v.shape, dtype=np.float64) for v in variables]
    y = np.asarray(targets, dtype=np.float32).reshape(len(targets), *images.shape[1:3], 1)
    for image, target in zip(np.asarray(images, dtype=np.float32), y):
        with tf.GradientTape() as tape:
            value = loss(target[None], model(image[None], training=False))
        for total, grad in zip(totals, tape.gradient(value, variables)):
            if grad is not None:
                total += np.square(np.asarray(grad, dtype=np.float64))
    return [(total / len(images)).astype(np.float32) for total in totals]


class _Pull:
    """``strength / 2 * sum(F * (w - w0)**2)`` for one variable (F scaled to mean 1 over the model)."""

    def __init__(self, start: np.ndarray, weight: np.ndarray, strength: float):
        self.start, self.weight, self.strength = start, weight, strength

    def __call__(self, value):
        from keras import ops

        return 0.5 * self.strength * ops.sum(self.weight * ops.square(value - self.start))


@contextmanager
def consolidated(model, fisher: list[np.ndarray], strength: float) -> Iterator[int]:
    """Within the block, ``model``'s trainable variables are pulled towards their current values
    by ``strength`` times the Fisher-weighted squared distance; yields how many variables carry
    the pull. ``fisher`` is :func:`fisher_diagonal` of the same variables, scaled inside to mean 1
    (so a strength means the same for any model and loss)."""
    variables = model.trainable_variables
    if len(fisher) != len(variables):
        raise ValueError(f"expected a Fisher diagonal for each of {len(variables)} trainable variables, got {len(fisher)}")
    scale = float(np.mean(np.concatenate([f.ravel() for f in fisher]))) or 1.0
    saved = [v.regularizer for v in variables]
    try:
        for variable, f in zip(variables, fisher):
            variable.regularizer = _Pull(np.array(variable.numpy()), f / scale, strength)
        yield len(variables)
    finally:
        for variable, regularizer in zip(variables, saved):
            variable.regularizer = regularizer
