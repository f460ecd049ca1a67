"""The glassbox command on real images and on bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from data_paths import ISIC_IMAGES, ISIC_MASKS
from glassbox_xai.cli import main
from glassbox_xai.data.io import read_image


@pytest.fixture
def real_pairs(tmp_path, val_ids):
    """Four real dev_val images and their masks in separate folders."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for image_id in val_ids[:4]:
        shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", images)
        shutil.copy(ISIC_MASKS / f"{image_id}_segmentation.png", masks)
    return images, masks


def test_predict_writes_isic_masks_at_native_size(tiny_bundle, native_images, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(native_images[0]), str(native_images[1]), "-o", str(out), "--model", str(tiny_bundle)]) == 0
    assert "wrote 2 mask(s)" in capsys.readouterr().out
    for path in native_images[:2]:
        mask = np.asarray(Image.open(out / f"{path.stem}_segmentation.png"))
        assert mask.dtype == np.uint8 and mask.ndim == 2
        assert set(np.unique(mask).tolist()) <= {0, 255}
        assert mask.shape == read_image(path).shape[:2]


def test_predict_refuses_to_overwrite_without_flag(tiny_bundle, native_images, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["predict", str(native_images[0]), "-o", str(out), "--model", str(tiny_bundle)]
    assert main(args) == 0
    before = (out / f"{native_images[0].stem}_segmentation.png").read_bytes()
    assert main(args + ["--threshold", "0.01"]) == 2
    assert "already exist" in capsys.readouterr().err
    assert (out / f"{native_images[0].stem}_segmentation.png").read_bytes() == before
    assert main(args + ["--threshold", "0.01", "--overwrite"]) == 0


def test_evaluate_model_and_predictions_agree(tiny_bundle, real_pairs, tmp_path, capsys):
    images, masks = real_pairs
    out = tmp_path / "pred"
    assert main(["evaluate", "--images", str(images), "--masks", str(masks), "--model", str(tiny_bundle),
                 "--json", str(tmp_path / "model.json"), "--per-image", str(tmp_path / "per_image.csv")]) == 0
    printed = capsys.readouterr().out
    assert "threshold_jaccard" in printed and "not a medical device" in printed
    assert main(["predict", str(images), "-o", str(out), "--model", str(tiny_bundle)]) == 0
    assert main(["evaluate", "--predictions", str(out), "--masks", str(masks), "--json", str(tmp_path / "pred.json")]) == 0
    from_model = json.loads((tmp_path / "model.json").read_text())
    from_files = json.loads((tmp_path / "pred.json").read_text())
    for key in ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice", "precision", "f1"):
        assert from_model[key] == pytest.approx(from_files[key], abs=1e-12), key
    assert from_model["confusion"] == from_files["confusion"]
    assert sum(from_model["confusion"].values()) == 4 * 512 * 512
    assert (tmp_path / "model_confusion.png").stat().st_size > 1000
    rows = (tmp_path / "per_image.csv").read_text().splitlines()
    assert rows[0].startswith("id,accuracy,sensitivity") and len(rows) == 5



def test_evaluate_reports_calibration_and_the_uncertainty_auroc(tiny_bundle, real_pairs, tmp_path, capsys):
    images, masks = real_pairs
    bundle = tmp_path / "warm"
    shutil.copytree(tiny_bundle, bundle)
    card = json.loads((bundle / "card.json").read_text())
    (bundle / "card.json").write_text(json.dumps({**card, "calibration": {"temperature": 2.0}}))  # card.json is not hashed
    for model, temperature in ((tiny_bundle, 1.0), (bundle, 2.0)):
        report = tmp_path / f"{model.name}.json"
        assert main(["evaluate", "--images", str(images), "--masks", str(masks), "--model", str(model), "--json", str(report)]) == 0
        printed = capsys.readouterr().out
        assert f"calibration: ECE" in printed and f"at temperature {temperature:g}" in printed and "AUROC" in printed
        cal = json.loads(report.read_text())["calibration"]
        assert cal["temperature"] == temperature and cal["n_pixels"] == 4 * 512 * 512 and cal["n_bins"] == 15
        assert 0 <= cal["ece"] <= 1 and 0 <= cal["uncertainty_auroc"] <= 1
        assert ("ece_uncalibrated" in cal) == (temperature != 1.0) and ("(" in printed.split("calibration:")[1]) == (temperature != 1.0)
    assert json.loads((tmp_path / "warm.json").read_text())["confusion"] == json.loads((tmp_path / f"{tiny_bundle.name}.json").read_text())["confusion"]

@pytest.mark.parametrize("variant", ["dice", "balanced", "recall"])
def test_missing_trained_model_is_said_plainly(variant, native_images, tmp_path, capsys, monkeypatch):
    import glassbox_xai.model.registry as registry

    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "no-weights")
    assert main(["predict", str(native_images[0]), "-o", str(tmp_path / "o"), "--variant", variant]) == 2
    assert f"no trained model is installed for variant '{variant}'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unreadable_file_is_skipped_and_reported(tiny_bundle, native_images, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(native_images[0], folder)
    (folder / "ISIC_0000000.jpg").write_bytes(b"\x00garbage")
    assert main(["predict", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_bundle)]) == 1
    err = capsys.readouterr().err
    assert "skipped" in err and "ISIC_0000000.jpg is not a readable image" in err
    assert (tmp_path / "out" / f"{native_images[0].stem}_segmentation.png").is_file()


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (lambda d: d.mkdir(), ["predict", "{d}", "-o", "{d}/out"], "no images found in"),
        (lambda d: (d.mkdir(), (d / "notes.doc").write_text("x")), ["predict", "{d}/notes.doc", "-o", "{d}/out"], "unsupported file type '.doc'"),
        (lambda d: None, ["predict", "{d}/missing.jpg", "-o", "{d}/out"], "does not exist"),
        (lambda d: (d.mkdir(), (d / "m").mkdir()), ["evaluate", "--predictions", "{d}/m", "--masks", "{d}/m"], "no masks named"),
    ],
    ids=["empty-folder", "wrong-file-type", "missing-file", "no-masks"],
)
def test_bad_input_gives_one_clear_line(setup, args, message, tiny_bundle, tmp_path, capsys):
    d = tmp_path / "case"
    setup(d)
    argv = [a.format(d=d) for a in args]
    if argv[0] == "predict":
        argv += ["--model", str(tiny_bundle)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"glassbox {argv[0]}: error:" in err and message in err and "Traceback" not in err


def test_wrong_mask_size_is_named_and_the_others_scored(tiny_bundle, real_pairs, tmp_path, capsys):
    images, masks = real_pairs
    victim = sorted(masks.iterdir())[1]
    Image.fromarray(np.zeros((300, 400), np.uint8)).save(victim)
    report = tmp_path / "m.json"
    assert main(["evaluate", "--images", str(images), "--masks", str(masks), "--model", str(tiny_bundle), "--json", str(report)]) == 1
    err = capsys.readouterr().err
    assert victim.name in err and "400x300 px but its image is 512x512 px" in err
    summary = json.loads(report.read_text())
    assert summary["n_images"] == 3 and [f["mask"] for f in summary["failures"]] == [str(victim)]


@pytest.mark.parametrize("source", ["model", "predictions"])
def test_one_bad_mask_among_good_ones_keeps_the_good_scores(source, tiny_bundle, real_pairs, tmp_path, capsys):
    images, masks = real_pairs
    good = json.loads(_evaluate(source, images, masks, tiny_bundle, tmp_path, "before.json", expect=0))
    victim = sorted(masks.iterdir())[2]
    grey = np.asarray(Image.open(victim)).copy()
    grey[:10, :10] = 77  # one non-binary mask among good ones
    Image.fromarray(grey).save(victim)
    after = json.loads(_evaluate(source, images, masks, tiny_bundle, tmp_path, "after.json", expect=1))
    assert after["n_images"] == 3 and good["n_images"] == 4
    (failure,) = after["failures"]
    assert failure["id"] == victim.name.replace("_segmentation.png", "") and "not binary" in failure["reason"]
    assert str(victim) in failure["reason"] and "77" in failure["reason"]
    assert (tmp_path / "after_confusion.png").stat().st_size > 1000
    assert "skipped" in capsys.readouterr().err


def _evaluate(source, images, masks, bundle, tmp_path, name, expect) -> str:
    if source == "model":
        argv = ["evaluate", "--images", str(images), "--masks", str(masks), "--model", str(bundle)]
    else:
        predictions = tmp_path / "pred"
        if not predictions.exists():
            shutil.copytree(masks, predictions)  # perfect predictions: the scores are known
        argv = ["evaluate", "--predictions", str(predictions), "--masks", str(masks)]
    assert main(argv + ["--json", str(tmp_path / name)]) == expect
    return (tmp_path / name).read_text()


def test_a_missing_prediction_is_listed_and_the_rest_scored(real_pairs, tmp_path, capsys):
    _, masks = real_pairs
    predictions = tmp_path / "pred"
    shutil.copytree(masks, predictions)
    gone = sorted(predictions.iterdir())[0]
    gone.unlink()
    assert main(["evaluate", "--predictions", str(predictions), "--masks", str(masks), "--json", str(tmp_path / "m.json")]) == 1
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["n_images"] == 3 and summary["dice"] == 1.0
    assert summary["failures"][0]["path"] == str(gone) and "has no prediction" in summary["failures"][0]["reason"]


def test_outputs_under_an_existing_file_are_named_and_the_others_written(real_pairs, tmp_path, capsys, monkeypatch):
    _, masks = real_pairs
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "results.json"
    blocker.write_text("{}")
    argv = ["evaluate", "--predictions", str(masks), "--masks", str(masks), "--json", str(blocker / "m.json"),
            "--per-image", str(tmp_path / "per_image.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{blocker} exists and is a file, not a folder; choose another path" in err and "Errno" not in err
    assert blocker.read_text() == "{}"
    assert (tmp_path / "per_image.csv").is_file() and (tmp_path / "confusion_matrix.png").stat().st_size > 1000


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_output_folder_that_is_a_file_is_said_plainly(command, tiny_bundle, native_images, tmp_path, capsys):
    blocker = tmp_path / "out.png"
    blocker.write_bytes(b"not a folder")
    assert main([command, str(native_images[0]), "-o", str(blocker), "--model", str(tiny_bundle)]) == 2
    err = capsys.readouterr().err
    assert f"-o {blocker} exists and is a file; -o names a folder: choose another path" in err and "Errno" not in err
    assert main([command, str(native_images[0]), "-o", str(blocker / "sub"), "--model", str(tiny_bundle)]) == 2
    assert f"-o {blocker / 'sub'}: {blocker} exists and is a file, not a folder; choose another path" in capsys.readouterr().err
    assert blocker.read_bytes() == b"not a folder"


def test_predict_run_report_lists_skipped_images(tiny_bundle, native_images, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(native_images[0], folder)
    (folder / "ISIC_0000000.jpg").write_bytes(b"\x00garbage")
    report = tmp_path / "run.json"
    assert main(["predict", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_bundle), "--json", str(report)]) == 1
    run = json.loads(report.read_text())
    assert run["n_written"] == 1
    assert run["failures"] == [{"id": "ISIC_0000000", "path": str(folder / "ISIC_0000000.jpg"), "reason": run["failures"][0]["reason"]}]
    assert "not a readable image" in run["failures"][0]["reason"]


def test_missing_mask_and_missing_prediction_are_named(tiny_bundle, real_pairs, tmp_path, capsys):
    images, masks = real_pairs
    victim = sorted(masks.iterdir())[0]
    victim.unlink()
    assert main(["evaluate", "--images", str(images), "--masks", str(masks), "--model", str(tiny_bundle)]) == 2
    assert victim.name in capsys.readouterr().err
    (tmp_path / "empty_pred").mkdir()
    assert main(["evaluate", "--predictions", str(tmp_path / "empty_pred"), "--masks", str(masks)]) == 2
    assert "3 mask(s) have no prediction" in capsys.readouterr().err


def test_corrupt_model_bundle_is_reported(tiny_bundle, native_images, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    assert main(["predict", str(native_images[0]), "-o", str(tmp_path / "out"), "--model", str(broken)]) == 2
    assert "model.keras does not match its model card" in capsys.readouterr().err


def test_info_lists_device_models_and_versions(capsys, tiny_bundle, tmp_path):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "device: CPU" in out or "device: GPU:" in out
    assert "installed models:" in out and "tensorflow" in out and "keras" in out  # library versions
    assert "fine-tuned versions: none (active model: dice, the default)" in out
    from glassbox_xai.model import versions

    shutil.copytree(tiny_bundle, tmp_path / "clinic-v1" / "bundle")
    versions.set_active(versions.register(tmp_path / "clinic-v1" / "bundle"))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned versions: 1 (active model: clinic-v1)" in out and "* clinic-v1" in out  # model versions


def _rehash(bundle) -> None:
    """Update a bundle's card to the current hashes, as an adversary who edits a file would."""
    from glassbox_xai.model.card import sha256_file

    card = json.loads((bundle / "card.json").read_text())
    card["weights_sha256"] = sha256_file(bundle / "model.keras")
    card["config_sha256"] = sha256_file(bundle / "config.json")
    (bundle / "card.json").write_text(json.dumps(card))


def _tamper_layer_config(bundle) -> None:
    """Replace the first ReLU activation in the Keras archive's config.json by an unknown name."""
    import zipfile

    archive = bundle / "model.keras"
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    text = members["config.json"].decode()
    assert '"activation": "relu"' in text
    members["config.json"] = text.replace('"activation": "relu"', '"activation": "evil"', 1).encode()
    with zipfile.ZipFile(archive, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    _rehash(bundle)


def _edit_json(bundle, name: str, key: str, value) -> None:
    data = json.loads((bundle / name).read_text())
    data[key] = value
    (bundle / name).write_text(json.dumps(data))
    _rehash(bundle)


@pytest.mark.parametrize(
    "tamper, expected",
    [
        (lambda b: _edit_json(b, "card.json", "threshold", 7), ["card.json", "threshold 7 is out of range", "between 0 and 1"]),
        (lambda b: _edit_json(b, "config.json", "depth", 99), ["config.json", "depth must be an integer in [1, 6], got 99"]),
        (_tamper_layer_config, ["model.keras", "config.json", "Activation", "evil"]),
    ],
    ids=["card-threshold-7", "bundle-config-depth", "layer-config-activation"],
)
def test_tampered_bundle_is_one_short_line_naming_file_and_value(tamper, expected, tiny_bundle, native_images, tmp_path, capsys):
    bundle = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, bundle)
    tamper(bundle)
    assert main(["predict", str(native_images[0]), "-o", str(tmp_path / "out"), "--model", str(bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(err) < 400, err
    for part in expected:
        assert part in err, (part, err)


def test_bad_files_leave_no_unclosed_file_warning(real_pairs, tmp_path):
    """Truncated, corrupt and tiny predictions in one evaluate run, in a fresh Python with
    ResourceWarning enabled (-X dev): every file is closed, each failure is listed."""
    import subprocess
    import sys

    _, masks = real_pairs
    predictions = tmp_path / "pred"
    shutil.copytree(masks, predictions)
    victims = sorted(predictions.iterdir())
    data = victims[0].read_bytes()
    victims[0].write_bytes(data[: len(data) // 2])
    victims[1].write_bytes(data[:60])
    victims[2].write_bytes(b"\x00garbage")
    run = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-m", "glassbox_xai.cli", "evaluate",
                          "--predictions", str(predictions), "--masks", str(masks), "--json", str(tmp_path / "m.json")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "unclosed" not in run.stderr and "ResourceWarning" not in run.stderr, run.stderr
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["n_images"] == 1 and sorted(f["path"] for f in summary["failures"]) == [str(v) for v in victims[:3]]


def test_evaluate_warns_about_expert_masks_that_outline_no_lesion(real_pairs, tmp_path, capsys):
    """A blank expert mask (a wrong or unfinished file) is scored, and the table says which."""
    images, masks = real_pairs
    blank = sorted(masks.iterdir())[1]
    Image.fromarray(np.zeros_like(np.asarray(Image.open(blank)))).save(blank)
    assert main(["evaluate", "--predictions", str(masks), "--masks", str(masks), "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    blank_id = blank.name.removesuffix("_segmentation.png")
    assert f"warning: 1 expert mask(s) outline no lesion ({blank_id})" in printed
    assert json.loads((tmp_path / "m.json").read_text())["empty_truth"] == [blank_id]


def test_warnings_from_reader_threads_each_keep_their_own_line(tmp_path, monkeypatch):
    """Images are read in threads, and a grayscale and a 16-bit image warned onto one line
    ("...the channelwarning: ..."); each warning is one line naming its file, even when
    writing to stderr lets another thread run between any two writes."""
    import sys
    import threading
    import time

    from glassbox_xai.cli import _show_warning

    class SlowStderr:  # a terminal that lets the other threads in between writes
        def __init__(self):
            self.text = ""

        def write(self, chunk):
            time.sleep(0.001)
            self.text += chunk
            return len(chunk)

        def flush(self):
            pass

    err = SlowStderr()
    monkeypatch.setattr(sys, "stderr", err)
    names = [f"image{i:02d}.png" for i in range(16)]
    threads = [threading.Thread(target=_show_warning, args=(f"{tmp_path / n}: grayscale image converted", UserWarning, "x.py", 1)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(err.text.splitlines()) == sorted(f"warning: {tmp_path / n}: grayscale image converted" for n in names)


def test_warnings_about_the_users_images_are_said_and_deprecations_are_not(tiny_bundle, native_images, tmp_path, capsys):
    import warnings

    from PIL import Image

    gray = tmp_path / "gray.png"
    Image.open(native_images[0]).convert("L").resize((300, 200)).save(gray)
    with warnings.catch_warnings():
        assert main(["predict", str(gray), "-o", str(tmp_path / "out"), "--model", str(tiny_bundle)]) == 0
        warnings.warn("a library's deprecation", DeprecationWarning)  # as Keras's numpy-2 one, raised while a command runs
    err = capsys.readouterr().err
    assert "warning: " in err and "gray.png" in err  # the conversion, naming the file
    assert "deprecation" not in err
