#!/usr/bin/env bash
# Stop a private Docker engine started by docker/dockerd-start.sh and remove what it made.
#
# usage: docker/dockerd-stop.sh [STATE_DIR] [GRACE_S]
#   STATE_DIR  default: <repo>/.run/dockerd
#   GRACE_S    default: 30  (time for dockerd to stop its containers before SIGKILL)
# env:  DOCKERD_KEEP_DATA=1  keep STATE_DIR/data (images, build cache) for a faster next start
#
# Order: note the engine's bridge networks, its process tree, containerd shims and container
# cgroups; SIGTERM dockerd; SIGKILL whatever of that list survives the grace period; unmount
# everything under STATE_DIR (deepest first); delete the bridges; remove the directory.
# Every process is signalled by PID; nothing is matched by name. Idempotent.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="${1:-$repo_root/.run/dockerd}"
grace_s="${2:-30}"
[[ -d "$state_dir" ]] || { echo "dockerd-stop: nothing at $state_dir"; exit 0; }
state_dir="$(cd "$state_dir" && pwd)"
sock="$state_dir/docker.sock"
pidfile="$state_dir/dockerd.pid"

alive() { [[ -d /proc/$1 ]] && ! grep -qs '^State:.*Z' "/proc/$1/status"; }

descendants() {  # all descendant PIDs of $1 (children first found breadth-first)
  local todo=("$1") pid child
  while ((${#todo[@]})); do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    # shellcheck disable=SC2013  # the file is a space-separated list of PIDs
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
      echo "$child"; todo+=("$child")
    done
  done
}

dockerd_pid=""
[[ -f "$pidfile" ]] && dockerd_pid="$(cat "$pidfile")"
if [[ -n "$dockerd_pid" ]] && ! grep -qs "$state_dir" "/proc/$dockerd_pid/cmdline"; then
  dockerd_pid=""   # stale pid file (pid reused or engine gone)
fi

# Bridges of this engine's networks (br-<id:12>): asked from the engine when it answers, and
# read from its network store too, for an engine that died (dockerd leaves them on exit).
bridges=()
ids=""
if [[ -n "$dockerd_pid" ]] && alive "$dockerd_pid"; then
  ids="$(DOCKER_HOST="unix://$sock" timeout 10 docker network ls -q --no-trunc --filter driver=bridge 2>/dev/null)"
fi
if [[ -f "$state_dir/data/network/files/local-kv.db" ]]; then
  ids+=" $(grep -aoE 'docker/network/v1\.0/bridge/[0-9a-f]{64}' "$state_dir/data/network/files/local-kv.db" | sed 's#.*/##')"
fi
# shellcheck disable=SC2086  # split the id list into words
for id in $(printf '%s\n' $ids | sort -u); do
  bridges+=("br-${id:0:12}")
done

# Processes to make sure of: dockerd's tree (containerd, docker-proxy), containerd shims that
# point at this engine's containerd socket (they are reparented when containerd exits), and
# the processes in this engine's container cgroups.
victims=()
if [[ -n "$dockerd_pid" ]]; then
  mapfile -t tree < <(descendants "$dockerd_pid")
  victims+=("$dockerd_pid" "${tree[@]}")
fi
for cmdline in /proc/[0-9]*/cmdline; do
  pid=${cmdline#/proc/}; pid=${pid%/cmdline}
  # (a process may exit between the glob and the read: ignore that)
  if { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -q -- "-address $state_dir/exec/containerd/"; then
    victims+=("$pid")
  fi
done
container_ids=()
if [[ -d "$state_dir/data/containers" ]]; then
  for d in "$state_dir"/data/containers/*/; do
    [[ -d "$d" ]] && container_ids+=("$(basename "$d")")
  done
fi
cgroup_procs() {
  local id f
  for id in "${container_ids[@]}"; do
    for f in /sys/fs/cgroup/*/docker/"$id"/cgroup.procs /sys/fs/cgroup/*/system.slice/docker-"$id".scope/cgroup.procs; do
      [[ -f "$f" ]] && cat "$f"
    done
  done 2>/dev/null
}

if [[ -n "$dockerd_pid" ]] && alive "$dockerd_pid"; then
  kill -TERM "$dockerd_pid" 2>/dev/null
  deadline=$((SECONDS + grace_s))
  while alive "$dockerd_pid" && ((SECONDS < deadline)); do sleep 0.5; done
  alive "$dockerd_pid" && echo "dockerd-stop: dockerd $dockerd_pid ignored SIGTERM for ${grace_s}s; killing" >&2
fi
for pid in "${victims[@]}" $(cgroup_procs); do
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
done
sleep 0.5
for pid in "${victims[@]}" $(cgroup_procs); do
  alive "$pid" && echo "dockerd-stop: warning: pid $pid still alive" >&2
done
for id in "${container_ids[@]}"; do
  rmdir /sys/fs/cgroup/*/docker/"$id" 2>/dev/null
done

# Unmount deepest first (overlay mounts, shm, netns bind mounts, the data root's own binds).
for _ in 1 2 3; do
  mapfile -t mounts < <(awk -v d="$state_dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
  ((${#mounts[@]})) || break
  for m in "${mounts[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "dockerd-stop: cannot unmount $m" >&2
  done
done

for br in "${bridges[@]}"; do
  ip link show "$br" >/dev/null 2>&1 && ip link delete "$br" 2>/dev/null
done
# containerd shims put their sockets in /run/containerd/s/<sha256(containerd socket/ns/id)>
# whatever the engine's paths; a killed shim leaves its socket behind. Remove this engine's,
# then the directories if empty (another engine or a system containerd may use them).
for id in "${container_ids[@]}"; do
  hash="$(printf '%s' "$state_dir/exec/containerd/containerd.sock/moby/$id" | sha256sum | cut -d' ' -f1)"
  rm -f "/run/containerd/s/$hash"
done
rmdir /run/containerd/s /run/containerd 2>/dev/null

if [[ "${DOCKERD_KEEP_DATA:-0}" == 1 ]]; then
  find "$state_dir" -mindepth 1 -maxdepth 1 ! -name data -exec rm -rf {} +
  echo "dockerd-stop: stopped; kept $state_dir/data"
else
  rm -rf "$state_dir"
  echo "dockerd-stop: stopped; removed $state_dir"
fi
