#!/usr/bin/env bash
# One node, N GPUs (default: all visible), one process per GPU:
#   launch/torchrun.sh CONFIG [KEY=VALUE ...]          e.g. GPUS=2 launch/torchrun.sh configs/rlbench/mirror.yaml
# Re-running the same command continues the run (resume=auto) from the checkpoint of its latest step.
set -euo pipefail
CONFIG=${1:?usage: launch/torchrun.sh CONFIG [KEY=VALUE ...]}
shift
GPUS=${GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}
if [ "$GPUS" -lt 1 ]; then
  echo "launch/torchrun.sh: no GPU visible; set GPUS=N or run 'mirror train $CONFIG' directly" >&2
  exit 2
fi
exec torchrun --standalone --nproc_per_node="$GPUS" -m mirror train "$CONFIG" \
  trainer.accelerator=gpu trainer.devices="$GPUS" trainer.num_nodes=1 resume=auto "$@"
