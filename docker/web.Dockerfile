# syntax=docker/dockerfile:1
# Stepwise web process: Django under gunicorn, static files served by WhiteNoise.
# Build from the repository root (compose does):
#   docker build -f docker/web.Dockerfile -t stepwise-web .
# The same image runs `manage.py migrate` (compose's `migrate` service) and any other
# management command that needs no model, e.g. `manage.py add_user`.

# --- KaTeX and htmx from the npm registry, exactly as locked -------------------------------
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- the Django app ------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    STEPWISE_MODEL_DIR=/var/lib/stepwise/checkpoints

WORKDIR /app
# One fixed uid in both images: they share the checkpoints volume (and NFS, across hosts).
RUN groupadd --system --gid 10001 stepwise \
    && useradd --system --uid 10001 --gid stepwise --home-dir /app --shell /usr/sbin/nologin \
    stepwise

# Dependencies first (a layer that survives code changes); the model stack is left out.
COPY pyproject.toml ./
COPY docker/requirements.py docker/requirements.py
RUN python docker/requirements.py --without-ml > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY manage.py ./
COPY config config
COPY annotate annotate
COPY selector selector
COPY workers workers
COPY templates templates
COPY static static
COPY --from=assets /src/node_modules node_modules

# Hashed, compressed static files for WhiteNoise. The key only satisfies settings at build
# time; the real one comes from the environment at run time.
RUN DJANGO_DEBUG=false \
    DJANGO_SECRET_KEY=collectstatic-only-this-key-signs-nothing-0123456789abcdef \
    DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p /var/lib/stepwise/checkpoints \
    && chown stepwise:stepwise /var/lib/stepwise/checkpoints

USER stepwise
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz/ready', timeout=4).status != 200)"]

# gthread workers: a long streaming export keeps its thread busy, not the worker's heartbeat.
# Tune with GUNICORN_CMD_ARGS (e.g. "--workers 8 --threads 8").
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "3", "--threads", "4", "--timeout", "120", "--graceful-timeout", "30", "--access-logfile", "-"]
