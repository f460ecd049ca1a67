"""Archive runs on real images: list files, shards, resume after kill -9, Dask workers,
the failure report, batch evaluate and rank."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids, copy_dev_val
from glassbox_xai.batch.inputs import InputError, Shard, collect
from glassbox_xai.cli import main
from glassbox_xai.data.io import read_image, read_mask

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def listing(tmp_path_factory) -> Path:
    """A list file of twelve real dev_val photographs (absolute paths)."""
    path = tmp_path_factory.mktemp("lists") / "archive.txt"
    path.write_text("".join(f"{ISIC_IMAGES / i}.jpg\n" for i in split_ids("dev_val")[:12]))
    return path


@pytest.fixture(scope="module")
def shipped():
    from glassbox_xai.model.registry import resolve_bundle

    return str(resolve_bundle(None, None))


@pytest.fixture(scope="module")
def plain_masks(tmp_path_factory, listing, shipped) -> Path:
    """Masks of the twelve images by plain ``glassbox predict`` (no archive option)."""
    out = tmp_path_factory.mktemp("plain")
    images = [line for line in listing.read_text().split()]
    assert main(["predict", *images, "-o", str(out), "--model", shipped]) == 0
    return out


def _masks(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_segmentation.png"))}


@pytest.mark.parametrize("count", [1, 3, 5])
def test_shards_are_disjoint_cover_the_input_and_ignore_its_order(listing, count):
    samples = collect([listing])
    shards = [Shard(i, count).select(samples) for i in range(count)]
    ids = [s.id for shard in shards for s in shard]
    assert sorted(ids) == sorted(s.id for s in samples) and len(set(ids)) == len(ids)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [s.id for s in Shard(count - 1, count).select(samples[::-1])] == [s.id for s in shards[-1]]


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0"])
def test_bad_shard_names_what_is_expected(text):
    with pytest.raises(InputError, match="I/N|0 <= I < N"):
        Shard.parse(text)


def test_list_files_take_relative_paths_comments_and_folders(tmp_path):
    folder = tmp_path / "photos"
    copy_dev_val(folder, 2, masks=False)
    listing = tmp_path / "list.lst"
    listing.write_text(f"# the archive\nphotos\n\n{ISIC_IMAGES / split_ids('dev_val')[2]}.jpg\n")
    assert [s.id for s in collect([listing, folder])] == split_ids("dev_val")[:3]  # the folder twice counts once
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="empty.txt names no images"):
        collect([tmp_path / "empty.txt"])


def test_a_list_file_naming_missing_paths_is_refused_naming_the_list_and_its_lines(tmp_path):
    """A notes file passed by mistake, or a list with stale entries, is refused before any
    mask is written, naming the list file and each missing entry's line."""
    copy_dev_val(tmp_path / "photos", 1, masks=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("photos\n# seen\nlesion looks fine\nmissing_a.jpg\nmissing_b.jpg\nmissing_c.jpg\n")
    with pytest.raises(InputError) as caught:
        collect([notes])
    message = str(caught.value)
    assert message.startswith(f"the list file {notes} names 4 path(s) that do not exist (line 3: {tmp_path / 'lesion looks fine'}")
    assert "line 4:" in message and "line 5:" in message and "and 1 more" in message and "line 6" not in message


def test_two_images_with_one_id_are_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(ISIC_IMAGES / f"{split_ids('dev_val')[0]}.jpg", tmp_path / name)
    with pytest.raises(InputError, match="would both write"):
        collect([tmp_path / "a", tmp_path / "b"])


@pytest.mark.parametrize("count", [0, 1, 3, 5, 30, 200, 203, 1000])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_tapered_chunks_keep_the_order_and_shrink_to_one_batch_per_worker(count, workers):
    from glassbox_xai.batch.runner import tapered

    items = list(range(count))
    chunks = tapered(items, 16, workers, unit=4)
    assert [i for c in chunks for i in c] == items  # every item once, in order
    sizes = [len(c) for c in chunks]
    assert all(0 < n <= 16 + 3 for n in sizes)  # only the first takes what does not divide by the batch
    assert all(n % 4 == 0 for n in sizes[1:])  # whole batches: no second tracing of the model
    if count >= 16 * workers * 4:
        assert sizes[-workers:] == [4] * workers  # each worker's last chunk is one batch
        assert sizes[-3 * workers:] == sorted(sizes[-3 * workers:], reverse=True)  # shrinking towards the end
        assert sizes.count(16) >= len(sizes) - 4 * workers  # full chunks until the end


def test_tapered_chunks_refuse_a_size_below_one():
    from glassbox_xai.batch.runner import tapered

    with pytest.raises(ValueError, match="chunk size must be at least 1, got 0"):
        tapered([1, 2], 0, 2)


def test_local_cluster_of_two_workers_writes_the_plain_runs_masks(listing, plain_masks, shipped, tmp_path):
    from glassbox_xai.batch.dask_runner import dask_client
    from glassbox_xai.batch.jobs import Item, Job, ModelSpec
    from glassbox_xai.batch.runner import run_batch

    samples = collect([listing])[:6]
    items = [Item(s.id, str(s.image), None, str(tmp_path / f"{s.id}_segmentation.png")) for s in samples]
    with dask_client(workers=2, processes=False) as client:
        results = [r for r in run_batch(ModelSpec(shipped), Job("predict"), items, client, chunk_size=2) if isinstance(r, dict)]
        profiling = client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks)
    assert len({r["worker"] for r in results}) == 2  # both workers took chunks
    assert list(profiling.values()) == [False, False]  # the stack sampler every 10 ms cost 5% of a run on 2 cores
    assert sorted(rec["status"] for r in results for rec in r["records"]) == ["written"] * 6
    written = _masks(tmp_path)
    assert written == {name: plain_masks.joinpath(name).read_bytes() for name in written} and len(written) == 6
    some = read_mask(tmp_path / f"{samples[0].id}_segmentation.png")
    assert 0 < some.mean() < 1  # a real lesion mask, not an empty or full one


