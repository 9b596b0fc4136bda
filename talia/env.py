"""Typed readers for configuration that comes from the environment.

Every setting TalIA reads goes through one of these helpers, so a bad value fails at start-up with an
ImproperlyConfigured that names the variable and says what was expected (healthchecks' envbool/envint).
The names read are remembered, which lets the `talia.W001` check flag a mistyped TALIA_* variable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off"})

# Names of every variable a helper was asked for: the documented configuration surface.
KNOWN_VARIABLES: set[str] = set()

_MISSING = object()


def _raw(name: str) -> str | None:
    KNOWN_VARIABLES.add(name)
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | object = _MISSING) -> str:
    """A string; without a default the variable is required."""
    value = _raw(name)
    if value is not None:
        return value
    if default is _MISSING:
        raise ImproperlyConfigured(f"The environment variable {name} must be set.")
    return str(default)


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of {', '.join(sorted(TRUE_VALUES | FALSE_VALUES))}."
    )


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    _check_range(name, number, minimum, maximum)
    return number


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    _check_range(name, number, minimum, maximum)
    return number


def env_list(name: str, default: Iterable[str]) -> list[str]:
    """A comma-separated list; blanks around items are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    value = _raw(name)
    if value is None:
        return default
    if value not in allowed:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(allowed)}.")
    return value


def env_url(name: str, default: str | object = _MISSING, *, schemes: Iterable[str]) -> str:
    """A URL whose scheme is one of `schemes`; without a default the variable is required."""
    allowed = tuple(schemes)
    value = env_str(name, default)
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in allowed or not rest:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in allowed)}; got {value!r}."
        )
    return value


RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate like `30/min` (or `5/s`, `1000/hour`): returns (requests, period in seconds)."""
    value = _raw(name) or default
    count, sep, period = value.partition("/")
    try:
        requests = int(count)
        seconds = RATE_PERIODS[period.strip().lower()]
    except (ValueError, KeyError):
        requests = seconds = 0
    if not sep or requests < 1 or not seconds:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 30/min (periods: s, min, hour).")
    return requests, seconds


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}.")


def var_dir() -> Path:
    """Where local state lives: embedded databases, generated secret key, logs."""
    return Path(env_str("TALIA_VAR_DIR", str(BASE_DIR / "var"))).resolve()
