#!/usr/bin/env bash
# Host tools real SkyPilot needs in the SkyPilot lab (tests/skypilot): `sky launch` refuses to
# run without rsync, and `sky check kubernetes` wants socat and nc for its port-forward
# networking. Idempotent: installs only what is missing (Debian packages; needs root or sudo).
set -euo pipefail
declare -A package=([rsync]=rsync [socat]=socat [nc]=netcat-openbsd)
missing=()
for tool in rsync socat nc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "installing ${missing[*]} (for the SkyPilot lab)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
