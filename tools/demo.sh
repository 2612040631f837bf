#!/usr/bin/env bash
# The main job on its embedded default: set up .venv if needed, then run the demo.
#   bash tools/demo.sh [--skip-setup] [tools/demo.py options]
# --skip-setup: use the existing .venv as it is (no setup_env.sh run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [[ "${1:-}" == "--skip-setup" ]]; then
    shift
    [[ -x "$ROOT/.venv/bin/python" ]] || { echo "--skip-setup: no $ROOT/.venv" >&2; exit 1; }
else
    bash "$ROOT/tools/setup_env.sh"
fi
cd "$ROOT"
exec "$ROOT/.venv/bin/python" tools/demo.py "$@"
