"""The image pipeline: toggles, bounds, mask alignment, seeds, preprocessing, alignment sheet."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from data_paths import ISIC_IMAGES, ISIC_MASKS
from glassbox_xai.data.io import read_image, read_mask
from glassbox_xai.learn.augment import (
    GEOMETRIC_ORDER,
    TECHNIQUES,
    AugmentConfigError,
    alignment_sheet,
    build_augmentation,
    build_preprocessing,
    resolve,
)

SIZE = 128
NAMES = sorted(TECHNIQUES)
GEOMETRIC = [n for n in NAMES if TECHNIQUES[n].geometric]
PHOTOMETRIC = [n for n in NAMES if not TECHNIQUES[n].geometric]
FIXED_OK = [n for n in PHOTOMETRIC if not TECHNIQUES[n].train_only]

# Ranges well away from the identity, so that one application always changes the image.
STRONG = {
    "brightness": {"min": 0.2, "max": 0.3},
    "contrast": {"min": 0.3, "max": 0.4},
    "saturation": {"min": 40, "max": 60},
    "hue": {"min": 20, "max": 30},
    "gamma": {"min": 150, "max": 200},
    "clahe": {"min": 3.0, "max": 4.0},
    "gaussian_blur": {"min": 5, "max": 7},
    "gaussian_noise": {"min": 0.05, "max": 0.1},
    "dilation": {"min": 3, "max": 5},
    "erosion": {"min": 3, "max": 5},
    "edge_detection": {"min": 0.3, "max": 0.5},
    "artefacts": {"min": 5, "max": 6},
    "horizontal_flip": {},
    "vertical_flip": {},
    "rotation": {"min": 30, "max": 60},
    "zoom": {"min": 1.3, "max": 1.5},
}
# One value per photometric technique for preprocessing, away from the identity.
VALUES = {"brightness": 0.2, "contrast": 0.3, "saturation": 40, "hue": 20, "gamma": 150, "clahe": 3.0,
          "gaussian_blur": 5, "dilation": 3, "erosion": 3, "edge_detection": 0.3}


def strong(name: str, seed: int | None = 0, **extra):
    return build_augmentation({name: {"p": 1.0, **STRONG[name], **extra}}, seed=seed)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float((a & b).sum() / max((a | b).sum(), 1))


def assert_aligned(bright: np.ndarray, mask: np.ndarray, min_iou: float = 0.97, edge_px: int = 2) -> None:
    """The bright region of a transformed image matches its transformed mask: a high IoU,
    and every pixel where they disagree lies within ``edge_px`` of the mask's edge
    (resampling jitter, not a shift)."""
    mask = mask.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.dilate(mask, kernel, iterations=edge_px).astype(bool)
    # the frame counts as an edge too: erode with 0 outside the image
    band &= ~cv2.erode(mask, kernel, iterations=edge_px, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    disagree = bright.astype(bool) ^ mask.astype(bool)
    assert not np.any(disagree & ~band), f"{int((disagree & ~band).sum())} pixels disagree away from the edge"
    assert iou(bright, mask) > min_iou


@pytest.fixture(scope="module")
def lesion(val_ids) -> tuple[np.ndarray, np.ndarray]:
    """A real ISIC photograph and its mask at 128 x 128 (uint8 RGB, uint8 0/1)."""
    case = val_ids[0]
    image = read_image(ISIC_IMAGES / f"{case}.jpg")
    mask = read_mask(ISIC_MASKS / f"{case}_segmentation.png", expected_shape=image.shape[:2])
    image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask.astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    assert 0 < mask.sum() < mask.size
    return image, mask


@pytest.fixture(scope="module")
def shape_mask() -> np.ndarray:
    """An irregular, off-centre 0/1 mask: random blobs plus a bar, not symmetric under any flip."""
    rng = np.random.default_rng(11)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(6):
        centre = (int(rng.integers(20, 70)), int(rng.integers(25, 80)))
        axes = (int(rng.integers(6, 18)), int(rng.integers(4, 12)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    cv2.rectangle(mask, (60, 20), (100, 30), 1, -1)
    return mask


# --------------------------------------------------------------------- toggles


def test_there_are_sixteen_techniques():
    assert len(TECHNIQUES) == 16
    assert set(STRONG) == set(TECHNIQUES)
    assert set(GEOMETRIC) == set(GEOMETRIC_ORDER)


@pytest.mark.parametrize("name", NAMES)
def test_disabled_technique_is_left_out(name, lesion):
    image, mask = lesion
    for entry in ({"enabled": False, "p": 1.0, **STRONG[name]}, False):
        assert resolve({name: entry}) == {}
        pipeline = build_augmentation({name: entry}, seed=0)
        assert len(pipeline.transforms) == 0
        out = pipeline(image=image, mask=mask)
        assert np.array_equal(out["image"], image) and np.array_equal(out["mask"], mask)


@pytest.mark.parametrize("name", NAMES)
def test_enabled_technique_changes_a_real_image(name, lesion):
    image, mask = lesion
    pipeline = strong(name)
    assert len(pipeline.transforms) == 1
    out = pipeline(image=image.copy(), mask=mask.copy())
    assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
    assert np.abs(out["image"].astype(int) - image.astype(int)).mean() > 0.5


@pytest.mark.parametrize("name", NAMES)
def test_p_zero_leaves_the_image_alone(name, lesion):
    image, mask = lesion
    out = build_augmentation({name: {"p": 0.0, **STRONG[name]}}, seed=0)(image=image, mask=mask)
    assert np.array_equal(out["image"], image) and np.array_equal(out["mask"], mask)


@pytest.mark.parametrize("name,axis", [("horizontal_flip", 1), ("vertical_flip", 0)])
def test_flips_are_exact(name, axis, lesion):
    image, mask = lesion
    out = strong(name)(image=image, mask=mask)
    assert np.array_equal(out["image"], np.flip(image, axis))
    assert np.array_equal(out["mask"], np.flip(mask, axis))


def test_both_flips_are_a_half_turn(lesion):
    image, mask = lesion
    out = build_augmentation({"horizontal_flip": {"p": 1}, "vertical_flip": {"p": 1}}, seed=0)(image=image, mask=mask)
    assert np.array_equal(out["image"], np.rot90(image, 2))
    assert np.array_equal(out["mask"], np.rot90(mask, 2))


def test_defaults_fill_in_and_geometric_comes_first():
    resolved = resolve({"rotation": None, "brightness": {"p": 0.2}, "zoom": True, "hue": {"enabled": True, "max": 5}})
    assert resolved["rotation"] == {"p": 0.5, "min": -180.0, "max": 180.0, "value": 0.0}
    assert resolved["brightness"]["p"] == 0.2 and resolved["brightness"]["min"] == TECHNIQUES["brightness"].low
    assert resolved["zoom"]["min"] == 0.9 and resolved["zoom"]["max"] == 1.2
    assert resolved["hue"]["min"] == -8 and resolved["hue"]["max"] == 5
    pipeline = build_augmentation({n: {} for n in reversed(NAMES)}, seed=0)
    kinds = [type(t).__name__ for t in pipeline.transforms]
    assert len(kinds) == len(TECHNIQUES)
    assert kinds[:4] == ["HorizontalFlip", "VerticalFlip", "Affine", "Affine"]
    assert resolve(None) == {} and len(build_augmentation(None).transforms) == 0


# ---------------------------------------------------------------------- bounds


def _bad_entries(name):
    tech = TECHNIQUES[name]
    lo, hi = tech.limits
    cases = {
        "min_above_max": {"min": hi, "max": lo} if hi > lo else {"min": hi + 1, "max": lo},
        "min_below_limit": {"min": lo - 1, "max": hi},
        "max_above_limit": {"min": lo, "max": hi + 1},
        "value_outside": {"value": hi + abs(hi) + 1},
        "p_above_one": {"p": 1.5},
        "p_negative": {"p": -0.1},
        "unknown_key": {"prob": 0.5},
    }
    return [(name, case, entry) for case, entry in cases.items()]


BAD = [c for n in NAMES for c in _bad_entries(n)]


@pytest.mark.parametrize("name,case,entry", BAD, ids=[f"{n}-{c}" for n, c, _ in BAD])
def test_bad_bounds_name_the_technique(name, case, entry):
    with pytest.raises(AugmentConfigError) as info:
        build_augmentation({name: entry})
    message = str(info.value)
    assert message.startswith(f"{name}:")
    expected = {"p_above_one": "p must be in [0, 1]", "p_negative": "p must be in [0, 1]", "unknown_key": "unknown keys ['prob']",
                "value_outside": "value"}.get(case, "<= min <= max <=")
    assert expected in message


@pytest.mark.parametrize("name", NAMES)
def test_limits_themselves_are_accepted(name):
    lo, hi = TECHNIQUES[name].limits
    resolved = resolve({name: {"min": lo, "max": hi, "p": 1.0}})
    assert resolved[name]["min"] == lo and resolved[name]["max"] == hi
    assert lo <= TECHNIQUES[name].low <= TECHNIQUES[name].high <= hi  # the defaults are inside the limits


def test_unknown_technique_is_named():
    with pytest.raises(AugmentConfigError, match="unknown technique 'sharpen'"):
        build_augmentation({"sharpen": {"p": 0.5}})
    with pytest.raises(AugmentConfigError, match="unknown technique 'Rotation'"):
        resolve({"rotation": {}, "Rotation": {}})


def test_augment_config_error_is_a_value_error():
    assert issubclass(AugmentConfigError, ValueError)


# -------------------------------------------------------------- mask alignment


GEOMETRIC_CONFIGS = {
    **{n: {n: {"p": 1.0, **STRONG[n]}} for n in GEOMETRIC},
    "rotation_full_range": {"rotation": {"p": 1.0, "min": -180, "max": -20}},
    "zoom_out": {"zoom": {"p": 1.0, "min": 0.5, "max": 0.7}},
    "all_geometric": {n: {"p": 1.0, **STRONG[n]} for n in GEOMETRIC},
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("source", ["synthetic", "isic"])
@pytest.mark.parametrize("config", sorted(GEOMETRIC_CONFIGS))
def test_geometric_transforms_keep_the_mask_aligned(config, source, seed, shape_mask, lesion):
    mask = shape_mask if source == "synthetic" else lesion[1]
    image = np.repeat((255 * mask)[..., None], 3, axis=2).astype(np.uint8)  # bright exactly on the mask
    out = build_augmentation(GEOMETRIC_CONFIGS[config], seed=seed)(image=image, mask=mask)
    assert out["mask"].dtype == mask.dtype and set(np.unique(out["mask"])) <= {0, 1}
    assert out["mask"].sum() > 0
    assert np.array_equal(out["image"][..., 0], out["image"][..., 2])  # channels move together
    # Rotation and zoom are two Affine steps, each resampling once (bilinear image,
    # nearest mask), so on the thin synthetic shapes the chained pipeline loses a few
    # edge pixels more than one step does; the edge-band check still rules out a shift.
    chained = config == "all_geometric" and source == "synthetic"
    assert_aligned(out["image"][..., 0] > 127, out["mask"], min_iou=0.93 if chained else 0.97, edge_px=3 if chained else 2)
    if source == "synthetic":  # and the shape really moved
        assert iou(out["mask"], mask) < 0.9


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_transforms_leave_the_mask_alone(name, lesion):
    image, mask = lesion
    out = strong(name)(image=image, mask=mask.copy())
    assert np.array_equal(out["mask"], mask)
    assert not np.array_equal(out["image"], image)


def test_full_training_pipeline_keeps_alignment(shape_mask):
    image = np.repeat((255 * shape_mask)[..., None], 3, axis=2).astype(np.uint8)
    config = {n: {"p": 1.0, **STRONG[n]} for n in GEOMETRIC}
    config.update({"brightness": {"p": 1.0, "min": -0.1, "max": 0.1}, "hue": {"p": 1.0}})
    pipeline = build_augmentation(config, seed=5)
    for _ in range(5):
        out = pipeline(image=image, mask=shape_mask)
        assert_aligned(out["image"].max(axis=2) > 127, out["mask"], min_iou=0.93, edge_px=3)  # two resamplings, see above


def test_a_shifted_mask_fails_the_alignment_check(shape_mask):
    """The alignment check itself catches a misregistration of a few pixels."""
    for shift, edge_px in ((3, 2), (5, 3)):
        with pytest.raises(AssertionError):
            assert_aligned(shape_mask > 0, np.roll(shape_mask, shift, axis=1), min_iou=0.0, edge_px=edge_px)
    assert_aligned(shape_mask > 0, shape_mask, min_iou=0.999)


# ----------------------------------------------------------------------- seeds


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name, lesion):
    image, mask = lesion
    config = {name: {"p": 0.5, **STRONG[name]}}
    first, second = build_augmentation(config, seed=3), build_augmentation(config, seed=3)
    for _ in range(3):
        a, b = first(image=image, mask=mask), second(image=image, mask=mask)
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])


def test_different_seeds_differ_for_rotation(lesion):
    image, mask = lesion
    config = {"rotation": {"p": 1.0}}
    outs = [build_augmentation(config, seed=s)(image=image, mask=mask) for s in (1, 2, 3)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.array_equal(outs[i]["image"], outs[j]["image"])
            assert not np.array_equal(outs[i]["mask"], outs[j]["mask"])


def test_one_pipeline_draws_new_values_each_call(lesion):
    image, mask = lesion
    pipeline = build_augmentation({"rotation": {"p": 1.0}}, seed=0)
    a, b = pipeline(image=image, mask=mask), pipeline(image=image, mask=mask)
    assert not np.array_equal(a["image"], b["image"])


# --------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("name", FIXED_OK)
def test_preprocessing_is_deterministic(name, lesion):
    image, _ = lesion
    config = {name: {"value": VALUES[name]}}
    first, second = build_preprocessing(config), build_preprocessing(config)
    a = first(image=image)["image"]
    assert np.array_equal(a, second(image=image)["image"])  # two builds agree
    assert np.array_equal(a, first(image=image)["image"])  # and one pipeline applied twice
    assert np.array_equal(a, first(image=image)["image"])
    assert np.abs(a.astype(int) - image.astype(int)).mean() > 0.5  # the value is applied


def test_preprocessing_of_everything_allowed_is_deterministic(lesion):
    image, mask = lesion
    pipeline = build_preprocessing({n: {"value": VALUES[n]} for n in FIXED_OK})
    assert len(pipeline.transforms) == len(FIXED_OK)
    a, b = pipeline(image=image, mask=mask), pipeline(image=image, mask=mask)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], mask)


def test_preprocessing_gaussian_blur_uses_its_kernel(lesion):
    image, _ = lesion
    out = build_preprocessing({"gaussian_blur": {"value": 5}})(image=image)["image"]
    expected = cv2.GaussianBlur(image.astype(np.float32), (5, 5), 0.3 * ((5 - 1) * 0.5 - 1) + 0.8)  # OpenCV's sigma for k = 5
    assert np.abs(out.astype(float) - expected).max() <= 1.0


def test_preprocessing_disabled_or_empty_is_identity(lesion):
    image, _ = lesion
    for config in (None, {}, {"clahe": {"enabled": False, "value": 3}}):
        pipeline = build_preprocessing(config)
        assert len(pipeline.transforms) == 0
        assert np.array_equal(pipeline(image=image)["image"], image)


@pytest.mark.parametrize("name", [n for n in NAMES if TECHNIQUES[n].geometric or TECHNIQUES[n].train_only])
def test_preprocessing_refuses_geometric_and_noise(name):
    assert name in GEOMETRIC or name in ("gaussian_noise", "artefacts")
    with pytest.raises(AugmentConfigError, match="cannot be used for preprocessing") as info:
        build_preprocessing({name: {}, "clahe": {"value": 2}})
    assert name in str(info.value) and "clahe" not in str(info.value)


def test_preprocessing_value_is_bounded():
    with pytest.raises(AugmentConfigError, match="gamma: value 500.0 is outside 30"):
        build_preprocessing({"gamma": {"value": 500}})


# ------------------------------------------------------------- alignment sheet


def test_alignment_sheet_writes_a_png(lesion, tmp_path):
    image, mask = lesion
    pipeline = build_augmentation({n: {"p": 1.0, **STRONG[n]} for n in ("rotation", "zoom", "brightness")}, seed=0)
    path = alignment_sheet(image, mask.astype(bool), pipeline, tmp_path / "sheets" / "check.png", n=3)
    assert path == tmp_path / "sheets" / "check.png"
    assert path.stat().st_size > 1000
    with Image.open(path) as sheet:
        assert sheet.format == "PNG"
        width, height = sheet.size
        assert width > height > 0
        assert np.asarray(sheet.convert("L")).std() > 5  # not a blank canvas


@pytest.mark.parametrize("kind", ["ink_ring", "ink_marks", "sticker", "bubble", "rim", "ruler", "hair"])
def test_artefacts_are_painted_outside_the_lesion(kind, lesion):
    from glassbox_xai.learn.artefacts import paint

    image, mask = lesion
    changed = np.zeros(mask.shape, bool)
    for seed in range(6):
        out = paint(image, mask > 0, kind, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        diff = np.any(out != image, axis=2)
        if kind != "hair":  # hair crosses lesions in real photographs; nothing else may
            assert not diff[mask > 0].any()
        changed |= diff
    assert changed.any()


def test_artefact_augmentation_leaves_the_mask_alone(lesion):
    image, mask = lesion
    out = build_augmentation({"artefacts": {"p": 1.0, "min": 3, "max": 4}}, seed=3)(image=image, mask=mask)
    assert np.array_equal(out["mask"], mask) and not np.array_equal(out["image"], image)
