"""Stepwise settings: one module, driven by environment variables.

Unset, `DJANGO_DEBUG` means production: `DJANGO_SECRET_KEY` and `DJANGO_ALLOWED_HOSTS` must
then be set (`manage.py check --deploy` is clean with those). `DJANGO_DEBUG=true` is development
(`make demo` and the test suite set it): a fixed insecure key and local hosts. With no
`DATABASE_URL` or `CELERY_BROKER_URL`, Stepwise runs embedded (SQLite, Celery tasks executed
in-process); those switch to PostgreSQL and Redis.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Safe by default: a forgotten variable must not serve debug pages signed with a public key.
DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")
    # Development only: a fixed insecure key so sessions survive restarts of `make demo`.
    SECRET_KEY = "django-insecure-stepwise-development-only-key-0123456789abcdefghijklmnop"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not ALLOWED_HOSTS and not DEBUG:
    # Fail at start-up, not with a 400 on every page while /healthz still reports healthy.
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is false")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "template_partials",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "annotate",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Answers /healthz… before CommonMiddleware checks ALLOWED_HOSTS (LB probes send their IP).
    "config.health.HealthCheckMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # A lost database connection in a view: 503 + Retry-After (config.unavailable).
    "config.unavailable.DatabaseUnavailableMiddleware",
    # Last: turns a locked-out login into the lockout page (config.auth.lockout_response).
    "axes.middleware.AxesMiddleware",
]
if env_bool("STEPWISE_SERVER_TIMING", False):
    # First, so its figures cover every other middleware too (config.server_timing).
    MIDDLEWARE.insert(0, "config.server_timing.ServerTimingMiddleware")

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the embedded demo store: wait on locks instead of failing under htmx bursts.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # No JIT: it compiled the selected-samples query for 0.6 s of its 0.77 s at 10⁷ samples,
    # and Stepwise's queries are short or stream. A URL's own ?options= wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

# --- Login throttling (django-axes; see config.auth) --------------------------------------
AUTHENTICATION_BACKENDS = [
    "config.auth.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Either count reaching the limit locks out: one account from everywhere, one address for all.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = int(os.environ.get("STEPWISE_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("STEPWISE_LOGIN_COOLOFF_MINUTES", "15")))
# Off: axes would clear the address's count too, so any account could wipe guesses at others.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.auth.client_ip"
# Reverse proxies in front of the web process that append to X-Forwarded-For (0: none).
STEPWISE_PROXY_COUNT = int(os.environ.get("STEPWISE_PROXY_COUNT", "0"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# KaTeX, htmx and Chart.js come from the npm registry (`make install` runs `npm ci`), never
# copied by hand.
_NODE_MODULES = BASE_DIR / "node_modules"
for _prefix, _folder in (
    ("katex", "katex/dist"),
    ("htmx", "htmx.org/dist"),
    ("chartjs", "chart.js/dist"),
):
    if (_NODE_MODULES / _folder).is_dir():
        STATICFILES_DIRS.append((_prefix, _NODE_MODULES / _folder))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeler-home"
LOGOUT_REDIRECT_URL = "login"

# Where checkpoints live; adapters load only from local paths.
STEPWISE_MODEL_DIR = Path(os.environ.get("STEPWISE_MODEL_DIR", BASE_DIR / "checkpoints"))
# Scoring a generation: samples per `gpu` task (whole problems), samples per DB transaction.
STEPWISE_SCORING_CHUNK = int(os.environ.get("STEPWISE_SCORING_CHUNK", "2000"))
STEPWISE_SCORING_SUB_BATCH = int(os.environ.get("STEPWISE_SCORING_SUB_BATCH", "256"))
# PostgreSQL connections that load a selection pool together (annotate.snapshot_readers).
STEPWISE_POOL_READERS = int(os.environ.get("STEPWISE_POOL_READERS", "2"))
# Import limits (annotate.io.base), the same for API uploads and import commands: a bigger
# upload, a longer line, more steps or a longer step fails with the line's number.
STEPWISE_MAX_UPLOAD_BYTES = int(os.environ.get("STEPWISE_MAX_UPLOAD_BYTES", str(8 * 1024**3)))
STEPWISE_MAX_LINE_BYTES = int(os.environ.get("STEPWISE_MAX_LINE_BYTES", str(1024**2)))
STEPWISE_MAX_STEPS = int(os.environ.get("STEPWISE_MAX_STEPS", "200"))
STEPWISE_MAX_STEP_CHARS = int(os.environ.get("STEPWISE_MAX_STEP_CHARS", "20000"))
# A started chunk with no heartbeat (one per sub-batch) for this long lost its worker.
STEPWISE_CHUNK_STALE_SECONDS = int(os.environ.get("STEPWISE_CHUNK_STALE_SECONDS", "300"))
# PRM training (workers.loop): padded tokens per batch (batch size × longest input).
STEPWISE_TRAIN_BATCH_TOKENS = int(os.environ.get("STEPWISE_TRAIN_BATCH_TOKENS", "8192"))
# Size of the from-scratch PRM built when a campaign has no checkpoint (tests shrink it).
STEPWISE_BOOTSTRAP = {
    "hidden": int(os.environ.get("STEPWISE_BOOTSTRAP_HIDDEN", "128")),
    "layers": int(os.environ.get("STEPWISE_BOOTSTRAP_LAYERS", "2")),
    "heads": int(os.environ.get("STEPWISE_BOOTSTRAP_HEADS", "4")),
    "vocab_size": int(os.environ.get("STEPWISE_BOOTSTRAP_VOCAB", "4096")),
    "max_length": int(os.environ.get("STEPWISE_BOOTSTRAP_MAX_LENGTH", "512")),
}

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or None
# No broker configured: run tasks in-process (the embedded default for `make demo`).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# A message unacked this long (its worker died) is handed out again, so it must exceed the
# longest hard time limit of any task (workers.tasks keeps theirs under 2 h).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(2 * 60 * 60))),
    # Seconds between sweeps that hand out a dead worker's messages again (kombu's default 10).
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
    # An unreachable or frozen broker fails a send in seconds (the outbox keeps the task),
    # never hangs a request; longer than the workers' 1 s BRPOP poll.
    "socket_connect_timeout": 3,
    "socket_timeout": 5,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Workers and beat log through LOGGING below (JSON in production), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE

# --- REST API ---------------------------------------------------------------------------
# API tokens stop working this many days after they were made (0: never; config.auth).
STEPWISE_TOKEN_TTL_DAYS = int(os.environ.get("STEPWISE_TOKEN_TTL_DAYS", "0"))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser plus bounds (size, nesting, NUL, lone surrogates): annotate.api.formats
    "DEFAULT_PARSER_CLASSES": ["annotate.api.formats.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stepwise API",
    "DESCRIPTION": "Campaigns, problems, samples, generations, checkpoints and exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "GenerationStatusEnum": "annotate.models.Generation.Status",
        "CheckpointStatusEnum": "annotate.models.Checkpoint.Status",
    },
}

# --- Production hardening (active whenever DEBUG is off) --------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (django-csp): everything from the site itself (htmx, KaTeX, Chart.js
# are served locally), no inline script or style, never framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "font-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "config.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": os.environ.get("STEPWISE_LOG_FORMAT", "plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("STEPWISE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
