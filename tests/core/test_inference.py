"""Inference: native-resolution outputs, consistency of logits/probabilities/mask, batching, failures."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox_xai.data.io import read_image
from glassbox_xai.data.layout import Sample, discover
from glassbox_xai.inference import Failure, Prediction, Progress, Segmenter, sigmoid
from glassbox_xai.jobs import drive


@pytest.fixture(scope="module")
def segmenter(tiny_bundle):
    return Segmenter.from_bundle(tiny_bundle, threshold=0.5, batch_size=3)


def test_native_samples_come_back_at_their_own_size(segmenter, native_images):
    for path in native_images[:3]:
        image = read_image(path)
        prediction = segmenter.predict(path)
        assert prediction.shape == image.shape[:2]
        assert prediction.logits.dtype == prediction.probabilities.dtype == np.float32
        assert prediction.mask.dtype == bool
        np.testing.assert_allclose(prediction.probabilities, sigmoid(prediction.logits), atol=1e-6)
        assert np.array_equal(prediction.mask, prediction.probabilities > 0.5)


def test_array_and_path_inputs_agree(segmenter, native_images):
    from_path = segmenter.predict(native_images[0])
    from_array = segmenter.predict(read_image(native_images[0]))
    np.testing.assert_array_equal(from_path.logits, from_array.logits)


def test_batched_folder_matches_one_at_a_time(segmenter, native_images, tmp_path):
    samples = discover(native_images[0].parent)
    corrupt = tmp_path / "ISIC_0000000.jpg"
    corrupt.write_bytes(b"not a jpeg at all")
    items = []
    drive(segmenter.predict_samples([*samples[:4], Sample("ISIC_0000000", corrupt), samples[4]]), on_item=items.append)
    failures = [i for i in items if isinstance(i, Failure)]
    results = [i for i in items if not isinstance(i, Failure)]
    assert [f.sample.image for f in failures] == [corrupt]
    assert "is not a readable image" in failures[0].message
    assert [s.id for s, _ in results] == [s.id for s in samples[:5]]
    for sample, prediction in results:
        single = segmenter.predict(sample.image)
        np.testing.assert_allclose(prediction.logits, single.logits, atol=1e-4)


def test_progress_counts_every_image(segmenter, native_images):
    seen = []
    drive(segmenter.predict_samples(discover(native_images[:2])), seen.append, on_item=lambda item: None)
    assert [(p.done, p.total) for p in seen] == [(0, 2), (1, 2), (2, 2)]
    assert all(isinstance(p, Progress) for p in seen)


def test_threshold_is_checked_and_applied(tiny_bundle, native_images):
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        Segmenter.from_bundle(tiny_bundle, threshold=1.5)
    low = Segmenter.from_bundle(tiny_bundle, threshold=0.01).predict(native_images[0])
    assert isinstance(low, Prediction) and low.mask.all()


def test_device_is_reported(segmenter):
    assert segmenter.device == "CPU" or segmenter.device.startswith("GPU:")


def test_sigmoid_is_stable_for_large_logits():
    values = sigmoid(np.array([-1e4, -30.0, 0.0, 30.0, 1e4]))
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values, [0.0, 9.357e-14, 0.5, 1.0, 1.0], atol=1e-7)


def test_flip_averaging_matches_a_manual_computation(tiny_bundle, native_images):
    from glassbox_xai.data.resize import to_model_input

    plain = Segmenter.from_bundle(tiny_bundle, tta=False)
    flipped = Segmenter.from_bundle(tiny_bundle, tta=True)
    x = to_model_input(read_image(native_images[0]), plain.input_size)[None]
    expected = (
        plain.model_logits(x)[0]
        + plain.model_logits(x[:, :, ::-1])[0][:, ::-1]
        + plain.model_logits(x[:, ::-1])[0][::-1]
        + plain.model_logits(x[:, ::-1, ::-1])[0][::-1, ::-1]
    ) / 4
    np.testing.assert_allclose(flipped.model_logits(x)[0], expected, atol=1e-5)


def test_postprocessing_keeps_the_largest_lesion_and_fills_holes():
    from glassbox_xai.inference import largest_component_filled

    mask = np.zeros((60, 60), bool)
    mask[5:35, 5:35] = True
    mask[15:20, 15:20] = False  # a hole
    mask[45:55, 45:55] = True  # a smaller island
    out = largest_component_filled(mask)
    assert out[17, 17] and not out[50, 50] and out.sum() == 30 * 30
    assert not largest_component_filled(np.zeros((8, 8), bool)).any()


def test_card_inference_defaults_are_used_and_can_be_overridden(tiny_bundle):
    from dataclasses import replace

    from glassbox_xai.model.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    bundle.card = replace(bundle.card, inference={"tta": True, "postprocess": True})
    assert Segmenter(bundle).tta and Segmenter(bundle).postprocess
    assert not Segmenter(bundle, tta=False, postprocess=False).tta


def test_temperature_comes_from_the_card_and_never_moves_the_mask(tiny_bundle, native_images):
    from dataclasses import replace

    from glassbox_xai.calibration import calibrated_threshold
    from glassbox_xai.model.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    image = read_image(native_images[0])
    plain = Segmenter(bundle, threshold=0.45).predict(image)
    assert plain.temperature == 1.0 and plain.calibrated is plain.probabilities
    bundle.card = replace(bundle.card, calibration={"temperature": 2.5})
    warm = Segmenter(bundle, threshold=0.45).predict(image)
    assert warm.temperature == 2.5 and warm.threshold == 0.45
    assert np.array_equal(warm.mask, plain.mask) and np.array_equal(warm.probabilities, plain.probabilities)
    np.testing.assert_allclose(warm.calibrated, sigmoid(warm.logits / 2.5), atol=1e-5)
    moved = np.mean((warm.calibrated > calibrated_threshold(0.45, 2.5)) != warm.mask)
    assert moved < 1e-4  # the same mask, up to float rounding at the boundary
    assert Segmenter(bundle, temperature=1.0).temperature == 1.0
    with pytest.raises(ValueError, match="temperature must be positive"):
        Segmenter(bundle, temperature=0.0)
