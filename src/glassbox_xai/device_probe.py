"""The device the model will most likely run on, found without importing TensorFlow.

The napari process must never import TensorFlow (the model runs in a worker
process), yet a user should see at once whether a GPU will be used. NVIDIA's
driver lists its GPUs under ``/proc/driver/nvidia/gpus``; ``CUDA_VISIBLE_DEVICES``
can hide them. The worker reports the device it really uses after its first job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def gpu_models(root: Path = NVIDIA_GPUS) -> list[str]:
    """The model names of the NVIDIA GPUs the driver lists (empty without a driver)."""
    models = []
    for info in sorted(Path(root).glob("*/information")):
        try:
            lines = info.read_text(errors="replace").splitlines()
        except OSError:
            continue
        models += [line.split(":", 1)[1].strip() for line in lines if line.startswith("Model:")]
    return models


def likely_device(env: Mapping[str, str] | None = None, root: Path = NVIDIA_GPUS) -> str:
    """``"GPU (<model>)"`` when the driver lists a GPU that ``CUDA_VISIBLE_DEVICES`` does not hide, else ``"CPU"``."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "CPU (GPUs hidden by CUDA_VISIBLE_DEVICES)"
    models = gpu_models(root)
    return f"GPU ({models[0]})" if models else "CPU"
