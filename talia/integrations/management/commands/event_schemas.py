"""Write the JSON Schema of every event type's envelope (docs/events/schemas/<type>.json) and the table of
event types (docs/events/types.md); --check only reports stale files and exits non-zero when there are any."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from talia.env import BASE_DIR
from talia.integrations import schemas

DEFAULT_DIRECTORY = BASE_DIR / "docs" / "events"


class Command(BaseCommand):
    help = "Generate the event envelopes' JSON Schemas and docs/events/types.md (--check: verify they are current)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Change nothing; fail if a file is stale.")
        parser.add_argument("--dir", default=str(DEFAULT_DIRECTORY), help="Where to write (default: docs/events).")

    def handle(self, *args: Any, check: bool = False, dir: str = "", **options: Any) -> None:  # noqa: A002
        directory = Path(dir)
        if check:
            stale = schemas.stale_files(directory)
            if stale:
                raise CommandError(
                    f"Stale event schemas in {directory}: {', '.join(stale)}. Run `python manage.py event_schemas`."
                )
            self.stdout.write(f"Event schemas in {directory} are up to date.")
            return
        changed = schemas.write_files(directory)
        self.stdout.write(f"{len(changed)} file(s) updated in {directory}." if changed else "Nothing to update.")
        for name in changed:
            self.stdout.write(f"  {name}")
