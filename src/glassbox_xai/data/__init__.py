"""Reading, validating and resizing dermoscopy images and masks."""

from .io import ImageConversionWarning, ImageReadError, MaskError, read_image, read_mask, write_mask
from .layout import NoImagesError, Sample, discover, mask_name

__all__ = [
    "ImageConversionWarning",
    "ImageReadError",
    "MaskError",
    "NoImagesError",
    "Sample",
    "discover",
    "mask_name",
    "read_image",
    "read_mask",
    "write_mask",
]
