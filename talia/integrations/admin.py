"""The integrations app's admin, one module per area."""

from talia.integrations import admin_api, admin_calendars, admin_outbox  # noqa: F401
