"""The shared fit loop: a tiny run on real pairs improves validation Dice, resumes after
an interruption, and its input pipeline is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from data_paths import ISIC, split_ids
from glassbox_xai.data.layout import discover
from glassbox_xai.learn.dataset import element_order, load_pairs, train_dataset
from glassbox_xai.learn.fit import BEST_FILE, FitConfig, fit, mean_dice, read_log
from glassbox_xai.learn.losses import make_loss
from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.model.config import ModelConfig

AUGMENT = {"horizontal_flip": {"p": 0.5}, "vertical_flip": {"p": 0.5}, "brightness": {"p": 0.3}}
CONFIG = ModelConfig(input_size=64, base_filters=8, depth=2, dropout=0.0, normalization="group")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    by_id = {s.id: s for s in discover(ISIC, require_masks=True)}
    cache = tmp_path_factory.mktemp("cache")
    train = load_pairs([by_id[i] for i in split_ids("dev_train")[:32]], 64, cache)
    val = load_pairs([by_id[i] for i in split_ids("dev_val")[:12]], 64, cache)
    return train, val


class Interrupt(Exception):
    pass


def test_load_pairs_shapes_and_cache(pairs, tmp_path):
    (images, masks), _ = pairs
    assert images.shape == (32, 64, 64, 3) and images.dtype == np.uint8
    assert masks.shape == (32, 64, 64) and set(np.unique(masks).tolist()) == {0, 1}
    by_id = {s.id: s for s in discover(ISIC, require_masks=True)}
    samples = [by_id[i] for i in split_ids("dev_val")[:3]]
    first = load_pairs(samples, 32, tmp_path)
    assert len(list(tmp_path.glob("pairs_32_3_*.npz"))) == 1
    second = load_pairs(samples, 32, tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_element_order_is_seeded_per_epoch():
    take = lambda gen, k: [next(gen) for _ in range(k)]
    a = take(element_order(10, seed=3), 20)
    b = take(element_order(10, seed=3), 20)
    assert a == b
    assert sorted(i for i, _ in a[:10]) == list(range(10)) and [i for i, _ in a[:10]] != [i for i, _ in a[10:]]
    assert take(element_order(10, seed=3, start_epoch=1), 10) == a[10:]
    assert len({s for _, s in a}) == 20


def test_train_dataset_batches_are_reproducible(pairs):
    (images, masks), _ = pairs
    first = next(iter(train_dataset(images, masks, 4, AUGMENT, seed=5)))
    again = next(iter(train_dataset(images, masks, 4, AUGMENT, seed=5)))
    x, y = (np.asarray(t) for t in first)
    assert x.shape == (4, 64, 64, 3) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert y.shape == (4, 64, 64, 1) and set(np.unique(y).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(x, np.asarray(again[0]))


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0}, {"warmup_epochs": 5, "epochs": 5}, {"patience": 0},
                                    {"optimizer": "lion"}])
def test_fit_config_refuses_bad_values(kwargs):
    with pytest.raises(ValueError, match="fit config: bad value for"):
        FitConfig(**kwargs)


@pytest.mark.parametrize("optimizer,weight_decay,kind", [("adam", 0.0, "Adam"), ("adam", 1e-4, "AdamW"), ("sgd", 1e-4, "SGD")])
def test_the_optimizer_is_the_one_asked_for(optimizer, weight_decay, kind):
    from glassbox_xai.learn.fit import _optimizer

    made = _optimizer(FitConfig(epochs=2, warmup_epochs=0, learning_rate=0.01, weight_decay=weight_decay, optimizer=optimizer), steps_per_epoch=5)
    assert type(made).__name__ == kind
    if optimizer == "sgd":
        assert made.momentum == 0.9 and made.nesterov and made.weight_decay == pytest.approx(1e-4)


def test_mean_dice_by_hand():
    pred = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], bool)
    truth = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]], bool)
    assert mean_dice(pred, truth) == pytest.approx((2 / 3 + 1.0) / 2)


@pytest.mark.slow
def test_tiny_training_improves_validation_dice_and_resumes(pairs, tmp_path):
    train, val = pairs
    config = FitConfig(epochs=14, batch_size=8, learning_rate=3e-3, warmup_epochs=1, patience=14, seed=11)
    model = build_attention_unet(CONFIG)
    from glassbox_xai.learn.dataset import eval_arrays

    val_x, val_y = eval_arrays(*val)
    before = mean_dice(np.asarray(model.predict(val_x, verbose=0)) > 0, val_y > 0.5)

    def stop_at_5(epoch, epochs, logs):
        if epoch == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(model, make_loss("bce_dice"), train, val, config, AUGMENT, tmp_path, report=stop_at_5, verbose=0)
    assert len(read_log(tmp_path / "log.csv")) == 5

    resumed = build_attention_unet(CONFIG)  # a fresh process would start from new weights
    summary = fit(resumed, make_loss("bce_dice"), train, val, config, AUGMENT, tmp_path, verbose=0)
    log = read_log(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in log] == list(range(14))  # epochs 6..14 continued, none repeated
    assert summary["epochs_run"] == 14 and (tmp_path / BEST_FILE).is_file()
    after = mean_dice(np.asarray(resumed.predict(val_x, verbose=0)) > 0, val_y > 0.5)
    assert after == pytest.approx(summary["best_val_dice"], abs=1e-6)  # best weights are loaded back
    assert after > 0.7 and after > before + 0.2, (before, after)


def test_finetune_settings_know_the_same_optimizers():
    from glassbox_xai.hitl.finetune import OPTIMIZERS as FINETUNE_OPTIMIZERS
    from glassbox_xai.hitl.finetune import FinetuneSettings
    from glassbox_xai.learn.fit import OPTIMIZERS

    assert FINETUNE_OPTIMIZERS == OPTIMIZERS  # the Keras-free copy the CLI and benchmarks check against
    for name in OPTIMIZERS:
        assert FinetuneSettings(optimizer=name).optimizer == name
