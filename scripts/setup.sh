#!/usr/bin/env bash
# Set up GlassBox-XAI in ./.venv (Python 3.11): the package, napari with a Qt
# binding, and, with --testing, the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="all"
[[ "${1:-}" == "--testing" ]] && extras="all,testing"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" - <<'PY' || { echo "setup: GlassBox-XAI needs Python 3.11 or 3.12 (found $($python --version))" >&2; exit 1; }
import sys; raise SystemExit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)
PY
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[$extras]"
echo "setup: installed glassbox-xai[$extras] into .venv ($(.venv/bin/python --version))"
