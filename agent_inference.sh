#!/usr/bin/env bash
# Single-prompt batch mode on N processes (default 1): bash agent_inference.sh [N] [extra flags]
set -euo pipefail
cd "$(dirname "$0")"
N="${1:-1}"; shift || true
PY="${PYTHON:-.venv/bin/python}"
if [ "$N" -gt 1 ]; then
  exec "$PY" -m torch.distributed.run --nproc_per_node="$N" agent_inference.py --config_path configs/agent_inference.yaml "$@"
fi
exec "$PY" agent_inference.py --config_path configs/agent_inference.yaml "$@"
