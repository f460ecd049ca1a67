"""The human-in-the-loop workflow as an annotator drives it: open a folder, correct a
prediction with the brush, accept, come back after a restart, order by uncertainty,
fine-tune a new version and make it the active model."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from app_model.types import KeyBinding

from data_paths import copy_dev_val
from glassbox_xai.data.io import read_image, read_mask
from glassbox_xai.model import versions
from glassbox_xai.napari.common import BUNDLE_ON_DISK, worker_for


@pytest.fixture
def folder(tmp_path):
    """Three real dev_val photographs with their expert masks (copied: the data is never changed)."""
    copy_dev_val(tmp_path / "photos", 3)
    return tmp_path / "photos"


def _review(viewer, tiny_bundle, set_dir):
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Review and correct")
    widget.model.value = BUNDLE_ON_DISK
    widget.bundle.value = tiny_bundle
    widget.retraining_set.value = set_dir
    return widget


def _prediction(viewer, image_id):
    return viewer.layers[f"{image_id} prediction (custom)"]


def test_review_correct_accept_resume_rank(make_napari_viewer, qtbot, tiny_bundle, folder, tmp_path, errors, finish):
    ids = sorted(p.stem for p in folder.glob("*.jpg"))
    set_dir = tmp_path / "set"
    viewer = make_napari_viewer()
    widget = _review(viewer, tiny_bundle, set_dir)
    widget.annotator.value = "ana"
    assert widget.open_folder(folder)
    finish(widget)
    image = read_image(folder / f"{ids[0]}.jpg")
    labels = _prediction(viewer, ids[0])
    assert labels.data.shape == image.shape[:2] and labels.mode == "paint"
    outline, truth = viewer.layers[f"{ids[0]} ground truth (outline)"].data, read_mask(folder / f"{ids[0]}_segmentation.png")
    assert outline.any() and not (outline.astype(bool) & ~truth).any() and outline.sum() < 0.5 * truth.sum()  # a band inside the lesion's edge
    assert "image 1 of 3 · 0 corrected" in widget.where.value
    before = labels.data.copy()
    value = 0 if before[60, 60] else 1  # an untrained model: paint or erase, whichever changes the mask
    labels.brush_size = 40
    labels.paint((60, 60), value)  # one brush dab, as the paint tool makes it
    added = int(np.count_nonzero((labels.data > 0) & (before == 0)))
    removed = int(np.count_nonzero((labels.data == 0) & (before > 0)))
    assert added + removed > 1000
    qtbot.waitUntil(lambda: widget.session.draft_path(ids[0]).is_file(), timeout=10_000)  # edits kept as a draft

    widget.annotator.value = ""
    widget.accept()
    assert "enter your name as annotator" in errors.pop() and not (set_dir / "sidecars" / f"{ids[0]}.json").exists()
    widget.annotator.value = "ana"
    viewer.keymap[KeyBinding.from_str("Shift-Enter")](viewer)  # accept with the shortcut
    assert not widget.accept_button.enabled and not widget.next_button.enabled and not labels.editable  # saving off the GUI thread: no edit meanwhile
    viewer.keymap[KeyBinding.from_str("Shift-Right")](viewer)  # pressed while saving: waits, no image skipped
    finish(widget)
    sidecar = json.loads((set_dir / "sidecars" / f"{ids[0]}.json").read_text())
    assert sidecar["annotator"] == "ana" and sidecar["edits"]["pixels_added"] == added and sidecar["edits"]["pixels_removed"] == removed and sidecar["version"] == 1
    assert sidecar["model"]["bundle"] == str(tiny_bundle) and sidecar["model"]["weights_sha256"]
    assert (set_dir / "masks" / f"{ids[0]}_segmentation.png").is_file() and not widget.session.draft_path(ids[0]).exists()
    finish(widget)
    assert widget.session.current.id == ids[1] and ids[0] not in viewer.layers  # moved on; the old layers are gone
    assert f"{ids[1]} prediction (custom)" in viewer.layers

    # the worker crashes while an edit is unsaved: the edit survives, and comes back as a draft
    second = _prediction(viewer, ids[1])
    second.paint((30, 30), 0 if second.data[30, 30] else 1)
    edited = second.data.copy()
    crashed = worker_for(viewer)
    os.kill(crashed.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not crashed.alive, timeout=10_000)  # dead before the next image asks for it, as a crash found by the next job
    viewer.keymap[KeyBinding.from_str("Shift-Right")](viewer)
    finish(widget)
    assert widget.session.current.id == ids[2] and f"{ids[2]} prediction (custom)" in viewer.layers  # worker restarted
    viewer.keymap[KeyBinding.from_str("Shift-Left")](viewer)
    finish(widget)  # the photograph is read off the GUI thread
    assert np.array_equal(viewer.layers[f"{ids[1]} prediction (draft)"].data > 0, edited > 0)

    # napari closed and opened again: the session resumes where it stopped
    viewer.close()
    viewer2 = make_napari_viewer()
    again = _review(viewer2, tiny_bundle, set_dir)
    again.folder.value = folder
    again.open_button.native.click()
    finish(again)
    assert again.session.resumed and again.session.current.id == ids[1] and again.annotator.value == "ana"
    assert "image 2 of 3 · 1 corrected" in again.where.value
    assert f"{ids[1]} prediction (draft)" in viewer2.layers  # the unsaved edit is back

    again.rank()
    finish(again)
    assert again.session.ordered_by == "uncertainty" and set(again.session.scores) == set(ids)
    assert all("uncertainty" in label for label in again.jump.choices)
    assert "most uncertain first" in again.where.value
    assert not errors


def test_finetune_from_the_plugin_and_switch_the_active_version(make_napari_viewer, qtbot, tiny_bundle, folder, tmp_path, errors, finish):
    from glassbox_xai.hitl.store import RetrainingSet

    store = RetrainingSet(tmp_path / "set")
    for image_id in sorted(p.stem for p in folder.glob("*.jpg"))[:2]:
        mask = np.zeros(read_image(folder / f"{image_id}.jpg").shape[:2], bool)
        mask[100:300, 100:300] = True
        store.save(folder / f"{image_id}.jpg", mask.shape, mask, np.zeros_like(mask), {"annotator": "ana"})
    viewer = make_napari_viewer()
    review = _review(viewer, tiny_bundle, tmp_path / "set")
    _, tune = viewer.window.add_plugin_dock_widget("glassbox-xai", "Fine-tune from corrections")
    tune.run()
    assert "choose the retraining set" in errors[-1]
    tune.retraining_set.value, tune.epochs.value, tune.held_out.value = tmp_path / "set", 1, folder
    assert tune.keep.value == 1.0  # the default adapts fully; half of the parent is one choice away
    tune.keep.value = 0.5
    tune.model.value, tune.bundle.value = BUNDLE_ON_DISK, tiny_bundle
    tune.run_button.clicked.emit()
    finish(tune)
    assert len(errors) == 1
    name = tune.active_model.value
    assert name in versions.versions() and versions.versions()[name]["variant"] == "finetuned"
    from glassbox_xai.model.card import read_card

    assert read_card(versions.versions()[name]["path"]).training_data["finetune_settings"]["weight_average"] == 0.5
    assert "before" in tune.info.value and "after" in tune.info.value and "held-out images" in tune.info.value
    tune.make_active(name)
    assert versions.active() == name and review.model.value == name and tune.model.value == name
    assert name in tune.active_now.value
    tune.make_active("dice")  # the older model stays available
    assert versions.active() == "dice" and name in review.model.choices
    _, compare = viewer.window.add_plugin_dock_widget("glassbox-xai", "Compare variants")
    assert name in compare.variants.choices  # the new version can be compared with its parent


def test_the_loop_closes_in_napari(make_napari_viewer, qtbot, tiny_bundle, folder, tmp_path, errors, finish):
    """Review -> accept (the picker changed meanwhile) -> Fine-tune offers the review's set ->
    Make active -> the next image is segmented by the new version, in layers named by it."""
    from glassbox_xai.model.card import read_card

    ids = sorted(p.stem for p in folder.glob("*.jpg"))
    viewer = make_napari_viewer()
    review = _review(viewer, tiny_bundle, tmp_path / "set")
    review.annotator.value = "ana"
    assert review.open_folder(folder)
    finish(review)
    labels = _prediction(viewer, ids[0])
    labels.brush_size = 40
    labels.paint((60, 60), 0 if labels.data[60, 60] else 1)
    review.model.value = "dice"  # the picker changes after the prediction was made
    review.accept()
    finish(review)
    sidecar = json.loads((tmp_path / "set" / "sidecars" / f"{ids[0]}.json").read_text())
    tiny = read_card(tiny_bundle)
    assert sidecar["model"]["weights_sha256"] == tiny.weights_sha256 and sidecar["model"]["variant"] == tiny.variant
    assert sidecar["threshold"] == tiny.threshold  # the model that made the prediction, not the picker's
    assert f"{ids[1]} prediction (dice)" in viewer.layers  # the next image used the picker's model

    _, tune = viewer.window.add_plugin_dock_widget("glassbox-xai", "Fine-tune from corrections")
    assert tune.retraining_set.value == (tmp_path / "set").resolve()  # the review's set, offered without choosing it again
    tune.epochs.value = 1
    tune.model.value, tune.bundle.value = BUNDLE_ON_DISK, tiny_bundle
    said = []
    tune.progressed.connect(lambda progress: said.append(progress.message))  # what the status line shows
    tune.run_button.clicked.emit()
    finish(tune)
    assert any("batch 1/" in line for line in said), said  # progress within the epoch, not only at its end
    name = tune.active_model.value
    assert name in versions.versions() and not errors
    tune.make_active_button.clicked.emit()  # Make active
    assert versions.active() == name and review.model.value == name

    review.next_image()
    finish(review)
    new = read_card(versions.bundle_for(name))
    assert review.session.current.id == ids[2] and f"{ids[2]} prediction ({name})" in viewer.layers
    review.accept()  # unedited: the correction records the model that made the prediction
    finish(review)
    sidecar = json.loads((tmp_path / "set" / "sidecars" / f"{ids[2]}.json").read_text())
    assert sidecar["model"]["weights_sha256"] == new.weights_sha256 != tiny.weights_sha256
    assert not errors


def test_revisiting_an_accepted_image_shows_its_correction_in_the_same_layers(make_napari_viewer, qtbot, tiny_bundle, folder, tmp_path, errors, finish):
    ids = sorted(p.stem for p in folder.glob("*.jpg"))
    set_dir = tmp_path / "set"
    viewer = make_napari_viewer()
    widget = _review(viewer, tiny_bundle, set_dir)
    widget.annotator.value = "ana"
    assert widget.open_folder(folder)
    finish(widget)
    layers = list(viewer.layers)
    assert len(layers) == 3  # the photograph, its ground truth, the editable prediction
    labels = _prediction(viewer, ids[0])
    labels.brush_size = 40
    labels.paint((60, 60), 0 if labels.data[60, 60] else 1)
    accepted = labels.data > 0
    order = list(widget.jump.choices)
    widget.accept()
    finish(widget)
    assert widget.session.current.id == ids[1] and f"{ids[1]} prediction (custom)" in viewer.layers
    assert all(a is b for a, b in zip(viewer.layers, layers)) and len(viewer.layers) == 3  # updated in place, never re-added
    after = list(widget.jump.choices)
    assert [c.split(" · ")[0] for c in after] == [c.split(" · ")[0] for c in order]  # the list keeps its order
    assert "✓ corrected" in after[0] and widget.jump.value == after[1]

    widget.previous_image()
    finish(widget)
    shown = viewer.layers[f"{ids[0]} correction (accepted)"]
    assert shown is layers[2] and viewer.layers.selection.active is shown
    assert np.array_equal(shown.data > 0, accepted)  # the saved correction, not the raw prediction
    assert np.array_equal(shown.data > 0, read_mask(set_dir / "masks" / f"{ids[0]}_segmentation.png"))
    assert viewer.layers[ids[0]] is layers[0] and viewer.layers[f"{ids[0]} ground truth (outline)"] is layers[1]
    shown.undo()
    assert np.array_equal(shown.data > 0, accepted)  # undo does not bring back another image's mask

    widget.accept()  # unchanged: the correction is kept, no new version
    finish(widget)
    assert json.loads((set_dir / "sidecars" / f"{ids[0]}.json").read_text())["version"] == 1
    widget.previous_image()
    finish(widget)
    value = 0 if shown.data[200, 200] else 1
    shown.paint((200, 200), value)
    widget.accept()  # edited again: a second version, starting from the saved correction
    finish(widget)
    sidecar = json.loads((set_dir / "sidecars" / f"{ids[0]}.json").read_text())
    saved = read_mask(set_dir / "masks" / f"{ids[0]}_segmentation.png")
    assert sidecar["version"] == 2 and saved[200, 200] == bool(value) and np.count_nonzero(saved != accepted) > 0
    finish(widget)
    assert not errors


def test_review_opens_in_the_order_of_an_archive_ranking(make_napari_viewer, tiny_bundle, folder, tmp_path, errors, finish):
    from glassbox_xai.batch.resume import write_csv
    from glassbox_xai.hitl.ranking import HEADER, ranking_rows

    ids = sorted(p.stem for p in folder.glob("*.jpg"))
    records = [{"id": image_id, "image": f"/archive/{image_id}.jpg", "boundary": score, "mc_dropout": score}
               for image_id, score in zip(ids, (0.1, 0.3, 0.9))]
    ranking = write_csv(tmp_path / "rank.csv", HEADER, ranking_rows(records))  # as glassbox rank writes it
    viewer = make_napari_viewer()
    widget = _review(viewer, tiny_bundle, tmp_path / "set")
    widget.ranking.value = ranking
    assert widget.open_folder(folder)
    finish(widget)
    assert widget.session.current.id == ids[2] and "most uncertain first" in widget.where.value
    assert [c.split(" · ")[0].split(". ")[1] for c in widget.jump.choices] == ids[::-1]
    assert f"{ids[2]} prediction (custom)" in viewer.layers and not errors
    (tmp_path / "wrong.csv").write_text("id,value\nx,1\n")
    widget.ranking.value = tmp_path / "wrong.csv"
    assert not widget.open_folder(folder) and "expected those of glassbox rank" in errors.pop()


def test_every_review_control_has_a_tooltip(make_napari_viewer, tmp_path):
    from magicgui.widgets import Container, Label

    def controls(container):
        for w in container:
            if isinstance(w, Container):
                yield from controls(w)
            elif not isinstance(w, Label):
                yield w

    viewer = make_napari_viewer()
    widget = _review(viewer, tmp_path / "bundle", tmp_path / "set")
    missing = [w.name or w.label or type(w).__name__ for w in controls(widget) if not w.tooltip]
    assert not missing, f"controls without a tooltip: {missing}"


def test_layer_updates_come_one_per_event_loop_turn_and_stop_when_the_user_moves_on(qtbot):
    from qtpy.QtWidgets import QApplication

    from glassbox_xai.napari.common import in_turns

    done, current = [], {"image": "a"}
    in_turns([lambda: done.append(1), lambda: done.append(2), lambda: done.append(3)], lambda: current["image"] == "a")
    assert done == []  # nothing in the caller's turn: its own update is drawn first
    qtbot.waitUntil(lambda: done == [1, 2, 3], timeout=2_000)

    seen = []
    in_turns([lambda: (seen.append(1), current.update(image="b")), lambda: seen.append(2)], lambda: current["image"] == "a")
    qtbot.waitUntil(lambda: seen == [1], timeout=2_000)
    for _ in range(20):
        QApplication.processEvents()
        qtbot.wait(10)
    assert seen == [1]  # the user moved on to image b: the rest of a's steps is dropped
