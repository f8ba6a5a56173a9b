#!/usr/bin/env bash
# Installs the system programs the stack and its tests start for real, when missing:
# nginx (the public port), chromium (browser tests), docker.io + debootstrap (container
# tests; docker-registry for the Swarm test), prometheus (metrics). Usage:
# scripts/install-system-deps.sh [nginx] [chromium] [docker] [prometheus]
set -euo pipefail

declare -A PACKAGES=(
  [nginx]="nginx"
  [chromium]="chromium fonts-wqy-microhei"
  [docker]="docker.io debootstrap docker-registry"
  [prometheus]="prometheus"
)
declare -A PROBES=(
  [nginx]="/usr/sbin/nginx"
  [chromium]="/usr/bin/chromium"
  [docker]="/usr/sbin/dockerd /usr/sbin/debootstrap /usr/bin/docker-registry"
  [prometheus]="/usr/bin/prometheus"
)

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(nginx chromium docker prometheus)
missing=()
for name in "${wanted[@]}"; do
  for probe in ${PROBES[$name]}; do
    if [ ! -x "$probe" ]; then missing+=(${PACKAGES[$name]}); break; fi
  done
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "install-system-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts no nginx/docker service in containers; if one did start, our own
# instances use their own ports and prefixes, so it is left alone.
