"""Finding photographs and their masks (glassbox_xai.data.layout): the ISIC 2018
release layout, flat folders, images alone, explicit mask folders and single files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from glassbox_xai.data.io import MaskError
from glassbox_xai.data.layout import NoImagesError, Sample, discover, listed_samples, mask_name

from data_paths import DATA
ISIC = DATA / "isic2018_task1_512"
ISIC_IMAGES = ISIC / "ISIC2018_Task1-2_Training_Input"
ISIC_MASKS = ISIC / "ISIC2018_Task1_Training_GroundTruth"
IDS = ["ISIC_0000000", "ISIC_0000001", "ISIC_0000003"]

INPUT = "ISIC2018_Task1-2_Training_Input"
TRUTH = "ISIC2018_Task1_Training_GroundTruth"


def _copy_photo(image_id: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", folder / f"{image_id}.jpg"))


def _copy_mask(image_id: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{image_id}_segmentation.png"
    return Path(shutil.copy(ISIC_MASKS / name, folder / name))


@pytest.fixture
def isic_layout(tmp_path) -> Path:
    """A miniature ISIC 2018 release: three photographs, their masks, and clutter."""
    root = tmp_path / "isic"
    for image_id in IDS:
        _copy_photo(image_id, root / INPUT)
        _copy_mask(image_id, root / TRUTH)
    (root / INPUT / "LICENSE.txt").write_text("CC-BY-NC\n")
    shutil.copy(ISIC_MASKS / f"{IDS[0]}_segmentation.png", root / INPUT / f"{IDS[0]}_superpixels.png")
    (root / "dev_val.txt").write_text("\n".join(IDS))
    return root


@pytest.fixture
def flat_folder(tmp_path) -> Path:
    folder = tmp_path / "flat"
    for image_id in IDS:
        _copy_photo(image_id, folder)
        _copy_mask(image_id, folder)
    return folder


def _check_isic(samples: list[Sample], root: Path) -> None:
    assert [s.id for s in samples] == IDS
    for sample in samples:
        assert sample.image == root / INPUT / f"{sample.id}.jpg"
        assert sample.mask == root / TRUTH / f"{sample.id}_segmentation.png"
        assert sample.mask.is_file()


# --------------------------------------------------------------------------- mask_name


@pytest.mark.parametrize(
    "image, expected",
    [
        ("ISIC_0000000.jpg", "ISIC_0000000_segmentation.png"),
        (Path("/some/where/ISIC_0012965.JPG"), "ISIC_0012965_segmentation.png"),
        ("scan.v2.tiff", "scan.v2_segmentation.png"),
        ("a/b/photo.png", "photo_segmentation.png"),
    ],
)
def test_mask_name(image, expected):
    assert mask_name(image) == expected


# --------------------------------------------------------------------------- ISIC 2018 layout


def test_isic_layout_given_as_parent_folder(isic_layout):
    samples = discover(isic_layout)
    _check_isic(samples, isic_layout)  # LICENSE.txt, *_superpixels.png and dev_val.txt ignored


def test_isic_layout_given_as_input_folder(isic_layout):
    samples = discover(isic_layout / INPUT)
    _check_isic(samples, isic_layout)
    assert discover(isic_layout / INPUT, require_masks=True) == samples


def test_isic_layout_given_as_string(isic_layout):
    assert discover(str(isic_layout)) == discover(isic_layout)


def test_isic_layout_ignores_licence_and_superpixels(isic_layout):
    assert (isic_layout / INPUT / "LICENSE.txt").is_file()
    assert (isic_layout / INPUT / f"{IDS[0]}_superpixels.png").is_file()
    images = {s.image.name for s in discover(isic_layout)}
    assert "LICENSE.txt" not in images
    assert not any("superpixels" in name for name in images)
    assert len(images) == 3


def test_isic_layout_with_several_splits(isic_layout):
    validation = isic_layout / "ISIC2018_Task1-2_Validation_Input"
    _copy_photo("ISIC_0000004", validation)
    _copy_mask("ISIC_0000004", isic_layout / "ISIC2018_Task1_Validation_GroundTruth")
    samples = discover(isic_layout)
    assert [s.id for s in samples] == IDS + ["ISIC_0000004"]  # sorted by split name, then id
    assert samples[-1].mask == isic_layout / "ISIC2018_Task1_Validation_GroundTruth" / "ISIC_0000004_segmentation.png"


def test_isic_layout_missing_mask_is_none(isic_layout):
    (isic_layout / TRUTH / f"{IDS[1]}_segmentation.png").unlink()
    samples = discover(isic_layout)
    assert [s.mask is None for s in samples] == [False, True, False]


def test_isic_layout_require_masks_names_the_ground_truth_path(isic_layout):
    (isic_layout / TRUTH / f"{IDS[1]}_segmentation.png").unlink()
    expected = isic_layout / TRUTH / f"{IDS[1]}_segmentation.png"
    for given in (isic_layout, isic_layout / INPUT):
        with pytest.raises(MaskError, match=re.escape(str(expected))) as info:
            discover(given, require_masks=True)
        assert "1 image(s) have no mask" in str(info.value)


def test_isic_single_file_finds_its_ground_truth_mask(isic_layout):
    image = isic_layout / INPUT / f"{IDS[2]}.jpg"
    assert discover(image) == [Sample(IDS[2], image, isic_layout / TRUTH / f"{IDS[2]}_segmentation.png")]


def test_real_isic_release_folder():
    samples = discover(ISIC, require_masks=True)
    assert len(samples) == 2000
    assert all(s.mask is not None and s.mask.parent == ISIC_MASKS for s in samples)
    assert all(s.image.parent == ISIC_IMAGES and s.image.suffix == ".jpg" for s in samples)
    ids = [s.id for s in samples]
    assert ids == sorted(ids) and len(set(ids)) == 2000
    assert all(s.mask.name == mask_name(s.image) for s in samples[:50])


def test_real_isic_split_files_name_discovered_samples():
    ids = {s.id for s in discover(ISIC_IMAGES)}
    for split in ("dev_train", "dev_val"):
        listed = (ISIC / f"{split}.txt").read_text().split()
        assert listed and set(listed) <= ids


def test_listed_samples_follow_the_list_and_name_a_missing_id(isic_layout):
    order = [IDS[2], IDS[0], IDS[1]]
    (isic_layout / "picked.txt").write_text("\n".join(order) + "\n")
    assert [s.id for s in listed_samples(isic_layout, isic_layout / "picked.txt")] == order
    assert [s.id for s in listed_samples(isic_layout, isic_layout / "picked.txt", limit=2)] == order[:2]
    (isic_layout / "stale.txt").write_text(f"{IDS[0]}\nISIC_9999999\n")
    with pytest.raises(FileNotFoundError, match=r"1 id\(s\) of .*stale.txt have no image in .*, e.g. ISIC_9999999"):
        listed_samples(isic_layout, isic_layout / "stale.txt", limit=1)  # checked over the whole list, not only the first


# --------------------------------------------------------------------------- flat folders


def test_flat_folder_with_masks_beside(flat_folder):
    samples = discover(flat_folder)
    assert samples == [Sample(i, flat_folder / f"{i}.jpg", flat_folder / f"{i}_segmentation.png") for i in IDS]


def test_flat_folder_ignores_hidden_and_mask_like_files(flat_folder):
    _copy_photo(IDS[0], flat_folder)
    shutil.copy(flat_folder / f"{IDS[0]}.jpg", flat_folder / ".hidden.jpg")
    shutil.copy(flat_folder / f"{IDS[0]}.jpg", flat_folder / "lesion_mask.png")
    (flat_folder / "sub.jpg").mkdir()  # a folder with an image-like name
    (flat_folder / "README.txt").write_text("hi")
    assert [s.id for s in discover(flat_folder)] == IDS


def test_flat_folder_accepts_every_image_extension(tmp_path):
    folder = tmp_path / "mixed"
    source = ISIC_IMAGES / f"{IDS[0]}.jpg"
    names = ["a.jpg", "b.JPEG", "c.png", "d.bmp", "e.tif", "f.TIFF"]
    for name in names:
        folder.mkdir(exist_ok=True)
        shutil.copy(source, folder / name)  # content does not matter to discovery
    (folder / "g.gif").write_bytes(b"GIF89a")
    samples = discover(folder)
    assert [s.image.name for s in samples] == names
    assert all(s.mask is None for s in samples)


def test_images_alone_have_no_masks(tmp_path):
    folder = tmp_path / "photos"
    for image_id in IDS:
        _copy_photo(image_id, folder)
    samples = discover(folder)
    assert [s.id for s in samples] == IDS
    assert all(s.mask is None for s in samples)


def test_images_alone_require_masks_names_expected_path(tmp_path):
    folder = tmp_path / "photos"
    for image_id in IDS:
        _copy_photo(image_id, folder)
    _copy_mask(IDS[0], folder)
    with pytest.raises(MaskError) as info:
        discover(folder, require_masks=True)
    text = str(info.value)
    assert "2 image(s) have no mask" in text
    assert f"{IDS[1]}.jpg" in text
    assert str(folder / f"{IDS[1]}_segmentation.png") in text


def test_explicit_masks_dir(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "elsewhere" / "masks"
    for image_id in IDS:
        _copy_photo(image_id, photos)
        _copy_mask(image_id, masks)
    _copy_mask(IDS[0], photos)  # a mask beside the photo is NOT used when masks_dir is given
    for given in (masks, str(masks)):
        samples = discover(photos, masks_dir=given)
        assert [s.mask for s in samples] == [masks / f"{i}_segmentation.png" for i in IDS]
    assert discover(photos, masks_dir=masks, require_masks=True) == samples


def test_explicit_masks_dir_overrides_isic_ground_truth(isic_layout, tmp_path):
    masks = tmp_path / "predictions"
    _copy_mask(IDS[0], masks)
    samples = discover(isic_layout, masks_dir=masks)
    assert [s.mask for s in samples] == [masks / f"{IDS[0]}_segmentation.png", None, None]


def test_explicit_masks_dir_require_masks_names_that_folder(tmp_path):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    _copy_photo(IDS[0], photos)
    masks.mkdir()
    with pytest.raises(MaskError, match=re.escape(str(masks / f"{IDS[0]}_segmentation.png"))):
        discover(photos, masks_dir=masks, require_masks=True)


# --------------------------------------------------------------------------- single files and lists


def test_single_file_with_mask_beside(flat_folder):
    image = flat_folder / f"{IDS[1]}.jpg"
    assert discover(image) == [Sample(IDS[1], image, flat_folder / f"{IDS[1]}_segmentation.png")]


def test_single_file_without_mask(tmp_path):
    image = _copy_photo(IDS[0], tmp_path / "one")
    assert discover(image) == [Sample(IDS[0], image, None)]
    with pytest.raises(MaskError, match=re.escape(str(tmp_path / "one" / f"{IDS[0]}_segmentation.png"))):
        discover(image, require_masks=True)


def test_single_file_with_explicit_masks_dir(tmp_path):
    image = _copy_photo(IDS[0], tmp_path / "one")
    mask = _copy_mask(IDS[0], tmp_path / "masks")
    assert discover(image, masks_dir=tmp_path / "masks") == [Sample(IDS[0], image, mask)]


def test_list_of_paths_keeps_order_of_paths(flat_folder, isic_layout, tmp_path):
    single = _copy_photo("ISIC_0000004", tmp_path / "single")
    samples = discover([single, flat_folder, isic_layout])
    assert [s.image for s in samples] == [single] + [flat_folder / f"{i}.jpg" for i in IDS] + [
        isic_layout / INPUT / f"{i}.jpg" for i in IDS
    ]
    assert samples[0].mask is None and all(s.mask is not None for s in samples[1:])


def test_sample_is_frozen():
    sample = Sample("x", Path("x.jpg"))
    assert sample.mask is None
    with pytest.raises(AttributeError):
        sample.id = "y"  # type: ignore[misc]


# --------------------------------------------------------------------------- nothing to find


def test_empty_folder_raises_naming_it(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(NoImagesError, match=re.escape(str(folder))) as info:
        discover(folder)
    assert "no images found" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_folder_with_only_text_files_raises_naming_it(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "LICENSE.txt"):
        (folder / name).write_text("text\n")
    with pytest.raises(NoImagesError, match=re.escape(str(folder))):
        discover(folder)


def test_folder_with_only_masks_raises(tmp_path):
    folder = tmp_path / "masks"
    for image_id in IDS:
        _copy_mask(image_id, folder)
    with pytest.raises(NoImagesError, match=re.escape(str(folder))):
        discover(folder)


def test_empty_isic_input_folder_raises(tmp_path):
    folder = tmp_path / "isic" / INPUT
    folder.mkdir(parents=True)
    (folder / "LICENSE.txt").write_text("x")
    with pytest.raises(NoImagesError, match=re.escape(str(folder))):
        discover(tmp_path / "isic")


@pytest.mark.parametrize("name", ["nothing-here", "missing.jpg"])
def test_nonexistent_path_raises(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(NoImagesError, match=re.escape(str(path)) + " does not exist"):
        discover(path)


def test_nonexistent_path_in_a_list_raises(flat_folder, tmp_path):
    with pytest.raises(NoImagesError, match="gone"):
        discover([flat_folder, tmp_path / "gone"])


def test_single_unsupported_file_raises(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(NoImagesError, match=re.escape(str(path)) + ".*unsupported file type '.txt'"):
        discover(path)


def test_require_masks_names_the_first_image_without_one_and_why(tmp_path):
    from glassbox_xai.data.io import MaskError
    from glassbox_xai.data.layout import Sample, require_masks

    with_mask = Sample("a", tmp_path / "a.jpg", tmp_path / "a_segmentation.png")
    require_masks([with_mask], "a test needs them")  # every image has one: nothing said
    with pytest.raises(MaskError, match=r"2 image\(s\) have no mask, e\.g\. .*b\.jpg; a test needs them"):
        require_masks([with_mask, Sample("b", tmp_path / "b.jpg", None), Sample("c", tmp_path / "c.jpg", None)], "a test needs them")
