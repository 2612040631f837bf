#!/usr/bin/env bash
# The test suite: set up .venv if needed, then run pytest on CPU.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests -q "$@"
