"""Does a probability mean what it says? Reliability, expected calibration error (ECE),
one temperature fitted on logits, and how well per-pixel uncertainty finds wrong pixels.

Per pixel: ``z`` the model's logit, ``p = sigmoid(z / T)`` at temperature ``T`` (1: as
the model gave it), ``y`` the expert mask, ``e = mask != y`` the error.

* **Reliability**: ``n_bins`` equal-width bins of ``p`` over [0, 1]; in each, the
  pixel count, the mean ``p`` (*confidence*) and the share of lesion pixels
  (*frequency*). Calibrated means frequency = confidence in every bin: of the pixels
  shown at 0.8, 80 % are lesion.
* **ECE** = sum over bins of ``n_b / N * |frequency_b - confidence_b|`` (Guo et al.
  2017, on the lesion probability); **MCE** is the largest such gap of a bin.
* **NLL**: mean binary cross-entropy of ``p``; the temperature that minimises it on
  a validation split is the fitted temperature (``T > 1`` softens, ``T < 1`` sharpens).
  ``T`` is monotone, so ``p > t`` and ``sigmoid(z / T) > sigmoid(logit(t) / T)`` are
  the same mask (:func:`calibrated_threshold`).
* **Uncertainty AUROC**: the area under the ROC curve of the uncertainty map
  ``1 - |2p - 1|`` (1 minus the confidence layer) against ``e``: the chance that a
  random wrong pixel is shown as more uncertain than a random right one (ties count
  half). 1 finds every error first, 0.5 is chance. ``1 - |2p - 1|`` is monotone in
  ``|z|`` for every ``T``, so a temperature cannot change it.

The functions on arrays are exact. Over a data set, :class:`CalibrationCounts` sums
each image's pixels into fine logit bins (``LOGIT_STEP`` wide over +-``LOGIT_LIMIT``;
beyond that into the end bins) and computes the same numbers from the bin centres,
so 100 million pixels need 4,000 counters, not 1 GB. Pure NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_BINS = 15
LOGIT_LIMIT = 40.0
LOGIT_STEP = 0.02
TEMPERATURE_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram: per probability bin the pixel count, mean probability and lesion share."""

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |frequency - confidence|."""
        full = self.count > 0  # empty bins have no confidence or frequency (NaN)
        gaps = np.abs(self.frequency[full] - self.confidence[full])
        return float(np.sum(self.count[full] * gaps) / self.count.sum()) if full.any() else 0.0

    @property
    def mce(self) -> float:
        """Maximum calibration error: the largest |frequency - confidence| of a non-empty bin."""
        full = self.count > 0
        return float(np.max(np.abs(self.frequency - self.confidence)[full])) if full.any() else 0.0


def reliability(probabilities: np.ndarray, truth: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """The reliability diagram of probabilities against a boolean truth of the same shape."""
    p, y = _checked(probabilities, truth, "probabilities")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"probabilities must lie in [0, 1]; got {p.min():.3g}..{p.max():.3g}")
    return _reliability(p, np.ones_like(p), y.astype(np.float64), n_bins)


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of probabilities against a boolean truth (see the module notes)."""
    return reliability(probabilities, truth, n_bins).ece


