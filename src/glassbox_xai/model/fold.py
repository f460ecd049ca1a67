"""Batch normalisation folded into the convolution before it, for prediction.

At inference a batch normalisation layer is an affine map per channel,
``gamma * (y - mean) / sqrt(var + eps) + beta``, of the convolution output ``y`` that feeds it.
Scaling the convolution's kernel by ``gamma / sqrt(var + eps)`` and giving it the matching bias
computes the same function with one pass over each feature map fewer. On the shipped model
that is about a fifth of the CPU forward time (``benchmarks/predict_speed.py``).

The folded model is a copy with the same layer names, minus the normalisation layers; it is
for :class:`~glassbox_xai.inference.Segmenter`'s forward pass only. Explanations, Monte Carlo
dropout and fine-tuning keep the bundle's own model (its batch normalisation layers are
what training and the layer pickers know).
"""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np

from .attention_unet import batchnorm_layers, build_attention_unet
from .config import ModelConfig


def normalised_layer(norm_name: str) -> str:
    """The name of the convolution a batch normalisation layer of the Attention U-Net follows:
    ``<block>_norm<j>`` follows ``<block>_conv<j>``, ``attention<i>_out_norm`` follows ``attention<i>_out``."""
    if norm_name.endswith("_out_norm"):
        return norm_name[: -len("_norm")]
    block, sep, j = norm_name.rpartition("_norm")
    if not sep or not block:
        raise ValueError(f"{norm_name!r} is not a normalisation layer name of the Attention U-Net")
    return f"{block}_conv{j}"


def fold_batchnorm(model: keras.Model, config: ModelConfig) -> keras.Model:
    """A model that computes ``model``'s inference output with every batch normalisation folded
    into the convolution before it; ``model`` itself when ``config`` has no batch normalisation.

    Raises:
        ValueError: ``model`` does not have the layers ``config`` describes (it was not built
            from it), or a normalisation layer follows no convolution of that name.
    """
    if config.normalization != "batch":
        return model
    norms = {normalised_layer(norm.name): norm for norm in batchnorm_layers(model)}
    folded = build_attention_unet(replace(config, normalization="none"))
    source = {layer.name: layer for layer in model.layers}
    missing = sorted(set(norms) - {layer.name for layer in folded.layers})
    if missing:
        raise ValueError(f"batch normalisation follows no convolution named {missing} in a model built from {config}")
    for layer in folded.layers:
        if not layer.weights:
            continue
        if layer.name not in source:
            raise ValueError(f"model has no layer {layer.name!r}; it was not built from {config}")
        weights = source[layer.name].get_weights()
        if layer.name in norms:
            weights = _folded(weights, norms[layer.name])
        layer.set_weights(weights)
    return folded


def _folded(conv_weights: list[np.ndarray], norm: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """Kernel and bias of a convolution (with or without its own bias) followed by ``norm``."""
    mean = np.asarray(norm.moving_mean, dtype=np.float64)
    variance = np.asarray(norm.moving_variance, dtype=np.float64)
    gamma = np.asarray(norm.gamma, dtype=np.float64) if norm.scale else np.ones_like(mean)  # a layer may learn no scale or shift
    beta = np.asarray(norm.beta, dtype=np.float64) if norm.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    kernel = np.asarray(conv_weights[0], dtype=np.float64) * scale  # output channels are the kernel's last axis
    bias = np.asarray(conv_weights[1], dtype=np.float64) if len(conv_weights) > 1 else np.zeros_like(scale)
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]
