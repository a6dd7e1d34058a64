#!/usr/bin/env bash
# Run ON the NVIDIA H100/H200 machine (no Node, no network), in the repository root, with .gl/ and dist/
# carried from bench/gpu_prepare.sh. Unpacks libvulkan1, Node and Dawn for Node, points Vulkan at the
# NVIDIA driver, and runs bench/gpu.mjs (normkit WebGPU vs PyTorch CUDA, same run, same card).
# Extra arguments go to bench/gpu.mjs (e.g. --cases ln,bn). Results: $OUT/gpu-bench.{txt,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp}"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ ! -f "$VK_DRIVER_FILES" ]; then
    VK_DRIVER_FILES="$(find /usr/local/nvidia /usr/share/vulkan /etc/vulkan -name 'nvidia_icd*.json' 2>/dev/null | head -1 || true)"
  fi
fi
export VK_DRIVER_FILES
unset VK_ICD_FILENAMES
echo "gpu_remote: VK_DRIVER_FILES=$VK_DRIVER_FILES"
xz -dc .gl/node.xz > /tmp/node
chmod +x /tmp/node
mkdir -p node_modules/webgpu/dist/linux-x64
tar -xf .gl/webgpu.tar -C node_modules/webgpu
xz -dc .gl/dawn.node.xz > node_modules/webgpu/dist/linux-x64/dawn.node
nvidia-smi -L 2>/dev/null || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 || true
/tmp/node bench/gpu.mjs --json "$OUT/gpu-bench.json" "$@" 2>&1 | tee "$OUT/gpu-bench.txt"
