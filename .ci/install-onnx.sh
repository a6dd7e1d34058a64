#!/usr/bin/env bash
# Installs what test/unit/onnx.test.ts needs to run all of its checks (it skips them, saying why,
# without): Debian's python3-onnx (onnx.checker for scripts/check_onnx.py, under /usr/bin/python3) and
# onnxruntime-node in bench/node_modules (the benchmark's peer, bench/package.json; its CUDA download
# skipped). Called by .ci/run before `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if /usr/bin/python3 -c "import onnx" 2>/dev/null; then
  echo "install-onnx: python3-onnx already installed"
else
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends python3-onnx
fi
if [ -f bench/node_modules/onnxruntime-node/package.json ]; then
  echo "install-onnx: bench/node_modules/onnxruntime-node already installed"
else
  (cd bench && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-audit --no-fund)
fi
