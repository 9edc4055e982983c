#!/usr/bin/env bash
# Sets up resnet-ts on a fresh Debian/Ubuntu machine: installs the system packages that
# are missing (only those), then the npm dependencies, the native addon and the build.
# Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# chromium drives the report tests (playwright-core, never a downloaded browser);
# fonts-dejavu-core gives the PNG plots stable glyphs; qemu-user runs the addon on emulated
# CPUs without AVX and without AVX-512 (test/install.test.ts).
for pkg in g++ make libdnnl-dev dataset-fashion-mnist chromium fonts-dejavu-core qemu-user; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# npm ci runs our install script, which builds the oneDNN addon.
# onnxruntime-node (a test-only peer) must not try to download extras.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
npm run build --silent
node dist/cli/main.js info >/dev/null
