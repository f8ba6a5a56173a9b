#!/usr/bin/env bash
# Download every wheel the images need into one directory (a "wheelhouse") on the host, so
# image builds can install with `pip --no-index --find-links <served wheelhouse>` where pip
# inside a build cannot reach PyPI. On this kind of machine the host pip reads a local index,
# so this is mostly a local copy.
#
# usage: docker/build-wheelhouse.sh [DEST] [REQUIREMENTS_FILE...]
#   DEST  default <repo>/build/docker/wheelhouse
#   files default: docker/torch-requirements.txt and services/*/requirements.txt
# env:   PYTHON  interpreter whose pip downloads (default python3; must be CPython 3.11 on
#                x86-64 Linux, like the images, since wheels are picked for it)
#        PIP_DOWNLOAD_ARGS  extra pip arguments, e.g. "--index-url https://download.pytorch.org/whl/cpu"
# prints DEST on stdout. Only wheels are accepted (the images have no compilers).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/build/docker/wheelhouse}"
shift || true
python="${PYTHON:-python3}"
if (($# == 0)); then
  set -- "$repo_root/docker/torch-requirements.txt" "$repo_root"/services/*/requirements.txt
fi
req_args=()
for f in "$@"; do req_args+=(-r "$f"); done

"$python" -c 'import sys, platform; assert sys.version_info[:2] == (3, 11) and platform.machine() == "x86_64", "need CPython 3.11 on x86-64"'
mkdir -p "$dest"
# pip download copies files into DEST non-atomically: one download at a time per wheelhouse.
exec 9>"$dest/.lock"
flock 9
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086
if ! "$python" -m pip download --disable-pip-version-check --progress-bar off \
    --only-binary=:all: --dest "$dest" "${req_args[@]}" ${PIP_DOWNLOAD_ARGS:-} >"$log" 2>&1; then
  echo "build-wheelhouse: pip download failed:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "build-wheelhouse: $(grep -c . <(ls "$dest")) wheels, $(du -sh "$dest" | cut -f1) in $dest" >&2
echo "$dest"
