"""The one configuration object of the Attention U-Net.

It is saved as ``config.json`` beside the weights so that a model bundle can be
rebuilt from its folder alone. This module is pure Python: reading or checking a
config never imports TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

NORMALIZATIONS = ("batch", "group", "none")
CONTEXTS = ("none", "pool")
COLOURS = ("none", "shades_of_gray")
OPTIONAL_BLOCKS = ("context", "colour")  # "none" when absent; written to config.json only when used


class ConfigError(ValueError):
    """A model configuration value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one Attention U-Net (Oktay et al. 2018).

    Attributes:
        input_size: side in pixels of the square the image is resized to before
            it enters the network; must be divisible by ``2 ** depth``.
        base_filters: filters of the first encoder stage; stage ``i`` has
            ``base_filters * 2 ** i``.
        depth: number of down-sampling steps (encoder stages below the input
            stage); the bottleneck sits at ``input_size / 2 ** depth``.
        dropout: spatial dropout rate in the bottleneck and decoder blocks
            (0 disables it; kept > 0 so Monte Carlo dropout is possible).
        normalization: ``"batch"``, ``"group"`` (8 groups or fewer) or ``"none"``.
        in_channels: image channels; the model always takes RGB in [0, 1].
        context: ``"none"``, or ``"pool"``: a global-context block after the
            bottleneck (the bottleneck's mean over the whole image, squeezed and
            added back at every position; zero-initialised, so a model warm-started
            from one without it computes the same function at first). Written to
            ``config.json`` only when not ``"none"``, so other bundles' files are
            as before.
        colour: ``"none"``, or ``"shades_of_gray"``: the photograph's illuminant
            (Shades of Gray, p = 6) divided out by the network's first layer
            (``model/colour.py``), so every path into the network corrects it alike.
            Written to ``config.json`` only when not ``"none"``.
    """

    input_size: int = 192
    base_filters: int = 16
    depth: int = 4
    dropout: float = 0.1
    normalization: str = "batch"
    in_channels: int = 3
    context: str = "none"
    colour: str = "none"

    def __post_init__(self) -> None:
        _check_int("input_size", self.input_size, 32, 1024)
        _check_int("base_filters", self.base_filters, 2, 256)
        _check_int("depth", self.depth, 1, 6)
        if self.in_channels != 3:
            raise ConfigError(f"in_channels must be 3 (RGB), got {self.in_channels!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )
        if self.context not in CONTEXTS:
            raise ConfigError(f"context must be one of {CONTEXTS}, got {self.context!r}")
        if self.colour not in COLOURS:
            raise ConfigError(f"colour must be one of {COLOURS}, got {self.colour!r}")
        if self.input_size % (2**self.depth):
            raise ConfigError(
                f"input_size {self.input_size} must be divisible by 2**depth = {2**self.depth}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (``context`` and ``colour`` only when not ``"none"``)."""
        data = asdict(self)
        for key in OPTIONAL_BLOCKS:
            if data[key] == "none":
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build a config from a dict, refusing unknown keys by name."""
        if not isinstance(data, dict):
            raise ConfigError(f"a model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        """Read a config written by :meth:`save`; errors name the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except FileNotFoundError:
            raise ConfigError(f"model config {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"model config {path} is not valid JSON: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"model config {path}: {exc}") from None


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
