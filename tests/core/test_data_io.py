"""Reading photographs of every supported kind, reading masks strictly and leniently,
and writing masks atomically (glassbox_xai.data.io)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import glassbox_xai.data.io as io_module
from glassbox_xai.data.io import (
    ImageConversionWarning,
    ImageReadError,
    MaskError,
    as_rgb8,
    read_image,
    read_mask,
    write_mask,
)

from data_paths import DATA
ISIC_IMAGES = DATA / "isic2018_task1_512" / "ISIC2018_Task1-2_Training_Input"
ISIC_MASKS = DATA / "isic2018_task1_512" / "ISIC2018_Task1_Training_GroundTruth"
NATIVE = DATA / "native_samples"
REAL_ID = "ISIC_0000000"


def named(path: Path) -> str:
    """A regex matching the file's path verbatim (for pytest.raises/warns match=)."""
    return re.escape(str(path))


@pytest.fixture(scope="module")
def real_rgb() -> np.ndarray:
    """A real 512x512 ISIC photograph as decoded by PIL (the reference pixels)."""
    with Image.open(ISIC_IMAGES / f"{REAL_ID}.jpg") as image:
        array = np.asarray(image.convert("RGB"))
    assert array.shape == (512, 512, 3) and array.dtype == np.uint8
    return array


