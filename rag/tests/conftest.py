"""Fixtures of the knowledge-base tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def allow_local_sites(settings: Any) -> None:
    """Let the crawler read the test sites on 127.0.0.1 (any port), which it refuses by default."""
    settings.TALIA_CRAWL_ALLOW_HOSTS = ["127.0.0.1"]
