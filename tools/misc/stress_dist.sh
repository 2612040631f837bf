#!/usr/bin/env bash
# Usage: tools/misc/stress_dist.sh N [CONFIG] [dist_train.sh args...]   (not run in CI)
# N consecutive 2-process CPU/gloo runs of the MIM demo (4 iterations each, checkpoint at the
# end) through tools/dist_train.sh; every run must exit 0. Prints one line per run and a
# summary; logs of failed runs stay in $STRESS_DIR (default: a temporary folder).
set -uo pipefail
N=${1:?usage: tools/misc/stress_dist.sh N [CONFIG] [args...]}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CONFIG=${2:-$ROOT/configs/demo/eva-mim_vit-tiny-p14_1xb32-8e_shapes.py}
PY="${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}"
DIR=${STRESS_DIR:-$(mktemp -d)}
mkdir -p "$DIR"
PYTHONPATH="$ROOT" "$PY" -c "
import sys; from projects.eva.demo.synthetic import make_unlabeled_images
make_unlabeled_images(sys.argv[1] + '/data/train', num=32, size=112, seed=3)" "$DIR"
fails=0
for i in $(seq 1 "$N"); do
  log="$DIR/run_$i.log"
  PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])") \
  OMP_NUM_THREADS=1 PYTHONFAULTHANDLER=1 DS_ACCELERATOR=cpu PYTHON="$PY" \
    bash "$ROOT/tools/dist_train.sh" "$CONFIG" 2 --work-dir "$DIR/wd_$i" --cfg-options \
      train_dataloader.dataset.dataset.data_root="$DIR/data" train_dataloader.batch_size=8 \
      train_cfg.max_epochs=2 default_hooks.checkpoint.interval=2 "${@:3}" >"$log" 2>&1
  rc=$?
  aborted=$(grep -c 'terminate called' "$log" || true)
  echo "run $i: exit $rc, 'terminate called' lines: $aborted"
  if [ "$rc" -ne 0 ] || [ "$aborted" -ne 0 ]; then fails=$((fails + 1)); else rm -rf "$log" "$DIR/wd_$i"; fi
done
echo "stress_dist: $((N - fails))/$N runs clean (logs of failures in $DIR)"
[ "$fails" -eq 0 ]
