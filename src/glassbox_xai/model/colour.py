"""Colour constancy inside the network: the photograph's illuminant divided out.

Dermoscopes and clinics light the skin differently; a model trained on one set of
cameras sees another's photographs as tinted. Shades of Gray (Finlayson and Trezzi
2004; used for dermoscopy by Barata et al. 2015) estimates the illuminant of each
image as the Minkowski p-norm mean of each channel, e_c = (mean x_c^p)^(1/p), and
divides it out so that a white surface stays white: x_c' = x_c / (sqrt(3) e_c / |e|).
p = 1 is Gray World, p -> infinity is White Patch; p = 6 is the usual choice.

It is a layer of the model (``ModelConfig.colour``), not a preprocessing step, so
every path that feeds the network RGB in [0, 1] (prediction, explanations,
fine-tuning, evaluation) gets the same correction, and a saved bundle carries it.
The layer has no weights; it is registered with Keras, so bundles using it load in
safe mode once this module is imported (``model.bundle`` imports it).
"""

from __future__ import annotations

from ..tf_import import import_tensorflow

import_tensorflow()  # Keras imports TensorFlow: through here, so its C++ start-up lines are not printed
import keras  # noqa: E402
from keras import ops  # noqa: E402


@keras.saving.register_keras_serializable(package="glassbox_xai")
class ShadesOfGray(keras.layers.Layer):
    """Per-image colour constancy of (batch, H, W, 3) RGB in [0, 1]; output clipped to [0, 1]."""

    def __init__(self, power: float = 6.0, epsilon: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        if not power >= 1:
            raise ValueError(f"ShadesOfGray power must be at least 1, got {power!r}")
        self.power = float(power)
        self.epsilon = float(epsilon)

    def call(self, x):
        x = ops.maximum(ops.cast(x, "float32"), 0.0)
        illuminant = ops.power(ops.mean(ops.power(x + self.epsilon, self.power), axis=(1, 2), keepdims=True), 1.0 / self.power)
        norm = ops.sqrt(ops.sum(ops.square(illuminant), axis=-1, keepdims=True))
        gain = norm / (illuminant * (3.0**0.5))
        return ops.clip(x * gain, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "power": self.power, "epsilon": self.epsilon}
