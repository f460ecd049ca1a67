#!/usr/bin/env bash
# Reproduce the shipped models from ../shared/data/isic2018_task1_512 (dev_train for
# training, dev_val for selection), then copy them into the package.
# Each step resumes where it stopped if interrupted; run it again to continue.
# On 2 CPU cores: base about 75 minutes, dice1 about 8, artefacts about 15, each variant about 6,
# each evaluation about 1.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
mkdir -p runs
[[ -f runs/base/bundle/card.json ]] || $py -m training --config training/configs/base.yaml 2>&1 | tee -a runs/base.log
for stage in dice1 artefacts; do  # the first Dice stage, then 12 epochs with painted artefacts (issue 11)
  [[ -f runs/$stage/bundle/card.json ]] || $py -m training --config training/configs/$stage.yaml 2>&1 | tee -a runs/$stage.log
done
for variant in dice balanced recall; do
  [[ -f runs/$variant/bundle/card.json ]] || $py -m training --config training/configs/$variant.yaml 2>&1 | tee -a runs/$variant.log
  $py -m training.evaluate --run runs/$variant 2>&1 | tee -a runs/$variant.eval.log
done
bash training/ship.sh
