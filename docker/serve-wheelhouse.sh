#!/usr/bin/env bash
# Serve a wheelhouse over HTTP on 127.0.0.1 on a free port, in the background, for image
# builds that run with `--network host` (classic builder: `docker build --network host`,
# compose: `build.network: host`).
#
# usage: docker/serve-wheelhouse.sh WHEELHOUSE_DIR PIDFILE [TIMEOUT_S]
# prints: WHEELHOUSE_URL=http://127.0.0.1:<port>/
#         docker build: --build-arg PIP_FIND_LINKS=<url> --build-arg PIP_NO_INDEX=1
#         compose: export WHEELHOUSE_URL (compose.yaml maps it onto those two build args; not
#         PIP_FIND_LINKS itself, which machines like this one already set for the host pip)
# stop:   kill "$(cat PIDFILE)"      (log next to PIDFILE: PIDFILE.log)
# env:    WHEELHOUSE_PORT  fixed port instead of a free one. The classic builder keys its layer
#         cache on build-arg values, so a new wheelhouse URL rebuilds the torch layer:
#         a fixed port lets a kept engine (DOCKERD_KEEP_DATA=1) reuse it between sessions.
set -euo pipefail

dir="${1:?usage: serve-wheelhouse.sh WHEELHOUSE_DIR PIDFILE [TIMEOUT_S]}"
pidfile="${2:?usage: serve-wheelhouse.sh WHEELHOUSE_DIR PIDFILE [TIMEOUT_S]}"
timeout_s="${3:-15}"
[[ -d "$dir" ]] || { echo "serve-wheelhouse: no directory $dir" >&2; exit 1; }
log="$pidfile.log"
mkdir -p "$(dirname "$pidfile")"

# Port 0: the kernel picks a free port and http.server prints it, so there is no race.
python3 -u -m http.server "${WHEELHOUSE_PORT:-0}" --bind 127.0.0.1 --directory "$dir" </dev/null >"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"

deadline=$((SECONDS + timeout_s))
port=""
while [[ -z "$port" ]]; do
  port="$(sed -n 's/^Serving HTTP on .* port \([0-9][0-9]*\) .*/\1/p' "$log" | head -n1)"
  if [[ -z "$port" ]]; then
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "serve-wheelhouse: server did not start; log:" >&2; cat "$log" >&2
      kill "$pid" 2>/dev/null || true; rm -f "$pidfile"; exit 1
    fi
    sleep 0.1
  fi
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/" ||
  { echo "serve-wheelhouse: server on port $port does not answer" >&2; kill "$pid"; rm -f "$pidfile"; exit 1; }
echo "WHEELHOUSE_URL=http://127.0.0.1:$port/"
