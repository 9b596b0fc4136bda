#!/usr/bin/env python
"""Django's command-line utility. Starts the embedded Postgres/Redis when no URLs are configured."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
    # Commands connect per use: a migration may run a statement longer than the pool's read deadline
    # (TALIA_DATABASE_READ_TIMEOUT_S). Daphne and Celery workers keep the pool on.
    if len(sys.argv) < 2 or sys.argv[1] != "runserver":
        os.environ.setdefault("TALIA_DATABASE_POOL", "false")
    from talia.runtime.embedded import bootstrap

    bootstrap()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
