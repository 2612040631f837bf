#!/usr/bin/env bash
# Usage: GPUS=128 GPUS_PER_NODE=8 tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
# One task per GPU through srun; mmengine's slurm launcher reads SLURM_PROCID / SLURM_NTASKS /
# SLURM_NODELIST (MASTER_PORT from PORT, default 29500). CPUS_PER_TASK (5) and SRUN_ARGS pass
# through, as in OpenMMLab's scripts.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}"
export PYTHONPATH="$ROOT:${PYTHONPATH:-}" MASTER_PORT="${PORT:-29500}"
# shellcheck disable=SC2086
exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 $SRUN_ARGS \
    "$PY" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "${@:4}"
