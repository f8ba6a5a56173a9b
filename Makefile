# The two commands: `make run` (the whole stack on one port) and `make test` (all tests).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= $(abspath ../shared/data)
WEIGHTS_DIR ?= weights
REQUIREMENTS := constraints.txt requirements-dev.txt services/kit/requirements.txt \
	services/classifier/requirements.txt services/detector/requirements.txt \
	services/web/requirements.txt

.PHONY: run run-models run-edge test test-fast test-containers compose-gpu lint format weights venv \
	system-deps clean help lock swarm-build swarm-push swarm-deploy swarm-rm

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: $(REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip check
	touch $@

venv: $(VENV)/.installed  ## create the virtual environment with every pinned dependency

system-deps:  ## install nginx, chromium, docker.io when missing (apt)
	scripts/install-system-deps.sh

weights: venv  ## official weights when online; loudly marked stand-ins otherwise
	$(PY) -m scripts.fetch_weights --dest $(WEIGHTS_DIR) --allow-standin \
		$(if $(wildcard $(SHARED_DATA)/darknet),--darknet-dir $(SHARED_DATA)/darknet)

run: venv weights  ## the whole stack behind nginx on one port (STACK_PORT, default 8080)
	scripts/install-system-deps.sh nginx
	WEIGHTS_DIR=$(abspath $(WEIGHTS_DIR)) $(PY) -m scripts.run_stack

run-models: venv weights  ## plain hosts: only the model replicas, reachable from other hosts
	STACK_ROLE=models STACK_BIND_HOST=$${STACK_BIND_HOST:-0.0.0.0} \
		WEIGHTS_DIR=$(abspath $(WEIGHTS_DIR)) $(PY) -m scripts.run_stack

run-edge: venv  ## plain hosts: nginx + web in front of NGINX_{DETECTOR,CLASSIFIER}_UPSTREAM
	scripts/install-system-deps.sh nginx
	STACK_ROLE=edge $(PY) -m scripts.run_stack

# ---- Docker Swarm (deploy/swarm/, docs/multi-node.md); REGISTRY=host:port is required ----
swarm-build:  ## build every image (docker compose build)
	scripts/swarm.sh build

swarm-push:  ## tag and push the images to REGISTRY (TAG, default latest)
	scripts/swarm.sh push

swarm-deploy:  ## docker stack deploy to the swarm DOCKER_HOST manages (STACK, SWARM_FILES)
	scripts/swarm.sh deploy

swarm-rm:  ## remove the stack (STACK, default vision)
	scripts/swarm.sh rm

test: venv system-deps  ## every test (what CI runs)
	$(PY) -m pytest -q

test-fast: venv  ## the unit tests only (no real servers)
	$(PY) -m pytest -q -m "not slow and not containers"

test-containers: venv system-deps  ## only the Docker tests (private dockerd, images, compose)
	$(PY) -m pytest -q -m containers tests/containers

compose-gpu: venv  ## regenerate compose.gpu.yaml for GPUS GPUs (default 2)
	$(PY) -m scripts.compose_gpu --gpus $(or $(GPUS),2) > compose.gpu.yaml

lint: venv  ## ruff lint + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv  ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:  ## remove the venv, generated weights and test output
	rm -rf $(VENV) $(WEIGHTS_DIR) test-artifacts results .pytest_cache .ruff_cache

lock: venv  ## re-pin constraints.txt from the current virtual environment
	(echo "# Every package of the development environment, transitive ones included, pinned."; \
	 echo "# Regenerate with \`make lock\` after changing a requirements file."; \
	 $(PY) -m pip freeze --exclude-editable) > constraints.txt

# ---- load test and benchmark (loadtest/; docs/loadtest.md, docs/benchmarks.md) -------------
LOADTEST_URL ?= http://127.0.0.1:8080
LOADTEST_USERS ?= 6
LOADTEST_SPAWN_RATE ?= 2
LOADTEST_DURATION ?= 60s
LOADTEST_CLASSES ?= DetectorUser,ClassifierUser,BrowserUser
LOADTEST_PHOTOS ?= $(SHARED_DATA)/images
LOADTEST_RESULTS ?=
SLO_MAX_FAILURE_RATIO ?= 0.01
SLO_MAX_P95_MS ?= 5000
SLO_ENDPOINT_P95_MS ?=
BENCH_ARGS ?=
AB_PHOTO ?= $(LOADTEST_PHOTOS)/dog.jpg
AB_BODY ?= results/ab/body.multipart
AB_URL ?= $(LOADTEST_URL)/v1/classify?top_k=5
AB_REQUESTS ?= 200
AB_CONCURRENCY ?= 4

.PHONY: loadtest bench bench-detector bench-overload bench-decode bench-precision phone-photos ab-body ab

loadtest: venv  ## locust against the running stack: CSV, HTML, plots, SLO gate (results/loadtest/)
	$(PY) -m loadtest.run --url $(LOADTEST_URL) --users $(LOADTEST_USERS) \
		--spawn-rate $(LOADTEST_SPAWN_RATE) --duration $(LOADTEST_DURATION) \
		--classes $(LOADTEST_CLASSES) --photos $(LOADTEST_PHOTOS) \
		--slo-max-failure-ratio $(SLO_MAX_FAILURE_RATIO) --slo-max-p95-ms $(SLO_MAX_P95_MS) \
		--slo-endpoint-p95-ms "$(SLO_ENDPOINT_P95_MS)" \
		$(if $(LOADTEST_RESULTS),--results $(LOADTEST_RESULTS))

bench: venv weights  ## ceiling vs. stack (eager, compiled) vs. original vs. LitServe, TorchServe, Ray Serve, BentoML, PyTriton -> docs/benchmarks.md
	scripts/install-system-deps.sh nginx
	$(PY) -m loadtest.bench --weights-dir $(WEIGHTS_DIR) --photos $(LOADTEST_PHOTOS) $(BENCH_ARGS)

bench-detector: venv weights  ## detector per-stage times, yolov3-tiny and yolov3, vs. the bare model
	$(PY) -m loadtest.bench.detector_stages --weights-dir $(WEIGHTS_DIR) --photos $(LOADTEST_PHOTOS)

bench-overload: venv weights  ## admission control: saturation, 4x overload, recovery -> docs/overload.md
	scripts/install-system-deps.sh nginx
	$(PY) -m loadtest.bench.overload --weights-dir $(WEIGHTS_DIR) --photos $(LOADTEST_PHOTOS)

bench-decode: venv weights  ## the classifier's default input path (draft decode, crop resampling) vs. the full one: time and fidelity, both photo sets -> docs/decode.md
	$(PY) -m loadtest.bench.decode_fidelity --weights-dir $(WEIGHTS_DIR) --photos $(LOADTEST_PHOTOS)

bench-precision: venv weights  ## folded norms, torch.compile and bf16 vs. the network as loaded: speed and fidelity, both photo sets -> docs/precision.md
	$(PY) -m loadtest.bench.precision_fidelity --weights-dir $(WEIGHTS_DIR) --photos $(LOADTEST_PHOTOS)

phone-photos: venv  ## 12 MP phone-style JPEGs from the sample photos -> results/phone-photos (LOADTEST_PHOTOS=results/phone-photos)
	$(PY) -m loadtest.phone_photos --out results/phone-photos --photos $(SHARED_DATA)/images

ab-body: venv  ## multipart body file for ApacheBench (AB_BODY, from AB_PHOTO)
	$(PY) -m loadtest.ab_body --photo $(AB_PHOTO) --out $(AB_BODY)

ab: ab-body  ## ApacheBench against the running stack (AB_URL, AB_REQUESTS, AB_CONCURRENCY)
	@command -v ab >/dev/null || { echo "ab: not installed (apt-get install apache2-utils)"; exit 2; }
	ab -n $(AB_REQUESTS) -c $(AB_CONCURRENCY) -l -p $(AB_BODY) \
		-T "$$(cat $(AB_BODY).content-type)" "$(AB_URL)"
