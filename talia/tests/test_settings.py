"""Configuration comes from the environment and a bad value is refused with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from talia import env
from talia.env import BASE_DIR


def import_settings_with(**overrides: str) -> subprocess.CompletedProcess[str]:
    """Load the real settings module in a fresh interpreter with `overrides` in its environment."""
    environment = {**os.environ, **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("TALIA_REQUEUE_UNANSWERED_AFTER_S", "soon", "TALIA_REQUEUE_UNANSWERED_AFTER_S='soon' is not an integer"),
        ("TALIA_REQUEUE_UNANSWERED_AFTER_S", "1", "TALIA_REQUEUE_UNANSWERED_AFTER_S=1 is below the minimum"),
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("TALIA_DEFAULT_LOCALE", "fr", "TALIA_DEFAULT_LOCALE='fr' is not one of: es, en"),
        ("DATABASE_URL", "mysql://localhost/talia", "DATABASE_URL must be a URL starting with postgres://"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL starting with redis://"),
    ],
)
def test_bad_environment_value_is_refused_naming_the_variable(variable, value, complaint):
    result = import_settings_with(**{variable: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr


def test_secret_key_is_required_when_debug_is_off():
    result = import_settings_with(DEBUG="false", SECRET_KEY="")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_good_environment_loads():
    result = import_settings_with(TALIA_DEFAULT_LOCALE="en", DEBUG="off")

    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_helpers_parse_typed_values(monkeypatch):
    monkeypatch.setenv("TALIA_X_BOOL", "Yes")
    monkeypatch.setenv("TALIA_X_LIST", " a.example, b.example ,,")
    monkeypatch.setenv("TALIA_X_FLOAT", "2.5")

    assert env.env_bool("TALIA_X_BOOL", False) is True
    assert env.env_list("TALIA_X_LIST", []) == ["a.example", "b.example"]
    assert env.env_float("TALIA_X_FLOAT", 1.0, maximum=3) == 2.5
    assert env.env_int("TALIA_X_UNSET", 7) == 7
    with pytest.raises(ImproperlyConfigured, match="TALIA_X_REQUIRED must be set"):
        env.env_str("TALIA_X_REQUIRED")


def test_mistyped_talia_variable_is_flagged_by_a_system_check(monkeypatch):
    monkeypatch.setenv("TALIA_REQUEUE_UNANSWERD_AFTER_S", "60")

    warnings = [w for w in run_checks() if w.id == "talia.W001"]

    assert len(warnings) == 1
    assert "TALIA_REQUEUE_UNANSWERD_AFTER_S" in warnings[0].msg
    assert warnings[0].hint == "Did you mean TALIA_REQUEUE_UNANSWERED_AFTER_S?"
