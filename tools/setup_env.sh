#!/usr/bin/env bash
# Create (or reuse) the project-local virtualenv `.venv` with the pinned OpenMMLab stack.
# Idempotent: a second run only checks a stamp. mmcv 2.1.0 is built from source once
# (C++20 for torch 2.14 headers) and its wheel cached in $EVA_CACHE_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
CACHE="${EVA_CACHE_DIR:-$HOME/.cache/eva-openmmlab}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.eva-stamp"
REQ_HASH="$(cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$0" | sha256sum | cut -c1-16)"

# Headless Chromium for the web demo's browser test (tests/deployment/test_gradio_demo.py): Debian's
# chromium + chromium-driver, only as root with apt-get and only when missing. A failure
# here does not stop the setup (that test then says why it is skipped).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  echo "[setup_env] installing chromium and chromium-driver (apt-get)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "[setup_env] warning: apt-get could not install chromium; the browser test will be skipped"
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQ_HASH" ]; then
  exit 0
fi
mkdir -p "$CACHE/wheels"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
$PIP install -q -r "$ROOT/requirements/build.txt"
$PIP install -q torch==2.14.1 torchvision==0.29.1

WHEEL="$(ls "$CACHE"/wheels/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$WHEEL" ]; then
  echo "[setup_env] building mmcv ${MMCV_VERSION} with ops from source (one time, ~20 min on 2 cores)"
  BUILD="$(mktemp -d)"
  $PIP download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" "mmcv==${MMCV_VERSION}"
  tar -xzf "$BUILD"/mmcv-${MMCV_VERSION}.tar.gz -C "$BUILD"
  SRC="$BUILD/mmcv-${MMCV_VERSION}"
  # torch >= 2.6 headers refuse anything below C++20.
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SRC/setup.py"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    $PIP wheel -q --no-build-isolation --no-deps -w "$CACHE/wheels" "$SRC"
  rm -rf "$BUILD"
  WHEEL="$(ls "$CACHE"/wheels/mmcv-${MMCV_VERSION}-*.whl | head -n1)"
fi
$PIP install -q --no-deps "$WHEEL"
# mmcv's own runtime deps (not installed with --no-deps)
$PIP install -q addict packaging Pillow pyyaml yapf numpy
$PIP install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
# Exactly one OpenCV (opencv-python-headless, pinned in runtime.txt): opencv-python (wanted by
# mmengine, lvis) and opencv-contrib-python (mmaction2) ship the same cv2/ and overwrite it, so
# those three are installed without dependencies; a venv made before this keeps none of them.
$PIP install -q --no-deps -r "$ROOT/requirements/nodeps.txt"
if $PIP show opencv-python >/dev/null 2>&1 || $PIP show opencv-contrib-python >/dev/null 2>&1; then
  $PIP uninstall -q -y opencv-python opencv-contrib-python || true
  # the uninstall removed the cv2/ files the kept distribution shares with them
  $PIP install -q --no-deps --force-reinstall "$(grep '^opencv-python-headless==' "$ROOT/requirements/runtime.txt")"
fi
# DeepSpeed builds from an sdist that imports torch: against the installed torch, no ops
DS_BUILD_OPS=0 $PIP install -q --no-build-isolation -r "$ROOT/requirements/distributed.txt"
$PIP install -q --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, mmpretrain; from projects.eva import compat; compat.apply(); import mmaction.models"
echo "$REQ_HASH" > "$STAMP"
echo "[setup_env] ready: $VENV"
