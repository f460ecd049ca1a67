"""Fine-tuning from a retraining set or any annotated folder: a new bundle with full
provenance, before/after table, clear refusals of bad input, and the adaptation steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_paths import DATA, ISIC, ISIC_IMAGES, ISIC_MASKS, split_ids
from glassbox_xai.cli import main
from glassbox_xai.data.io import read_image, read_mask
from glassbox_xai.hitl.store import RetrainingSet
from glassbox_xai.model.bundle import load_bundle

PH2 = DATA / "ph2_shifted"


def test_finetune_from_corrections_writes_a_child_bundle(tiny_bundle, tmp_path, capsys):
    store = RetrainingSet(tmp_path / "set")
    for image_id in split_ids("dev_val")[:6]:
        path = ISIC_IMAGES / f"{image_id}.jpg"
        truth = read_mask(ISIC_MASKS / f"{image_id}_segmentation.png")
        store.save(path, read_image(path).shape[:2], truth, np.zeros_like(truth), {"variant": "custom", "annotator": "test"})
    held = tmp_path / "held"
    held.mkdir()
    for image_id in split_ids("dev_val")[10:12]:
        (held / f"{image_id}.jpg").write_bytes((ISIC_IMAGES / f"{image_id}.jpg").read_bytes())
        (held / f"{image_id}_segmentation.png").write_bytes((ISIC_MASKS / f"{image_id}_segmentation.png").read_bytes())
    code = main(["finetune", "--set", str(tmp_path / "set"), "--model", str(tiny_bundle), "--epochs", "2",
                 "--mix-original", str(ISIC), "--original-targets", "parent", "--evaluate-on", str(held)])
    out = capsys.readouterr().out
    assert code == 0 and "epoch 2/2" in out and "| before |" in out and "| after |" in out
    bundle_dir = next((tmp_path / "set" / "models").glob("custom-finetuned-*/bundle"))
    child, parent = load_bundle(bundle_dir), load_bundle(tiny_bundle)
    assert child.card.variant == "finetuned" and child.card.parent == parent.card.weights_sha256
    assert child.card.training_data["sha256"] == store.manifest()["sha256"]
    # by default no correction is held out, and half as many original pairs are mixed in
    assert child.card.training_data["n_images"] == 6 and child.card.training_data["n_original_mixed"] == 3
    assert child.card.training_data["finetune_settings"]["original_targets"] == "parent"  # fitted to the parent's own masks
    assert child.card.weights_sha256 != parent.card.weights_sha256
    name = bundle_dir.parent.name
    assert f"registered as version {name}" in out
    assert main(["versions", "--activate", name]) == 0
    listed = capsys.readouterr().out
    assert f"* {name}" in listed and "  dice" in listed  # the new version is active; the shipped ones stay listed
    assert main(["versions", "--activate", "no-such-model"]) == 2
    assert "expected one of" in capsys.readouterr().err


def test_finetune_on_an_empty_set_says_what_to_do(tiny_bundle, tmp_path, capsys):
    RetrainingSet(tmp_path / "empty")  # made in napari, nothing accepted yet
    assert main(["finetune", "--set", str(tmp_path / "empty"), "--model", str(tiny_bundle)]) == 2
    assert "holds no corrections yet" in capsys.readouterr().err
    assert main(["finetune", "--set", str(tmp_path / "missing"), "--model", str(tiny_bundle)]) == 2
    assert f"{tmp_path / 'missing'} does not exist" in capsys.readouterr().err


def test_frozen_batchnorm_keeps_the_parents_statistics(tiny_bundle, rng):
    import keras

    from glassbox_xai.hitl.finetune import freeze_batchnorm

    model = load_bundle(tiny_bundle).model
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before = [np.array(layer.moving_mean) for layer in norms]
    weights_before = np.array(model.trainable_weights[0])
    assert freeze_batchnorm(model) == len(norms) > 0
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    x = rng.random((4, 32, 32, 3)).astype("float32") * 5.0  # far from the statistics the layers hold
    model.fit(x, (rng.random((4, 32, 32, 1)) > 0.5).astype("float32"), epochs=1, verbose=0)
    assert all(np.array_equal(b, np.array(layer.moving_mean)) for b, layer in zip(before, norms))
    assert not np.array_equal(weights_before, np.array(model.trainable_weights[0]))  # the convolutions did learn


def _ph2_pairs(folder, ids):
    """A plain folder of real PH2 pairs: <id>.png beside <id>_segmentation.png."""
    folder.mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        for name in (f"{image_id}.png", f"{image_id}_segmentation.png"):
            shutil.copyfile(PH2 / name, folder / name)
    return folder


PH2_IDS = sorted(p.stem for p in PH2.glob("ISIC_*[0-9].png"))


def test_finetune_on_a_plain_folder_of_pairs_writes_the_bundle_where_asked(tiny_bundle, tmp_path, capsys):
    pairs = _ph2_pairs(tmp_path / "clinic", PH2_IDS[:4])
    out = tmp_path / "adapted"
    code = main(["finetune", "--set", str(pairs), "--model", str(tiny_bundle), "--epochs", "1", "--out", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, printed
    assert "warning:" not in captured.err  # clean pairs: no warning at all (Keras's numpy-2 deprecation printed 432 lines, its shuffle note one)
    child, parent = load_bundle(out), load_bundle(tiny_bundle)
    card = child.card
    assert card.parent == parent.card.weights_sha256 and card.weights_sha256 != parent.card.weights_sha256
    assert card.training_data["n_images"] == 4 and card.training_data["source"] == str(pairs.resolve())
    assert len(card.training_data["sha256"]) == 64
    settings = card.training_data["finetune_settings"]
    assert settings["epochs"] == 1 and settings["choose_threshold"] is False  # measured on PH2: the parent's threshold does as well
    assert card.threshold == parent.card.threshold and f"the parent's threshold {parent.card.threshold:.2f}" in printed
    assert "registered as version adapted" in printed
    assert all(layer.trainable for layer in child.model.layers)  # frozen only while fitting
    # the set's hash is its content: the same pairs hash the same, a changed mask does not
    from glassbox_xai.hitl.finetune import training_samples

    assert training_samples(pairs)[1] == card.training_data["sha256"]
    mask = pairs / f"{PH2_IDS[0]}_segmentation.png"
    Image.fromarray(~np.asarray(Image.open(mask))).save(mask)
    assert training_samples(pairs)[1] != card.training_data["sha256"]


def test_finetune_re_chooses_the_threshold_when_asked(tiny_bundle, tmp_path, capsys):
    pairs = _ph2_pairs(tmp_path / "clinic", PH2_IDS[:4])
    out = tmp_path / "adapted"
    code = main(["finetune", "--set", str(pairs), "--model", str(tiny_bundle), "--epochs", "1", "--out", str(out), "--choose-threshold"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    card = load_bundle(out).card
    assert card.training_data["finetune_settings"]["choose_threshold"] is True
    assert f"threshold {card.threshold:.2f} (re-chosen on the corrections)" in printed
    assert card.validation_metrics["dice_model_resolution_on_corrections_at_threshold"] is not None


def _bad_mask(folder, kind):
    name = f"{PH2_IDS[1]}_segmentation.png"
    truth = np.asarray(Image.open(folder / name))
    bad = truth[:-10] if kind == "size" else np.where(truth > 0, 200, 30).astype(np.uint8)
    Image.fromarray(bad).save(folder / name)
    return name


@pytest.mark.parametrize("kind, expected", [("size", "expected the same size"), ("values", "is not binary")])
def test_finetune_names_the_bad_mask(tiny_bundle, tmp_path, capsys, kind, expected):
    pairs = _ph2_pairs(tmp_path / "clinic", PH2_IDS[:3])
    name = _bad_mask(pairs, kind)
    assert main(["finetune", "--set", str(pairs), "--model", str(tiny_bundle), "--epochs", "1", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert name in err and expected in err
    assert not (tmp_path / "b").exists()


def test_finetune_on_a_folder_without_pairs_says_what_it_expected(tiny_bundle, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copyfile(PH2 / f"{PH2_IDS[0]}.png", folder / f"{PH2_IDS[0]}.png")  # a photograph, no mask
    assert main(["finetune", "--set", str(folder), "--model", str(tiny_bundle)]) == 2
    err = capsys.readouterr().err
    assert f"no image/mask pairs in {folder}" in err and "_segmentation.png" in err


def test_adabn_sets_the_statistics_of_the_new_images(tiny_bundle, rng):
    """The first batch-norm layer's moving mean becomes the mean of its input over the
    images, whether they arrive in one chunk or several."""
    import keras

    from glassbox_xai.hitl.finetune import adapt_batchnorm
    from glassbox_xai.model.attention_unet import batchnorm_layers

    images = (rng.random((10, 32, 32, 3)) * 0.5 + 0.4).astype("float32")
    means = []
    for chunk in (10, 3):
        model = load_bundle(tiny_bundle).model
        first = batchnorm_layers(model)[0]
        before = np.array(first.moving_mean)
        assert adapt_batchnorm(model, images, batch_size=chunk) == len(batchnorm_layers(model))
        expected = np.asarray(keras.Model(model.input, first.input)(images)).mean(axis=(0, 1, 2))
        np.testing.assert_allclose(np.array(first.moving_mean), expected, rtol=1e-4, atol=1e-5)
        assert not np.allclose(before, expected) and first.momentum == 0.99
        means.append(np.array(batchnorm_layers(model)[-1].moving_mean))
    np.testing.assert_allclose(means[0], means[1], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("cut", [0.2, 0.55, 0.8])
def test_best_threshold_recovers_the_cut_that_made_the_masks(cut, rng):
    from glassbox_xai.hitl.finetune import best_threshold

    probabilities = rng.random((5, 16, 16))
    threshold, table = best_threshold(probabilities, probabilities > cut)
    assert threshold == pytest.approx(cut) and table[threshold] == 1.0 and min(table.values()) < 1.0


def test_decoder_only_keeps_the_encoder(tiny_bundle, tmp_path, rng):
    from glassbox_xai.hitl.finetune import FinetuneSettings, adapt
    from glassbox_xai.model.attention_unet import layer_stage

    model = load_bundle(tiny_bundle).model
    stage = {layer.name: layer_stage(layer.name) for layer in model.layers}
    before = {layer.name: [np.array(w) for w in layer.weights] for layer in model.layers if layer.weights}
    images = (rng.random((6, 32, 32, 3)) * 255).astype(np.uint8)
    masks = (rng.random((6, 32, 32)) > 0.5).astype(np.uint8)
    summary = adapt(model, (images, masks), None, FinetuneSettings(epochs=1, train_layers="decoder", adapt_batchnorm=False,
                                                                   learning_rate=1e-2), tmp_path / "run")
    assert summary["encoder_layers_frozen"] > 0 and summary["n_original_mixed"] == 0
    changed = {name for name, ws in before.items()
               if any(not np.array_equal(w, np.array(v)) for w, v in zip(ws, model.get_layer(name).weights))}
    assert changed and all(stage[name] != "encoder" for name in changed)
    assert any(stage[name] == "decoder" for name in changed)


def test_finetune_registers_the_version_itself_and_reports_within_epochs(tiny_bundle, tmp_path):
    from glassbox_xai.hitl.finetune import FinetuneSettings, finetune
    from glassbox_xai.model import versions

    pairs = _ph2_pairs(tmp_path / "clinic", PH2_IDS[:4])
    reports = []
    bundle, summary = finetune(tiny_bundle, pairs, tmp_path / "runs", FinetuneSettings(epochs=2, batch_size=2),
                               report=lambda epoch, total, logs: reports.append((epoch, total, dict(logs))))
    registered = versions.versions()
    assert summary["version"] in registered and registered[summary["version"]]["path"] == str(bundle.resolve())
    assert versions.label_for(bundle, "finetuned") == summary["version"]  # layers are named by the version
    within = [(epoch, logs["batch"], logs["steps"]) for epoch, _, logs in reports if "batch" in logs]
    assert within == [(1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)]  # 4 corrections in batches of 2: two steps per epoch
    assert [(epoch, total) for epoch, total, logs in reports if "batch" not in logs] == [(1, 2), (2, 2)]
    _, quiet = finetune(tiny_bundle, pairs, tmp_path / "runs2", FinetuneSettings(epochs=1), register=False)
    assert quiet["version"] is None and list(versions.versions()) == [summary["version"]]  # simulations register nothing


def test_finetune_offers_only_options_that_act_on_it(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = capsys.readouterr().out
    assert "--evaluate-on" in text and "--threshold" in text and "--variant" in text
    assert not any(option in text for option in ("--tta", "--postprocess", "--batch-size"))  # they did nothing here


def test_weight_average_zero_gives_back_the_parent_and_a_half_lands_between(tiny_bundle, tmp_path, rng):
    from glassbox_xai.hitl.finetune import FinetuneSettings, adapt, interpolate_weights

    images = (rng.random((6, 32, 32, 3)) * 255).astype(np.uint8)
    masks = (rng.random((6, 32, 32)) > 0.5).astype(np.uint8)
    parent = load_bundle(tiny_bundle).model.get_weights()
    kept = load_bundle(tiny_bundle).model
    summary = adapt(kept, (images, masks), None, FinetuneSettings(epochs=1, learning_rate=1e-2, choose_threshold=False, weight_average=0.0),
                    tmp_path / "run")
    assert summary["weight_average"] == 0.0
    for p, k in zip(parent, kept.get_weights()):
        np.testing.assert_allclose(k, p, rtol=1e-6, atol=1e-7)  # the fit ran, and all of it was taken back

    fitted = load_bundle(tiny_bundle).model
    adapt(fitted, (images, masks), None, FinetuneSettings(epochs=1, learning_rate=1e-2, choose_threshold=False), tmp_path / "full")
    after = [np.array(w) for w in fitted.get_weights()]
    assert sum(not np.allclose(p, f) for p, f in zip(parent, after)) > 0  # the fit moved weights
    interpolate_weights(fitted, parent, 0.25)
    for p, f, a in zip(parent, after, fitted.get_weights()):
        np.testing.assert_allclose(a, 0.25 * f + 0.75 * p, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected .* weight arrays to interpolate with, got 1"):
        interpolate_weights(fitted, parent[:1], 0.5)


def test_weight_average_outside_zero_to_one_is_refused():
    from glassbox_xai.hitl.finetune import FinetuneSettings

    with pytest.raises(ValueError, match="weight_average is the fitted weights' share, in \\[0, 1\\]; got 1.5"):
        FinetuneSettings(weight_average=1.5)


def test_finetune_refuses_a_weight_share_outside_zero_to_one(tiny_bundle, tmp_path, capsys):
    pairs = _ph2_pairs(tmp_path / "clinic", PH2_IDS[:2])
    assert main(["finetune", "--set", str(pairs), "--model", str(tiny_bundle), "--weight-average", "1.5"]) == 2
    assert "weight_average is the fitted weights' share, in [0, 1]; got 1.5" in capsys.readouterr().err
    assert not (pairs / "models").exists()  # refused before anything was written


@pytest.mark.parametrize("targets", ["truth", "parent"])
def test_mixed_original_pairs_are_fitted_to_their_masks_or_to_the_parents(tiny_bundle, tmp_path, rng, monkeypatch, targets):
    """original_targets="parent" (Learning without Forgetting) fits the mixed original images to the
    parent's own masks at its threshold, not to their expert masks."""
    import glassbox_xai.learn.fit as fit_module
    from glassbox_xai.hitl.finetune import FinetuneSettings, adapt, model_logits
    from glassbox_xai.inference import sigmoid

    seen = {}

    def capture(model, loss, train, val, config, augment, run_dir, **kwargs):
        seen["images"], seen["masks"] = train
        return {"best_val_dice": None}

    monkeypatch.setattr(fit_module, "fit", capture)
    corrections = ((rng.random((4, 32, 32, 3)) * 255).astype(np.uint8), (rng.random((4, 32, 32)) > 0.5).astype(np.uint8))
    original = ((rng.random((8, 32, 32, 3)) * 255).astype(np.uint8), np.zeros((8, 32, 32), np.uint8))  # expert masks all empty
    model = load_bundle(tiny_bundle).model
    probabilities = sigmoid(model_logits(model, original[0].astype(np.float32) / 255.0, tta=False))
    threshold = float(np.quantile(probabilities, 0.6))  # a cut that leaves both classes in the parent's masks
    summary = adapt(model, corrections, original, FinetuneSettings(epochs=1, mix_ratio=1.0, original_targets=targets), tmp_path / "run",
                    parent_threshold=threshold)
    assert summary["n_original_mixed"] == 4
    def where(images, pool):
        return [int(np.flatnonzero((pool == image).all(axis=(1, 2, 3)))[0]) for image in images]

    mixed_images, mixed_masks = seen["images"][4:], seen["masks"][4:]
    np.testing.assert_array_equal(seen["masks"][:4], corrections[1][where(seen["images"][:4], corrections[0])])  # corrections keep theirs
    if targets == "truth":
        assert not mixed_masks.any()
    else:
        picked = where(mixed_images, original[0])
        np.testing.assert_array_equal(mixed_masks, (probabilities[picked] > threshold).astype(np.uint8))
        assert 0 < mixed_masks.mean() < 1


