#!/usr/bin/env bash
# Start a private Docker engine whose state lives entirely under one directory.
#
# usage: docker/dockerd-start.sh [STATE_DIR] [TIMEOUT_S]
#   STATE_DIR  default: <repo>/.run/dockerd   (data root, exec root, socket, pid file, log)
#   TIMEOUT_S  default: 60                    (deadline for `docker info` to answer)
# prints:      DOCKER_HOST=unix://STATE_DIR/docker.sock   (one line, for `eval`/`export`)
# stop with:   docker/dockerd-stop.sh STATE_DIR
#
# Layout: STATE_DIR/{data/ (--data-root), exec/ (--exec-root, containerd state), docker.sock,
# dockerd.pid, dockerd.log}. dockerd supervises its own containerd (under exec/containerd).
#
# Network isolation (override with DOCKERD_NETWORK_ARGS): by default the engine neither creates
# docker0 nor edits iptables, so several private engines (a developer's and a test's) can run
# side by side without flushing each other's chains. Compose projects get their own bridge
# networks (service DNS works); published ports go through docker-proxy; builds must use
# `--network host` (they need no NAT then). Set DOCKERD_NETWORK_ARGS="" for dockerd's defaults.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="${1:-$repo_root/.run/dockerd}"
timeout_s="${2:-60}"
network_args="${DOCKERD_NETWORK_ARGS---bridge=none --iptables=false --ip-masq=false}"
dockerd_bin="${DOCKERD_BIN:-$(command -v dockerd || echo /usr/sbin/dockerd)}"

mkdir -p "$state_dir"
state_dir="$(cd "$state_dir" && pwd)"
sock="$state_dir/docker.sock"
pidfile="$state_dir/dockerd.pid"
log="$state_dir/dockerd.log"

# unix socket paths are limited to 107 bytes; containerd's socket sits deepest.
if (( ${#state_dir} > 60 )); then
  echo "dockerd-start: state dir path too long for unix sockets (${#state_dir} > 60): $state_dir" >&2
  exit 2
fi
if [[ -f "$pidfile" ]] && grep -qs "$state_dir" "/proc/$(cat "$pidfile")/cmdline"; then
  echo "dockerd-start: already running (pid $(cat "$pidfile")) in $state_dir" >&2
  echo "DOCKER_HOST=unix://$sock"
  exit 0
fi
if [[ -S /run/containerd/containerd.sock ]]; then
  # dockerd 20.10 silently attaches to a system containerd when that socket exists.
  echo "dockerd-start: warning: /run/containerd/containerd.sock exists; dockerd will share that containerd" >&2
fi

rm -f "$pidfile"   # stale: its process is gone (checked above)
mkdir -p "$state_dir/data" "$state_dir/exec"
# setsid: the engine must not die with the caller's terminal or process group.
# shellcheck disable=SC2086
setsid "$dockerd_bin" \
  --data-root "$state_dir/data" \
  --exec-root "$state_dir/exec" \
  --pidfile "$pidfile" \
  --host "unix://$sock" \
  --group root \
  $network_args \
  </dev/null >"$log" 2>&1 &
launcher_pid=$!   # dockerd itself writes the pid file (it refuses to start if one exists)

deadline=$((SECONDS + timeout_s))
until DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; do
  if ! kill -0 "$launcher_pid" 2>/dev/null; then
    echo "dockerd-start: dockerd exited during start-up; last log lines:" >&2
    tail -n 20 "$log" >&2
    # it may have bind-mounted its data root before failing: undo that, keep the data.
    DOCKERD_KEEP_DATA=1 "$repo_root/docker/dockerd-stop.sh" "$state_dir" 5 >&2 || true
    exit 1
  fi
  if (( SECONDS >= deadline )); then
    echo "dockerd-start: docker info did not answer within ${timeout_s}s; stopping it; log: $log" >&2
    tail -n 20 "$log" >&2
    "$repo_root/docker/dockerd-stop.sh" "$state_dir" 10 >&2 || kill -KILL "$launcher_pid"
    exit 1
  fi
  sleep 0.5
done
echo "DOCKER_HOST=unix://$sock"
