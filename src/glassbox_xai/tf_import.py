"""Importing TensorFlow quietly, and only where a model really runs.

TensorFlow's C++ start-up prints lines (CUDA probing, absl notices) straight to
file descriptor 2 before any Python logging is set up; they mean nothing to a
user of the ``glassbox`` command. This silences that descriptor during the first
import only. Python exceptions from the import still propagate.

Never call this in the napari process: TensorFlow imported after napari's GL
context exists crashes under Mesa GL drivers (the worker process imports it).
"""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """``import tensorflow`` with its C++ start-up chatter silenced; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow
