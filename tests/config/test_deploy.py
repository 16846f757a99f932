"""Production deployment: the compose file, the Dockerfiles, production settings and /healthz.

Docker cannot run here, so the container files are checked statically: the compose file
against the Compose specification's JSON schema, every COPY source against the tree, every
command (CMD, HEALTHCHECK, compose `command:`/`test:`) against the modules it names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.db import OperationalError
from django.test import Client

from config import health

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
GPU_HOST = DOCKER / "compose.gpu-host.yaml"
DOCKERFILES = [DOCKER / "web.Dockerfile", DOCKER / "worker.Dockerfile"]
VENV_BIN = Path(sys.executable).parent
PROD_HOST = "stepwise.example.org"


def prod_env(**extra: str) -> dict[str, str]:
    """A clean production environment: no database or broker from the caller's shell."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "STEPWISE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=PROD_HOST,
    )
    env.update(extra)
    return env


# --- compose -------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [COMPOSE, GPU_HOST], ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path: Path) -> None:
    result = subprocess.run(
        [VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_compose_schema_check_catches_a_broken_file(tmp_path) -> None:
    """The schema check above can fail: an unknown key in a service is refused."""
    broken = compose()
    broken["services"]["web"]["helthcheck"] = broken["services"]["web"].pop("healthcheck")
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = subprocess.run(
        [VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_compose_services_volumes_and_gpu_reservation() -> None:
    spec = compose()
    services = spec["services"]
    assert {"postgres", "redis", "web", "worker-gpu", "worker-default", "beat"} <= set(services)
    for name, service in services.items():
        if name != "migrate":  # a one-shot job: "completed successfully" is its health
            assert "healthcheck" in service, f"{name} has no healthcheck"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("worker-default", "beat", "web"):
        assert "deploy" not in services[name], f"{name} should not reserve a GPU"
    assert "--queues gpu" in " ".join(services["worker-gpu"]["command"])
    assert "--queues default" in " ".join(services["worker-default"]["command"])
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    # Named volumes: the database and the checkpoints survive container re-creation.
    assert {"postgres-data", "checkpoints"} <= set(spec["volumes"])
    assert "postgres-data:/var/lib/postgresql" in services["postgres"]["volumes"]
    for name in ("worker-gpu", "worker-default"):
        assert "checkpoints:/var/lib/stepwise/checkpoints" in services[name]["volumes"]


def test_compose_dependencies_wait_for_health_and_migrations() -> None:
    services = compose()["services"]
    for name in ("web", "worker-gpu", "worker-default", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency]


def test_gpu_host_override_replaces_database_broker_and_checkpoints() -> None:
    base = compose()["services"]["worker-gpu"]
    override = yaml.safe_load(GPU_HOST.read_text(encoding="utf-8"))["services"]
    assert set(override) == {"worker-gpu"}
    assert {"DATABASE_URL", "CELERY_BROKER_URL"} <= set(override["worker-gpu"]["environment"])
    target = "/var/lib/stepwise/checkpoints"
    # Compose merges volumes by target path: the override's mount replaces the named volume.
    assert [v.rsplit(":", 1)[-1] for v in override["worker-gpu"]["volumes"]] == [target]
    assert any(v.endswith(":" + target) for v in base["volumes"])


def test_compose_builds_and_env_files_exist() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert context == ROOT, name
            assert (context / service["build"]["dockerfile"]).is_file(), name
        for entry in service.get("env_file", []):
            path = DOCKER / (entry["path"] if isinstance(entry, dict) else entry)
            # The operator's copy is not in the repository; its template is.
            assert path.with_name(path.name + ".example").is_file(), name


def settings_env_vars() -> set[str]:
    text = (ROOT / "config" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r"""(?:environ\.get|env_bool|env_list)\(\s*["']([A-Z_]+)["']""", text))


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DOCKER / "stepwise.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


PRODUCTION_VARIABLES = {
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_HSTS_SECONDS",
    "DATABASE_CONN_MAX_AGE",
    "STEPWISE_LOG_FORMAT",
    "STEPWISE_LOG_LEVEL",
}


def test_env_example_covers_production_settings_and_nothing_dead() -> None:
    example = env_example()
    read_by_settings = settings_env_vars()
    assert read_by_settings >= PRODUCTION_VARIABLES, "settings stopped reading a variable"
    assert PRODUCTION_VARIABLES - set(example) == set()
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text(encoding="utf-8")))
    assert interpolated - set(example) == set()
    # Every line does something: read by settings, by compose, or by gunicorn.
    dead = set(example) - read_by_settings - interpolated - {"GUNICORN_CMD_ARGS"}
    assert dead == set(), f"example variables nothing reads: {dead}"
    text = (DOCKER / "stepwise.env.example").read_text(encoding="utf-8")
    for name in re.findall(r"\$\{([A-Z_]+)", GPU_HOST.read_text(encoding="utf-8")):
        assert f"# {name}=" in text, f"{name} (GPU hosts) is not explained in the example"
    # Secrets are blank in the template: a forgotten one stops the stack instead of leaking.
    assert example["DJANGO_SECRET_KEY"] == "" and example["POSTGRES_PASSWORD"] == ""
    assert example["DJANGO_DEBUG"] == "false"


# --- Dockerfiles ---------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buffer = [], ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buffer = ""
    return out


def dockerignore_allows(dockerfile: Path, relative: str) -> bool:
    """Whether BuildKit's per-Dockerfile ignore file lets `relative` into the context."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    allowed = True
    for line in ignore.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch(relative, pattern) or relative.startswith(pattern + "/"):
            allowed = negate
    return allowed


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copy_sources_exist_in_the_build_context(dockerfile: Path) -> None:
    copies = [args for keyword, args in instructions(dockerfile) if keyword == "COPY"]
    assert copies, "no COPY instructions found"
    for args in copies:
        parts = [part for part in shlex.split(args) if not part.startswith("--chown")]
        if parts[0].startswith("--from="):
            continue  # from an earlier build stage, not from the context
        *sources, _destination = parts
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} is missing"
            assert dockerignore_allows(dockerfile, source), f"{source} is ignored"


def exec_form(args: str) -> list[str]:
    if args.startswith("CMD "):
        args = args[4:]
    value = json.loads(args)
    assert isinstance(value, list), "use the exec form (a JSON array)"
    return value


def assert_command_runs_real_code(argv: list[str]) -> None:
    """The program exists in the project's environment and the modules it names import."""
    if argv[:2] == ["sh", "-c"] or argv[0] == "CMD-SHELL":
        argv = shlex.split(argv[-1].replace("$$", "$"))
    program = argv[0]
    if program != "python":
        assert (VENV_BIN / program).exists(), f"{program} is not installed"
    if program == "gunicorn":
        target = next(arg for arg in argv[1:] if ":" in arg and not arg.startswith("-"))
        module, _, attribute = target.partition(":")
        application = getattr(__import__(module, fromlist=[attribute]), attribute)
        assert callable(application)
    elif program == "celery":
        from celery import Celery
        from celery.app.utils import find_app

        app_name = argv[argv.index("-A") + 1]
        assert isinstance(find_app(app_name), Celery)
        assert argv[argv.index("-A") + 2] in {"worker", "beat", "inspect"}
    elif argv[1] == "manage.py":
        from django.core.management import get_commands

        assert argv[2] in get_commands(), f"no management command {argv[2]}"
    elif argv[1] == "-m":
        module = __import__(argv[2], fromlist=["main"])
        assert callable(module.main)
    elif argv[1] == "-c":
        compile(argv[2], "<healthcheck>", "exec")
    else:  # pragma: no cover - a new kind of command: teach this test about it
        pytest.fail(f"unrecognized command {argv}")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_commands_refer_to_real_modules(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    commands = [exec_form(args) for keyword, args in steps if keyword in {"CMD", "ENTRYPOINT"}]
    assert len(commands) == 1, "one CMD per image"
    for argv in commands:
        assert_command_runs_real_code(argv)
    for keyword, args in steps:
        if keyword == "HEALTHCHECK":
            assert_command_runs_real_code(exec_form(args[args.index("CMD ") :]))


def test_compose_commands_refer_to_real_modules() -> None:
    for name, service in compose()["services"].items():
        if "command" in service and name not in {"redis"}:
            assert_command_runs_real_code(service["command"])
        test = service.get("healthcheck", {}).get("test")
        if test and name not in {"postgres", "redis"}:
            assert_command_runs_real_code(test[1:] if test[0] == "CMD" else test)


def test_web_image_requirements_leave_out_the_model_stack() -> None:
    def pins(*flags: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "docker/requirements.py", *flags],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()

    web, worker = pins("--without-ml"), pins()
    assert not any(pin.split("==")[0] in {"torch", "transformers"} for pin in web)
    assert "torch==2.13.0" in worker
    assert {"gunicorn", "whitenoise", "Django", "psycopg[binary]"} <= {
        pin.split("==")[0] for pin in web
    }
    assert set(web) < set(worker)


def test_web_process_never_imports_the_model_stack() -> None:
    """The web image has no torch: every URL's view module and the tasks the API queues
    must import without it."""
    code = (
        "import sys, django; django.setup()\n"
        "from django.urls import get_resolver\n"
        "def walk(patterns):\n"
        "    for p in patterns:\n"
        "        walk(p.url_patterns) if hasattr(p, 'url_patterns') else p.callback\n"
        "walk(get_resolver().url_patterns)\n"
        "import annotate.api.views, annotate.io, annotate.generations, config.health\n"
        "import annotate.dispatch\n"
        "annotate.dispatch.app.loader.import_default_modules()  # the tasks it sends\n"
        "heavy = [m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=prod_env(DJANGO_DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --- production settings -----------------------------------------------------------------


def test_check_deploy_is_clean_under_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=prod_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("variable", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(variable: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=prod_env(**{variable: ""}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"{variable} must be set" in result.stderr


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
out = {
    "healthz_lb": [client.get("/healthz", HTTP_HOST="10.1.2.3").status_code],
    "api_bad_host": client.get("/api/v1/me/", HTTP_HOST="10.1.2.3").status_code,
    "api_http": client.get("/api/v1/me/", HTTP_HOST="@HOST@"),
    "api_https": client.get("/api/v1/me/", HTTP_HOST="@HOST@", secure=True),
    "logging": settings.LOGGING["handlers"]["console"]["formatter"],
    "cookies": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
}
from config.celery import app
out["celery_keeps_logging"] = not app.conf.worker_hijack_root_logger
out["healthz_lb"].append(json.loads(client.get("/healthz", HTTP_HOST="10.1.2.3").content))
out["api_http"] = [out["api_http"].status_code, out["api_http"].get("Location")]
out["api_https"] = [out["api_https"].status_code, out["api_https"].get("Strict-Transport-Security")]
print(json.dumps(out))
""".replace("@HOST@", PROD_HOST)


def test_production_settings_behave_for_probes_browsers_and_logs(tmp_path) -> None:
    """Under the real production settings module: a load balancer probing /healthz by IP over
    plain HTTP gets 200; every other page refuses that Host, redirects HTTP to HTTPS and
    sends HSTS; cookies are secure; logs are JSON."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=prod_env(DATABASE_URL=f"sqlite:///{tmp_path / 'probe.sqlite3'}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["healthz_lb"] == [200, {"database": "ok", "broker": "not configured"}]
    assert out["api_bad_host"] == 400
    assert out["api_http"] == [301, f"https://{PROD_HOST}/api/v1/me/"]
    assert out["api_https"][0] == 401 and out["api_https"][1].startswith("max-age=31536000")
    assert out["logging"] == "json"
    assert out["cookies"] == [True, True]
    assert out["celery_keeps_logging"] is True  # workers log JSON through LOGGING too


# --- /healthz ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_eager_mode_reports_broker_not_configured(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "not configured"}
    assert response["Cache-Control"] == "no-store"
    assert Client().head("/healthz").status_code == 200


@pytest.mark.django_db
@pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
    reason="needs CELERY_BROKER_URL=redis://… (CI sets it)",
)
def test_healthz_pings_a_live_redis_broker(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_names_an_unreachable_broker(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "error: ConnectionError"}


@pytest.mark.django_db
def test_healthz_names_a_failing_database(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
        side_effect=OperationalError("connection refused"),
    ):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "error: OperationalError", "broker": "not configured"}


def test_broker_probe_gives_up_within_its_timeout() -> None:
    import time

    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)connect"):
        health.check_broker("redis://127.0.0.1:1/0", timeout=0.5)
    assert time.monotonic() - started < 2.0


@pytest.mark.django_db
def test_healthz_is_only_get_and_head(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = Client().post("/healthz")
    assert response.status_code == 405
