from talia.integrations import admin_outbox  # noqa: F401
