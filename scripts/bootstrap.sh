#!/usr/bin/env bash
# Install what labkit needs on a fresh Debian/Ubuntu machine, idempotently:
#   system tools (apt) + a virtual environment .venv with labkit installed (editable).
# Usage: scripts/bootstrap.sh [course|test]    (test adds the test-only packages)
# Runs apt-get only for packages that are missing; uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-course}"

# Chapter 1: qemu-img, qemu-system-aarch64, the aarch64 UEFI firmware, and ipxe-qemu (only
# "recommended" by qemu-system-arm, but the course's -nic user,model=virtio-net-pci needs its
# efi-virtio.rom). apt-get (on every Debian/Ubuntu) also fetches the tiny test guest's kernel and
# busybox into labkit's own cache.
# Chapter 2: the Docker engine (Debian/Ubuntu docker.io) and busybox-static, from which labkit
# builds a local base image (no registry needed); debootstrap builds a Debian base with python3.
# Chapter 2b: docker-registry (the distribution registry) serves the local registry on a loopback
# port, like MicroK8s' localhost:32000.
# fonts-wqy-microhei: a CJK font, so Chinese labels render in the browser and in plots (without
# one every Chinese character is an empty box).
# zstd, lz4: chapter 3 measures their compression (labkit/steps/compression.py).
# iputils-ping, iperf3: chapter 3 pings peers and measures throughput over the virtual LAN.
# docker-compose: chapter 4 validates the Seafile compose file with it (`config -q`, Debian's v1)
# and starts it where the images are present (labkit/steps/seafile.py; `docker compose` v2 also
# works where only that exists).
pkgs=(qemu-utils qemu-system-arm qemu-efi-aarch64 ipxe-qemu ca-certificates python3-venv
      docker.io busybox-static debootstrap docker-registry fonts-wqy-microhei zstd lz4
      iputils-ping iperf3 docker-compose)
if [ "$what" = test ]; then
  pkgs+=(cpio chromium)  # cpio: checks labkit's initramfs writer; chromium: tests/test_browser.py
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  # --no-install-recommends: without it qemu pulls ~900 MB of GUI packages.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""; [ "$what" = test ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}" 2>&1 | grep -v "^WARNING: Location" || true
bash scripts/start-dockerd.sh || echo "bootstrap: no Docker engine: chapter 2 will only plan its steps"
.venv/bin/python -c "import labkit; print('bootstrap: labkit', labkit.__version__, 'ready in .venv')"
