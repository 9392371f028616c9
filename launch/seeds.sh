#!/usr/bin/env bash
# Joint vs separate training over seeds, each run evaluated on the test scenes, then the comparison.
#   launch/seeds.sh BENCHMARK EXPERIMENT... [-- KEY=VALUE ...]
#   launch/seeds.sh metaworld mirror arp viclip     (the Meta-World grid of the README)
#   launch/seeds.sh babyai mirror baseline
#   launch/seeds.sh metaworld pretrained/mirror pretrained/arp pretrained/viclip   (a folder of configs: runs are named
#   metaworld-pretrained-mirror-seed<N>, the report goes to runs/metaworld-pretrained-seeds)
# For every seed and experiment: `mirror train configs/BENCHMARK/EXPERIMENT.yaml` as runs/BENCHMARK-EXPERIMENT-seed<N>,
# then `mirror eval` of its last checkpoint on the test scenes (and, for the experiments listed in TWIN, once more
# with each episode of the TWIN_TASKS told its twin task's instruction, and for those in PARAPHRASE once more with
# each episode told its instruction's held-out paraphrase); finally `mirror report` over all runs into
# OUT (runs/BENCHMARK-seeds), the first experiment compared with each other one over the runs (the seed as the unit,
# paired by seed). Extra overrides after `--` go to every run. PRETRAIN=EXP trains (and evaluates) configs/BENCHMARK/EXP.yaml
# once first, as ROOT/BENCHMARK-EXP (e.g. runs/metaworld-pretrained-u), for the configs that start from its checkpoint:
#   PRETRAIN=pretrained/u launch/seeds.sh metaworld pretrained/mirror pretrained/arp pretrained/viclip
# JOBS=3 runs three (seed, experiment) runs at a time (with
# `-- trainer.threads=1` on 2 cores). Re-running the same command continues where it stopped: finished runs and
# evaluations are kept, so a grid that shares runs with another (the same name) reuses them.
set -euo pipefail
MIRROR=${MIRROR:-mirror}
ROOT=${ROOT:-runs}
SEEDS=${SEEDS:-0 1 2}
JOBS=${JOBS:-1}
TWIN=${TWIN:-}
TWIN_TASKS=${TWIN_TASKS:-all}
PARAPHRASE=${PARAPHRASE:-}
PRETRAIN=${PRETRAIN:-}
# Jobs side by side share the cores: OpenMP threads that spin while they wait would take them from each other.
if (( JOBS > 1 )); then export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}; fi
bench=${1:?usage: launch/seeds.sh BENCHMARK EXPERIMENT... [-- KEY=VALUE ...]}
shift
exps=()
while [[ $# -gt 0 && $1 != "--" ]]; do exps+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
label() { echo "${bench}-${1//\//-}"; }  # configs/BENCHMARK/FOLDER/EXP.yaml -> BENCHMARK-FOLDER-EXP
folder=$([[ ${exps[0]} == */* ]] && echo "-${exps[0]%%/*}" || true)
OUT=${OUT:-$ROOT/${bench}${folder}-seeds}

one_run() {
  local seed=$1 exp=$2 name ckpt
  shift 2
  name="$(label "$exp")-seed${seed}"
  "$MIRROR" train "configs/${bench}/${exp}.yaml" seed="$seed" run.root="$ROOT" run.name="$name" resume=auto "$@"
  ckpt="$ROOT/$name/checkpoints/last.ckpt"
  "$MIRROR" eval --ckpt "$ckpt" --reuse  # kept when it evaluated this step already
  if [[ " $TWIN " == *" $exp "* ]]; then
    "$MIRROR" eval --ckpt "$ckpt" --reuse --twin --tasks $TWIN_TASKS
  fi
  if [[ " $PARAPHRASE " == *" $exp "* ]]; then
    "$MIRROR" eval --ckpt "$ckpt" --reuse --paraphrase
  fi
}

if [[ -n $PRETRAIN ]]; then
  "$MIRROR" train "configs/${bench}/${PRETRAIN}.yaml" run.root="$ROOT" run.name="$(label "$PRETRAIN")" resume=auto "$@"
  "$MIRROR" eval --ckpt "$ROOT/$(label "$PRETRAIN")/checkpoints/last.ckpt" --reuse
fi
runs=()
pids=()
for seed in $SEEDS; do
  for exp in "${exps[@]}"; do
    runs+=("$ROOT/$(label "$exp")-seed${seed}")
    if (( JOBS > 1 )); then
      one_run "$seed" "$exp" "$@" &
      pids+=($!)
      while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || { kill "${pids[@]}" 2>/dev/null; exit 1; }; done
    else
      one_run "$seed" "$exp" "$@"
    fi
  done
done
for pid in "${pids[@]}"; do wait "$pid"; done
compare=()
for exp in "${exps[@]:1}"; do compare+=(--compare "$(label "${exps[0]}")" "$(label "$exp")"); done
"$MIRROR" report "${runs[@]}" "${compare[@]}" --out "$OUT"