def binary_nll(logits: np.ndarray, truth: np.ndarray, temperature: float = 1.0) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits / temperature)`` against a boolean truth."""
    z, y = _checked(logits, truth, "logits")
    return _nll(z, np.ones_like(z), y.astype(np.float64), temperature)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that minimises :func:`binary_nll` (searched on a log scale in ``TEMPERATURE_RANGE``)."""
    z, y = _checked(logits, truth, "logits")
    return _fit(z, np.ones_like(z), y.astype(np.float64))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels`` (ties count half).

    Raises:
        ValueError: the labels are all one class (the area is undefined).
    """
    s, y = _checked(scores, labels, "scores")
    return _auroc(s, y.astype(np.float64), (~y).astype(np.float64))


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """The uncertainty map ``1 - |2p - 1|``: 1 where p = 0.5, 0 where p is 0 or 1."""
    return 1.0 - np.abs(2.0 * np.asarray(probabilities, dtype=np.float64) - 1.0)


def uncertainty_auroc(probabilities: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """How well the uncertainty map finds the pixels where ``mask`` differs from ``truth`` (AUROC)."""
    wrong = np.asarray(mask, dtype=bool) != np.asarray(truth, dtype=bool)
    return auroc(uncertainty(probabilities), wrong)


def calibrated_threshold(threshold: float, temperature: float) -> float:
    """The threshold on ``sigmoid(z / T)`` that gives the same mask as ``threshold`` on ``sigmoid(z)``."""
    if not 0.0 < threshold < 1.0 or not temperature > 0:
        raise ValueError(f"need 0 < threshold < 1 and temperature > 0; got {threshold}, {temperature}")
    return float(_sigmoid(np.log(threshold / (1.0 - threshold)) / temperature))


def temper(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / T)`` as float32: probabilities at a temperature (the same array at T = 1).
    Saturated inputs (exactly 0 or 1 in float32) are read as 1e-12 from the end."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if temperature == 1.0:
        return probabilities
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    return _sigmoid(np.log(p / (1.0 - p)) / temperature).astype(np.float32)


@dataclass
class CalibrationCounts:
    """Pixel counts of a data set in fine logit bins: all pixels, lesion pixels and wrong
    pixels per bin. Add images with :meth:`add`; read the numbers at any temperature."""

    total: np.ndarray = field(default_factory=lambda: np.zeros(_N_FINE, np.int64))
    lesion: np.ndarray = field(default_factory=lambda: np.zeros(_N_FINE, np.int64))
    wrong: np.ndarray = field(default_factory=lambda: np.zeros(_N_FINE, np.int64))

    def add(self, logits: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> None:
        """Count one image: its logits, expert mask and predicted mask (all the same shape)."""
        z, y = _checked(logits, truth, "logits")
        m = np.asarray(mask, dtype=bool).ravel()
        if m.size != z.size:
            raise ValueError(f"mask has {m.size} pixels, logits {z.size}; expected the same shape")
        index = np.clip(((z + LOGIT_LIMIT) / LOGIT_STEP).astype(np.int64), 0, _N_FINE - 1)
        self.total += np.bincount(index, minlength=_N_FINE)
        self.lesion += np.bincount(index[y], minlength=_N_FINE)
        self.wrong += np.bincount(index[m != y], minlength=_N_FINE)

    def __add__(self, other: "CalibrationCounts") -> "CalibrationCounts":
        return CalibrationCounts(self.total + other.total, self.lesion + other.lesion, self.wrong + other.wrong)

    @property
    def n_pixels(self) -> int:
        return int(self.total.sum())

    @property
    def logits(self) -> np.ndarray:
        """The logit at the centre of each fine bin (the value its pixels are read as)."""
        return _CENTRES

    def reliability(self, temperature: float = 1.0, n_bins: int = N_BINS) -> Reliability:
        full = self.total > 0
        return _reliability(_sigmoid(_CENTRES[full] / temperature), self.total[full], self.lesion[full], n_bins)

    def ece(self, temperature: float = 1.0, n_bins: int = N_BINS) -> float:
        return self.reliability(temperature, n_bins).ece

    def nll(self, temperature: float = 1.0) -> float:
        full = self.total > 0
        return _nll(_CENTRES[full], self.total[full], self.lesion[full], temperature)

    def fit_temperature(self) -> float:
        full = self.total > 0
        return _fit(_CENTRES[full], self.total[full], self.lesion[full])

    def uncertainty_auroc(self, centre: float = 0.0) -> float:
        """AUROC of the uncertainty map against the wrong pixels (the same at every temperature).
        ``centre``: the logit where uncertainty peaks (0: p = 0.5, the map's; the logit of the
        mask threshold asks how well nearness to the decision finds errors)."""
        full = self.total > 0
        score = -np.round(np.abs(_CENTRES[full] - centre), 6)  # higher = more uncertain; ties share a score
        return _auroc(score, self.wrong[full], self.total[full] - self.wrong[full])

    def summary(self, temperature: float = 1.0, n_bins: int = N_BINS) -> dict:
        """ECE, MCE and NLL at ``temperature`` (and at 1, when it is not 1), the uncertainty
        AUROC, and the share of wrong pixels."""
        table = self.reliability(temperature, n_bins)
        out = {"ece": table.ece, "mce": table.mce, "nll": self.nll(temperature), "temperature": float(temperature)}
        if temperature != 1.0:
            out.update(ece_uncalibrated=self.ece(1.0, n_bins), nll_uncalibrated=self.nll(1.0))
        wrong = int(self.wrong.sum())
        out["uncertainty_auroc"] = self.uncertainty_auroc() if 0 < wrong < self.n_pixels else None  # no errors, or only errors
        out.update(error_rate=wrong / max(1, self.n_pixels), n_bins=n_bins, n_pixels=self.n_pixels)
        return out


_N_FINE = int(round(2 * LOGIT_LIMIT / LOGIT_STEP))
_CENTRES = (np.arange(_N_FINE) + 0.5) * LOGIT_STEP - LOGIT_LIMIT


def _checked(values: np.ndarray, truth: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(truth).astype(bool).ravel()
    if v.size != y.size:
        raise ValueError(f"{name} have {v.size} values but the truth has {y.size}; expected the same shape")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return v, y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def _reliability(p: np.ndarray, n: np.ndarray, positive: np.ndarray, n_bins: int) -> Reliability:
    """Reliability of weighted points: ``n`` pixels at probability ``p``, ``positive`` of them lesion."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)  # p = 1 joins the last bin
    count = np.bincount(index, weights=n, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=n * p, minlength=n_bins) / count
        frequency = np.bincount(index, weights=positive, minlength=n_bins) / count
    return Reliability(edges, count, confidence, frequency)


def _nll(z: np.ndarray, n: np.ndarray, positive: np.ndarray, temperature: float) -> float:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    x = z / temperature  # -log sigmoid(x) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x)
    loss = positive * np.logaddexp(0.0, -x) + (n - positive) * np.logaddexp(0.0, x)
    return float(loss.sum() / n.sum())


def _fit(z: np.ndarray, n: np.ndarray, positive: np.ndarray) -> float:
    """Golden-section search of log T (the NLL is convex in 1 / T, so unimodal in log T)."""
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = _nll(z, n, positive, np.exp(a)), _nll(z, n, positive, np.exp(b))
    while high - low > 1e-5:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = _nll(z, n, positive, np.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _nll(z, n, positive, np.exp(b))
    return float(np.exp((low + high) / 2.0))


def _auroc(score: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """AUROC of weighted points (``positive`` and ``negative`` counts at each score); ties count half."""
    keys, inverse = np.unique(score, return_inverse=True)
    pos = np.bincount(inverse, weights=positive, minlength=len(keys))
    neg = np.bincount(inverse, weights=negative, minlength=len(keys))
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        raise ValueError("AUROC needs both classes; the labels are all one class")
    below = np.cumsum(neg) - neg  # negatives with a strictly lower score
    return float(np.sum(pos * (below + 0.5 * neg)) / (total_pos * total_neg))
