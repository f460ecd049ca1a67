"""Report figures rendered with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .metrics import Confusion

DISCLAIMER = "Research use only; not a medical device."


def save_figure(fig, path: str | Path, **savefig) -> Path:
    """Save a matplotlib figure as PNG (creating its folder) and close it; ``savefig`` goes to ``fig.savefig``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **savefig)
    plt.close(fig)
    return path


def confusion_figure(confusion: Confusion, path: str | Path, title: str = "Pooled confusion matrix") -> Path:
    """Save a 2x2 confusion matrix with pixel counts and row rates as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    counts = np.array([[confusion.tn, confusion.fp], [confusion.fn, confusion.tp]], dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (r, c), count in np.ndenumerate(counts):
        ax.text(c, r, f"{count:,}\n{rates[r, c]:.1%}", ha="center", va="center",
                color="white" if rates[r, c] > 0.5 else "black", fontsize=10)
    ax.set_xticks([0, 1], ["background", "lesion"])
    ax.set_yticks([0, 1], ["background", "lesion"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("expert mask")
    ax.set_title(title, fontsize=11)
    fig.text(0.5, 0.01, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path)
