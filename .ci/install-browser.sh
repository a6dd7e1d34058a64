#!/usr/bin/env bash
# Installs Debian's Chromium for the report's browser e2e test (test/e2e/report.test.ts drives it with
# playwright-core; no browser is downloaded by npm). Skips when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y chromium
/usr/bin/chromium --version
