"""Deep supervision: auxiliary masks from the decoder's coarser stages while training; the
network that is saved is the plain one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from glassbox_xai.model.bundle import load_bundle


def test_the_wrapper_adds_one_full_size_mask_per_coarser_stage_and_shares_every_layer(tiny_config):
    from glassbox_xai.learn.deep_supervision import supervised
    from glassbox_xai.model.attention_unet import build_attention_unet

    model = build_attention_unet(replace(tiny_config, depth=3))
    wrapper, weights = supervised(model, [0.5, 0.25])
    assert weights == [1.0, 0.5, 0.25] and len(wrapper.outputs) == 3
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    outputs = wrapper(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 32, 32, 1)] * 3
    np.testing.assert_allclose(np.asarray(outputs[0]), np.asarray(model(x)), atol=1e-5)  # the first output is the network's
    assert {w.path for w in model.weights} < {w.path for w in wrapper.weights}  # the network's own weights, shared
    for bad in ([], [0.5, 0.25, 0.1], [-0.1]):
        with pytest.raises(ValueError, match="deep supervision takes 1 to 2 non-negative weights"):
            supervised(model, bad)


def test_fitting_with_deep_supervision_trains_the_network_and_saves_it_plain(tiny_bundle, tmp_path, rng):
    from glassbox_xai.learn.deep_supervision import supervised
    from glassbox_xai.learn.fit import FitConfig, fit
    from glassbox_xai.learn.losses import make_loss
    from glassbox_xai.model.bundle import save_bundle

    bundle = load_bundle(tiny_bundle)
    before = [np.array(w) for w in bundle.model.get_weights()]
    wrapper, weights = supervised(bundle.model, [0.5])
    images = (rng.random((8, 32, 32, 3)) * 255).astype(np.uint8)
    masks = np.zeros((8, 32, 32), np.uint8)
    masks[:, 8:24, 8:24] = 1
    config = FitConfig(epochs=2, batch_size=4, learning_rate=1e-2, warmup_epochs=0, seed=1)
    summary = fit(wrapper, make_loss("bce_dice"), (images, masks), (images, masks), config, None, tmp_path / "run", verbose=0,
                  loss_weights=weights)
    assert summary["epochs_run"] == 2 and 0.0 <= summary["best_val_dice"] <= 1.0  # validated on the mask output
    assert sum(not np.allclose(a, b) for a, b in zip(before, bundle.model.get_weights())) > len(before) // 2
    save_bundle(bundle.model, bundle.config, bundle.card, tmp_path / "plain")
    saved = load_bundle(tmp_path / "plain")
    assert len(saved.model.outputs) == 1 and not any(layer.name.startswith("deep_supervision") for layer in saved.model.layers)
    with pytest.raises(ValueError, match="the model has 2 output\\(s\\); expected as many loss weights, got None"):
        fit(wrapper, make_loss("bce_dice"), (images, masks), (images, masks), config, None, tmp_path / "again", verbose=0)