@pytest.fixture
def no_conversion_warnings():
    """Turn ImageConversionWarning into an error: for inputs that must not be converted."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageConversionWarning)
        yield


# --------------------------------------------------------------------------- photographs


def test_real_jpeg_reads_as_rgb8(no_conversion_warnings, real_rgb):
    path = ISIC_IMAGES / f"{REAL_ID}.jpg"
    image = read_image(path)
    assert image.shape == (512, 512, 3)
    assert image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image, real_rgb)


@pytest.mark.parametrize(
    "suffix, pil_format, lossless",
    [
        (".jpg", "JPEG", False),
        (".jpeg", "JPEG", False),
        (".JPG", "JPEG", False),
        (".png", "PNG", True),
        (".PNG", "PNG", True),
        (".bmp", "BMP", True),
        (".tif", "TIFF", True),
        (".tiff", "TIFF", True),
    ],
)
def test_real_photo_in_every_format(tmp_path, no_conversion_warnings, real_rgb, suffix, pil_format, lossless):
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(real_rgb).save(path, format=pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
    image = read_image(path)
    assert image.shape == real_rgb.shape
    assert image.dtype == np.uint8
    if lossless:
        np.testing.assert_array_equal(image, real_rgb)
    else:
        assert np.abs(image.astype(int) - real_rgb.astype(int)).mean() < 3.0


def test_8bit_rgb_tiff_via_tifffile(tmp_path, no_conversion_warnings, real_rgb):
    path = tmp_path / "rgb8.tif"
    tifffile.imwrite(path, real_rgb, photometric="rgb")
    np.testing.assert_array_equal(read_image(path), real_rgb)


def test_16bit_rgb_tiff_is_scaled_to_8bit_with_warning(tmp_path, real_rgb):
    path = tmp_path / "rgb16.tiff"
    tifffile.imwrite(path, real_rgb.astype(np.uint16) * 257, photometric="rgb")
    with pytest.warns(ImageConversionWarning, match=named(path)):
        image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == real_rgb.shape
    np.testing.assert_array_equal(image, real_rgb)  # 257 * v / 257 == v exactly


@pytest.mark.parametrize("planarconfig", ["separate", None])
def test_planar_chw_tiff_is_moved_to_hwc(tmp_path, no_conversion_warnings, real_rgb, planarconfig):
    chw = np.ascontiguousarray(np.moveaxis(real_rgb[:200, :300], -1, 0))
    assert chw.shape == (3, 200, 300)
    path = tmp_path / "planar.tif"
    if planarconfig:
        tifffile.imwrite(path, chw, photometric="rgb", planarconfig=planarconfig)
    else:  # three grayscale pages, read back as a (3, H, W) stack
        tifffile.imwrite(path, chw, photometric="minisblack")
    assert tifffile.imread(path).shape == (3, 200, 300)
    image = read_image(path)
    assert image.shape == (200, 300, 3)
    np.testing.assert_array_equal(image, real_rgb[:200, :300])


def test_grayscale_png_becomes_rgb_with_equal_channels(tmp_path, real_rgb):
    gray = np.asarray(Image.fromarray(real_rgb).convert("L"))
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    with pytest.warns(ImageConversionWarning, match=named(path) + ".*grayscale"):
        image = read_image(path)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], gray)
    np.testing.assert_array_equal(image[..., 1], image[..., 0])
    np.testing.assert_array_equal(image[..., 2], image[..., 0])


def test_grayscale_jpeg_becomes_rgb(tmp_path, real_rgb):
    path = tmp_path / "gray.jpg"
    Image.fromarray(real_rgb).convert("L").save(path, quality=95)
    with pytest.warns(ImageConversionWarning, match=named(path)):
        image = read_image(path)
    assert image.shape == (512, 512, 3)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


def test_rgba_png_drops_alpha_with_warning(tmp_path, real_rgb):
    alpha = np.linspace(0, 255, 512 * 512).reshape(512, 512).astype(np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([real_rgb, alpha]), mode="RGBA").save(path)
    with pytest.warns(ImageConversionWarning, match=named(path) + ".*alpha"):
        image = read_image(path)
    assert image.shape == (512, 512, 3)
    assert image.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image, real_rgb)  # colour untouched, not premultiplied


def test_gray_alpha_png_drops_alpha_with_warning(tmp_path, real_rgb):
    gray = np.asarray(Image.fromarray(real_rgb).convert("L"))
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, np.full_like(gray, 77)]), mode="LA").save(path)
    with pytest.warns(ImageConversionWarning, match=named(path) + ".*alpha"):
        image = read_image(path)
    assert image.shape == (512, 512, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def test_16bit_grayscale_png_is_scaled_to_8bit_with_warning(tmp_path):
    ramp = (np.arange(64 * 80, dtype=np.uint32).reshape(64, 80) * 65535 // (64 * 80 - 1)).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as check:
        assert check.mode == "I;16"  # really a 16-bit PNG
    with pytest.warns(ImageConversionWarning) as record:
        image = read_image(path)
    messages = [str(w.message) for w in record if issubclass(w.category, ImageConversionWarning)]
    assert any(str(path) in m and "8 bits" in m for m in messages), messages
    assert any(str(path) in m and "grayscale" in m for m in messages), messages
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(image[..., 0], expected)
    assert image.min() == 0 and image.max() == 255  # full range used, not clipped at 255 of 65535


@pytest.mark.parametrize("mode", ["P", "1", "CMYK"])
def test_other_pil_modes_become_rgb_with_warning(tmp_path, real_rgb, mode):
    source = Image.fromarray(real_rgb)
    converted = source.convert(mode)
    path = tmp_path / f"{mode.lower()}.{'jpg' if mode == 'CMYK' else 'png'}"
    converted.save(path)
    with pytest.warns(ImageConversionWarning, match=named(path)):
        image = read_image(path)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    if mode == "1":
        assert set(np.unique(image).tolist()) == {0, 255}
    if mode == "CMYK":  # lossy JPEG round trip through CMYK
        assert np.abs(image.astype(int) - real_rgb.astype(int)).mean() < 12
    else:  # exactly the palette / bilevel pixels as RGB
        np.testing.assert_array_equal(image, np.asarray(converted.convert("RGB")))


# --------------------------------------------------------------------------- as_rgb8
@pytest.fixture
def rng_array() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(16, 24, 3), dtype=np.uint8)



def test_as_rgb8_passes_uint8_rgb_through_without_warning(no_conversion_warnings, rng_array):
    out = as_rgb8(rng_array, "x")
    assert out.dtype == np.uint8 and out.shape == rng_array.shape
    np.testing.assert_array_equal(out, rng_array)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_as_rgb8_float_unit_range(dtype):
    values = np.linspace(0.0, 1.0, 16 * 20 * 3).reshape(16, 20, 3).astype(dtype)
    with pytest.warns(ImageConversionWarning, match="my-float-array"):
        out = as_rgb8(values, "my-float-array")
    assert out.dtype == np.uint8 and out.shape == (16, 20, 3)
    expected = np.clip(np.rint(values.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    tolerance = 1 if dtype == np.float16 else 0  # float16 arithmetic rounds before rint
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= tolerance
    assert out.min() == 0 and out.max() == 255


def test_as_rgb8_float_above_one_is_scaled_by_its_maximum():
    values = np.zeros((10, 10, 3), dtype=np.float32)
    values[..., 0] = 1000.0
    values[..., 1] = 500.0
    with pytest.warns(ImageConversionWarning):
        out = as_rgb8(values, "big")
    assert (out[..., 0] == 255).all()
    assert (out[..., 1] == 128).all()  # rint(127.5) with round-half-even
    assert (out[..., 2] == 0).all()


def test_as_rgb8_float_negative_values_are_clipped_to_zero():
    values = np.full((10, 10, 3), -0.5, dtype=np.float32)
    values[0, 0] = 0.5
    with pytest.warns(ImageConversionWarning):
        out = as_rgb8(values, "neg")
    assert out[1:, 1:].max() == 0
    np.testing.assert_array_equal(out[0, 0], [128, 128, 128])


def test_as_rgb8_float_grayscale_warns_twice_and_repeats_channel():
    gray = np.linspace(0, 1, 12 * 12, dtype=np.float32).reshape(12, 12)
    with pytest.warns(ImageConversionWarning) as record:
        out = as_rgb8(gray, "g")
    texts = " | ".join(str(w.message) for w in record)
    assert "scaled to 8 bits" in texts and "grayscale" in texts
    assert out.shape == (12, 12, 3)
    assert (out[..., 0] == out[..., 2]).all()


def test_as_rgb8_single_channel_last_axis_is_grayscale():
    gray = np.arange(100, dtype=np.uint8).reshape(10, 10, 1)
    with pytest.warns(ImageConversionWarning, match="grayscale"):
        out = as_rgb8(gray, "c1")
    np.testing.assert_array_equal(out, np.repeat(gray, 3, axis=-1))


def test_as_rgb8_bool_becomes_0_255():
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4] = True
    with pytest.warns(ImageConversionWarning):
        out = as_rgb8(mask, "b")
    assert set(np.unique(out).tolist()) == {0, 255}
    assert (out[:4] == 255).all() and (out[4:] == 0).all()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_as_rgb8_refuses_non_finite_floats(value):
    values = np.zeros((10, 10, 3), dtype=np.float32)
    values[3, 4, 1] = value
    with pytest.raises(ImageReadError, match="nf: .*NaN or infinity"):
        as_rgb8(values, "nf")


@pytest.mark.parametrize(
    "shape",
    [(10, 10, 5), (2, 10, 10, 3), (100,), (4, 4, 3), (7, 100), (8, 20_001)],
    ids=["5-channels", "4-D", "1-D", "tiny", "too-thin", "too-long"],
)
def test_as_rgb8_refuses_bad_shapes(shape):
    with pytest.raises(ImageReadError, match="shaped-thing"):
        as_rgb8(np.zeros(shape, dtype=np.uint8), "shaped-thing")


# --------------------------------------------------------------------------- EXIF orientation


def _quadrant_image() -> np.ndarray:
    """64x96 (rows x columns), dark, with a bright top-left quadrant and a mid-grey bottom-right one."""
    image = np.full((64, 96, 3), 20, dtype=np.uint8)
    image[:32, :48] = 235
    image[32:, 48:] = 120
    return image


def _block_means(image: np.ndarray, blocks: int = 4) -> np.ndarray:
    gray = image.astype(np.float64).mean(axis=-1)
    rows, cols = gray.shape
    return gray.reshape(blocks, rows // blocks, blocks, cols // blocks).mean(axis=(1, 3))


@pytest.mark.parametrize(
    "orientation, k",
    [(1, 0), (3, 2), (6, -1), (8, 1)],  # 6: rotate 90 degrees clockwise to display; 8: counter-clockwise
)
def test_exif_orientation_is_honoured(tmp_path, orientation, k):
    source = _quadrant_image()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"orientation{orientation}.jpg"
    Image.fromarray(source).save(path, exif=exif.tobytes(), quality=95)
    with Image.open(path) as check:
        assert check.getexif().get(0x0112) == orientation
        assert check.size == (96, 64)  # stored as written
    image = read_image(path)
    expected = np.rot90(source, k)
    assert image.shape == expected.shape
    assert np.abs(_block_means(image) - _block_means(expected)).max() < 12
    if k in (1, -1):
        assert image.shape == (96, 64, 3)  # rows and columns swapped


def test_exif_orientation_6_puts_bright_quadrant_top_right(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "o6.jpg"
    Image.fromarray(_quadrant_image()).save(path, exif=exif.tobytes(), quality=95)
    image = read_image(path).mean(axis=-1)
    assert image.shape == (96, 64)
    assert image[:48, 32:].mean() > 200  # bright quadrant went top-left -> top-right
    assert image[:48, :32].mean() < 40


# --------------------------------------------------------------------------- read errors


def _gif(path: Path) -> Path:
    Image.fromarray(_quadrant_image()).save(path, format="GIF")
    return path


def _text(path: Path) -> Path:
    path.write_text("not an image\n")
    return path


def _random_bytes_jpg(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _truncated_jpg(path: Path) -> Path:
    data = (ISIC_IMAGES / f"{REAL_ID}.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _random_bytes_tif(path: Path) -> Path:
    return _random_bytes_jpg(path)


def _truncated_tif(path: Path) -> Path:
    tifffile.imwrite(path, np.random.default_rng(2).integers(0, 256, (200, 300, 3), dtype=np.uint8), photometric="rgb")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _missing(path: Path) -> Path:
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("anim.gif", _gif, "unsupported file type '.gif'"),
        ("notes.txt", _text, "unsupported file type '.txt'"),
        ("random.jpg", _random_bytes_jpg, "not a readable image"),
        ("half.jpg", _truncated_jpg, "truncated"),
        ("random.tif", _random_bytes_tif, "could not be read as TIFF"),
        ("half.tiff", _truncated_tif, "could not be read as TIFF"),
        ("missing.png", _missing, "does not exist"),
        ("folder.jpg", _folder, "is a folder"),
    ],
)
def test_read_errors_name_the_file(tmp_path, name, make, message):
    path = make(tmp_path / name)
    with pytest.raises(ImageReadError, match=named(path)) as info:
        read_image(path)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "name, make",
    [("m.txt", _text), ("m.png", _missing), ("m_dir.png", _folder), ("m.jpg", _random_bytes_jpg)],
)
def test_mask_read_errors_are_mask_errors_naming_the_file(tmp_path, name, make):
    path = make(tmp_path / name)
    with pytest.raises(MaskError, match=named(path)):
        read_mask(path)


def test_truncated_jpeg_is_refused_whatever_the_cut(tmp_path):
    data = (ISIC_IMAGES / f"{REAL_ID}.jpg").read_bytes()
    for fraction in (0.2, 0.9):
        path = tmp_path / f"cut{fraction}.jpg"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ImageReadError, match=named(path)):
            read_image(path)


# --------------------------------------------------------------------------- masks


def _binary_pattern(shape=(40, 60)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[10:30, 15:50] = True
    mask[0, 0] = True
    return mask


@pytest.mark.parametrize("on_value", [255, 1], ids=["0-255", "0-1"])
def test_binary_masks_read_as_bool(tmp_path, on_value):
    expected = _binary_pattern()
    path = tmp_path / "m.png"
    Image.fromarray(expected.astype(np.uint8) * on_value, mode="L").save(path)
    mask = read_mask(path, expected_shape=(40, 60))
    assert mask.dtype == bool and mask.shape == (40, 60)
    np.testing.assert_array_equal(mask, expected)


def test_bilevel_mode_1_mask_reads_as_bool(tmp_path):
    expected = _binary_pattern()
    path = tmp_path / "m1.png"
    Image.fromarray(expected.astype(np.uint8) * 255).convert("1").save(path)
    np.testing.assert_array_equal(read_mask(path), expected)


@pytest.mark.parametrize("value", [0, 255], ids=["all-background", "all-lesion"])
def test_single_valued_masks_are_binary(tmp_path, value):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((20, 20), value, dtype=np.uint8)).save(path)
    mask = read_mask(path)
    assert mask.all() if value else not mask.any()


def test_real_isic_mask_matches_its_photo():
    mask = read_mask(ISIC_MASKS / f"{REAL_ID}_segmentation.png", expected_shape=(512, 512))
    assert mask.dtype == bool and mask.shape == (512, 512)
    assert 0 < mask.mean() < 1


@pytest.mark.parametrize("photo", sorted(NATIVE.glob("ISIC_*[0-9].jpg")), ids=lambda p: p.stem)
def test_native_masks_match_native_photo_size(photo):
    with Image.open(photo) as image:
        columns, rows = image.size
    mask = read_mask(photo.with_name(f"{photo.stem}_segmentation.png"), expected_shape=(rows, columns))
    assert mask.shape == (rows, columns)
    assert 0 < mask.mean() < 1


def test_non_binary_mask_is_refused_naming_file_and_values(tmp_path):
    values = np.zeros((30, 30), dtype=np.uint8)
    values[10:] = 128
    values[20:] = 255
    path = tmp_path / "soft_segmentation.png"
    Image.fromarray(values).save(path)
    with pytest.raises(MaskError, match=named(path)) as info:
        read_mask(path)
    text = str(info.value)
    assert "not binary" in text and "0, 128, 255" in text


def test_many_valued_mask_error_lists_only_a_few_values(tmp_path):
    path = tmp_path / "ramp.png"
    Image.fromarray(np.arange(400, dtype=np.uint32).reshape(20, 20).astype(np.uint8)).save(path)
    with pytest.raises(MaskError, match=r"values 0, 1, 2, 3, 4, 5, \.\.\.;"):
        read_mask(path)


def test_lenient_mask_thresholds_above_128(tmp_path):
    values = np.array([[0, 1, 127, 128, 129, 200, 254, 255]] * 8, dtype=np.uint8)
    path = tmp_path / "prob.png"
    Image.fromarray(values).save(path)
    with pytest.raises(MaskError):
        read_mask(path)  # strict refuses it
    mask = read_mask(path, strict=False)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask[0], [False, False, False, False, True, True, True, True])


def test_lenient_mask_still_checks_size(tmp_path):
    path = tmp_path / "prob.png"
    Image.fromarray(np.full((10, 12), 200, dtype=np.uint8)).save(path)
    assert read_mask(path, expected_shape=(10, 12), strict=False).all()
    with pytest.raises(MaskError, match="12x10"):
        read_mask(path, expected_shape=(12, 10), strict=False)


@pytest.mark.parametrize("expected_shape", [(40, 61), (41, 60), (60, 40)])
def test_mask_size_mismatch_names_both_sizes(tmp_path, expected_shape):
    path = tmp_path / "m.png"
    Image.fromarray(_binary_pattern().astype(np.uint8) * 255).save(path)
    with pytest.raises(MaskError, match=named(path)) as info:
        read_mask(path, expected_shape=expected_shape)
    text = str(info.value)
    assert "60x40 px" in text  # the mask: columns x rows
    assert f"{expected_shape[1]}x{expected_shape[0]} px" in text  # its image


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_multichannel_mask_with_equal_colour_channels_is_accepted(tmp_path, mode):
    expected = _binary_pattern()
    gray = expected.astype(np.uint8) * 255
    alpha = np.full_like(gray, 255)
    channels = {"RGB": [gray] * 3, "RGBA": [gray] * 3 + [alpha], "LA": [gray, alpha]}[mode]
    path = tmp_path / f"{mode}.png"
    Image.fromarray(np.dstack(channels), mode=mode).save(path)
    np.testing.assert_array_equal(read_mask(path), expected)


def test_rgb_mask_with_differing_channels_is_refused(tmp_path):
    gray = _binary_pattern().astype(np.uint8) * 255
    red_only = np.dstack([gray, np.zeros_like(gray), np.zeros_like(gray)])
    path = tmp_path / "red.png"
    Image.fromarray(red_only, mode="RGB").save(path)
    with pytest.raises(MaskError, match=named(path) + ".*channels that differ"):
        read_mask(path)


def test_palette_mask_reads_as_bool(tmp_path):
    expected = _binary_pattern()
    image = Image.fromarray(expected.astype(np.uint8), mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
    path = tmp_path / "pal.png"
    image.save(path)
    np.testing.assert_array_equal(read_mask(path), expected)


# --------------------------------------------------------------------------- write_mask


@pytest.mark.parametrize(
    "mask",
    [
        _binary_pattern(),
        _binary_pattern().astype(np.uint8),
        _binary_pattern().astype(np.float32) * 0.9,
        _binary_pattern((1, 1)),
        _binary_pattern((7, 1000)),
    ],
    ids=["bool", "uint8-0-1", "float", "1x1", "7x1000"],
)
def test_write_mask_writes_8bit_0_255_png_of_exact_shape(tmp_path, mask):
    path = tmp_path / "out" / "nested" / "ISIC_x_segmentation.png"
    returned = write_mask(path, mask)
    assert returned == path and path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "L"
        assert image.size == (mask.shape[1], mask.shape[0])
        values = np.asarray(image)
    assert values.dtype == np.uint8
    assert set(np.unique(values).tolist()) <= {0, 255}
    np.testing.assert_array_equal(values == 255, mask > 0)
    np.testing.assert_array_equal(read_mask(path, expected_shape=mask.shape), mask > 0)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over


def test_write_mask_round_trips_a_real_mask(tmp_path):
    original = read_mask(ISIC_MASKS / f"{REAL_ID}_segmentation.png")
    path = write_mask(tmp_path / "copy.png", original)
    np.testing.assert_array_equal(read_mask(path), original)


def test_write_mask_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.png"
    write_mask(path, np.zeros((10, 10), dtype=bool))
    write_mask(path, np.ones((10, 10), dtype=bool))
    assert read_mask(path).all()


@pytest.mark.parametrize("shape", [(10,), (10, 10, 3), (2, 3, 4, 5)])
def test_write_mask_refuses_non_2d(tmp_path, shape):
    path = tmp_path / "bad.png"
    with pytest.raises(MaskError, match=named(path)):
        write_mask(path, np.zeros(shape, dtype=np.uint8))
    assert not path.exists()


def test_write_mask_is_atomic_when_the_disk_is_full(tmp_path, monkeypatch):
    path = tmp_path / "ISIC_0000000_segmentation.png"
    old = _binary_pattern()
    write_mask(path, old)
    old_bytes = path.read_bytes()

    calls = []

    def full_disk(src, dst):
        calls.append((src, dst))
        raise OSError("No space left on device")

    monkeypatch.setattr(io_module.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        write_mask(path, ~old)
    monkeypatch.undo()

    assert len(calls) == 1 and Path(calls[0][1]) == path  # the rename really was the step that failed
    assert path.read_bytes() == old_bytes
    np.testing.assert_array_equal(read_mask(path), old)
    assert list(tmp_path.glob(".*")) == []
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_write_mask_failure_before_rename_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "new_segmentation.png"

    def failing_fsync(fd):
        raise OSError("No space left on device")

    monkeypatch.setattr(io_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left on device"):
        write_mask(path, _binary_pattern())
    monkeypatch.undo()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []



# --------------------------------------------------------------------------- messages and open files


def test_16bit_rgb_png_warns_naming_the_file(tmp_path, real_rgb):
    import cv2

    deep = real_rgb[:64, :80].astype(np.uint16) * 257
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), deep[..., ::-1])  # OpenCV writes BGR, 16 bits per channel
    with pytest.warns(ImageConversionWarning, match=named(path)) as record:
        image = read_image(path)
    assert any("16-bit" in str(w.message) and "8 bits" in str(w.message) for w in record)
    np.testing.assert_array_equal(image, real_rgb[:64, :80])


def test_8bit_rgb_png_does_not_warn(tmp_path, no_conversion_warnings, real_rgb):
    path = tmp_path / "rgb8.png"
    Image.fromarray(real_rgb).save(path)
    np.testing.assert_array_equal(read_image(path), real_rgb)


@pytest.mark.parametrize("reader", [read_image, read_mask], ids=["image", "mask"])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_a_file_that_fails_to_decode_is_closed(tmp_path, reader, fraction):
    import gc

    data = (ISIC_IMAGES / f"{REAL_ID}.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises((ImageReadError, MaskError), match=named(path)):
            reader(path)
        gc.collect()
    assert not [w for w in record if issubclass(w.category, ResourceWarning)], [str(w.message) for w in record]
