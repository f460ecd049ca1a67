#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set up .venv with the test tools,
# install Xvfb and Mesa when missing, then run the model tests and the GUI tests
# as two pytest processes (TensorFlow and a napari viewer cannot share one).
# Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --testing
bash scripts/install_display.sh
export QT_QPA_PLATFORM=xcb
status=0
.venv/bin/python -m pytest tests/core "$@" || status=$?
.venv/bin/python -m pytest tests/gui "$@" || status=$?
exit $status
