#!/usr/bin/env bash
# Copy the evaluated variant bundles from runs/ into the package (src/glassbox_xai/weights/).
set -euo pipefail
cd "$(dirname "$0")/.."
for variant in dice balanced recall; do
  src=runs/$variant/bundle
  [[ -f $src/card.json ]] || { echo "ship: $src is missing; run training/reproduce.sh" >&2; exit 1; }
  rm -rf src/glassbox_xai/weights/$variant
  mkdir -p src/glassbox_xai/weights/$variant
  cp $src/model.keras $src/config.json $src/card.json src/glassbox_xai/weights/$variant/
done
du -sh src/glassbox_xai/weights/*
