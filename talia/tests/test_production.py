"""Production settings: what DEBUG off requires, and `check --deploy` clean with the documented variables.

Each case runs `manage.py` in a fresh interpreter with a prepared environment (settings are read once per
process), the way an operator starts it.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from talia.env import BASE_DIR

# The variables README's "Production" section lists, with example values.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "talia.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://talia.example.com",
    "TALIA_BEHIND_PROXY": "true",
    "TALIA_SSL_REDIRECT": "true",
    "TALIA_HSTS_PRELOAD": "true",
}


def manage(tmp_path: Path, *args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """`manage.py <args>` with only PATH, HOME, the test run's data stores and `environment`.

    Variables given as "" are left out, as an operator who forgot them would.
    """
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "TALIA_VAR_DIR": str(tmp_path / "var"),
        "TALIA_LOG_DIR": "off",
        "TALIA_LLM_ENGINE": "offline",
    }
    env.update(environment)
    env = {name: value for name, value in env.items() if value}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_flags_a_production_without_the_variables(tmp_path):
    """The clean check below can fail: without HSTS and secure cookies Django's checks do complain, and
    without collectstatic so does TalIA's."""
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        **{**PRODUCTION, "TALIA_HSTS_SECONDS": "0", "TALIA_SECURE_COOKIES": "false", "TALIA_SSL_REDIRECT": ""},
    )

    output = result.stdout + result.stderr
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016", "talia.W003"):
        assert warning in output, output


@pytest.mark.parametrize("variable", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"])
def test_debug_off_requires_the_variable(tmp_path, variable):
    # DATABASE_URL and REDIS_URL: manage.py starts no embedded server when DEBUG is explicitly off.
    result = manage(tmp_path, "check", **{**PRODUCTION, variable: ""})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.strip().splitlines()[-1], result.stderr
    assert not (tmp_path / "var" / "postgres").exists(), "no embedded Postgres in production"


def test_proxy_header_is_trusted_only_behind_a_proxy(tmp_path):
    show = ["shell", "-c", "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"]

    behind = manage(tmp_path, *show, **PRODUCTION)
    direct = manage(tmp_path, *show, **{**PRODUCTION, "TALIA_BEHIND_PROXY": ""})

    assert behind.stdout.strip().splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https')", behind.stderr
    assert direct.stdout.strip().splitlines()[-1] == "None", direct.stderr


def test_check_deploy_is_clean_and_pages_use_hashed_static_files(tmp_path):
    """With the production variables and after collectstatic (manifest storage): `check --deploy` clean,
    and a page and the admin render with hashed, compressed static files."""
    collected = manage(tmp_path, "collectstatic", "--noinput", **PRODUCTION)
    assert collected.returncode == 0, collected.stderr
    static_root = tmp_path / "var" / "static"
    hashed = [p.name for p in (static_root / "widget").iterdir() if p.name.startswith("widget.")]
    assert any(name.endswith(".js.gz") and name.count(".") == 3 for name in hashed), hashed  # widget.<hash>.js.gz

    check = manage(tmp_path, "check", "--deploy", **PRODUCTION)

    output = check.stdout + check.stderr
    assert check.returncode == 0, output
    # Django's own deployment checks (security.W0xx) and TalIA's are the ones the settings answer for;
    # the apps' warnings name integrations left unconfigured here (Twilio, SMTP).
    assert "(security." not in output, output
    assert "(talia." not in output, output
    assert "(drf_spectacular." not in output, output  # the API schema builds without collisions

    render = manage(
        tmp_path,
        "shell",
        "-c",
        "from django.test import Client\n"
        "for url in ('/accounts/login/', '/admin/login/'):\n"
        "    r = Client().get(url, secure=True)\n"
        "    print(r.status_code, r.content.decode())\n",
        **{**PRODUCTION, "ALLOWED_HOSTS": "testserver"},
    )

    assert render.returncode == 0, render.stderr
    assert render.stdout.count("200 ") == 2, render.stdout[:2000]
    assert re.search(r'href="/static/talia/site\.[0-9a-f]{12}\.css"', render.stdout), render.stdout[:2000]
    assert re.search(r'href="/static/admin/css/base\.[0-9a-f]{12}\.css"', render.stdout), render.stdout[:2000]
