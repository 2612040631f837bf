#!/usr/bin/env bash
# The prepared device check for a lent GPU machine (one H100 / H200, Python 3.12 + torch +
# timm, no OpenMMLab packages, no network): installs the carried wheels (built here by
# tools/analysis_tools/gpu_wheels.sh), then writes ONE markdown table (CUDA correctness,
# backbone speed vs timm, the g/14 MIM step's MFU, measured vs estimated memory) to
# $OUT/gpu_check.md, rewritten after every row, and the log beside it.
#
#   tools/analysis_tools/gpu_check.sh --wheels work_dirs/gpu_wheels [--budget 420] \
#       [--sections correctness speed mim memory]          # on the device machine
#   tools/analysis_tools/gpu_check.sh --dry-run            # CPU, toy sizes: checks the code
#
# Other options are those of tools/analysis_tools/gpu_check.py; docs/performance.md says how
# to run it through the device tool.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
WHEELS=
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) WHEELS=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [[ -n $WHEELS ]]; then
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  if [[ ${#wheels[@]} -eq 0 ]]; then
    echo "[gpu_check] no wheels in $WHEELS (build them with tools/analysis_tools/gpu_wheels.sh" \
         "and carry the folder)" >&2
    exit 2
  fi
  SITE=$(mktemp -d "${TMPDIR:-/tmp}/eva_gpu_site.XXXXXX")
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target "$SITE" "${wheels[@]}" || exit 2
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
OUTDIR=${OUT:-work_dirs/gpu_check}   # the device tool sets OUT: what is under it comes back
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
"$PYTHON" tools/analysis_tools/gpu_check.py --out "$OUTDIR/gpu_check.md" "${args[@]}" \
  2>&1 | tee "$OUTDIR/gpu_check.log"
