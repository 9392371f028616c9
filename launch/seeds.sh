#!/usr/bin/env bash
# Joint vs separate training over 3 seeds, then the comparison table (`mirror report`, mean +- std over seeds).
#   launch/seeds.sh BENCHMARK EXPERIMENT... [-- KEY=VALUE ...]
#   launch/seeds.sh babyai mirror baseline        (~9 min per run on 2 cores)
#   launch/seeds.sh metaworld mirror arp          (the CPU default; see the README's Meta-World results)
# Runs configs/BENCHMARK/EXPERIMENT.yaml as runs/BENCHMARK-EXPERIMENT-seed<N>; extra overrides after `--` go to
# every run. Interrupted runs resume where they stopped.
set -euo pipefail
MIRROR=${MIRROR:-mirror}
ROOT=${ROOT:-runs}
SEEDS=${SEEDS:-0 1 2}
bench=${1:?usage: launch/seeds.sh BENCHMARK EXPERIMENT... [-- KEY=VALUE ...]}
shift
exps=()
while [[ $# -gt 0 && $1 != "--" ]]; do exps+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
runs=()
for seed in $SEEDS; do
  for exp in "${exps[@]}"; do
    name="${bench}-${exp}-seed${seed}"
    "$MIRROR" train "configs/${bench}/${exp}.yaml" seed="$seed" run.root="$ROOT" run.name="$name" resume=auto "$@"
    runs+=("$ROOT/$name")
  done
done
"$MIRROR" report "${runs[@]}" --out "$ROOT/${bench}-seeds"