def test_original_targets_other_than_truth_or_parent_are_refused():
    from glassbox_xai.hitl.finetune import FinetuneSettings

    with pytest.raises(ValueError, match="original_targets must be 'truth' or 'parent', got 'teacher'"):
        FinetuneSettings(original_targets="teacher")


def test_finetune_refuses_the_parents_targets_without_original_images(tiny_bundle, tmp_path, capsys):
    pairs = _ph2_pairs(tmp_path / "clinic", PH2_IDS[:2])
    assert main(["finetune", "--set", str(pairs), "--model", str(tiny_bundle), "--original-targets", "parent"]) == 2
    assert "--original-targets parent needs --mix-original DIR" in capsys.readouterr().err
    assert not (pairs / "models").exists()  # refused before anything was written


@pytest.mark.parametrize("augment", ["light", "training"])
def test_the_fit_gets_the_augmentations_asked_for(tiny_bundle, tmp_path, rng, monkeypatch, augment):
    """augment="training" hands the fit the shipped dice recipe's augmentations, "light" the few
    the loop has always used (measured on PH2: the recipe's set does not lower the forgetting)."""
    import yaml

    import glassbox_xai.learn.fit as fit_module
    from glassbox_xai.hitl.finetune import AUGMENT, FinetuneSettings, adapt

    seen = {}
    monkeypatch.setattr(fit_module, "fit", lambda model, loss, train, val, config, aug, run_dir, **kw: seen.update(augment=aug) or {})
    corrections = ((rng.random((4, 32, 32, 3)) * 255).astype(np.uint8), (rng.random((4, 32, 32)) > 0.5).astype(np.uint8))
    adapt(load_bundle(tiny_bundle).model, corrections, None, FinetuneSettings(epochs=1, augment=augment), tmp_path / "run")
    recipe = yaml.safe_load((Path(__file__).resolve().parents[2] / "training/configs/dice.yaml").read_text())["augment"]
    assert seen["augment"] == (recipe if augment == "training" else AUGMENT)


def test_an_unknown_augmentation_set_is_refused():
    from glassbox_xai.hitl.finetune import FinetuneSettings

    with pytest.raises(ValueError, match="augment must be one of \\['light', 'training'\\], got 'heavy'"):
        FinetuneSettings(augment="heavy")


def test_the_fit_uses_the_optimizer_asked_for(tiny_bundle, tmp_path, rng, monkeypatch):
    import glassbox_xai.learn.fit as fit_module
    from glassbox_xai.hitl.finetune import FinetuneSettings, adapt

    seen = {}
    monkeypatch.setattr(fit_module, "fit", lambda model, loss, train, val, config, aug, run_dir, **kw: seen.update(config=config) or {})
    corrections = ((rng.random((4, 32, 32, 3)) * 255).astype(np.uint8), (rng.random((4, 32, 32)) > 0.5).astype(np.uint8))
    adapt(load_bundle(tiny_bundle).model, corrections, None, FinetuneSettings(epochs=1, optimizer="sgd", learning_rate=0.01), tmp_path / "run")
    assert seen["config"].optimizer == "sgd" and seen["config"].learning_rate == 0.01
    assert FinetuneSettings().optimizer == "adam"
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd', got 'lion'"):
        FinetuneSettings(optimizer="lion")
