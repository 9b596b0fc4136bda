#!/usr/bin/env python
"""Django's command-line utility. Starts the embedded Postgres/Redis when no URLs are configured."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
    from talia.runtime.embedded import bootstrap

    bootstrap()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
