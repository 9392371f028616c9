#!/usr/bin/env bash
# The paper's Table 3 grid, one torchrun job after another on one node: positives (episode, instruction, task)
# x temperature (0.02, 0.1, 0.2). Every run is in W&B group `table3` with its settings as tags.
#   GPUS=2 launch/rlbench_ablation.sh [KEY=VALUE ...]
set -euo pipefail
export GPUS=${GPUS:-2}
ROOT=${ROOT:-runs}
runs=()
for positives in episode instruction task; do
  for tau in 0.02 0.1 0.2; do
    name="rlbench-${positives}-tau${tau}"
    launch/torchrun.sh configs/rlbench/mirror.yaml run.root="$ROOT" run.name="$name" align.positives="$positives" \
      align.tau="$tau" wandb.group=table3 "wandb.tags=[rlbench,table3,positives-${positives},tau-${tau}]" "$@"
    mirror eval --ckpt "$ROOT/$name/checkpoints/last.ckpt" --tasks all --episodes 25 --repeats 3
    runs+=("$ROOT/$name")
  done
done
mirror report "${runs[@]}" --out "$ROOT/rlbench-table3"
