"""HiRes-CAM, Grad-CAM++ and Score-CAM, and class-score targets, against truths computed by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from glassbox_xai.data.resize import to_native
from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.xai.base import Explainer
from glassbox_xai.xai.gradcam import compute_gradcam
from glassbox_xai.xai.gradcam_plus import compute_gradcam_plus
from glassbox_xai.xai.hirescam import compute_hirescam
from glassbox_xai.xai.integrated_gradients import compute_integrated_gradients
from glassbox_xai.xai.layer_pass import default_layer, layer_pass
from glassbox_xai.xai.saliency import compute_saliency
from glassbox_xai.xai.scorecam import compute_scorecam, correlation, top_channels
from glassbox_xai.xai.targets import ClassTarget

from xai_truths import S


@pytest.fixture(scope="module")
def unet(tiny_config):
    keras.utils.set_random_seed(4)
    return build_attention_unet(tiny_config)


@pytest.fixture(scope="module")
def classifier():
    """conv -> conv -> global average pooling -> dense logits over 3 classes."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((S, S, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(h)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(inputs, logits)


def _direct(model, x, layer, target):
    """Activation and gradient of one layer, by a model built for that layer alone."""
    import tensorflow as tf

    single = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        act, out = single(x)
        score = target.score(out, "logits")
    return act.numpy()[0], tape.gradient(score, act).numpy()[0]


def test_hirescam_of_each_layer_is_gradient_times_activation_summed_over_channels(unet, image):
    explainer = Explainer(unet)
    x = explainer.prepare(image)
    target = explainer.target(image.shape[:2], x, "background")
    recorded = layer_pass(explainer, x, target)
    result = compute_hirescam(explainer, image, recorded=recorded)
    assert set(result.maps) == set(recorded.activations) and result.stages == recorded.stages
    for name in ("encoder1_conv2", "attention0_psi", "decoder0_conv2", "output_logits"):
        act, grad = _direct(unet, x, name, target)
        direct = np.maximum((act * grad).sum(-1), 0)
        direct = direct / direct.max() if direct.max() > 0 else direct
        np.testing.assert_allclose(result.model_maps[name], direct, atol=1e-5)
        np.testing.assert_allclose(result.maps[name], to_native(direct, image.shape[:2]), atol=1e-5)


