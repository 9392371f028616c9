#!/usr/bin/env bash
# Joint (mirror) vs separate (baseline) training on BabyAI over 3 seeds, then the comparison table.
#   launch/babyai_seeds.sh [KEY=VALUE ...]      (extra overrides go to every run; ~10 min per run on 2 cores)
set -euo pipefail
MIRROR=${MIRROR:-mirror}
ROOT=${ROOT:-runs}
runs=()
for seed in 0 1 2; do
  for exp in mirror baseline; do
    name="babyai-${exp}-seed${seed}"
    "$MIRROR" train "configs/babyai/${exp}.yaml" seed="$seed" run.root="$ROOT" run.name="$name" resume=auto "$@"
    runs+=("$ROOT/$name")
  done
done
"$MIRROR" report "${runs[@]}" --out "$ROOT/babyai-seeds"
