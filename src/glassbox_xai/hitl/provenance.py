"""Which model made a prediction, carried from the worker's result to the accepted correction.

A correction records the model that produced the prediction it started from, as the
result said (weights hash, variant, bundle, threshold), never what a model picker
shows at the moment of accepting: the picker may have changed, or the prediction
may come back from a draft saved in an earlier session. Pure Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """The model behind a prediction. ``None`` fields are unknown (a draft kept by an older
    version of GlassBox), and are recorded as unknown rather than guessed."""

    weights_sha256: str | None = None
    variant: str | None = None
    bundle: str | None = None
    label: str | None = None
    threshold: float | None = None

    @classmethod
    def of_result(cls, result: dict[str, Any]) -> "Provenance":
        """From a worker segment result (its ``card`` summary and ``threshold``)."""
        card = result.get("card", {})
        threshold = result.get("threshold")
        return cls(card.get("weights_sha256"), card.get("variant"), card.get("bundle"), card.get("label"),
                   None if threshold is None else float(threshold))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Provenance":
        """From :meth:`as_dict` or a sidecar (``model`` block plus ``threshold``); unknown keys are ignored."""
        data = dict(data or {})
        data.update(data.pop("model", None) or {})
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def known(self) -> bool:
        return self.weights_sha256 is not None
