#!/usr/bin/env bash
# One command for a CUDA machine (the project never needs one): the backbone table (bf16,
# SDPA flash / memory-efficient kernels, with and without checkpointing), a ViT-g/14 MIM
# training step (student + teacher) with images/s and MFU, a detection training step at
# 1280 and inference at 1536 with peak memory; writes one markdown table.
#
#   tools/analysis_tools/gpu_benchmark.sh [OUT.md] [--peak-tflops 989] [--skip mim] ...
#   tools/analysis_tools/gpu_benchmark.sh /tmp/dry.md --dry-run     # CPU, toy sizes
#
# Options are those of tools/analysis_tools/gpu_benchmark.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
OUT=work_dirs/gpu_benchmark.md
if [[ $# -gt 0 && $1 != --* ]]; then OUT=$1; shift; fi
"$PYTHON" tools/analysis_tools/gpu_benchmark.py --out "$OUT" "$@"
echo "table written to $OUT" >&2
