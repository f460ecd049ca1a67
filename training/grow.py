"""Warm-start a larger network from a trained parent so that it first computes the parent's function.

Two ways of growing the Attention U-Net are used by the issue-11 levers:

- :func:`grow_blocks` adds the global-context block (zero-initialised) and/or the colour-
  constancy input layer (no weights) to a parent without them (:func:`can_grow_blocks`); the
  context block leaves the parent's function unchanged, the colour layer changes its input;
- :func:`grow_width` widens every stage (``base_filters`` 16 -> 24, say). Each layer's old
  channels keep the parent's weights; the new output channels start from the fresh model's
  initialisation, and the weights from new input channels into old output channels start at
  zero, so every old channel (and so the logits) is unchanged until training moves them.
  Input channels that come from a concatenation are mapped segment by segment
  (``decoder{i}_concat`` joins the up-sampled path and the gated skip).
"""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
from keras import layers

from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.model.config import OPTIONAL_BLOCKS, ModelConfig


def can_grow_blocks(parent: ModelConfig, child: ModelConfig) -> bool:
    """Whether ``child`` is ``parent`` with the context block and/or the colour layer switched on."""
    added = {key: getattr(child, key) for key in OPTIONAL_BLOCKS}
    return (
        child != parent
        and replace(parent, **added) == child
        and all(getattr(parent, key) in ("none", value) for key, value in added.items())
    )


def grow_blocks(parent: keras.Model, config: ModelConfig) -> keras.Model:
    """A model of ``config`` (the parent's with a context block or colour layer) holding every
    parent layer's weights by name; the context block is zero-initialised, so without the
    colour layer the grown model computes the parent's function."""
    model = build_attention_unet(config)
    for layer in parent.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    return model


def can_grow_width(parent: ModelConfig, child: ModelConfig) -> bool:
    """Whether ``child`` is ``parent`` with more base filters and nothing else changed."""
    return child.base_filters > parent.base_filters and replace(parent, base_filters=child.base_filters) == child


def grow_width(parent: keras.Model, config: ModelConfig, parent_config: ModelConfig) -> keras.Model:
    """A model of ``config`` (the parent's with more ``base_filters``) computing the parent's logits."""
    if not can_grow_width(parent_config, config):
        raise ValueError(f"cannot widen {parent_config} into {config}: only base_filters may grow")
    model = build_attention_unet(config)
    for layer in model.layers:
        if not layer.weights:
            continue
        old_layer = parent.get_layer(layer.name)
        in_map = out_map = None
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            in_map = _channel_map(_in_segments(old_layer), _in_segments(layer))
            out_map = _channel_map([old_layer.filters], [layer.filters])
        widened = []
        for old, new in zip(old_layer.get_weights(), layer.get_weights(), strict=True):
            widened.append(_widen(old, new, layer, in_map, out_map))
        layer.set_weights(widened)
    return model


def _in_segments(layer) -> list[int]:
    """Channel counts of the tensors joined into ``layer``'s input (one entry unless it is a concatenation)."""
    source = layer.input._keras_history.operation  # Keras 3 keeps the layer that produced a symbolic tensor here
    if isinstance(source, layers.Concatenate):
        return [int(t.shape[-1]) for t in source.input]
    return [int(layer.input.shape[-1])]


def _channel_map(old: list[int], new: list[int]) -> np.ndarray:
    """Index in the new channel axis of each old channel, segment by segment."""
    if len(old) != len(new) or any(o > n for o, n in zip(old, new)):
        raise ValueError(f"channel segments {old} do not fit into {new}")
    starts = np.cumsum([0, *new[:-1]])
    return np.concatenate([start + np.arange(o) for start, o in zip(starts, old)]).astype(int)


def _widen(old: np.ndarray, new: np.ndarray, layer, in_map, out_map) -> np.ndarray:
    if old.shape == new.shape:
        return old
    out = new.copy()
    if old.ndim == 1:  # bias or normalisation vector: old channels copied, new ones keep their initial values
        index = out_map if out_map is not None else np.arange(old.shape[0])
        out[index] = old
        return out
    # kernels: Conv2D (kh, kw, in, out), Conv2DTranspose (kh, kw, out, in)
    transposed = isinstance(layer, layers.Conv2DTranspose)
    new_in = np.setdiff1d(np.arange(new.shape[3 if transposed else 2]), in_map)
    out[_cells(in_map, out_map, transposed)] = old
    out[_cells(new_in, out_map, transposed)] = 0.0  # new inputs do not reach the old outputs yet
    return out


def _cells(inputs: np.ndarray, outputs: np.ndarray, transposed: bool):
    """Index of a kernel's (input channel, output channel) grid, every spatial tap."""
    first, second = (outputs, inputs) if transposed else (inputs, outputs)
    return (slice(None), slice(None), *np.ix_(first, second))
