#!/usr/bin/env bash
# The stack on a Docker Swarm you already have (docs/multi-node.md, "Docker Swarm").
#
# usage: scripts/swarm.sh build|push|deploy|rm
#   build   build every image with compose (compose.yaml's build settings, BASE_IMAGE etc.)
#   push    tag the built vision-serving/* images as $REGISTRY/vision-serving/*:$TAG, push
#   deploy  docker stack deploy $SWARM_FILES as $STACK (images from $REGISTRY)
#   rm      docker stack rm $STACK, waiting until its tasks and networks are gone
#
# Environment: REGISTRY (required for push/deploy, e.g. registry.example.com:5000),
# TAG (latest), STACK (vision), SWARM_FILES (deploy/swarm/stack.yaml; add
# deploy/swarm/stack.gpu.yaml for GPU nodes), DOCKER_HOST (a manager, for deploy/rm), and
# every variable of deploy/swarm/stack.yaml (the same as compose.yaml's).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGES=(weights classifier detector web nginx)
TAG="${TAG:-latest}"
STACK="${STACK:-vision}"
SWARM_FILES="${SWARM_FILES:-deploy/swarm/stack.yaml}"

need_registry() {
  [[ -n "${REGISTRY:-}" ]] || { echo "swarm.sh: set REGISTRY (e.g. registry.example.com:5000)" >&2; exit 2; }
}

case "${1:-}" in
  build)
    docker compose build
    ;;
  push)
    need_registry
    for name in "${IMAGES[@]}"; do
      docker tag "vision-serving/$name:$TAG" "$REGISTRY/vision-serving/$name:$TAG"
      docker push -q "$REGISTRY/vision-serving/$name:$TAG"
    done
    ;;
  deploy)
    need_registry
    files=()
    for file in $SWARM_FILES; do files+=(-c "$file"); done
    REGISTRY="$REGISTRY" TAG="$TAG" docker stack deploy --detach=true --prune "${files[@]}" "$STACK"
    ;;
  rm)
    docker stack rm "$STACK"
    # `stack rm` returns before the tasks are gone; a redeploy meanwhile would fail on the
    # network still in use.
    for _ in $(seq 1 120); do
      [[ -z "$(docker ps -q --filter "label=com.docker.stack.namespace=$STACK")" ]] \
        && [[ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ]] \
        && exit 0
      sleep 1
    done
    echo "swarm.sh: $STACK still has containers or networks after 120 s" >&2
    exit 1
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
