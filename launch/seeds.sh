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
# KEEP=DIR, a folder that outlives the machine (e.g. results/ in the repository): each run, once evaluated, is copied
# there without its checkpoints, videos and W&B files (the pre-training run with its last checkpoint, which the
# other runs start from); a run found there is not run again, the report reads the copies, and a fresh machine
# continues the grid from them with the same command.
set -euo pipefail
MIRROR=${MIRROR:-mirror}
ROOT=${ROOT:-runs}
SEEDS=${SEEDS:-0 1 2}
JOBS=${JOBS:-1}
TWIN=${TWIN:-}
TWIN_TASKS=${TWIN_TASKS:-all}
PARAPHRASE=${PARAPHRASE:-}
PRETRAIN=${PRETRAIN:-}
KEEP=${KEEP:-}
# Jobs side by side share the cores: OpenMP threads that spin while they wait would take them from each other.
if (( JOBS > 1 )); then export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}; fi
bench=${1:?usage: launch/seeds.sh BENCHMARK EXPERIMENT... [-- KEY=VALUE ...]}
shift
exps=()
while [[ $# -gt 0 && $1 != "--" ]]; do exps+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
label() { echo "${bench}-${1//\//-}"; }  # configs/BENCHMARK/FOLDER/EXP.yaml -> BENCHMARK-FOLDER-EXP
folder=$([[ ${exps[0]} == */* ]] && echo "-${exps[0]%%/*}" || true)
OUT=${OUT:-${KEEP:-$ROOT}/${bench}${folder}-seeds}

keep() {  # ROOT/NAME -> KEEP/NAME, whole or not at all; CKPT=1 keeps its last checkpoint too
  local name=$1 part="$KEEP/.$1.partial"
  rm -rf "$part" && mkdir -p "$part"
  tar -C "$ROOT/$name" --exclude=./checkpoints --exclude=videos --exclude=wandb -cf - . | tar -C "$part" -xf -
  if [[ ${CKPT:-} == 1 ]]; then mkdir "$part/checkpoints" && cp "$ROOT/$name/checkpoints/last.ckpt" "$part/checkpoints/"; fi
  rm -rf "${KEEP:?}/$name" && mv "$part" "$KEEP/$name"
}

one_run() {
  local seed=$1 exp=$2 name ckpt
  shift 2
  name="$(label "$exp")-seed${seed}"
  if [[ -n $KEEP && -d $KEEP/$name ]]; then echo "$KEEP/$name: done on an earlier machine, kept; not run again"; return; fi
  "$MIRROR" train "configs/${bench}/${exp}.yaml" seed="$seed" run.root="$ROOT" run.name="$name" resume=auto "$@"
  ckpt="$ROOT/$name/checkpoints/last.ckpt"
  "$MIRROR" eval --ckpt "$ckpt" --reuse  # kept when it evaluated this step already
  if [[ " $TWIN " == *" $exp "* ]]; then
    "$MIRROR" eval --ckpt "$ckpt" --reuse --twin --tasks $TWIN_TASKS
  fi
  if [[ " $PARAPHRASE " == *" $exp "* ]]; then
    "$MIRROR" eval --ckpt "$ckpt" --reuse --paraphrase
  fi
  if [[ -n $KEEP ]]; then keep "$name"; fi
}

if [[ -n $PRETRAIN ]]; then
  pre=$(label "$PRETRAIN")
  if [[ -n $KEEP && -f $KEEP/$pre/checkpoints/last.ckpt && ! -e $ROOT/$pre ]]; then
    mkdir -p "$ROOT" && cp -r "$KEEP/$pre" "$ROOT/$pre"  # the same pre-trained start for every run of the grid
  fi
  "$MIRROR" train "configs/${bench}/${PRETRAIN}.yaml" run.root="$ROOT" run.name="$pre" resume=auto "$@"
  "$MIRROR" eval --ckpt "$ROOT/$pre/checkpoints/last.ckpt" --reuse
  if [[ -n $KEEP && ! -d $KEEP/$pre ]]; then CKPT=1 keep "$pre"; fi
fi
runs=()
pids=()
for seed in $SEEDS; do
  for exp in "${exps[@]}"; do
    runs+=("${KEEP:-$ROOT}/$(label "$exp")-seed${seed}")
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
