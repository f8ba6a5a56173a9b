#!/usr/bin/env bash
# Build the local Debian bookworm base image (python3 3.11, venv, ca-certificates, curl) with
# debootstrap + `docker import`, for machines that cannot pull python:3.11-slim.
#
# usage: docker/build-base-image.sh [IMAGE]        default IMAGE: local/bookworm-python:3.11
# env:   DOCKER_HOST         the engine to import into (see docker/dockerd-start.sh)
#        BASE_CACHE_DIR      where the root-fs tarball is kept (default <repo>/build/docker)
#        DEBIAN_MIRROR       default http://deb.debian.org/debian
# prints the image name on stdout. Needs root and the debootstrap package.
#
# Cached twice: the tarball (reused across engines; delete it to refresh packages) and the
# image (skipped when the engine already has IMAGE built from the same recipe).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${1:-local/bookworm-python:3.11}"
cache_dir="${BASE_CACHE_DIR:-$repo_root/build/docker}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
include=python3,python3-venv,ca-certificates,curl
recipe="debootstrap --variant=minbase --include=$include $suite"
recipe_id="$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"
tarball="$cache_dir/$suite-minbase-$recipe_id.tar"

if [[ "$(docker image inspect -f '{{ index .Config.Labels "local.base.recipe" }}' "$image" 2>/dev/null)" == "$recipe_id" ]]; then
  echo "build-base-image: $image already present (recipe $recipe_id)" >&2
  echo "$image"; exit 0
fi

mkdir -p "$cache_dir"
# Two sessions (say, two test runs) may build at once: one debootstrap, the other waits.
exec 9>"$cache_dir/.base-image.lock"
flock 9

if [[ ! -f "$tarball" ]]; then
  command -v debootstrap >/dev/null || { echo "build-base-image: needs debootstrap (apt-get install -y debootstrap)" >&2; exit 1; }
  mkdir -p "$cache_dir"
  rootfs="$(mktemp -d "$cache_dir/rootfs.XXXXXX")"
  cleanup() {
    # debootstrap mounts proc/sys inside the target; never rm -rf through a live mount.
    awk -v d="$rootfs" 'index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    rm -rf "$rootfs" "$rootfs.tar"
  }
  trap cleanup EXIT
  echo "build-base-image: $recipe -> $tarball" >&2
  debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  # Same sources an official image has, so `apt-get install` in builds gets security fixes.
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$rootfs.tar" .
  mv "$rootfs.tar" "$tarball"
fi

echo "build-base-image: docker import $tarball -> $image" >&2
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL local.base.recipe=$recipe_id" \
  --change 'CMD ["bash"]' \
  "$tarball" "$image" >/dev/null
echo "$image"
