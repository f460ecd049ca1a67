"""XAI methods against ground truths computed by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from glassbox_xai.data.io import read_image
from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.xai.base import Explainer, TargetError
from glassbox_xai.xai.confidence import compute_confidence, pixel_confidence
from glassbox_xai.xai.faithfulness import deletion_insertion, mass_inside, randomisation_check, spearman
from glassbox_xai.xai.gradcam import cam, compute_gradcam
from glassbox_xai.xai.integrated_gradients import compute_integrated_gradients, gauss_legendre
from glassbox_xai.xai.saliency import compute_saliency

from xai_truths import S, W


@pytest.fixture
def region():
    mask = np.zeros((S, S), bool)
    mask[8:20, 4:28] = True
    return mask


def test_saliency_of_a_linear_model_is_its_weights(linear, image, region):
    for output in ("logits", "sigmoid"):
        result = compute_saliency(Explainer(linear), image, target=region, output=output)
        expected = np.zeros((S, S, 3), np.float32)
        expected[region] = W / region.sum()
        if output == "sigmoid":
            x = image.astype(np.float32) / 255
            p = 1 / (1 + np.exp(-(x @ W + 0.1)))
            expected *= (p * (1 - p))[..., None]
        np.testing.assert_allclose(result.gradient, expected, rtol=1e-4, atol=1e-9)
        assert result.map.shape == (S, S) and result.target == "custom mask"


@pytest.mark.parametrize("steps", [1, 7, 32])
def test_integrated_gradients_of_a_linear_model_is_weights_times_input(linear, image, region, steps):
    result = compute_integrated_gradients(Explainer(linear), image, target=region, steps=steps, batch=4)
    x = image.astype(np.float32) / 255
    expected = np.where(region[..., None], x * W / region.sum(), 0)
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-4, atol=1e-7)
    assert result.completeness_error < 1e-4


def test_gauss_legendre_integrates_polynomials_exactly():
    nodes, weights = gauss_legendre(5)
    assert weights.sum() == pytest.approx(1.0) and 0 < nodes.min() and nodes.max() < 1
    assert (weights * nodes**9).sum() == pytest.approx(1 / 10)  # degree 2n-1 exact


def test_integrated_gradients_completeness_on_a_real_image(tiny_bundle, native_images):
    from glassbox_xai.model.bundle import load_bundle

    model = load_bundle(tiny_bundle).model
    image = read_image(native_images[0])
    for baseline in ("black", "blur"):
        result = compute_integrated_gradients(Explainer(model), image, target="background", baseline=baseline, steps=64)
        assert result.map.shape == image.shape[:2]
        assert result.completeness_error < 0.05, (baseline, result.completeness_error)


def test_gradcam_of_each_layer_equals_a_direct_computation(tiny_config, image):
    import tensorflow as tf

    keras.utils.set_random_seed(4)
    model = build_attention_unet(tiny_config)
    explainer = Explainer(model)
    result = compute_gradcam(explainer, image, target="background")
    assert set(result.stages) == {"encoder", "attention", "decoder", "output"}
    assert sum(len(v) for v in result.stages.values()) == len(result.maps)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, "background")
    for name in ("encoder1_conv2", "attention0_psi", "decoder0_up", "output_logits"):
        single = keras.Model(model.input, [model.get_layer(name).output, model.output])
        with tf.GradientTape() as tape:
            act, logits = single(x)
            score = explainer._score(logits, target, "logits")
        grad = tape.gradient(score, act)
        direct = cam(act.numpy()[0], grad.numpy()[0])
        direct = direct / direct.max() if direct.max() > 0 else direct
        from glassbox_xai.data.resize import to_native

        np.testing.assert_allclose(result.maps[name], to_native(direct, image.shape[:2]), atol=1e-5)
    assert set(result.attention) == {"attention0", "attention1"}
    assert all(0 <= m.min() and m.max() <= 1 and m.shape == (S, S) for m in result.attention.values())


def test_targets_are_checked(linear, image):
    explainer = Explainer(linear)
    with pytest.raises(TargetError, match=r"custom mask has shape \(10, 10\) but the image is \(32, 32\)"):
        compute_saliency(explainer, image, target=np.ones((10, 10), bool))
    with pytest.raises(TargetError, match="needs a ground-truth mask"):
        compute_saliency(explainer, image, target="truth")
    with pytest.raises(TargetError, match="empty"):
        compute_saliency(explainer, image, target=np.zeros((S, S), bool))
    with pytest.raises(TargetError, match="unknown target"):
        compute_saliency(explainer, image, target="lesion")


def test_deletion_of_the_true_attribution_drops_faster_than_random(linear, image, region, rng):
    explainer = Explainer(linear)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, region)
    ig = compute_integrated_gradients(explainer, image, target=region, baseline="blur").attributions.sum(-1)
    faithful = deletion_insertion(explainer, x, ig, target)
    shuffled = deletion_insertion(explainer, x, rng.permutation(ig.ravel()).reshape(ig.shape), target)
    assert faithful.deletion_auc < shuffled.deletion_auc
    assert faithful.insertion_auc > shuffled.insertion_auc
    assert faithful.deletion[0] == pytest.approx(faithful.insertion[-1], abs=1e-6)


def test_mass_inside_and_spearman_by_hand():
    attribution = np.array([[1.0, -1.0], [2.0, 0.0]])
    assert mass_inside(attribution, np.array([[1, 0], [1, 0]])) == pytest.approx(3 / 4)
    a = np.arange(10.0)
    assert spearman(a, a**3) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)


def test_randomisation_check_fails_for_a_map_that_ignores_the_weights(tiny_config, image):
    keras.utils.set_random_seed(1)
    trained, random = build_attention_unet(tiny_config), build_attention_unet(tiny_config)
    edges = lambda model: np.abs(np.diff(image.astype(float).mean(-1), axis=0))  # noqa: E731
    assert not randomisation_check(edges, trained, random).passed
    saliency = lambda model: compute_saliency(Explainer(model), image, target="background").map  # noqa: E731
    check = randomisation_check(saliency, trained, random)
    assert check.spearman < 0.9


def test_confidence_maps(native_images):
    image = read_image(native_images[0])
    rows, cols = image.shape[:2]
    yy, xx = np.mgrid[0:rows, 0:cols]
    probabilities = (xx / cols).astype(np.float32)
    result = compute_confidence(image, probabilities, n_segments=50, compactness=10)
    assert result.superpixels.shape == result.confidence.shape == (rows, cols)
    np.testing.assert_allclose(result.confidence, pixel_confidence(probabilities))
    region = result.labels == result.labels[rows // 2, cols // 2]
    assert np.ptp(result.superpixels[region]) == 0
    assert result.superpixels[region][0] == pytest.approx(probabilities[region].mean(), rel=1e-5)
    assert 10 <= result.n_regions <= 120
    with pytest.raises(ValueError, match="same size"):
        compute_confidence(image, probabilities[:-1])
