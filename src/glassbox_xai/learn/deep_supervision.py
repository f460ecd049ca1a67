"""Deep supervision (Lee et al. 2015; Zhou et al. 2018): auxiliary masks from the decoder's coarser
stages, each fitted to the expert mask, so the deeper layers get a direct training signal.

Training-only: :func:`supervised` wraps a built Attention U-Net in a model with more outputs
that shares every layer with it. The network that is saved, explained and shipped is the
wrapped one, unchanged (the auxiliary heads are dropped with the wrapper).
"""

from __future__ import annotations

import keras
from keras import layers

PREFIX = "deep_supervision"


def supervised(model: keras.Model, weights: list[float] | tuple[float, ...]) -> tuple[keras.Model, list[float]]:
    """A model returning ``model``'s logits and one auxiliary logit map per weight, from decoder
    stage 1 (half resolution) downwards, each a 1 x 1 convolution of the stage's output upsampled
    bilinearly to the input's size. Returns it and the loss weights of its outputs (1 for the mask).

    Raises:
        ValueError: no weight, a negative one, or more weights than the decoder has coarser stages.
    """
    depth = sum(1 for layer in model.layers if layer.name.startswith("decoder") and layer.name.endswith("_up"))
    if not weights or any(w < 0 for w in weights) or len(weights) > depth - 1:
        raise ValueError(f"deep supervision takes 1 to {depth - 1} non-negative weights (decoder stages 1..{depth - 1} of a "
                         f"depth-{depth} network), got {list(weights)}")
    outputs = [model.output]
    for level in range(1, len(weights) + 1):
        stage = model.get_layer(f"decoder{level - 1}_up").input  # the output of decoder stage `level`
        logits = layers.Conv2D(1, 1, name=f"{PREFIX}{level}_logits", dtype="float32")(stage)
        outputs.append(layers.UpSampling2D(2**level, interpolation="bilinear", name=f"{PREFIX}{level}_up", dtype="float32")(logits))
    return keras.Model(model.input, outputs, name=f"{model.name}_{PREFIX}"), [1.0, *map(float, weights)]
