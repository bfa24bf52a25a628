#!/usr/bin/env bash
# Quick start: set up, install the browser the page tests drive, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-packages.sh
export TF_CPP_MIN_LOG_LEVEL=2
echo "==> Lint (ruff check) and formatting (ruff format --check)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> Running the test suite"
exec .venv/bin/python -m pytest "$@"
