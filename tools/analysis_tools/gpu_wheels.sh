#!/usr/bin/env bash
# Builds the wheel folder that tools/analysis_tools/gpu_check.sh installs on a lent GPU machine
# (Python 3.12, torch 2.11 + CUDA, timm; no OpenMMLab packages and no network there):
# the pure-Python OpenMMLab packages the check imports, at the versions of this project's venv,
# and mmcv built WITHOUT its compiled ops (MMCV_WITH_OPS=0 gives a py3 wheel named mmcv-lite;
# the check runs no mmcv op). Output: an ignored folder (default work_dirs/gpu_wheels) that the
# device tool's `carry` takes along; the script fails if it is over the size that travels.
#
#   tools/analysis_tools/gpu_wheels.sh [DEST]        # default work_dirs/gpu_wheels
#   PYTHON=.venv/bin/python MAX_MIB=16 tools/analysis_tools/gpu_wheels.sh
#
# Packages and why: mmengine (configs, registries, BaseModule), mmcv-lite (mmpretrain and
# mmdet import mmcv.cnn / mmcv.transforms), mmpretrain (EVAViT's registry, ImageClassifier,
# the MIM model's base), mmdet (only its config files: the detection configs inherit
# mmdet::_base_; no mmdet model is built, its heads need mmcv's compiled ops), and their small
# pure-Python dependencies that the device image does not have (its package list: the device
# tool's KINDS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
DEST=${1:-work_dirs/gpu_wheels}
MAX_MIB=${MAX_MIB:-16}   # of the 64 MiB that travel; the repository is the rest
PKGS=(mmengine mmpretrain mmdet addict termcolor yapf platformdirs mat4py modelindex
      model-index ordered-set importlib-metadata lazy-importer)

version() {  # the version installed in this project's venv: the one the tests ran against
  "$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"
}

rm -rf "$DEST"
mkdir -p "$DEST"
specs=()
for p in "${PKGS[@]}"; do specs+=("$p==$(version "$p")"); done
echo "[gpu_wheels] ${specs[*]}" >&2
# pure-Python wheels only (--only-binary): what this downloads runs on any CPython 3.12
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  -d "$DEST" "${specs[@]}"

MMCV=$(version mmcv)
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
"$PYTHON" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" \
  "mmcv==$MMCV"
tar -xzf "$BUILD/mmcv-$MMCV.tar.gz" -C "$BUILD"
MMCV_WITH_OPS=0 "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" \
  "$BUILD/mmcv-$MMCV"

for w in "$DEST"/*.whl; do
  case "$w" in
    *-none-any.whl) ;;
    *) echo "[gpu_wheels] not a pure-Python wheel: $w" >&2; exit 1 ;;
  esac
done
bytes=$(du -cb "$DEST"/*.whl | tail -n1 | cut -f1)
ls -l "$DEST" >&2
echo "[gpu_wheels] $(ls "$DEST" | wc -l) wheels, $((bytes / 1024)) KiB in $DEST" >&2
if (( bytes > MAX_MIB * 1024 * 1024 )); then
  echo "[gpu_wheels] $DEST is over ${MAX_MIB} MiB" >&2
  exit 1
fi
