"""The human-in-the-loop simulation (benchmarks/hitl_simulation.py) on a tiny model and tiny rounds."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from data_paths import ISIC, split_ids

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hitl_simulation.py"


@pytest.fixture(scope="module")
def simulation():
    """The benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("hitl_simulation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def shallow_bundle(tmp_path_factory) -> Path:
    """An untrained one-stage model: six fine-tunes of it fit in the time budget (plumbing, not accuracy)."""
    import keras

    from glassbox_xai.model.attention_unet import build_attention_unet
    from glassbox_xai.model.bundle import save_bundle
    from glassbox_xai.model.card import ModelCard
    from glassbox_xai.model.config import ModelConfig

    keras.utils.set_random_seed(0)
    config = ModelConfig(input_size=32, base_filters=4, depth=1, dropout=0.1)
    folder = tmp_path_factory.mktemp("bundles") / "shallow"
    save_bundle(build_attention_unet(config), config, ModelCard(variant="custom", loss="none", name="shallow-untrained"), folder)
    return folder


def test_simulation_writes_a_curve_per_strategy_without_leaks(simulation, shallow_bundle, tmp_path, capsys):
    out, work = tmp_path / "results", tmp_path / "work"
    code = simulation.main(["--rounds", "2", "--round-size", "2", "--epochs", "1", "--pool-size", "5", "--test-size", "6",
                            "--passes", "2", "--seed", "3", "--bundle", str(shallow_bundle), "--data", str(ISIC),
                            "--out", str(out), "--work", str(work)])
    assert code == 0
    results = json.loads((out / "hitl_simulation.json").read_text())
    ids, rounds = results["ids"], results["rounds"]

    assert [r["round"] for r in rounds] == [0, 1, 2] and [r["n_images"] for r in rounds] == [0, 2, 4]
    for strategy in simulation.STRATEGIES:
        dice = [r["strategies"][strategy]["dice"] for r in rounds]
        assert len(dice) == 3 and all(0.0 <= d <= 1.0 for d in dice)
        assert all(len(r["strategies"][strategy]["per_image"]) == 6 for r in rounds)
    assert len({r["strategies"][s]["dice"] for r in rounds[:1] for s in simulation.STRATEGIES}) == 1  # one parent

    test, pool = set(ids["test"]), set(ids["pool"])
    assert len(test) == 6 and len(pool) == 5 and not test & pool and test <= set(split_ids("dev_val"))
    added = {s: [i for r in rounds[1:] for i in r["strategies"][s]["added_ids"]] for s in simulation.STRATEGIES}
    assert not test & {i for chosen in added.values() for i in chosen}
    assert set(added["uncertainty"]) <= pool and set(added["random"]) <= pool
    assert set(added["baseline"]) <= set(split_ids("dev_train")) and not set(added["baseline"]) & set(ids["mix"])

    ranking = results["ranking"]
    assert sorted(r["id"] for r in ranking) == sorted(pool)
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    assert added["uncertainty"] == [r["id"] for r in ranking][:4]
    assert added["random"] == ids["random_order"][:4] and sorted(ids["random_order"]) == sorted(pool)

    rows = list(csv.DictReader((out / "hitl_simulation.csv").open()))
    assert [int(row["round"]) for row in rows] == [0, 1, 2] and {f"dice_{s}" for s in simulation.STRATEGIES} <= set(rows[0])
    table = (out / "hitl_simulation.md").read_text()
    assert "| round | n corrected | uncertainty | random | baseline |" in table and "| 2 | 4 |" in table
    assert (out / "hitl_simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 2 | 4 |" in capsys.readouterr().out
    assert not list((work / "models").rglob("*.keras"))  # fine-tuned bundles are deleted once scored
    sidecar = json.loads(next((work / "sets" / "uncertainty" / "sidecars").glob("*.json")).read_text())
    assert sidecar["annotator"] == "simulation:uncertainty" and sidecar["image"]["path"].startswith(str(ISIC.resolve()))


def test_simulation_refuses_more_rounds_than_the_pool_holds(simulation, shallow_bundle, tmp_path):
    with pytest.raises(ValueError, match="need 12 pool images; --pool-size is 10"):
        simulation.main(["--rounds", "3", "--round-size", "4", "--pool-size", "10", "--bundle", str(shallow_bundle),
                         "--data", str(ISIC), "--out", str(tmp_path)])


PH2_SCRIPT = SCRIPT.with_name("hitl_ph2.py")


@pytest.fixture(scope="module")
def ph2_simulation():
    """benchmarks/hitl_ph2.py as a module."""
    spec = importlib.util.spec_from_file_location("hitl_ph2", PH2_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_ph2_simulation_rounds_orders_and_intervals(ph2_simulation, shallow_bundle, tmp_path, capsys):
    """Two splits of eight real PH2 pairs, rounds of two: the table, curve and JSON, pools and
    test sets disjoint, the uncertainty order following the scores, costly arms where asked."""
    out = tmp_path / "results"
    code = ph2_simulation.main(["--images", "8", "--pool-size", "4", "--rounds", "2", "--round-size", "2", "--seeds", "1", "2",
                                "--methods", "threshold", "finetune", "--finetune-at", "4", "--epochs", "1", "--passes", "2",
                                "--isic-check", "3", "--isic-mix", "4", "--bundle", str(shallow_bundle), "--out", str(out)])
    assert code == 0
    results = json.loads((out / "hitl_ph2.json").read_text())
    assert len(results["splits"]) == 2
    for split in results["splits"]:
        pool, test = set(split["pool"]), set(split["test"])
        assert len(pool) == 4 and len(test) == 4 and not pool & test
        assert [r["n"] for r in split["rounds"]] == [2, 4]
        assert set(split["rounds"][0]) == {"n", "uncertainty/threshold", "random/threshold"}
        assert set(split["rounds"][1]) == {"n", "uncertainty/threshold", "random/threshold", "uncertainty/finetune", "random/finetune"}
        scores = [results["uncertainty"][i] for i in split["orders"]["uncertainty"]]
        assert scores == sorted(scores, reverse=True) and set(split["orders"]["random"]) == pool
        assert "isic_dice" in split["rounds"][1]["uncertainty/finetune"]
    assert results["splits"][0]["test"] != results["splits"][1]["test"]
    table = (out / "hitl_ph2.md").read_text()
    assert "| 0 (parent) |" in table and "| 2 |" in table and "ISIC dev_val check (3 images" in table
    assert (out / "hitl_ph2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 4 |" in capsys.readouterr().out

    # what the picks of each order are like (benchmarks/hitl_ph2_picks.py), from the same run
    spec = importlib.util.spec_from_file_location("hitl_ph2_picks", PH2_SCRIPT.with_name("hitl_ph2_picks.py"))
    picks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(picks)
    assert picks.main(["--results", str(out / "hitl_ph2.json"), "--bundle", str(shallow_bundle), "--counts", "1", "2", "--out", str(out)]) == 0
    rows = json.loads((out / "hitl_ph2_picks.json").read_text())["rows"]
    parent = json.loads((out / "hitl_ph2_picks.json").read_text())["parent"]
    assert len(rows) == 2 * 2 * 2  # splits x orders x counts
    first = next(r for r in rows if r["seed"] == 1 and r["order"] == "random" and r["n"] == 1)
    pick = results["splits"][0]["orders"]["random"][0]
    assert first["picks_area_ratio"] == pytest.approx(parent[pick]["area_ratio"]) and 0 <= first["picks_dice"] <= 1
    assert "| uncertainty | 2 |" in (out / "hitl_ph2_picks.md").read_text()


def test_ph2_interval_is_the_paired_t_interval_over_splits(ph2_simulation):
    mean, half = ph2_simulation.paired_interval([0.01, 0.03, 0.02])
    assert mean == pytest.approx(0.02) and half == pytest.approx(4.303 * 0.01 / 3**0.5)
