"""What every attribution method shares: the model input, the target region and
its score, and batched gradients of that score.

The *target* says which pixels' output is explained: the predicted lesion
(default), the ground truth, the background, or any mask the user gives. The
*score* of an input is the mean model output over the target pixels, on the
logits or on the sigmoid; for the background it is negated, so a higher score
always means more evidence for the target. Gradients come from the model itself
(``tf.GradientTape``); nothing is cloned or edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from ..data.resize import to_model_input, to_native
from ..tf_import import import_tensorflow

Output = Literal["logits", "sigmoid"]
TARGETS = ("prediction", "truth", "background")


class TargetError(ValueError):
    """A target mask is missing, of the wrong size, or empty."""


@dataclass
class Target:
    """Target weights at model resolution, and the sign of the score."""

    weights: np.ndarray
    sign: float
    name: str


class Explainer:
    """Computes target scores and their input gradients for one model.

    Args:
        model: a Keras model from image (N, S, S, 3) in [0, 1] to logits (N, S, S, 1).
        threshold: the probability threshold that defines the predicted lesion.
    """

    def __init__(self, model, threshold: float = 0.5) -> None:
        self.tf = import_tensorflow()
        self.model = model
        self.size = int(model.input_shape[1])
        self.threshold = float(threshold)
        tf = self.tf
        signature = [tf.TensorSpec([None, self.size, self.size, 3], tf.float32), tf.TensorSpec([self.size, self.size], tf.float32),
                     tf.TensorSpec([], tf.float32)]
        # One graph per output kind, for any batch size: retracing costs about a second each time.
        self._gradient_fns = {
            flag: tf.function(lambda x, w, s, flag=flag: self._gradient_graph(x, w, s, flag), input_signature=signature)
            for flag in (False, True)
        }

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A photograph as a (1, S, S, 3) model input."""
        return to_model_input(image, self.size)[None]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, S, S) for a model-input batch."""
        return np.asarray(self.model(x, training=False), dtype=np.float32)[..., 0]

    def target(self, image_shape: tuple[int, int], x: np.ndarray, target: str | np.ndarray = "prediction", truth: np.ndarray | None = None) -> Target:
        """The target region of a photograph of ``image_shape`` as weights at model resolution.

        Raises:
            TargetError: ``truth`` is needed but missing, a mask's size is not the
                photograph's, the name is unknown, or the region is empty.
        """
        if isinstance(target, str) and target not in TARGETS:
            raise TargetError(f"unknown target {target!r}; expected one of {TARGETS} or a mask array")
        if isinstance(target, str) and target in ("prediction", "background"):
            predicted = self.logits(x)[0] > np.log(self.threshold / (1 - self.threshold))
            weights = predicted if target == "prediction" else ~predicted
            name, sign = target, (1.0 if target == "prediction" else -1.0)
        else:
            mask = truth if isinstance(target, str) else target
            name = "truth" if isinstance(target, str) else "custom mask"
            if mask is None:
                raise TargetError("target 'truth' needs a ground-truth mask; none was given")
            mask = np.asarray(mask)
            if mask.shape[:2] != tuple(image_shape):
                raise TargetError(f"{name} has shape {mask.shape[:2]} but the image is {tuple(image_shape)}; expected the same size")
            resized = cv2.resize(mask.astype(np.float32), (self.size, self.size), interpolation=cv2.INTER_AREA)
            weights, sign = resized >= 0.5, 1.0
        if not weights.any():
            raise TargetError(f"the {name} target region is empty at model resolution; nothing to explain")
        return Target(weights.astype(np.float32), sign, name)

    def scores_and_gradients(self, xs: np.ndarray, target: Target, output: Output = "logits") -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and their gradients (N, S, S, 3) for a batch, in one backward pass."""
        if output not in ("logits", "sigmoid"):
            raise ValueError(f"output must be 'logits' or 'sigmoid', got {output!r}")
        x = self.tf.convert_to_tensor(np.asarray(xs, dtype=np.float32))
        score, grads = self._gradient_fns[output == "sigmoid"](x, self.tf.constant(target.weights), self.tf.constant(target.sign, dtype=self.tf.float32))
        return score.numpy(), grads.numpy()

    def _gradient_graph(self, x, weights, sign, sigmoid: bool):
        """Compiled once per input shape and output kind (a graph is ~3x faster than eager)."""
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = self.model(x, training=False)[..., 0]
            if sigmoid:
                values = tf.sigmoid(values)
            score = sign * tf.reduce_sum(values * weights, axis=(1, 2)) / tf.reduce_sum(weights)
        return score, tape.gradient(score, x)

    def scores(self, xs: np.ndarray, target: Target, output: Output = "logits", batch: int = 16) -> np.ndarray:
        """Scores (N,) of a batch without gradients, ``batch`` images per model call."""
        parts = [self._score(self.model(xs[i : i + batch], training=False), target, output).numpy() for i in range(0, len(xs), batch)]
        return np.concatenate(parts)

    def _score(self, logits, target: Target, output: Output):
        tf = self.tf
        values = logits[..., 0]
        if output == "sigmoid":
            values = tf.sigmoid(values)
        elif output != "logits":
            raise ValueError(f"output must be 'logits' or 'sigmoid', got {output!r}")
        weights = tf.constant(target.weights)
        return target.sign * tf.reduce_sum(values * weights, axis=(1, 2)) / tf.reduce_sum(weights)


def native(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D map at model resolution resized to the photograph's (rows, columns)."""
    return to_native(values, shape)
