"""Attention U-Net (Oktay et al. 2018) in Keras 3, built from a :class:`ModelConfig`.

The network takes RGB images in [0, 1] and returns per-pixel logits; the sigmoid
is applied outside, so gradients of either can be taken from the same model.
Only built-in Keras layers are used, and with ``colour="shades_of_gray"`` the
registered :class:`~glassbox_xai.model.colour.ShadesOfGray` (named ``input_colour``), so a
saved model loads in Keras safe mode.

Layer names follow the stage, so tools can list and group them::

    encoder{i}_conv{j} / _norm{j} / _relu{j} / _pool / _dropout   i = 0..depth
    attention{i}_theta / _phi / _relu / _psi / _sigmoid / _coefficients / _gated / _out
    decoder{i}_up / _concat / _conv{j} / _norm{j} / _relu{j} / _dropout
    output_logits

``encoder{depth}`` is the bottleneck; with ``context="pool"`` it ends in
``encoder{depth}_context_pool / _reduce / _expand / _tile / _add``. ``attention{i}_coefficients`` is the gate's
coefficient map at the resolution of skip connection ``i``.
"""

from __future__ import annotations

import re

from ..tf_import import import_tensorflow

import_tensorflow()  # Keras imports TensorFlow: through here, so its C++ start-up lines are not printed
import keras  # noqa: E402
from keras import layers  # noqa: E402

from .colour import ShadesOfGray  # noqa: E402
from .config import ModelConfig  # noqa: E402

STAGES = ("encoder", "attention", "decoder", "output")
_STAGE_RE = re.compile(r"^(encoder|attention|decoder|output)(\d*)_")


def build_attention_unet(config: ModelConfig) -> keras.Model:
    """Build the Attention U-Net described by ``config`` (weights freshly initialised)."""
    size = config.input_size
    inputs = keras.Input((size, size, config.in_channels), name="image")
    skips = []
    x = ShadesOfGray(name="input_colour")(inputs) if config.colour == "shades_of_gray" else inputs
    for level in range(config.depth):
        x = _conv_block(x, _filters(config, level), f"encoder{level}", config, dropout=False)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"encoder{level}_pool")(x)
    x = _conv_block(x, _filters(config, config.depth), f"encoder{config.depth}", config, dropout=True)
    if config.context == "pool":
        x = _global_context(x, f"encoder{config.depth}", size // 2**config.depth)
    for level in reversed(range(config.depth)):
        gated = _attention_gate(skips[level], x, level, config)
        up = layers.Conv2DTranspose(
            _filters(config, level), 2, strides=2, padding="same", name=f"decoder{level}_up"
        )(x)
        x = layers.Concatenate(name=f"decoder{level}_concat")([up, gated])
        x = _conv_block(x, _filters(config, level), f"decoder{level}", config, dropout=True)
    logits = layers.Conv2D(1, 1, name="output_logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name="attention_unet")


def with_attention_outputs(model: keras.Model) -> keras.Model:
    """A view of ``model`` that also returns every attention coefficient map.

    The returned model shares layers and weights with ``model`` (nothing is
    cloned); its output is a dict ``{"logits": ..., "attention{i}": ...}``.
    """
    outputs = {"logits": model.output}
    for layer in model.layers:
        match = re.fullmatch(r"attention(\d+)_coefficients", layer.name)
        if match:
            outputs[f"attention{match.group(1)}"] = layer.output
    return keras.Model(model.input, outputs, name=f"{model.name}_with_attention")


def layer_stage(name: str) -> str | None:
    """The stage (encoder, attention, decoder, output) a layer name belongs to."""
    match = _STAGE_RE.match(name)
    return match.group(1) if match else None


CONV_KINDS = (layers.Conv2D, layers.Conv2DTranspose)


def layers_by_stage(model: keras.Model, kinds: tuple[type, ...] = CONV_KINDS) -> dict[str, list[str]]:
    """Names of the layers of the given kinds (default: every convolution, transposed
    ones included), grouped by stage in network order."""
    grouped: dict[str, list[str]] = {stage: [] for stage in STAGES}
    for layer in model.layers:
        stage = layer_stage(layer.name)
        if stage and isinstance(layer, kinds):
            grouped[stage].append(layer.name)
    return grouped


def batchnorm_layers(model: keras.Model) -> list[layers.BatchNormalization]:
    """The model's batch normalisation layers (frozen to keep the parent's statistics)."""
    return [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]


def _filters(config: ModelConfig, level: int) -> int:
    return config.base_filters * 2**level


def _norm(x, name: str, config: ModelConfig):
    if config.normalization == "batch":
        return layers.BatchNormalization(name=name)(x)
    if config.normalization == "group":
        channels = x.shape[-1]
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return layers.GroupNormalization(groups=groups, name=name)(x)
    return x


def _conv_block(x, filters: int, prefix: str, config: ModelConfig, dropout: bool):
    for j in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=config.normalization == "none", name=f"{prefix}_conv{j}"
        )(x)
        x = _norm(x, f"{prefix}_norm{j}", config)
        x = layers.Activation("relu", name=f"{prefix}_relu{j}")(x)
    if dropout and config.dropout > 0:
        x = layers.SpatialDropout2D(config.dropout, name=f"{prefix}_dropout")(x)
    return x


def _global_context(x, prefix: str, side: int):
    """The feature map plus a squeezed projection of its mean over the whole image
    (zero at initialisation: the last projection's weights and bias start at 0)."""
    channels = x.shape[-1]
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_context_pool")(x)
    g = layers.Conv2D(max(channels // 4, 1), 1, activation="relu", name=f"{prefix}_context_reduce")(g)
    g = layers.Conv2D(channels, 1, kernel_initializer="zeros", bias_initializer="zeros", name=f"{prefix}_context_expand")(g)
    g = layers.UpSampling2D(side, name=f"{prefix}_context_tile")(g)
    return layers.Add(name=f"{prefix}_context_add")([x, g])


def _attention_gate(skip, gating, level: int, config: ModelConfig):
    """Additive attention gate: the coarser ``gating`` signal weights ``skip``."""
    prefix = f"attention{level}"
    inter = max(skip.shape[-1] // 2, 1)
    theta = layers.Conv2D(inter, 2, strides=2, use_bias=False, name=f"{prefix}_theta")(skip)
    phi = layers.Conv2D(inter, 1, name=f"{prefix}_phi")(gating)
    f = layers.Add(name=f"{prefix}_add")([theta, phi])
    f = layers.Activation("relu", name=f"{prefix}_relu")(f)
    psi = layers.Conv2D(1, 1, name=f"{prefix}_psi")(f)
    alpha = layers.Activation("sigmoid", name=f"{prefix}_sigmoid")(psi)
    alpha = layers.UpSampling2D(2, interpolation="bilinear", name=f"{prefix}_coefficients")(alpha)
    gated = layers.Multiply(name=f"{prefix}_gated")([skip, alpha])
    out = layers.Conv2D(skip.shape[-1], 1, name=f"{prefix}_out")(gated)
    return _norm(out, f"{prefix}_out_norm", config)
