#!/usr/bin/env bash
# Installs what the WebGPU tests need (test/unit/webgpu.test.ts, test/e2e/webgpu_browser.test.ts) on
# Debian: libvulkan1, the Vulkan loader that Dawn for Node (the `webgpu` npm package) opens. The Vulkan
# driver is SwiftShader's, shipped inside Debian's chromium package (installed by .ci/install-browser.sh,
# run here too if chromium is missing); the caller selects it with
#   export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
# Mesa's lavapipe (mesa-vulkan-drivers) in Debian 12 is too old for Dawn, so it is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then bash .ci/install-browser.sh; fi
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  echo "install-webgpu: libvulkan1 already installed"
else
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends libvulkan1
fi
test -f /usr/lib/chromium/vk_swiftshader_icd.json || { echo "install-webgpu: SwiftShader ICD missing (chromium package)" >&2; exit 1; }
echo "install-webgpu: ready (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)"