def test_killed_run_finishes_with_resume_and_matches_the_plain_run(listing, plain_masks, shipped, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "glassbox_xai.cli", "predict", str(listing), "-o", str(out), "--model", shipped,
               "--resume", "--batch-size", "1", "--chunk-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("*_segmentation.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = len(list(out.glob("*_segmentation.png")))
    assert 1 <= before < 12, "the kill should land mid-run"
    first = sorted(out.glob("*_segmentation.png"))[0]
    first.write_bytes(first.read_bytes()[:100])  # a damaged mask (not ours: ours are atomic) is redone
    (out / f".{first.name}.dead.tmp").write_bytes(b"half")  # what a kill mid-write leaves
    assert main(["predict", str(listing), "-o", str(out), "--model", shipped, "--resume"]) == 0
    assert _masks(out) == _masks(plain_masks)
    assert not list(out.glob(".*.tmp"))
    assert list(csv.reader(open(out / "glassbox_failures.csv"))) == [["id", "image", "reason"]]


def test_without_resume_existing_masks_are_refused(listing, plain_masks, shipped, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(plain_masks, out)
    assert main(["predict", str(listing), "-o", str(out), "--model", shipped, "--shard", "0/3"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_an_unreadable_image_is_reported_and_the_run_goes_on(shipped, tmp_path, capsys):
    folder = tmp_path / "photos"
    copy_dev_val(folder, 2, masks=False)
    (folder / "ISIC_9999999.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "-o", str(out), "--model", shipped, "--resume", "--failures", str(tmp_path / "bad.csv")]) == 1
    rows = list(csv.DictReader(open(tmp_path / "bad.csv")))
    assert [r["id"] for r in rows] == ["ISIC_9999999"] and "not a readable image" in rows[0]["reason"]
    assert len(_masks(out)) == 2
    for image_id in split_ids("dev_val")[:2]:
        assert read_mask(out / f"{image_id}_segmentation.png").shape == read_image(folder / f"{image_id}.jpg").shape[:2]


def test_sharded_batch_evaluate_adds_up_to_the_plain_evaluation(listing, shipped, tmp_path):
    images = [line for line in listing.read_text().split()][:6]
    assert main(["evaluate", "--images", *images, "--masks", str(ISIC_MASKS), "--model", shipped, "--json", str(tmp_path / "plain.json")]) == 0
    state = tmp_path / "records"
    for shard in ("0/2", "1/2"):
        assert main(["evaluate", "--images", *images, "--masks", str(ISIC_MASKS), "--model", shipped, "--shard", shard,
                     "--state", str(state), "--resume", "--json", str(tmp_path / "shard.json")]) == 0
    assert main(["evaluate", "--images", *images, "--masks", str(ISIC_MASKS), "--model", shipped, "--state", str(state),
                 "--resume", "--json", str(tmp_path / "all.json")]) == 0  # everything is on record: nothing is recomputed
    plain, combined = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "all"))
    assert combined["confusion"] == plain["confusion"] and combined["n_images"] == 6
    assert combined["dice"] == pytest.approx(plain["dice"])


def test_rank_writes_every_image_most_uncertain_first(listing, tiny_bundle, tmp_path):
    images = [line for line in listing.read_text().split()][:4]
    out = tmp_path / "rank.csv"
    assert main(["rank", *images, "-o", str(out), "--model", str(tiny_bundle), "--passes", "3"]) == 0
    rows = list(csv.DictReader(open(out)))
    assert sorted(r["id"] for r in rows) == sorted(Path(i).stem for i in images)
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert float(row["score"]) == pytest.approx((float(row["boundary"]) + float(row["mc_dropout"])) / 2, abs=1e-6)


def test_a_separately_started_cluster_writes_the_plain_runs_masks(listing, plain_masks, shipped, tmp_path):
    """``--scheduler ADDRESS``: a scheduler and a worker started as a lab would start them
    (``dask scheduler`` / ``dask worker``, here on localhost), the command a client of them."""
    dask = Path(sys.executable).with_name("dask")
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(info)], **quiet)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--no-dashboard", "--name", "lab-worker"], **quiet)
        from distributed import Client

        with Client(address, timeout=30) as probe:
            probe.wait_for_workers(1, timeout=120)  # a worker that never comes fails the test instead of hanging it
        images = listing.read_text().split()[:4]
        out = tmp_path / "masks"
        assert main(["predict", *images, "-o", str(out), "--model", shipped, "--scheduler", address]) == 0
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(30)
    written = _masks(out)
    assert len(written) == 4 and written == {name: plain_masks.joinpath(name).read_bytes() for name in written}

