"""The local runtime: embedded Postgres and Redis, and the `make run` process supervisor."""
