"""Photographs into the model's square input and maps back to native size
(glassbox_xai.data.resize)."""

from __future__ import annotations


import numpy as np
import pytest

from glassbox_xai.data.io import read_image
from glassbox_xai.data.resize import to_model_input, to_native

from data_paths import DATA
NATIVE_PHOTOS = sorted((DATA / "native_samples").glob("ISIC_*[0-9].jpg"))
ISIC_PHOTO = DATA / "isic2018_task1_512" / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000000.jpg"


def test_native_samples_are_present():
    assert len(NATIVE_PHOTOS) == 6


# --------------------------------------------------------------------------- to_model_input


@pytest.mark.parametrize("size", [32, 192, 256, 512])
@pytest.mark.parametrize("shape", [(512, 512), (768, 1024), (100, 37), (16, 16)])
def test_to_model_input_shape_dtype_range(shape, size):
    image = np.random.default_rng(0).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    out = to_model_input(image, size)
    assert out.shape == (size, size, 3)
    assert out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # area averaging and bilinear interpolation never leave the input's range
    assert out.min() >= image.min() / 255.0 - 1e-6 and out.max() <= image.max() / 255.0 + 1e-6


def test_to_model_input_does_not_modify_the_photo():
    image = np.random.default_rng(1).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    before = image.copy()
    to_model_input(image, 64)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("value", [0, 1, 128, 255])
@pytest.mark.parametrize("shape", [(700, 500), (20, 30)], ids=["shrink", "enlarge"])
def test_to_model_input_constant_photo(value, shape):
    out = to_model_input(np.full((*shape, 3), value, dtype=np.uint8), 64)
    np.testing.assert_allclose(out, value / 255.0, atol=1e-6)


def test_to_model_input_same_size_is_plain_scaling():
    image = np.random.default_rng(2).integers(0, 256, size=(192, 192, 3), dtype=np.uint8)
    np.testing.assert_allclose(to_model_input(image, 192), image / 255.0, atol=1e-6)


def test_to_model_input_shrinks_by_area_averaging():
    # a fine 1-pixel checkerboard must average to mid-grey (nearest or bilinear sampling would alias)
    rows, cols = np.indices((512, 512))
    board = np.where((rows + cols) % 2 == 0, 255, 0).astype(np.uint8)
    out = to_model_input(np.repeat(board[..., None], 3, axis=-1), 64)
    np.testing.assert_allclose(out, 0.5, atol=0.01)


def test_to_model_input_keeps_colour_channels_apart():
    image = np.zeros((300, 200, 3), dtype=np.uint8)
    image[..., 0] = 255
    image[..., 2] = 51
    out = to_model_input(image, 48)
    np.testing.assert_allclose(out[..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 2], 0.2, atol=1e-6)


def test_to_model_input_stretches_without_keeping_aspect():
    # left half dark, right half bright, on a very wide photo: stays left/right in the square
    image = np.zeros((100, 1000, 3), dtype=np.uint8)
    image[:, 500:] = 200
    out = to_model_input(image, 32)
    assert out[:, :15].max() < 0.01
    assert out[:, 17:].min() > 200 / 255 - 0.01


def test_to_model_input_real_photo():
    image = read_image(ISIC_PHOTO)
    out = to_model_input(image, 192)
    assert out.shape == (192, 192, 3) and out.dtype == np.float32
    # the mean colour of the photo is preserved by area averaging
    np.testing.assert_allclose(out.mean(axis=(0, 1)), image.mean(axis=(0, 1)) / 255.0, atol=0.01)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64, 3), dtype=np.float32),
        np.zeros((64, 64, 3), dtype=np.float64),
        np.zeros((64, 64, 3), dtype=np.uint16),
        np.zeros((64, 64, 3), dtype=np.int32),
        np.zeros((64, 64, 3), dtype=bool),
        np.zeros((64, 64), dtype=np.uint8),
        np.zeros((64, 64, 1), dtype=np.uint8),
        np.zeros((64, 64, 4), dtype=np.uint8),
        np.zeros((3, 64, 64), dtype=np.uint8),
        np.zeros((2, 64, 64, 3), dtype=np.uint8),
    ],
    ids=["float32", "float64", "uint16", "int32", "bool", "2-D", "1-channel", "RGBA", "CHW", "batch"],
)
def test_to_model_input_refuses_other_arrays(image):
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB image"):
        to_model_input(image, 64)


