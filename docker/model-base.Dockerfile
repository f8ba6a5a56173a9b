# Model base image: a Python 3.11 venv with torch + torchvision, the multi-GB layer that every
# model service image (classifier, detector) is built FROM, so it is installed once and stored
# once. Build context: the repository root. See docs/containers.md.
#
#   docker build --network host -f docker/model-base.Dockerfile -t vision-serving/model-base:latest .
#
# Build arguments (all optional):
#   BASE_IMAGE       python:3.11-slim, or any Debian/Ubuntu image with python3 (>= 3.11, + venv)
#                    such as the local debootstrap image from docker/build-base-image.sh
#   TORCH_INDEX_URL  a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cpu for a
#                    CPU-only torch (about 1 GB instead of about 5.5 GB); empty: the standard
#                    PyPI build (CUDA 13, also runs on CPU)
#   PIP_FIND_LINKS / PIP_NO_INDEX   install from a served wheelhouse instead of PyPI
#                    (docker/serve-wheelhouse.sh); empty by default, and pip ignores empty values
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all: \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# A venv gives the same layout on python:3.11-slim (/usr/local/bin/python3) and on Debian's
# python3 (/usr/bin/python3, whose system pip is "externally managed").
RUN python3 -m venv /opt/venv

# The unprivileged user the services run as (USER is set by each service image).
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin app

ARG PIP_FIND_LINKS=
ARG PIP_NO_INDEX=
ARG TORCH_INDEX_URL=
COPY docker/torch-requirements.txt /tmp/torch-requirements.txt
# torchvision goes in with --no-deps: its other dependencies (numpy, pillow) are pinned by the
# serving core's requirements and installed by each service image on top of this layer, so
# this layer depends on nothing but the torch pins. The heavy torch dependencies (triton,
# nvidia-*) come with torch. Byte-code is compiled here (pip's default): measured on 2 cores,
# +30 s build and +130 MB, but `import torch` takes ~1.5 s instead of ~2.5 s (torch +
# torchvision ~6 s without .pyc) in every worker of every replica, since the unprivileged
# user cannot write __pycache__.
RUN set -eu; \
    if [ -n "$TORCH_INDEX_URL" ]; then \
        set -- --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple; \
    else \
        set --; \
    fi; \
    pip install "$@" $(grep -E '^torch==' /tmp/torch-requirements.txt); \
    pip install --no-deps "$@" $(grep -E '^torchvision==' /tmp/torch-requirements.txt); \
    rm -rf /tmp/torch-requirements.txt /root/.cache; \
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# Mount point of the weights volume. Owned by the service user so that a fresh named volume
# (which takes the mount point's owner) can be filled by `python -m scripts.fetch_weights`
# running as that user; the services mount it read-only.
RUN mkdir -p /weights && chown app:app /weights
