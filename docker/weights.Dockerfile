# One-shot "weights" image: fills the weights volume for every model service, then exits.
#   python -m scripts.fetch_weights --dest /weights [--allow-standin] [--darknet-dir DIR]
# FROM the model base (it needs torch to write stand-ins and to check files), plus the code
# of both model services; nothing is installed that the model images do not have.
#   docker run --rm -v weights:/weights vision-serving/weights:latest --allow-standin
ARG MODEL_BASE_IMAGE=vision-serving/model-base:latest
FROM ${MODEL_BASE_IMAGE}

ARG PIP_FIND_LINKS=
ARG PIP_NO_INDEX=
COPY services/kit/requirements.txt /tmp/req/kit/requirements.txt
COPY services/classifier/requirements.txt /tmp/req/classifier/requirements.txt
COPY services/detector/requirements.txt /tmp/req/detector/requirements.txt
RUN pip install -r /tmp/req/classifier/requirements.txt -r /tmp/req/detector/requirements.txt \
 && pip check \
 && rm -rf /tmp/req /root/.cache

WORKDIR /app
COPY services/__init__.py services/
COPY scripts/__init__.py scripts/fetch_weights.py scripts/
COPY services/kit/ services/kit/
COPY services/core/ services/core/
COPY services/classifier/ services/classifier/
COPY services/detector/ services/detector/

ENV PYTHONPATH=/app \
    WEIGHTS_DIR=/weights
USER app
ENTRYPOINT ["python", "-m", "scripts.fetch_weights", "--dest", "/weights"]
CMD []
