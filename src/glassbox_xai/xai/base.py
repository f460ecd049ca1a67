"""What every attribution method shares: the model input, the target region and
its score, and batched gradients of that score.

The *target* says which output is explained: for the segmentation model the
predicted lesion (default), the ground truth, the background, or any mask the user
gives; for any Keras model, a target strategy object (:mod:`.targets`), such as a
class score of a classifier. The *score* of an input is the target's
``score(outputs, output)``; for a region, the mean logit or probability over its
pixels (see :class:`~.targets.RegionTarget`), so a higher score always means more
evidence for the target. Gradients come from the model itself
(``tf.GradientTape``); nothing is cloned or edited.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..data.resize import to_model_input, to_native
from ..tf_import import import_tensorflow
from .targets import Output, RegionTarget, TargetScore, _check_output, is_parametric, is_target

Target = RegionTarget  # the segmentation target; any TargetScore works where a target is taken
TARGETS = ("prediction", "truth", "background")


class TargetError(ValueError):
    """A target mask is missing, of the wrong size, or empty."""


class Explainer:
    """Computes target scores and their input gradients for one model.

    Args:
        model: a Keras model from image (N, S, S, 3) in [0, 1] to logits: (N, S, S, 1)
            for the segmentation targets, anything a given target strategy scores.
        threshold: the probability threshold that defines the predicted lesion.
    """

    def __init__(self, model, threshold: float = 0.5) -> None:
        self.tf = import_tensorflow()
        self.model = model
        self.size = int(model.input_shape[1])
        self.threshold = float(threshold)
        # Graphs for any batch size, retracing costs about a second each: one per kind of
        # parametric target and output kind (fed each target's parameters), and one per
        # other target object (kept alive with its id).
        self._graphs: dict[tuple, object] = {}
        self._gradient_fns: dict[tuple, tuple[TargetScore, object]] = {}

    @classmethod
    def for_model(cls, model, threshold: float = 0.5) -> "Explainer":
        """The explainer of ``model``, made once and kept while the model lives (the worker keeps
        its models), so every request after the first reuses its compiled graphs.

        It is kept on the model itself, outside Keras' tracked attributes: model and explainer
        refer to each other and are collected together (a cache keyed by the model would keep
        every model alive through its explainer)."""
        explainer = vars(model).get(_KEPT)
        if explainer is None:
            explainer = cls(model, threshold)
            object.__setattr__(model, _KEPT, explainer)
        explainer.threshold = float(threshold)
        return explainer

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A photograph as a (1, S, S, 3) model input."""
        return to_model_input(image, self.size)[None]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, S, S) for a model-input batch."""
        return np.asarray(self.model(x, training=False), dtype=np.float32)[..., 0]

    def target(self, image_shape: tuple[int, int], x: np.ndarray, target: str | np.ndarray | TargetScore = "prediction",
               truth: np.ndarray | None = None) -> TargetScore:
        """The target region of a photograph of ``image_shape`` as weights at model resolution,
        or ``target`` itself when it is already a strategy object (:mod:`.targets`).

        Raises:
            TargetError: ``truth`` is needed but missing, a mask's size is not the
                photograph's, the name is unknown, or the region is empty.
        """
        if is_target(target):
            return target
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

    def scores_and_gradients(self, xs: np.ndarray, target: TargetScore, output: Output = "logits") -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and their gradients (N, S, S, C) for a batch, in one backward pass."""
        _check_output(output)
        x = self.tf.convert_to_tensor(np.asarray(xs, dtype=np.float32))
        score, grads = self._gradient_fn(target, output)(x)
        return score.numpy(), grads.numpy()

    def _parametric(self, target, output: Output, gradients: bool):
        """``x -> graph(x, *target.parameters())`` from one graph per kind of target, output kind
        and parameter shapes (see :mod:`.targets`)."""
        tf = self.tf
        parameters = [tf.constant(p) for p in target.parameters()]
        kind = type(target)
        key = (kind, output, gradients, tuple((tuple(p.shape), p.dtype.name) for p in parameters))
        if key not in self._graphs:
            def graph(x, *params):
                if not gradients:
                    return kind.score_with(self.model(x, training=False), output, *params)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    score = kind.score_with(self.model(x, training=False), output, *params)
                return score, tape.gradient(score, x)

            specs = [tf.TensorSpec([None, *self.model.input_shape[1:]], tf.float32)] + [tf.TensorSpec(p.shape, p.dtype) for p in parameters]
            self._graphs[key] = tf.function(graph, input_signature=specs)
        fn = self._graphs[key]
        return lambda x: fn(x, *parameters)

    def _gradient_fn(self, target: TargetScore, output: Output):
        """A compiled graph of score and gradients (~3x faster than eager): shared by every
        target of a parametric kind, else compiled once per target object and output kind."""
        if is_parametric(target):
            return self._parametric(target, output, gradients=True)
        key = (id(target), output)
        if key not in self._gradient_fns:
            tf = self.tf

            def graph(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    score = target.score(self.model(x, training=False), output)
                return score, tape.gradient(score, x)

            spec = tf.TensorSpec([None, *self.model.input_shape[1:]], tf.float32)
            self._gradient_fns[key] = (target, tf.function(graph, input_signature=[spec]))  # the target is kept alive with its id
        return self._gradient_fns[key][1]

    def scores(self, xs: np.ndarray, target: TargetScore, output: Output = "logits", batch: int = 16) -> np.ndarray:
        """Scores (N,) of a batch without gradients, ``batch`` images per (compiled) model call."""
        _check_output(output)
        fn = self._score_fn(target, output)
        xs = np.asarray(xs, dtype=np.float32)
        return np.concatenate([fn(self.tf.convert_to_tensor(xs[i : i + batch])).numpy() for i in range(0, len(xs), batch)])

    def _score_fn(self, target: TargetScore, output: Output):
        """A forward-only graph, compiled once per target and output kind (Score-CAM and the
        faithfulness curves call it many times; eager calls cost about twice as much)."""
        if is_parametric(target):
            return self._parametric(target, output, gradients=False)
        key = (id(target), output, "forward")
        if key not in self._gradient_fns:
            spec = self.tf.TensorSpec([None, *self.model.input_shape[1:]], self.tf.float32)
            fn = self.tf.function(lambda x: target.score(self.model(x, training=False), output), input_signature=[spec])
            self._gradient_fns[key] = (target, fn)
        return self._gradient_fns[key][1]

    def _score(self, outputs, target: TargetScore, output: Output):
        return target.score(outputs, output)


_KEPT = "_glassbox_explainer"  # the attribute of a Keras model that keeps its Explainer


def native(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D map at model resolution resized to the photograph's (rows, columns)."""
    return to_native(values, shape)
