#!/usr/bin/env bash
# The paper's three RLBench runs on one node (GPUS GPUs, default 2), then their evaluation and the tables:
# joint (mirror.yaml), ARP alone (arp.yaml), ViCLIP alone (viclip.yaml); 25 test episodes x 3 per task.
#   GPUS=2 launch/rlbench_paper.sh [KEY=VALUE ...]        (extra overrides go to every training run)
set -euo pipefail
export GPUS=${GPUS:-2}
ROOT=${ROOT:-runs}
for exp in mirror arp viclip; do
  launch/torchrun.sh "configs/rlbench/${exp}.yaml" run.root="$ROOT" "$@"
done
for exp in mirror arp; do
  mirror eval --ckpt "$ROOT/rlbench-${exp}/checkpoints/last.ckpt" --tasks all --episodes 25 --repeats 3
done
mirror eval --ckpt "$ROOT/rlbench-viclip/checkpoints/last.ckpt" --repeats 0
mirror report "$ROOT"/rlbench-{mirror,arp,viclip} --out "$ROOT/rlbench-report"
