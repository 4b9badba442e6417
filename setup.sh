#!/usr/bin/env bash
# Create .venv with nnspec and its development tools (idempotent; safe to run again).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
.venv/bin/nnspec --version
# yaml-language-server, for the tests that judge the JSON Schema as an editor does (optional)
if command -v npm >/dev/null; then
    npm install --prefix tools/yaml-ls --no-audit --no-fund --silent || echo "setup: npm install of yaml-language-server failed; its tests will skip"
fi
