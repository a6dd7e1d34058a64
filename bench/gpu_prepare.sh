#!/usr/bin/env bash
# Run HERE (a machine with Node, npm ci done, network for apt): packs into .gl/ what bench/gpu_remote.sh
# needs on an NVIDIA machine that has no Node.js and no network (../shared/anchors/WEBGPU.md's recipe):
#   .gl/libvulkan1_*.deb   the Vulkan loader (amd64)
#   .gl/node.xz            this Node binary, xz-compressed (the device copy limit counts raw bytes)
#   .gl/webgpu.tar         the webgpu package's JS entry (index.js, package.json)
#   .gl/dawn.node.xz       its linux-x64 dawn.node, compressed
# Then carry ".gl" and "dist" (npm run build first) to the device and run: bash bench/gpu_remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
mkdir -p .gl /tmp/amd64/partial
rm -f .gl/*.deb
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd .gl && apt-get $o download libvulkan1)
xz -T2 -6 -c "$(command -v node)" > .gl/node.xz
tar -cf .gl/webgpu.tar -C node_modules/webgpu package.json index.js
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gl/dawn.node.xz
test -f dist/src/webgpu.js || { echo "gpu_prepare: run npm run build first (dist/ is carried too)" >&2; exit 1; }
du -ch .gl/* dist | tail -1
echo "gpu_prepare: ready; carry [\".gl\", \"dist\"] and run: bash bench/gpu_remote.sh"