def test_a_drawn_region_moves_hirescam_but_not_gradcam_at_the_output_layer(unet, image):
    """Grad-CAM at a one-channel layer is ReLU(activation) scaled, whatever the region: correct, not a bug."""
    explainer = Explainer(unet)
    x = explainer.prepare(image)
    logit = explainer.logits(x)[0]
    left, right = np.zeros((S, S), bool), np.zeros((S, S), bool)
    left[:, : S // 2], right[:, S // 2 :] = True, True
    grad_maps = [compute_gradcam(explainer, image, target=r, layers=["output_logits"]).model_maps["output_logits"] for r in (left, right)]
    expected = np.maximum(logit, 0) / np.maximum(logit, 0).max()
    for m in grad_maps:
        np.testing.assert_allclose(m, expected, atol=1e-5)
    hires = [compute_hirescam(explainer, image, target=r, layers=["output_logits"]).model_maps["output_logits"] for r in (left, right)]
    for m, region in zip(hires, (left, right)):
        assert np.all(m[~region] == 0)
        np.testing.assert_allclose(m[region], (np.maximum(logit, 0) / np.maximum(logit[region], 0).max())[region], atol=1e-5)


def test_score_cam_ranks_first_the_channel_the_output_is_a_linear_function_of(rng):
    """Channels: red, green, blue, 1 - red; the logit is 5 x channel 2 (blue), nothing else."""
    inputs = keras.Input((S, S, 3))
    features = keras.layers.Conv2D(4, 1, use_bias=False, name="features")
    head = keras.layers.Conv2D(1, 1, name="output_logits")
    model = keras.Model(inputs, head(features(inputs)))
    kernel = np.zeros((1, 1, 3, 4), np.float32)
    kernel[0, 0, [0, 1, 2], [0, 1, 2]] = 1.0
    kernel[0, 0, 0, 3] = -1.0
    features.set_weights([kernel])
    head.set_weights([np.array([0, 0, 5, 0], np.float32).reshape(1, 1, 4, 1), np.zeros(1, np.float32)])
    image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    everywhere = np.ones((S, S), bool)
    result = compute_scorecam(Explainer(model), image, target=everywhere, layer="features", budget=None, output="logits", batch=3)
    assert result.channels[np.argmax(result.weights)] == 2
    x = image.astype(np.float32) / 255
    blue = x[..., 2]
    masks = [x[..., 0], x[..., 1], blue, 1 - x[..., 0]]
    expected = [5 * (blue * (m - m.min()) / (m.max() - m.min())).mean() for m in masks]
    np.testing.assert_allclose(result.weights, np.array(expected)[result.channels], rtol=1e-4)
    assert result.agreement == 1.0 and result.channels_total == 4


def test_score_cam_budget_keeps_the_most_varying_channels_and_reports_agreement(unet, image):
    activation = np.zeros((4, 4, 3), np.float32)
    activation[..., 1] = np.arange(16).reshape(4, 4)
    activation[0, 0, 2] = 1.0
    assert list(top_channels(activation, 2)) == [1, 2] and list(top_channels(activation, None)) == [1, 2, 0]
    explainer = Explainer(unet)
    budgeted = compute_scorecam(explainer, image, layer="encoder1_conv2", budget=3, compare_full=True)
    full = compute_scorecam(explainer, image, layer="encoder1_conv2", budget=None)
    assert len(budgeted.channels) == 3 and budgeted.channels_total == full.channels_total == 8
    assert budgeted.agreement == pytest.approx(correlation(budgeted.model_map, full.model_map), abs=1e-5)
    assert budgeted.map.shape == image.shape[:2] and 0 <= budgeted.map.min() and budgeted.map.max() <= 1


def test_every_method_explains_a_class_score_of_a_classifier(classifier, image):
    explainer = Explainer(classifier)
    target = ClassTarget(1)
    x = explainer.prepare(image)
    assert default_layer(classifier) == "conv2"
    act, grad = _direct(classifier, x, "conv2", target)
    dense = classifier.get_layer("logits").get_weights()[0][:, 1]
    np.testing.assert_allclose(grad, np.broadcast_to(dense / S**2, grad.shape), rtol=1e-4, atol=1e-9)  # GAP: a uniform gradient
    class_map = np.maximum(act @ dense, 0)  # Zhou et al.'s CAM, which Grad-CAM and HiRes-CAM reduce to here
    for compute in (compute_gradcam, compute_hirescam):
        result = compute(explainer, image, target=target)
        assert set(result.maps) == {"conv1", "conv2"} and result.target == "class 1"
        np.testing.assert_allclose(result.model_maps["conv2"], class_map / class_map.max(), atol=1e-5)
    plus = compute_gradcam_plus(explainer, image, target=target)
    assert all(np.isfinite(m).all() and m.max() <= 1 for m in plus.maps.values())
    score = compute_scorecam(explainer, image, target=target, budget=None)
    assert score.layer == "conv2" and score.map.shape == (S, S) and len(score.weights) == 6
    probabilities = np.exp(classifier(x).numpy()[0]) / np.exp(classifier(x).numpy()[0]).sum()
    for output in ("logits", "sigmoid"):
        sal = compute_saliency(explainer, image, target=target, output=output)
        assert sal.score == pytest.approx(classifier(x).numpy()[0, 1] if output == "logits" else probabilities[1], rel=1e-5)
    ig = compute_integrated_gradients(explainer, image, target=target, steps=64)
    assert ig.completeness_error < 0.02


def test_gradcam_plus_plus_agrees_with_tf_keras_vis(classifier, image):
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    explainer = Explainer(classifier)
    ours = compute_gradcam_plus(explainer, image, target=ClassTarget(2), layers=["conv1"]).model_maps["conv1"]
    peer = GradcamPlusPlus(classifier, clone=False)(lambda out: out[:, 2], explainer.prepare(image), penultimate_layer="conv1",
                                                     expand_cam=False, normalize_cam=False)[0].numpy()
    np.testing.assert_allclose(ours, peer / peer.max(), atol=1e-4)


def test_targets_of_one_kind_share_one_compiled_graph_and_score_as_directly_computed(linear, classifier, image, rng):
    from xai_truths import W

    from glassbox_xai.xai.targets import RegionTarget

    explainer = Explainer.for_model(linear, 0.5)
    assert Explainer.for_model(linear, 0.3) is explainer and explainer.threshold == 0.3  # one per model, kept
    x = explainer.prepare(image)
    logits = (x[0] @ W + 0.1).astype(np.float64)  # the linear model in closed form
    regions = [RegionTarget((rng.random((S, S)) > 0.5).astype(np.float32), sign, "drawn") for sign in (1.0, -1.0, 1.0)]
    for region in regions:  # three requests: three targets, new weights each time
        for output, values in (("logits", region.sign * logits), ("sigmoid", 1 / (1 + np.exp(-logits)))):
            values = values if output == "logits" or region.sign > 0 else 1 - values
            expected = (values * region.weights).sum() / region.weights.sum()
            score, grads = explainer.scores_and_gradients(x, region, output)
            assert score[0] == pytest.approx(expected, rel=1e-4) and grads.shape == x.shape
            assert explainer.scores(x, region, output)[0] == pytest.approx(expected, rel=1e-4)
    traced = {key[:3]: fn.experimental_get_tracing_count() for key, fn in explainer._graphs.items()}
    assert traced == {(RegionTarget, "logits", True): 1, (RegionTarget, "sigmoid", True): 1,
                      (RegionTarget, "logits", False): 1, (RegionTarget, "sigmoid", False): 1}  # never retraced per target
    per_class = Explainer.for_model(classifier)
    direct = np.asarray(classifier(per_class.prepare(image)))[0]
    for index in range(3):
        assert per_class.scores(per_class.prepare(image), ClassTarget(index))[0] == pytest.approx(direct[index], rel=1e-4)
    assert [fn.experimental_get_tracing_count() for fn in per_class._graphs.values()] == [1]


def test_a_kept_explainer_does_not_keep_its_model_alive():
    import gc
    import weakref

    keras.utils.set_random_seed(3)
    inputs = keras.Input((S, S, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, name="output_logits")(inputs))
    explainer = Explainer.for_model(model)
    assert Explainer.for_model(model) is explainer and model.get_config()  # kept; the model still serialises
    gone = weakref.ref(model)
    del model, explainer
    gc.collect()
    assert gone() is None  # model and explainer are collected together
