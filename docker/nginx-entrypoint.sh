#!/bin/sh
# nginx container entrypoint: nginx/upstream_watch.py renders nginx.conf from
# nginx/nginx.conf.j2 (the template the local run uses too), runs nginx in the foreground,
# and re-resolves the service names every few seconds, reloading nginx when replicas come
# or go (`docker compose up --scale detector=4` needs no edit here).
#
# Environment (defaults fit the compose service names and the services' default ports):
#   NGINX_PORT                 8080               port nginx listens on in the container
#   NGINX_DETECTOR_UPSTREAM    detector:8002      comma-separated host:port list; a compose
#   NGINX_CLASSIFIER_UPSTREAM  classifier:8001    service name resolves to every replica
#   NGINX_WEB_UPSTREAM         web:8003
#   NGINX_RESOLVE_INTERVAL_S   5                  seconds between DNS lookups
#   MAX_BODY_MB                20                 read by nginx/render.py, as by the services
set -eu
cd /app
exec python3 -m nginx.upstream_watch \
  --listen "${NGINX_PORT:-8080}" \
  --runtime-dir "${NGINX_RUNTIME_DIR:-/tmp/nginx}" \
  --interval "${NGINX_RESOLVE_INTERVAL_S:-5}" \
  --service "detector=${NGINX_DETECTOR_UPSTREAM:-detector:8002}" \
  --service "classifier=${NGINX_CLASSIFIER_UPSTREAM:-classifier:8001}" \
  --service "web=${NGINX_WEB_UPSTREAM:-web:8003}"
