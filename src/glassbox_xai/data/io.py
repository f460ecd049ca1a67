"""Reading photographs and masks, and writing masks the way the ISIC scorer reads them.

Every photograph becomes an 8-bit RGB array; anything else (grayscale, RGBA,
16-bit, float) is converted with an :class:`ImageConversionWarning` that names the
file. EXIF orientation is honoured. Errors name the file and what was expected.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
TIFF_EXTENSIONS = (".tif", ".tiff")
MAX_SIDE = 20_000
Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE


class ImageReadError(ValueError):
    """A file is not a readable image of a supported kind."""


class MaskError(ValueError):
    """A mask is unreadable, not binary, or does not match its image."""


class ImageConversionWarning(UserWarning):
    """An image was converted to 8-bit RGB (grayscale, alpha, 16-bit, float input)."""


def read_image(path: str | Path) -> np.ndarray:
    """Read a photograph as an (H, W, 3) uint8 RGB array, upright per its EXIF tag."""
    path = Path(path)
    _check_image_path(path)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        array = _read_tiff(path)
    else:
        with _open(path) as image:
            if _sixteen_bit_colour(image):
                _warn(str(path), f"16-bit {image.mode} image scaled to 8 bits")
            image = ImageOps.exif_transpose(image)
            array = _pil_to_array(image, path)
    return as_rgb8(array, str(path))


def as_rgb8(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert a 2-D or (H, W, C) array of any common dtype to (H, W, 3) uint8 RGB.

    Grayscale is repeated over three channels, alpha is dropped, 16-bit is scaled
    by 1/257, float is taken as [0, 1] (or scaled by its maximum when above 1).
    Each conversion warns with :class:`ImageConversionWarning`, naming ``name``.
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (2, 3, 4)):
        raise ImageReadError(
            f"{name}: expected a 2-D grayscale or (H, W, 3|4) colour image, got shape {array.shape}"
        )
    if min(array.shape[:2]) < 8 or max(array.shape[:2]) > MAX_SIDE:
        raise ImageReadError(f"{name}: image size {array.shape[1]}x{array.shape[0]} is outside 8..{MAX_SIDE} px a side")
    array = _to_uint8(array, name)
    if array.ndim == 2:
        _warn(name, "grayscale image converted to RGB by repeating the channel")
        return np.repeat(array[..., None], 3, axis=-1)
    if array.shape[-1] == 2:
        _warn(name, "grayscale image with alpha: alpha dropped, converted to RGB")
        return np.repeat(array[..., :1], 3, axis=-1)
    if array.shape[-1] == 4:
        _warn(name, "RGBA image: alpha channel dropped")
        return np.ascontiguousarray(array[..., :3])
    return np.ascontiguousarray(array)


def read_mask(path: str | Path, expected_shape: tuple[int, int] | None = None, strict: bool = True) -> np.ndarray:
    """Read a binary mask (0/255 or 0/1, PNG as ISIC ships them) as a bool array.

    With ``strict=False`` (for predictions to be scored) any 8-bit mask is
    accepted and thresholded at > 128, exactly as the ISIC scorer reads it.

    Raises:
        MaskError: unreadable, more than one channel with different values,
            values other than two levels {0, 255} or {0, 1}, or a size different
            from ``expected_shape`` (rows, columns) of its image.
    """
    path = Path(path)
    try:
        _check_image_path(path)
        with _open(path) as image:
            array = np.asarray(image.convert("L") if image.mode in ("1", "P") else image)
    except ImageReadError as exc:
        raise MaskError(str(exc)) from None
    if array.ndim == 3:
        colours = 1 if array.shape[-1] == 2 else min(array.shape[-1], 3)  # LA / RGBA: alpha is not a colour
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, colours)):
            raise MaskError(f"mask {path} has colour channels that differ; expected a single-channel 0/255 mask")
        array = array[..., 0]
    if not strict:
        array = np.where(array > 128, 255, 0)
    values = np.unique(array)
    if not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise MaskError(f"mask {path} is not binary: values {shown}; expected only 0 and 255 (or 0 and 1)")
    if expected_shape is not None and tuple(array.shape) != tuple(expected_shape):
        raise MaskError(
            f"mask {path} is {array.shape[1]}x{array.shape[0]} px but its image is "
            f"{expected_shape[1]}x{expected_shape[0]} px; expected the same size"
        )
    return array > 0


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write a mask as an 8-bit 0/255 PNG, atomically (temporary file, then rename).

    A crash or a full disk mid-write never leaves a half-written file at ``path``.
    """
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MaskError(f"cannot write {path}: expected a 2-D mask, got shape {mask.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8), mode="L")
    return atomic_write(path, lambda stream: image.save(stream, format="PNG"))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file through ``write(stream)`` into a temporary file beside ``path``, then
    rename it into place: a crash or a full disk never leaves a half-written ``path``.
    The file's mode follows the umask (like ``open``), and the folder is fsynced so
    the rename survives a power cut."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # not mkstemp's 0600
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders; the file itself is synced
        pass
    finally:
        os.close(fd)


def _check_image_path(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"{path} does not exist")
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, expected an image file")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ImageReadError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(IMAGE_EXTENSIONS)}")


def _open(path: Path) -> Image.Image:
    """Open and decode an image; a file that fails to decode is closed, never left open."""
    image = None
    try:
        image = Image.open(path)
        image.depth16 = _sixteen_bit_rawmode(image)  # known only before load() drops the tile list
        image.load()
        return image
    except BaseException as exc:
        if image is not None:
            image.close()
        if isinstance(exc, (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError)):
            raise _decode_error(path, exc) from None
        raise


def _sixteen_bit_rawmode(image: Image.Image) -> bool:
    return any(";16" in str(tile[3]) for tile in getattr(image, "tile", None) or ())


def _sixteen_bit_colour(image: Image.Image) -> bool:
    """Pillow decodes 16-bit RGB(A) PNG and TIFF as 8-bit RGB(A), keeping the high byte."""
    return image.mode in ("RGB", "RGBA") and getattr(image, "depth16", False)


def _decode_error(path: Path, exc: BaseException) -> ImageReadError:
    if isinstance(exc, UnidentifiedImageError):
        return ImageReadError(f"{path} is not a readable image (the file is corrupt or not a {path.suffix} image)")
    if isinstance(exc, Image.DecompressionBombError):
        return ImageReadError(f"{path} is larger than {MAX_SIDE}x{MAX_SIDE} px; refusing to decode it")
    return ImageReadError(f"{path} could not be decoded ({exc}); the file may be truncated")


def _pil_to_array(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        _warn(str(path), f"{image.mode} image converted to RGB")
        return np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))
    return np.asarray(image)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        array = tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for a bad file
        raise ImageReadError(f"{path} could not be read as TIFF ({exc})") from None
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) layout
    return array


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if array.dtype in (np.uint16, np.int32, np.uint32, np.int64) and array.max(initial=0) > 255:
        _warn(name, f"{array.dtype} image scaled to 8 bits")
        return np.clip(np.rint(array.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageReadError(f"{name}: floating-point image contains NaN or infinity")
        peak = float(array.max(initial=0.0))
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        _warn(name, f"{array.dtype} image scaled to 8 bits")
        return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array, 0, 255).astype(np.uint8)
    raise ImageReadError(f"{name}: unsupported pixel type {array.dtype}")


def _warn(name: str, what: str) -> None:
    warnings.warn(ImageConversionWarning(f"{name}: {what}"), stacklevel=3)
