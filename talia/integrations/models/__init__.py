"""The integrations app's models, one module per area, gathered here for Django."""

from talia.integrations.models.api import *  # noqa: F403
from talia.integrations.models.calendars import *  # noqa: F403
from talia.integrations.models.deliveries import *  # noqa: F403
from talia.integrations.models.webhooks import *  # noqa: F403
