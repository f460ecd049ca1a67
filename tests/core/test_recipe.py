"""Training recipes: the shipped YAML files load; bad ones are refused with the file and the problem."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from glassbox_xai.learn.augment import resolve
from glassbox_xai.learn.fit import FitConfig
from glassbox_xai.learn.losses import make_loss
from glassbox_xai.learn.recipe import KEYS, Recipe, RecipeError, load_recipe
from glassbox_xai.model.config import ModelConfig

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
SHIPPED = ["base", "dice", "balanced", "recall"]  # recipe name == variant
STAGES = ["dice1", "artefacts"]  # intermediate runs between base and the variants (issue 11)
ALL = SHIPPED + STAGES
PARENTS = {"base": None, "dice1": "base", "artefacts": "dice1", "dice": "artefacts", "balanced": "artefacts", "recall": "artefacts"}
EXPECTED_LOSS = {
    "base": {"name": "bce_dice"},
    "dice": {"name": "dice"},
    "balanced": {"name": "hybrid", "alpha": 0.5, "beta": 0.5},
    "recall": {"name": "tversky", "alpha": 0.25, "beta": 0.75},
}


@pytest.fixture(scope="module")
def recipes() -> dict[str, Recipe]:
    return {name: load_recipe(CONFIGS / f"{name}.yaml") for name in ALL}


@pytest.fixture(scope="module")
def base_raw() -> dict:
    return yaml.safe_load((CONFIGS / "base.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------ shipped recipes


def test_exactly_the_six_recipes_ship():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(ALL)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_loads(recipes, name):
    recipe = recipes[name]
    assert isinstance(recipe, Recipe)
    assert recipe.name == name and recipe.variant == name  # variants match file names
    assert recipe.source == CONFIGS / f"{name}.yaml"
    assert recipe.loss == EXPECTED_LOSS[name]
    assert callable(make_loss(recipe.loss))
    assert isinstance(recipe.model, ModelConfig) and isinstance(recipe.fit, FitConfig)
    assert recipe.data == {"root": "../shared/data/isic2018_task1_512", "train": "dev_train.txt", "val": "dev_val.txt"}
    assert recipe.threshold == 0.5
    assert {"horizontal_flip", "vertical_flip", "rotation", "zoom"} <= set(resolve(recipe.augment))


@pytest.mark.parametrize("name", ALL)
def test_parents(recipes, name):
    assert recipes[name].parent == PARENTS[name]


def test_the_artefacts_stage_paints_artefacts_and_the_variants_do_not(recipes):
    assert resolve(recipes["artefacts"].augment)["artefacts"]["p"] == 0.5
    assert all("artefacts" not in resolve(recipes[n].augment) for n in SHIPPED)


def test_variants_share_the_base_model_and_split(recipes):
    base = recipes["base"]
    assert base.model == ModelConfig(input_size=128, base_filters=16, depth=4, dropout=0.1, normalization="batch")
    for name in ALL[1:]:
        assert recipes[name].model == base.model  # fine-tuned from base's weights: same architecture
        assert recipes[name].data == base.data


def test_fine_tuning_is_shorter_and_gentler(recipes):
    base = recipes["base"].fit
    seeds = {recipes[n].fit.seed for n in SHIPPED}
    assert len(seeds) == 4  # each run has its own seed
    for name in SHIPPED[1:]:
        fit = recipes[name].fit
        assert fit.epochs < base.epochs and fit.learning_rate < base.learning_rate and fit.warmup_epochs == 0


def test_variants_augment_with_geometry_and_colour_only(recipes):
    base = resolve(recipes["base"].augment)
    assert "gaussian_noise" in base and "clahe" not in base  # enabled: false is dropped
    for name in SHIPPED[1:]:
        resolved = resolve(recipes[name].augment)
        assert set(resolved) <= set(base)
        assert "gaussian_noise" not in resolved and "gaussian_blur" not in resolved


def test_recall_variant_weighs_false_negatives_more(recipes):
    loss = recipes["recall"].loss
    assert loss["beta"] > loss["alpha"]


# ----------------------------------------------------------------- bad recipes


def _without(key):
    def change(raw):
        del raw[key]

    return change


def _set(*path, value):
    def change(raw):
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD = [
    ("missing_name", _without("name"), "missing key 'name'"),
    ("missing_loss", _without("loss"), "missing key 'loss'"),
    ("missing_fit", _without("fit"), "missing key 'fit'"),
    ("missing_model", _without("model"), "missing key 'model'"),
    ("missing_data_val", lambda raw: raw["data"].pop("val"), "data needs 'val'"),
    ("unknown_top_key", _set("epochs", value=3), "unknown keys ['epochs']"),
    ("unknown_variant", _set("variant", value="fancy"), "variant must be one of"),
    ("unknown_loss", _set("loss", value={"name": "boundary"}), "unknown loss 'boundary'"),
    ("unknown_loss_string", _set("loss", value="focal"), "unknown loss 'focal'"),
    ("bad_loss_parameter", _set("loss", value={"name": "dice", "alpha": 0.3}), "loss 'dice' does not take ['alpha']"),
    ("bad_tversky_weight", _set("loss", value={"name": "tversky", "alpha": 1.5}), "alpha and beta must be in [0, 1]"),
    ("epochs_zero", _set("fit", "epochs", value=0), "epochs=0"),
    ("negative_learning_rate", _set("fit", "learning_rate", value=-0.1), "learning_rate=-0.1"),
    ("unknown_fit_key", _set("fit", "lr", value=0.1), "'lr'"),
    ("augment_bound", _set("augment", "rotation", value={"p": 0.5, "min": -270, "max": 180}), "rotation: need -180 <= min <= max <= 180 (degrees), got min=-270.0"),
    ("augment_min_above_max", _set("augment", "zoom", value={"min": 1.5, "max": 1.1}), "zoom: need"),
    ("augment_p", _set("augment", "gamma", value={"p": 2}), "gamma: p must be in [0, 1]"),
    ("augment_unknown_technique", _set("augment", "sharpen", value={"p": 0.5}), "unknown technique 'sharpen'"),
    ("threshold_high", _set("threshold", value=1.5), "threshold must be in (0, 1), got 1.5"),
    ("threshold_zero", _set("threshold", value=0), "threshold must be in (0, 1), got 0.0"),
    ("input_size_not_divisible", _set("model", "input_size", value=100), "input_size 100 must be divisible by 2**depth = 16"),
    ("model_unknown_key", _set("model", "width", value=3), "unknown model config keys ['width']"),
    ("model_bad_dropout", _set("model", "dropout", value=1.0), "dropout must be a number in [0, 1)"),
    ("oversample_without_times", _set("data", "oversample", value={"ids": "hard.txt"}), "data.oversample needs exactly 'ids'"),
    ("oversample_not_a_mapping", _set("data", "oversample", value="hard.txt"), "data.oversample needs exactly 'ids'"),
    ("oversample_once", _set("data", "oversample", value={"ids": "hard.txt", "times": 1}), "times must be a whole number of 2 or more, got 1"),
    ("oversample_fraction", _set("data", "oversample", value={"ids": "hard.txt", "times": 2.5}), "got 2.5"),
    ("oversample_missing_list", _set("data", "oversample", value={"ids": "no/such/hard.txt", "times": 2}), "no/such/hard.txt is not a file (one training id a line; relative to the recipe's folder)"),
    ("deep_supervision_too_many", _set("deep_supervision", value=[0.5, 0.4, 0.3, 0.2]), "deep_supervision must list up to 3 non-negative"),
    ("deep_supervision_negative", _set("deep_supervision", value=[-0.5]), "(decoder stages 1..3), got [-0.5]"),
    ("deep_supervision_not_a_list", _set("deep_supervision", value=0.5), "got 0.5"),
]


@pytest.mark.parametrize("case,change,problem", BAD, ids=[c[0] for c in BAD])
def test_bad_recipe_names_file_and_problem(tmp_path, base_raw, case, change, problem):
    raw = copy.deepcopy(base_raw)
    change(raw)
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert problem in message
    assert message.startswith(f"recipe {path}")
    assert message.count(str(path)) == 1  # named once, not once per layer of error handling


def test_unchanged_copy_loads(tmp_path, base_raw):
    """The control for the table above: the same round trip without a change is accepted."""
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(base_raw, sort_keys=False), encoding="utf-8")
    recipe = load_recipe(path)
    assert recipe == load_recipe(CONFIGS / "base.yaml")  # source is not compared
    assert recipe.source == path


def test_optional_keys_take_defaults(tmp_path, base_raw):
    raw = {k: v for k, v in base_raw.items() if k in ("name", "variant", "model", "data", "loss", "fit")}
    raw["loss"] = "dice"  # a bare name is a spec too
    path = tmp_path / "minimal.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    recipe = load_recipe(str(path))
    assert recipe.loss == {"name": "dice"}
    assert recipe.augment == {} and recipe.parent is None and recipe.threshold == 0.5 and recipe.notes == ""
    assert set(raw) < KEYS


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: base\nmodel: {input_size: 128, depth: [4\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="is not valid YAML") as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "base.yaml"
    with pytest.raises(RecipeError, match="does not exist") as info:
        load_recipe(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["- name: base\n- variant: base\n", "just a string\n", ""])
def test_top_level_must_be_a_mapping(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError, match="expected a mapping at the top level") as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_recipe_error_is_a_value_error():
    assert issubclass(RecipeError, ValueError)


def test_lever_recipes_load_and_continue_from_a_stage(recipes):
    """Recipes of levers measured but not shipped (training/configs/levers/) stay loadable and
    continue from a run of the shipped chain (an intermediate stage or the shipped dice
    model), with its model."""
    levers = sorted((CONFIGS / "levers").glob("*.yaml"))
    assert [p.stem for p in levers] == ["dice_boundary", "dice_lovasz", "focal", "long", "lovasz"]
    for path in levers:
        recipe = load_recipe(path)
        assert recipe.parent in STAGES + ["dice"] and recipe.model == recipes["base"].model and recipe.data == recipes["base"].data


def test_the_context_lever_and_its_control_repeat_artefacts_and_dice(recipes):
    """training/configs/levers/context/: the artefacts and dice stages again from the shipped dice
    model, with the global-context block (context_*) or without it (control_*); nothing else differs."""
    chain = {p.stem: load_recipe(p) for p in sorted((CONFIGS / "levers" / "context").glob("*.yaml"))}
    assert sorted(chain) == ["context_artefacts", "context_dice", "control_artefacts", "control_dice"]
    for arm, context in (("context", "pool"), ("control", "none")):
        for stage, parent in (("artefacts", "dice"), ("dice", f"{arm}_artefacts")):
            recipe, shipped = chain[f"{arm}_{stage}"], recipes[stage]
            assert recipe.parent == parent and recipe.model == replace(shipped.model, context=context)
            assert (recipe.variant, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (shipped.variant, shipped.loss, shipped.fit, shipped.augment, shipped.data)


@pytest.mark.parametrize(("folder", "change"), [("capacity24", {"base_filters": 24}), ("depth5", {"depth": 5})])
def test_a_from_scratch_lever_is_the_shipped_chain_with_one_model_change(recipes, folder, change):
    """training/configs/levers/capacity24/ and depth5/ repeat base -> dice1 -> artefacts -> dice
    step for step; only one model field differs (24 base filters, or depth 5), so each row
    measures that change alone."""
    chain = {p.stem: load_recipe(p) for p in sorted((CONFIGS / "levers" / folder).glob("*.yaml"))}
    assert sorted(chain) == ["artefacts", "base", "dice", "dice1"]
    for name, recipe in chain.items():
        shipped = recipes[name]
        assert recipe.model == replace(shipped.model, **change) and recipe.model != shipped.model
        assert (recipe.parent, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (shipped.parent, shipped.loss, shipped.fit, shipped.augment, shipped.data)


def _beside_the_control(folder: str, arm: str, variants: tuple[str, ...] = ()) -> list[tuple[Recipe, Recipe]]:
    """(lever stage, control stage) for the artefacts and dice stages of ``levers/<folder>/<arm>_*.yaml``,
    after checking that they are exactly those two (and ``<arm>_<variant>`` for ``variants``), from the
    shipped dice model and then from each other."""
    chain = {p.stem: load_recipe(p) for p in sorted((CONFIGS / "levers" / folder).glob("*.yaml"))}
    assert sorted(chain) == sorted([f"{arm}_artefacts", f"{arm}_dice", *(f"{arm}_{v}" for v in variants)])
    assert chain[f"{arm}_artefacts"].parent == "dice" and chain[f"{arm}_dice"].parent == f"{arm}_artefacts"
    return [(chain[f"{arm}_{stage}"], load_recipe(CONFIGS / "levers" / "context" / f"control_{stage}.yaml")) for stage in ("artefacts", "dice")]


def test_the_width_lever_repeats_the_control_with_only_more_filters(recipes):
    """training/configs/levers/width/: the control's artefacts and dice stages (from the shipped dice
    model, which training/grow.py widens), with 24 base filters and nothing else changed."""
    for recipe, control in _beside_the_control("width", "width24"):
        assert recipe.model == replace(control.model, base_filters=24)
        assert (recipe.variant, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (control.variant, control.loss, control.fit, control.augment, control.data)


def test_the_resolution_lever_is_the_shipped_chain_at_192_px_with_context(recipes):
    """training/configs/levers/r192/ repeats base -> dice1 -> artefacts -> dice step for step at
    192 px with the global-context block; nothing else differs."""
    chain = {p.stem: load_recipe(p) for p in sorted((CONFIGS / "levers" / "r192").glob("*.yaml"))}
    assert sorted(chain) == ["artefacts", "base", "dice", "dice1"]
    for name, recipe in chain.items():
        shipped = recipes[name]
        assert recipe.model == replace(shipped.model, input_size=192, context="pool")
        assert (recipe.parent, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (shipped.parent, shipped.loss, shipped.fit, shipped.augment, shipped.data)


def test_the_hard_images_lever_is_the_control_with_only_listed_training_images_seen_more(recipes):
    """training/configs/levers/hard/: the control's artefacts and dice stages with the dev_train
    images listed by training.hard_ids seen 3 times an epoch; the list holds training ids only."""
    for recipe, control in _beside_the_control("hard", "hard"):
        data = dict(recipe.data)
        oversample = data.pop("oversample")
        assert oversample["times"] == 3 and data == control.data
        assert (recipe.variant, recipe.model, recipe.loss, recipe.fit, recipe.augment) == (control.variant, control.model, control.loss, control.fit, control.augment)
        assert oversample["ids"] == str(CONFIGS / "levers" / "hard" / "dev_train_below08.txt")  # beside the recipes
        listed = Path(oversample["ids"]).read_text().split()
        assert 0 < len(listed) == len(set(listed))


def test_the_deep_supervision_lever_is_the_control_with_only_auxiliary_masks():
    """training/configs/levers/deep/: the control's artefacts and dice stages, deeply supervised."""
    for recipe, control in _beside_the_control("deep", "deep"):
        assert recipe.deep_supervision == (0.5, 0.25, 0.125) and control.deep_supervision == ()
        assert (recipe.variant, recipe.model, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (
            control.variant, control.model, control.loss, control.fit, control.augment, control.data)


def test_the_paint_lever_is_the_control_with_only_more_painted_artefacts():
    """training/configs/levers/paint/: the control's artefacts and dice stages; the artefacts
    stage paints on 90% of the images, 1 to 3 artefacts, instead of half and 1 to 2."""
    (artefacts, control_artefacts), (dice, control_dice) = _beside_the_control("paint", "paint")
    assert artefacts.augment == {**control_artefacts.augment, "artefacts": {"p": 0.9, "min": 1, "max": 3}}
    assert control_artefacts.augment["artefacts"] == {"p": 0.5, "min": 1, "max": 2}
    assert (artefacts.variant, artefacts.model, artefacts.loss, artefacts.fit, artefacts.data) == (
        control_artefacts.variant, control_artefacts.model, control_artefacts.loss, control_artefacts.fit, control_artefacts.data)
    assert (dice.variant, dice.model, dice.loss, dice.fit, dice.augment, dice.data) == (
        control_dice.variant, control_dice.model, control_dice.loss, control_dice.fit, control_dice.augment, control_dice.data)


def test_the_colour_lever_is_the_control_with_only_the_colour_layer():
    """training/configs/levers/colour/: the control's artefacts and dice stages with colour
    constancy as the network's first layer (model.colour), which grows from the shipped model."""
    from training.grow import can_grow_blocks

    for recipe, control in _beside_the_control("colour", "colour", variants=("balanced", "recall")):
        assert recipe.model == replace(control.model, colour="shades_of_gray")
        assert can_grow_blocks(control.model, recipe.model)
        assert (recipe.variant, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (control.variant, control.loss, control.fit, control.augment, control.data)
    for variant in ("balanced", "recall"):  # the shipped variants' recipes, from the colour family's artefacts stage
        recipe, shipped = load_recipe(CONFIGS / "levers" / "colour" / f"colour_{variant}.yaml"), load_recipe(CONFIGS / f"{variant}.yaml")
        assert recipe.parent == "colour_artefacts" and recipe.model == replace(shipped.model, colour="shades_of_gray")
        assert (recipe.variant, recipe.loss, recipe.fit, recipe.augment, recipe.data) == (shipped.variant, shipped.loss, shipped.fit, shipped.augment, shipped.data)


def test_the_other_seeds_change_only_the_seed():
    """training/configs/levers/seeds/: the control and the colour lever again, only fit.seed changed
    (by 10 for the second seed, 20 for the third)."""
    folder = CONFIGS / "levers" / "seeds"
    arms = [f"{arm}{n}" for arm in ("colour", "control") for n in (2, 3)]
    assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(f"{arm}_{stage}" for arm in arms for stage in ("artefacts", "dice"))
    for arm in arms:
        first = "colour/colour" if arm.startswith("colour") else "context/control"
        step = 10 * (int(arm[-1]) - 1)
        for stage in ("artefacts", "dice"):
            again, once = load_recipe(folder / f"{arm}_{stage}.yaml"), load_recipe(CONFIGS / "levers" / f"{first}_{stage}.yaml")
            assert again.fit == replace(once.fit, seed=once.fit.seed + step)
            assert again.parent == ("dice" if stage == "artefacts" else f"{arm}_artefacts")
            assert (again.variant, again.model, again.loss, again.augment, again.data) == (once.variant, once.model, once.loss, once.augment, once.data)
