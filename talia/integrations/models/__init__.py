"""The integrations app's models, one module per area, gathered here for Django."""

from talia.integrations.models.api import *  # noqa: F403
