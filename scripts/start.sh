#!/usr/bin/env bash
# Quick start: set up, train a model if none is registered, then serve it with the drawing page.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
export TF_CPP_MIN_LOG_LEVEL=2

if ! python -c "from training.data import load_mnist; load_mnist()" 2>/dev/null; then
  echo "==> MNIST not found locally (MNIST_DIR, ./data/mnist, ../shared/data/mnist): downloading it"
  demnistify download-data
fi
if python -c "import sys; from registry.client import connect, get_alias; sys.exit(get_alias(connect()) is None)"; then
  echo "==> A promoted model is registered:"
  demnistify models
else
  echo "==> No promoted model is registered yet: training the quick profile (about 5 minutes on 2 idle cores)"
  demnistify train --profile quick
fi
echo "==> Starting the server (Ctrl-C stops it)"
exec demnistify serve "$@"
