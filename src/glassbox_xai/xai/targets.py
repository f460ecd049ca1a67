"""Attribution targets as strategy objects: what number of the model's output is explained.

Every target has a ``name``, a ``score(outputs, output)`` that turns a batch of model
outputs into one score per input (a TensorFlow tensor, differentiable), and a
``describe(output)`` sentence for reports. Any Keras model works with any target
whose ``score`` understands its output:

* :class:`RegionTarget`: a segmentation model's output (N, S, S, 1) of logits; the
  score is the MEAN over the region's pixels (their sum divided by the pixel count)
  of the logit, or of the probability with ``output="sigmoid"``. For a negated
  region (the background, ``sign=-1``) the logit is negated and the probability is
  ``1 - p``, so a higher score always means more evidence for the target and a
  probability score stays in [0, 1].
* :class:`ClassTarget`: a classifier's logit vector (N, K); the score is the logit of
  one class, or its softmax probability with ``output="sigmoid"`` (read: "probability").

Both are also *parametric*: ``parameters()`` gives the arrays that tell one target of the
kind from another (a region's weights and sign, a class index) and the static
``score_with(outputs, output, *parameters)`` scores with them as tensors. The explainer
then compiles one graph per kind of target and model, fed each request's parameters,
instead of one per target object (a new image is a new target; a retrace costs about a
second). A target without them still works, with a graph of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

Output = Literal["logits", "sigmoid"]
OUTPUTS = ("logits", "sigmoid")


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output must be 'logits' or 'sigmoid', got {output!r}")


class TargetScore(Protocol):
    """The strategy every attribution method calls; see the module docstring."""

    name: str

    def score(self, outputs, output: Output = "logits"):
        ...

    def describe(self, output: Output = "logits") -> str:
        ...


@dataclass(eq=False)
class RegionTarget:
    """A region of a segmentation output: ``weights`` (S, S) at model resolution, ``sign`` +1 or -1."""

    weights: np.ndarray
    sign: float
    name: str

    def score(self, outputs, output: Output = "logits"):
        """Mean over the region of the logit (times ``sign``) or of the target's probability."""
        import tensorflow as tf

        _check_output(output)
        return self.score_with(outputs, output, *(tf.constant(p) for p in self.parameters()))

    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.weights, np.float32), np.float32(1.0 if self.sign > 0 else -1.0)

    @staticmethod
    def score_with(outputs, output: Output, weights, sign):
        """:meth:`score` with the region's ``weights`` (S, S) and ``sign`` (+1 or -1) as tensors."""
        import tensorflow as tf

        values = outputs[..., 0]
        if output == "sigmoid":
            probability = tf.sigmoid(values)
            values = tf.where(sign > 0, probability, 1.0 - probability)
        else:
            values = sign * values
        return tf.reduce_sum(values * weights, axis=(1, 2)) / tf.reduce_sum(weights)

    def describe(self, output: Output = "logits") -> str:
        what = "logit" if output == "logits" else "probability"
        negated = "negated " if self.sign < 0 and output == "logits" else ""
        return f"mean {negated}{what} over the {self.name} region ({int(np.count_nonzero(self.weights))} pixels at model resolution)"


@dataclass(eq=False)
class ClassTarget:
    """Class ``index`` of a classifier whose output is a logit vector (N, K)."""

    index: int
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"class {self.index}"

    def score(self, outputs, output: Output = "logits"):
        """The class logit, or its softmax probability with ``output="sigmoid"``."""
        import tensorflow as tf

        _check_output(output)
        return self.score_with(outputs, output, tf.constant(self.parameters()[0]))

    def parameters(self) -> tuple[np.ndarray]:
        return (np.int32(self.index),)

    @staticmethod
    def score_with(outputs, output: Output, index):
        """:meth:`score` with the class ``index`` as a tensor."""
        import tensorflow as tf

        if len(outputs.shape) != 2:
            raise ValueError(f"a class target needs a (N, K) logit vector output, got shape {tuple(outputs.shape)}")
        values = tf.nn.softmax(outputs, axis=-1) if output == "sigmoid" else outputs
        return tf.gather(values, index, axis=1)

    def describe(self, output: Output = "logits") -> str:
        return f"{'logit' if output == 'logits' else 'softmax probability'} of {self.name}"


def is_parametric(target) -> bool:
    """Whether ``target`` can share a compiled graph with every target of its kind."""
    return callable(getattr(target, "parameters", None)) and callable(getattr(type(target), "score_with", None))


def is_target(value) -> bool:
    """True for a target strategy object (anything with ``score`` and ``name``), not a mask array."""
    return not isinstance(value, np.ndarray) and callable(getattr(value, "score", None)) and hasattr(value, "name")