# --------------------------------------------------------------------------- to_native

SIZES = [(300, 300), (300, 7000), (7000, 300), (4500, 6700), (768, 1024), (2592, 3872), (7000, 7000), (193, 191), (1, 1)]


@pytest.mark.parametrize("shape", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_to_native_returns_exactly_the_requested_shape(shape):
    values = np.random.default_rng(3).random((192, 192), dtype=np.float32)
    out = to_native(values, shape)
    assert out.shape == shape
    assert out.dtype == np.float32
    # bilinear interpolation stays within the map's range
    assert out.min() >= values.min() - 1e-6 and out.max() <= values.max() + 1e-6


@pytest.mark.parametrize("shape", [(2592, 3872), (300, 7000), (7, 5)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_constant_map_stays_constant(shape):
    out = to_native(np.full((192, 192), 0.37, dtype=np.float32), shape)
    assert out.shape == shape
    np.testing.assert_allclose(out, 0.37, atol=1e-6)


def test_to_native_accepts_tuple_like_shapes_and_other_dtypes():
    values = np.linspace(0, 1, 64 * 64).reshape(64, 64)  # float64
    out = to_native(values, np.array([100, 150]))
    assert out.shape == (100, 150) and out.dtype == np.float32
    assert to_native(values > 0.5, [80, 90]).shape == (80, 90)  # a bool mask as a map


def test_to_native_same_shape_is_an_independent_copy():
    values = np.random.default_rng(4).random((50, 70), dtype=np.float32)
    out = to_native(values, (50, 70))
    np.testing.assert_array_equal(out, values)
    out[0, 0] = 99.0
    assert values[0, 0] != 99.0


def test_to_native_preserves_the_layout_of_a_map():
    # a map that is 1 in its top-left quadrant keeps that quadrant at any size and aspect
    values = np.zeros((192, 192), dtype=np.float32)
    values[:96, :96] = 1.0
    out = to_native(values, (2592, 3872))
    assert out[: 2592 // 2 - 20, : 3872 // 2 - 30].min() == pytest.approx(1.0)
    assert out[2592 // 2 + 20 :, :].max() == pytest.approx(0.0)
    assert out[:, 3872 // 2 + 30 :].max() == pytest.approx(0.0)
    assert out.mean() == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("values", [np.zeros(10), np.zeros((4, 4, 3)), np.zeros((1, 8, 8))], ids=["1-D", "3-D", "batch"])
def test_to_native_refuses_non_2d_maps(values):
    with pytest.raises(ValueError, match="expected a 2-D map"):
        to_native(values, (100, 100))


# --------------------------------------------------------------------------- round trip on real photographs


@pytest.mark.parametrize("photo", NATIVE_PHOTOS, ids=lambda p: p.stem)
def test_round_trip_on_native_photographs(photo):
    image = read_image(photo)
    rows, cols = image.shape[:2]
    assert min(rows, cols) >= 768 and max(rows, cols) <= 3872
    model_input = to_model_input(image, 192)
    assert model_input.shape == (192, 192, 3)
    brightness = model_input.mean(axis=-1)
    native = to_native(brightness, (rows, cols))
    assert native.shape == (rows, cols)
    assert native.dtype == np.float32
    # the upsampled coarse brightness still follows the photograph
    original = image.mean(axis=-1) / 255.0
    assert abs(float(native.mean()) - float(original.mean())) < 0.002
    assert np.abs(native - original).mean() < 0.03
    assert np.corrcoef(native[::8, ::8].ravel(), original[::8, ::8].ravel())[0, 1] > 0.9
