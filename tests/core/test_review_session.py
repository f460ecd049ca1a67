"""The review session over a folder (resume, skip, order, drafts, accept) and the model versions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids
from glassbox_xai.data.io import MaskError, read_image, read_mask
from glassbox_xai.data.layout import NoImagesError
from glassbox_xai.hitl.provenance import Provenance
from glassbox_xai.hitl.session import ReviewSession, default_set_dir, last_set
from glassbox_xai.hitl.store import RetrainingSet
from glassbox_xai.model import versions
from glassbox_xai.model.registry import NoTrainedModelError


@pytest.fixture
def folder(tmp_path):
    """Four real dev_val photographs, the first two with their expert masks."""
    out = tmp_path / "photos"
    out.mkdir()
    for n, image_id in enumerate(split_ids("dev_val")[:4]):
        shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", out)
        if n < 2:
            shutil.copy(ISIC_MASKS / f"{image_id}_segmentation.png", out)
    return out


def _accept_current(session: ReviewSession, grow: int = 0) -> dict:
    sample = session.current
    truth = read_mask(sample.mask) if sample.mask else np.zeros(read_image(sample.image).shape[:2], bool)
    corrected = truth.copy()
    corrected[:grow, :] = True
    return session.accept(corrected, truth, Provenance(weights_sha256="abc", variant="dice", threshold=0.3))


def test_session_walks_the_folder_and_resumes_where_it_stopped(folder, tmp_path):
    store = RetrainingSet(tmp_path / "set")
    session = ReviewSession(folder, store, annotator="ana")
    ids = [p.stem for p in sorted(folder.glob("*.jpg"))]
    assert not session.resumed and session.order == ids and session.status() == "image 1 of 4 · 0 corrected"
    session.start_clock()
    sidecar = _accept_current(session, grow=10)
    assert sidecar["annotator"] == "ana" and sidecar["edits"]["pixels_added"] > 0 and sidecar["seconds_spent"] >= 0
    assert session.next().id == ids[1]
    again = ReviewSession(folder, store)  # napari closed, or crashed, and opened again
    assert again.resumed and again.current.id == ids[1] and again.annotator == "ana"
    assert again.done == 1 and "✓ corrected" in again.label(ids[0])
    assert again.previous().id == ids[0]
    assert again.next(skip_corrected=True).id == ids[1]
    again.go(3)
    assert again.next() is None and again.current.id == ids[3]  # the end: stays on the last image
    assert ReviewSession(folder, store).first_open().id == ids[1]


def test_uncertainty_order_is_kept_and_shown(folder, tmp_path):
    store = RetrainingSet(tmp_path / "set")
    session = ReviewSession(folder, store)
    ids = list(session.order)
    session.set_order([(ids[2], 0.9), (ids[0], 0.5), (ids[3], 0.2)])
    assert session.order == [ids[2], ids[0], ids[3], ids[1]] and session.current.id == ids[2]
    assert "uncertainty 0.900" in session.label(ids[2]) and "uncertainty" not in session.label(ids[1])
    resumed = ReviewSession(folder, store)
    assert resumed.order == session.order and resumed.ordered_by == "uncertainty" and resumed.scores[ids[0]] == 0.5
    with pytest.raises(ValueError, match="not in"):
        session.set_order([("ISIC_nope", 1.0)])


def test_drafts_survive_and_are_cleared_on_accept(folder, tmp_path):
    session = ReviewSession(folder, RetrainingSet(tmp_path / "set"))
    sample = session.current
    shape = read_image(sample.image).shape[:2]
    predicted = np.zeros(shape, bool)
    edited = predicted.copy()
    edited[5:50, 5:50] = True
    made_by = Provenance(weights_sha256="f00d", variant="recall", bundle="/models/recall", label="recall", threshold=0.65)
    session.save_draft(sample.id, edited, predicted, made_by)
    reopened = ReviewSession(folder, session.store)
    restored = reopened.draft(sample.id, shape)
    assert restored is not None and np.array_equal(restored[0], edited) and not restored[1].any()
    assert reopened.provenance(sample.id, "draft") == made_by  # the model of the prediction, threshold included
    assert "draft" in session.label(sample.id)
    assert session.draft(sample.id, (7, 7)) is None  # a draft of another size is not forced on the image
    sidecar = reopened.accept(edited, predicted, reopened.provenance(sample.id, "draft"))
    assert sidecar["model"] == {"weights_sha256": "f00d", "variant": "recall", "bundle": "/models/recall", "label": "recall"}
    assert sidecar["threshold"] == 0.65  # a restored draft records its threshold, not null
    assert reopened.provenance(sample.id, "corrected") == made_by  # read back from the sidecar
    assert session.draft(sample.id, shape) is None and not session.draft_path(sample.id).exists()
    assert not list((session.review_dir / "drafts").iterdir())  # the draft's model record went with it


def test_bad_inputs_say_what_was_expected(folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NoImagesError, match="no images found"):
        ReviewSession(empty, RetrainingSet(tmp_path / "set"))
    session = ReviewSession(folder, RetrainingSet(tmp_path / "set"))
    with pytest.raises(MaskError, match="expected the same size"):
        session.accept(np.zeros((3, 3), bool), np.zeros((3, 3), bool), Provenance())
    with pytest.raises(IndexError, match="has 4 images"):
        session.go(9)
    session.state_path.write_text("{ not json")
    assert not ReviewSession(folder, session.store).resumed  # a damaged state starts over; corrections are in the set


def test_versions_register_activate_and_keep_older_ones(tiny_bundle, tmp_path, glassbox_home):
    assert versions.active() is None and versions.model_names()[:3] == ["dice", "balanced", "recall"]
    copies = []
    for n in range(2):
        bundle = tmp_path / f"custom-finetuned-{n}" / "bundle"
        shutil.copytree(tiny_bundle, bundle)
        copies.append(versions.register(bundle))
    assert copies == ["custom-finetuned-0", "custom-finetuned-1"] and versions.model_names()[3:] == copies
    versions.set_active(copies[1])
    assert versions.active() == copies[1] and versions.bundle_for(copies[0]) == (tmp_path / "custom-finetuned-0" / "bundle").resolve()
    assert json.loads((glassbox_home / "versions.json").read_text())["active"] == copies[1]
    versions.set_active("dice")
    assert versions.active() == "dice" and copies[1] in versions.model_names()  # the older version stays available
    with pytest.raises(NoTrainedModelError, match="expected one of"):
        versions.set_active("nope")
    with pytest.raises(ValueError, match="shipped variant"):
        versions.register(tiny_bundle, name="dice")
    shutil.rmtree(tmp_path / "custom-finetuned-0")
    assert copies[0] not in versions.model_names()  # a deleted bundle is no longer offered


def test_a_damaged_version_list_is_reported_and_never_overwritten(tiny_bundle, glassbox_home):
    from glassbox_xai.model.card import BundleError

    glassbox_home.mkdir(parents=True)
    (glassbox_home / "versions.json").write_text("{ damaged")
    with pytest.warns(UserWarning, match="fix or delete it"):
        assert versions.model_names()[:3] == ["dice", "balanced", "recall"]  # the widgets still open
    with pytest.raises(BundleError, match="cannot read the model version list"):
        versions.register(tiny_bundle, name="mine")
    assert (glassbox_home / "versions.json").read_text() == "{ damaged"


def test_a_draft_from_an_older_version_records_its_model_as_unknown(folder, tmp_path):
    session = ReviewSession(folder, RetrainingSet(tmp_path / "set"))
    sample = session.current
    shape = read_image(sample.image).shape[:2]
    session.save_draft(sample.id, np.ones(shape, bool), np.zeros(shape, bool))
    (session.review_dir / "drafts" / f"{sample.id}_model.json").unlink()  # as drafts were kept before provenance
    found = session.provenance(sample.id, "draft")
    assert found == Provenance() and not found.known
    sidecar = session.accept(np.ones(shape, bool), np.zeros(shape, bool), found)
    assert sidecar["model"]["weights_sha256"] is None and sidecar["threshold"] is None  # unknown, never guessed


def test_retraining_sets_are_keyed_by_the_folders_full_path(tmp_path, glassbox_home):
    first, second = tmp_path / "clinic_a" / "photos", tmp_path / "clinic_b" / "photos"
    for where in (first, second):
        where.mkdir(parents=True)
        shutil.copy(ISIC_IMAGES / f"{split_ids('dev_val')[0]}.jpg", where)
    set_a, set_b = default_set_dir(first), default_set_dir(second)
    assert set_a != set_b and set_a.name.startswith("photos-") and set_a.parent == glassbox_home / "retraining-sets"
    assert default_set_dir(first) == set_a  # the same folder always finds its set again
    session_a = ReviewSession(first, RetrainingSet(set_a))
    session_a.go(0)
    assert last_set() == set_a.resolve()
    session_b = ReviewSession(second, RetrainingSet(set_b))
    assert not session_b.resumed and last_set() == set_b.resolve()
    assert ReviewSession(first, RetrainingSet(set_a)).resumed  # b did not reset a's session


def test_a_set_named_by_the_folder_alone_is_still_found(tmp_path, glassbox_home):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(ISIC_IMAGES / f"{split_ids('dev_val')[0]}.jpg", folder)
    legacy = glassbox_home / "retraining-sets" / "photos"
    ReviewSession(folder, RetrainingSet(legacy))  # made before sets were keyed by full path
    assert default_set_dir(folder) == legacy
    other = tmp_path / "elsewhere" / "photos"
    other.mkdir(parents=True)
    assert default_set_dir(other) != legacy  # another folder of that name does not take it over
