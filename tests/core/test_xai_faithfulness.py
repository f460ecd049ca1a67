"""ROAD faithfulness, the random baseline, completeness flags, the panel's numbers, and
the model-randomisation check for every method."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from glassbox_xai.data.io import read_image
from glassbox_xai.inference import Segmenter
from glassbox_xai.jobs import drive
from glassbox_xai.xai.base import Explainer
from glassbox_xai.xai.faithfulness import deletion_insertion, faithfulness_numbers, linear_impute, ordering, randomisation_check
from glassbox_xai.xai.panel import explain

from xai_truths import S, W
ATTRIBUTION_METHODS = ("saliency", "saliency-sigmoid", "ig", "gradcam", "hirescam", "gradcam++", "scorecam")
KEYS = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc")


def test_linear_imputation_restores_a_linear_ramp_and_fills_everything_with_the_mean():
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    ramp = np.stack([0.1 * xx, 0.05 * yy, 0.02 * (xx + yy)], axis=-1)
    removed = np.zeros((16, 16), bool)
    removed[3:9, 5:12] = True
    np.testing.assert_allclose(linear_impute(ramp, removed, noise=0.0), ramp, atol=1e-5)
    noisy = linear_impute(ramp, removed, noise=0.01, seed=3)
    assert np.array_equal(noisy[~removed], ramp[~removed]) and 0.003 < np.std(noisy[removed] - ramp[removed]) < 0.02
    np.testing.assert_allclose(linear_impute(ramp, np.ones((16, 16), bool), noise=0.0), np.broadcast_to(ramp.mean((0, 1)), ramp.shape), atol=1e-6)


def test_ties_are_broken_by_the_random_order_so_a_constant_map_scores_the_random_baseline(linear, image):
    explainer = Explainer(linear)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, np.ones((S, S), bool))
    np.testing.assert_array_equal(ordering(np.full((S, S), 3.0), seed=5), ordering(np.zeros((S, S)), seed=5))
    curves = deletion_insertion(explainer, x, np.full((S, S), 0.7, np.float32), target, steps=4, with_random=True)
    assert curves.deletion_auc == curves.random_deletion_auc and curves.insertion_auc == curves.random_insertion_auc
    assert curves.deletion[0] == pytest.approx(curves.insertion[-1]) and curves.deletion[-1] == pytest.approx(curves.insertion[0])


def test_removing_the_true_attribution_first_beats_a_random_order(linear, image):
    explainer = Explainer(linear)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, np.ones((S, S), bool))
    truth = (x[0] - x[0].mean((0, 1))) @ W  # what each pixel adds to the logit relative to the mean colour
    numbers = faithfulness_numbers(deletion_insertion(explainer, x, truth, target, steps=8, with_random=True))
    assert numbers["deletion_auc"] < numbers["random_deletion_auc"] - 0.02
    assert numbers["insertion_auc"] > numbers["random_insertion_auc"] + 0.02
    assert all(0 <= numbers[k] <= 1 for k in KEYS) and "degenerate" not in numbers


def test_a_target_that_ignores_the_image_is_flagged_degenerate(image):
    inputs = keras.Input((S, S, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: 0.0 * t[..., :1] + 2.0)(inputs))
    explainer = Explainer(model)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, np.ones((S, S), bool))
    numbers = faithfulness_numbers(deletion_insertion(explainer, x, np.arange(S * S, dtype=np.float32).reshape(S, S), target, steps=2, with_random=True))
    assert "cannot tell maps apart" in numbers["degenerate"]


def test_panel_reports_four_areas_per_method_and_flags_completeness(tiny_bundle, native_images):
    segmenter = Segmenter.from_bundle(tiny_bundle)
    image = read_image(native_images[0])[::8, ::8]
    panel = drive(explain(segmenter, image, ("confidence", *ATTRIBUTION_METHODS), "background", ig_steps=1))
    assert set(panel.faithfulness) == set(ATTRIBUTION_METHODS)
    for method, numbers in panel.faithfulness.items():
        assert all(0.0 <= numbers[k] <= 1.0 for k in KEYS), (method, numbers)
    random = {k: panel.faithfulness["saliency"][k] for k in ("random_deletion_auc", "random_insertion_auc")}
    assert all({k: n[k] for k in random} == random for n in panel.faithfulness.values())
    assert panel.faithfulness["gradcam"]["layer"] == panel.faithfulness["scorecam"]["layer"] == "decoder0_conv2"
    ig = panel.faithfulness["ig"]
    assert (ig["completeness_error"] > 0.01) == ("completeness_warning" in ig)
    assert "more steps" in ig.get("completeness_warning", "more steps")
    hires = [n for n in panel.maps if n.startswith("hirescam ")]
    assert len(hires) == sum(len(v) for v in panel.gradcam_stages.values())
    assert [n for n in panel.maps if n.startswith(("gradcam++ ", "scorecam "))] == ["gradcam++ decoder0_conv2", "scorecam decoder0_conv2"]


@pytest.fixture(scope="module")
def shipped():
    from glassbox_xai.model.registry import resolve_bundle

    return Segmenter.from_bundle(resolve_bundle("dice"))


def _method_maps(name: str):
    """One map per method for a model, image and fixed native target mask."""
    from glassbox_xai.xai.gradcam import compute_gradcam
    from glassbox_xai.xai.gradcam_plus import compute_gradcam_plus
    from glassbox_xai.xai.hirescam import compute_hirescam
    from glassbox_xai.xai.integrated_gradients import compute_integrated_gradients
    from glassbox_xai.xai.saliency import compute_saliency
    from glassbox_xai.xai.scorecam import compute_scorecam

    layer = ["decoder1_conv2"]
    return {
        "saliency": lambda e, im, t: compute_saliency(e, im, target=t).map,
        "ig": lambda e, im, t: compute_integrated_gradients(e, im, target=t, steps=8).map,
        "gradcam": lambda e, im, t: compute_gradcam(e, im, target=t, layers=layer).maps[layer[0]],
        "hirescam": lambda e, im, t: compute_hirescam(e, im, target=t, layers=layer).maps[layer[0]],
        "gradcam++": lambda e, im, t: compute_gradcam_plus(e, im, target=t, layers=layer).maps[layer[0]],
        "scorecam": lambda e, im, t: compute_scorecam(e, im, target=t, layer=layer[0], budget=16).map,
    }[name]


# Plain saliency is not in this list: on the issue-11 dice model its maps agree with a
# randomised model's at Spearman 0.47-0.91 over the first six dev_val images (bound 0.5),
# i.e. they follow the photograph's edges more than the weights; the README says so.
@pytest.mark.parametrize("method", ["ig", "gradcam", "hirescam", "gradcam++", "scorecam"])
def test_a_map_from_a_randomised_model_fails_the_sanity_check(shipped, val_ids, method):
    """Adebayo et al.: the shipped model's map and a freshly initialised model's map must not agree."""
    from data_paths import ISIC_IMAGES

    from glassbox_xai.model.attention_unet import build_attention_unet

    image = read_image(ISIC_IMAGES / f"{val_ids[2]}.jpg")[::2, ::2]
    target = shipped.predict(image).mask
    keras.utils.set_random_seed(11)
    random_model = build_attention_unet(shipped.bundle.config)
    compute = _method_maps(method)
    check = randomisation_check(lambda model: compute(Explainer(model, shipped.threshold), image, target), shipped.bundle.model, random_model)
    assert check.passed, (method, check.spearman)


def test_on_real_photographs_grad_cam_deletes_the_lesion_faster_than_a_random_order(shipped, val_ids):
    """The shipped Dice model on the first five dev_val photographs (the predicted lesion):
    Grad-CAM's mean ROAD deletion area is at least 0.05 below the random order's."""
    from data_paths import ISIC_IMAGES

    gaps = []
    for image_id in val_ids[:5]:
        panel = drive(explain(shipped, read_image(ISIC_IMAGES / f"{image_id}.jpg"), ("gradcam",)))
        numbers = panel.faithfulness["gradcam"]
        gaps.append(numbers["random_deletion_auc"] - numbers["deletion_auc"])
    assert np.mean(gaps) >= 0.05, gaps


def test_panel_sanity_runs_the_randomisation_check_for_every_method(tiny_bundle, native_images):
    segmenter = Segmenter.from_bundle(tiny_bundle)
    image = read_image(native_images[0])[::16, ::16]
    panel = drive(explain(segmenter, image, ATTRIBUTION_METHODS, "background", ig_steps=4, sanity=True))
    for method in ATTRIBUTION_METHODS:
        check = panel.faithfulness[method]["randomisation"]
        assert -1.0 <= check["spearman"] <= 1.0 and check["passed"] == (abs(check["spearman"]) < 0.5), method
