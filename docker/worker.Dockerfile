# syntax=docker/dockerfile:1
# Stepwise Celery worker with the model stack: torch from PyPI, whose Linux x86-64 wheels are
# the CUDA build (the CUDA runtime comes in the nvidia-* wheels; the host provides only the
# driver, through the NVIDIA Container Toolkit). The same image runs the `default` queue and
# beat, where no GPU is reserved and torch simply runs on CPU if ever needed.
# Build from the repository root (compose does):
#   docker build -f docker/worker.Dockerfile -t stepwise-worker .

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    STEPWISE_MODEL_DIR=/var/lib/stepwise/checkpoints \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    CELERY_WORKER_NAME=gpu

WORKDIR /app
# One fixed uid in both images: they share the checkpoints volume (and NFS, across hosts).
RUN groupadd --system --gid 10001 stepwise \
    && useradd --system --uid 10001 --gid stepwise --home-dir /app --shell /usr/sbin/nologin \
    stepwise

COPY pyproject.toml ./
COPY docker/requirements.py docker/requirements.py
RUN python docker/requirements.py > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY manage.py ./
COPY config config
COPY annotate annotate
COPY selector selector
COPY workers workers

# A named volume mounted here starts with this directory's owner: the worker can write.
RUN mkdir -p /var/lib/stepwise/checkpoints \
    && chown stepwise:stepwise /var/lib/stepwise/checkpoints

USER stepwise

# Liveness: the worker answers a broker round trip (compose names each worker's hostname).
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 \
    CMD ["sh", "-c", "celery -A config inspect ping --timeout 10 --destination \"${CELERY_WORKER_NAME:-celery}@$(hostname)\""]

# One task at a time per GPU; `--queues default --concurrency N` for the CPU queue (then set
# CELERY_WORKER_NAME to the name before "@" in --hostname, for the health check).
CMD ["celery", "-A", "config", "worker", "--queues", "gpu", "--concurrency", "1", "--hostname", "gpu@%h", "--loglevel", "INFO"]
