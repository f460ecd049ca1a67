"""What a worker result says about the model that made it."""

from __future__ import annotations

from pathlib import Path


def model_summary(bundle) -> dict:
    """Which model made a result, as the result carries it: the card's variant and name, the
    weights' sha256, the bundle folder and the label layers are named by (a fine-tuned version's
    name). A correction of the result records exactly this, whatever the pickers say later."""
    from ..model.versions import label_for

    card = bundle.card
    return {"variant": card.variant, "name": card.name, "weights_sha256": card.weights_sha256,
            "bundle": str(Path(bundle.path).resolve()), "label": label_for(bundle.path, card.variant)}
