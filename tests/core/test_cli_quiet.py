"""The ``glassbox`` command prints its own lines only: none of TensorFlow's C++ start-up notices."""

from __future__ import annotations

import os
import subprocess
import sys

from data_paths import NATIVE

NOISE = ("absl", "oneDNN", "cuda", "cpu_feature_guard", "I0000", "E0000", "W0000")


def test_explain_prints_no_tensorflow_start_up_lines(tiny_bundle, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}  # the command must quieten TensorFlow itself
    run = subprocess.run([sys.executable, "-m", "glassbox_xai.cli", "explain", str(NATIVE / "ISIC_0010459.jpg"), "-o", str(tmp_path),
                          "--model", str(tiny_bundle), "--method", "confidence"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    for noise in NOISE:
        assert noise not in run.stderr and noise not in run.stdout, f"{noise!r} printed:\n{run.stderr}"
