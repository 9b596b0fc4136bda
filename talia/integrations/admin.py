from talia.integrations import admin_api  # noqa: F401
