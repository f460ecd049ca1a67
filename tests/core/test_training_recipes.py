"""The training commands end to end on a tiny recipe and a few real pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from data_paths import ISIC
from glassbox_xai.model.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_then_evaluate_writes_bundle_and_report(tmp_path):
    recipe = {
        "name": "tiny",
        "variant": "dice",
        "model": {"input_size": 32, "base_filters": 4, "depth": 2, "dropout": 0.0, "normalization": "group"},
        "data": {"root": str(ISIC), "train": "dev_train.txt", "val": "dev_val.txt"},
        "loss": {"name": "bce_dice"},
        "fit": {"epochs": 2, "batch_size": 8, "learning_rate": 0.003, "warmup_epochs": 0, "seed": 3},
        "augment": {"horizontal_flip": {"p": 0.5}},
    }
    train_ids = (ISIC / "dev_train.txt").read_text().split()
    (tmp_path / "hard.txt").write_text(f"{train_ids[3]}\n{train_ids[40]}\n")  # the second is beyond --limit 16
    recipe["data"]["oversample"] = {"ids": str(tmp_path / "hard.txt"), "times": 3}
    recipe["deep_supervision"] = [0.5]  # trains with an auxiliary half-size mask; the bundle stays the plain network
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(recipe))
    runs, copy = tmp_path / "runs", tmp_path / "reports"
    env_cmd = [sys.executable, "-m", "training", "--config", str(config), "--runs", str(runs), "--limit", "16"]
    done = subprocess.run(env_cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout[done.stdout.index("{"):])["epochs_run"] == 2
    bundle = load_bundle(runs / "tiny" / "bundle")
    assert bundle.card.variant == "dice" and bundle.card.training_data["n_images"] == 16
    assert bundle.card.training_data["oversampled"] == {"ids": str(tmp_path / "hard.txt"), "n_images": 1, "times": 3}
    assert "1 listed training images seen 3 times an epoch" in done.stderr
    assert bundle.card.training_data["deep_supervision_weights"] == [0.5] and len(bundle.model.outputs) == 1

    done = subprocess.run([sys.executable, "-m", "training.evaluate", "--run", str(runs / "tiny"), "--config", str(config),
                           "--copy-to", str(copy), "--limit", "6"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = copy / "tiny"
    for name in ("metrics.json", "metrics.md", "ablation.md", "confusion_matrix.png", "per_image.csv", "training_curves.png",
                 "review_typical.png", "review_best.png", "review_worst.png", "log.csv"):
        assert (report / name).is_file(), name
    card = load_bundle(runs / "tiny" / "bundle").card  # still loads: the card is not part of the hashed files
    assert set(card.inference) == {"tta", "postprocess"} and 0.0 < card.threshold < 1.0
    assert card.validation_metrics["dice"] == pytest.approx(json.loads((report / "metrics.json").read_text())["dice"], abs=1e-6)


def test_bad_recipe_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvariant: dice\n")
    done = subprocess.run([sys.executable, "-m", "training", "--config", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"recipe {bad}" in done.stderr and "missing key" in done.stderr


def test_an_oversampled_validation_image_is_refused_before_training(tmp_path):
    val_id = (ISIC / "dev_val.txt").read_text().split()[0]
    (tmp_path / "hard.txt").write_text(f"{val_id}\n")
    recipe = yaml.safe_load((ROOT / "training" / "configs" / "levers" / "hard" / "hard_artefacts.yaml").read_text())
    recipe["data"].update(root=str(ISIC), oversample={"ids": "hard.txt", "times": 2})  # beside the recipe
    config = tmp_path / "leak.yaml"
    config.write_text(yaml.safe_dump(recipe))
    done = subprocess.run([sys.executable, "-m", "training", "--config", str(config), "--runs", str(tmp_path / "runs"), "--limit", "8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and f"recipe {config}: 1 id(s) of {tmp_path / 'hard.txt'} are not in the training split" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs" / "hard_artefacts").exists()


def test_soup_averages_the_weights_of_models_of_one_architecture(tiny_bundle, tiny_config, tmp_path):
    """python -m training.soup writes one bundle whose every weight is the mean of its ingredients',
    names them in the card, and refuses models of different architectures."""
    from dataclasses import replace

    import keras
    import numpy as np

    from glassbox_xai.model.attention_unet import build_attention_unet
    from glassbox_xai.model.bundle import save_bundle
    from glassbox_xai.model.card import ModelCard
    from training.soup import average_weights, main

    keras.utils.set_random_seed(5)
    other = tmp_path / "other"
    save_bundle(build_attention_unet(tiny_config), tiny_config, ModelCard(variant="custom", loss="none", name="other"), other)
    assert main(["--models", str(tiny_bundle), str(other), "--out", str(tmp_path / "soup")]) == 0
    a, b, soup = (load_bundle(p) for p in (tiny_bundle, other, tmp_path / "soup" / "bundle"))
    for wa, wb, ws in zip(a.model.get_weights(), b.model.get_weights(), soup.model.get_weights(), strict=True):
        np.testing.assert_allclose(ws, (wa + wb) / 2, rtol=1e-6, atol=1e-7)
    assert [i["name"] for i in json.loads(soup.card.notes)["soup_of"]] == ["tiny-untrained", "other"]
    assert soup.card.validation_metrics == {}  # the first ingredient's scores are not the average's

    wider = build_attention_unet(replace(tiny_config, base_filters=tiny_config.base_filters * 2))
    with pytest.raises(ValueError, match="differ in architecture"):
        average_weights([a.model.get_weights(), wider.get_weights()])


def test_expected_dice_mask_takes_certain_pixels_and_an_uncertain_region_a_fixed_cut_drops():
    import numpy as np

    from training.expected_dice import expected_dice_mask

    certain = np.zeros((20, 20))
    certain[2:4, 2:7] = 1.0
    mask, expected = expected_dice_mask(certain)
    assert mask.sum() == 10 and mask[2:4, 2:7].all() and expected == pytest.approx(1.0)

    faint = np.full((20, 20), 0.01)
    faint[5:15, 5:15] = 0.3  # a region the model gives 30%: below a 0.35 cut, yet the best bet for Dice
    mask, expected = expected_dice_mask(faint)
    assert mask[5:15, 5:15].all() and mask.sum() == 100
    assert expected == pytest.approx(2 * 30 / (100 + 30 + 3.0), rel=1e-6)


def test_paired_comparison_of_two_per_image_files(tmp_path, capsys):
    from training.paired import main, paired, read_scores

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("id,dice\nx,0.9\ny,0.6\nz,0.8\nonly_a,0.1\n")
    b.write_text("id,dice\nx,0.92\ny,0.75\nz,0.8\n")
    s = paired(read_scores(a), read_scores(b))
    assert s["n"] == 3 and s["difference"] == pytest.approx((0.02 + 0.15 + 0.0) / 3)
    assert (s["better"], s["worse"], s["a_below"], s["b_below"]) == (2, 0, 1, 0)
    sd = ((0.02 - 0.17 / 3) ** 2 + (0.15 - 0.17 / 3) ** 2 + (0.17 / 3) ** 2) ** 0.5 / 2**0.5
    assert s["half_width"] == pytest.approx(1.96 * sd / 3**0.5)
    assert main([str(a), str(b)]) == 0 and "3 images: A 0.7667, B 0.8233; B - A +0.0567" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match="expected a per_image.csv with columns 'id' and 'dice'"):
        read_scores(tmp_path / "bad.csv")


def test_oversampling_lists_only_training_images_and_the_hardest_first(tmp_path):
    import numpy as np

    from glassbox_xai.data.layout import listed_samples
    from glassbox_xai.learn.recipe import RecipeError, load_recipe
    from training.hard_ids import hard_ids
    from training.run import oversample

    train_ids, val_ids = ((ISIC / f"dev_{s}.txt").read_text().split() for s in ("train", "val"))
    recipe = load_recipe(ROOT / "training" / "configs" / "levers" / "hard" / "hard_artefacts.yaml")
    recipe.data = {**recipe.data, "root": str(ISIC), "oversample": {"ids": str(tmp_path / "hard.txt"), "times": 2}}
    train = listed_samples(ISIC, ISIC / "dev_train.txt", 8)
    (tmp_path / "hard.txt").write_text(f"{train_ids[5]}\n{train_ids[2]}\n{train_ids[100]}\n")
    picked = oversample(recipe, train)
    assert picked["times"] == 2 and picked["index"].tolist() == [5, 2]  # the first 8 hold two of the three
    (tmp_path / "hard.txt").write_text(f"{train_ids[5]}\n{val_ids[0]}\n")
    with pytest.raises(RecipeError, match=f"1 id\\(s\\) of .*hard.txt are not in the training split dev_train.txt, e.g. {val_ids[0]}"):
        oversample(recipe, train)
    recipe.data.pop("oversample")
    assert oversample(recipe, train) is None
    assert hard_ids(["a", "b", "c", "d"], np.array([0.9, 0.5, 0.79, 0.5]), 0.8) == ["b", "d", "c"]


def test_only_a_shipped_recipes_report_is_copied_into_the_repository_by_default(tmp_path):
    """A lever's run may be named like a shipped one (levers/r192/dice.yaml makes a run "dice"):
    evaluating it must not replace training/reports/dice unless --copy-to asks for it."""
    from training.evaluate import SHIPPED_REPORTS, default_copy_root

    assert default_copy_root(ROOT / "training" / "configs" / "dice.yaml") == SHIPPED_REPORTS == ROOT / "training" / "reports"
    assert default_copy_root(Path("training/configs/recall.yaml")) == SHIPPED_REPORTS  # relative to the repository root (the cwd here)
    for lever in ("levers/r192/dice.yaml", "levers/lovasz.yaml"):
        assert default_copy_root(ROOT / "training" / "configs" / lever) is None
    assert default_copy_root(tmp_path / "dice.yaml") is None
