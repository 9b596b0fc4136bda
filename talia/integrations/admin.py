"""The integrations app's admin, one module per area."""

from talia.integrations import admin_calendars  # noqa: F401
