"""Training recipes: one YAML file per model, checked before anything runs.

A recipe names the model config, the data split, the loss, the fit settings,
the augmentation pipeline and, for a fine-tuned variant, the parent run whose
best weights it starts from. See ``training/configs/`` for the shipped ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..model.card import VARIANTS
from ..model.config import ConfigError, ModelConfig
from .augment import AugmentConfigError, resolve
from .fit import FitConfig
from .losses import make_loss

KEYS = {"name", "variant", "model", "data", "loss", "fit", "augment", "parent", "threshold", "notes", "deep_supervision"}


class RecipeError(ValueError):
    """A recipe file is unreadable or has a bad value; the message names the file and key."""


@dataclass
class Recipe:
    name: str
    variant: str
    model: ModelConfig
    data: dict[str, Any]
    loss: dict[str, Any]
    fit: FitConfig
    augment: dict[str, Any]
    parent: str | None = None
    threshold: float = 0.5
    notes: str = ""
    deep_supervision: tuple[float, ...] = ()
    source: Path | None = field(default=None, compare=False)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {path}: expected a mapping at the top level")
    try:
        return _build(raw, path)
    except RecipeError:
        raise  # already names the file
    except (ConfigError, AugmentConfigError, ValueError, TypeError) as exc:
        raise RecipeError(f"recipe {path}: {exc}") from None


def _build(raw: dict[str, Any], path: Path) -> Recipe:
    unknown = set(raw) - KEYS
    if unknown:
        raise RecipeError(f"recipe {path}: unknown keys {sorted(unknown)}; expected some of {sorted(KEYS)}")
    for key in ("name", "variant", "model", "data", "loss", "fit"):
        if key not in raw:
            raise RecipeError(f"recipe {path}: missing key {key!r}")
    if raw["variant"] not in VARIANTS:
        raise RecipeError(f"recipe {path}: variant must be one of {VARIANTS}, got {raw['variant']!r}")
    data = dict(raw["data"])
    for key in ("root", "train", "val"):
        if key not in data:
            raise RecipeError(f"recipe {path}: data needs {key!r}")
    if "oversample" in data:
        data["oversample"] = _check_oversample(data["oversample"], path)
    loss = raw["loss"] if isinstance(raw["loss"], dict) else {"name": raw["loss"]}
    make_loss(loss)  # raises for an unknown loss or parameter
    augment = raw.get("augment") or {}
    resolve(augment)
    threshold = float(raw.get("threshold", 0.5))
    if not 0.0 < threshold < 1.0:
        raise RecipeError(f"recipe {path}: threshold must be in (0, 1), got {threshold}")
    model = ModelConfig.from_dict(raw["model"])
    deep = raw.get("deep_supervision") or []
    if not isinstance(deep, list) or len(deep) > model.depth - 1 or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in deep):
        raise RecipeError(f"recipe {path}: deep_supervision must list up to {model.depth - 1} non-negative loss weights "
                          f"(decoder stages 1..{model.depth - 1}), got {deep!r}")
    return Recipe(
        name=str(raw["name"]),
        variant=raw["variant"],
        model=model,
        data=data,
        loss=loss,
        fit=FitConfig(**raw["fit"]),
        augment=augment,
        parent=raw.get("parent"),
        threshold=threshold,
        notes=str(raw.get("notes", "")),
        deep_supervision=tuple(float(w) for w in deep),
        source=path,
    )


def _check_oversample(spec: Any, path: Path) -> dict[str, Any]:
    """``data.oversample``: ``{ids: <list file of training ids>, times: <2 or more>}``, each listed
    training image seen ``times`` times an epoch (see ``training/hard_ids.py``). Returns it with
    ``ids`` resolved: a relative path is taken from the recipe's folder."""
    if not isinstance(spec, dict) or set(spec) != {"ids", "times"}:
        raise RecipeError(f"recipe {path}: data.oversample needs exactly 'ids' (a list file of training ids) and 'times', got {spec!r}")
    times = spec["times"]
    if isinstance(times, bool) or not isinstance(times, int) or times < 2:
        raise RecipeError(f"recipe {path}: data.oversample.times must be a whole number of 2 or more, got {times!r}")
    ids = path.parent / str(spec["ids"])  # an absolute ids path stays as it is
    if not ids.is_file():
        raise RecipeError(f"recipe {path}: data.oversample.ids {ids} is not a file (one training id a line; relative to the recipe's folder)")
    return {"ids": str(ids), "times": times}
