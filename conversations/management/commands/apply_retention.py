"""Apply the retention policy now (what the nightly beat task does): anonymise the conversations closed
more than TALIA_RETENTION_DAYS days ago, and contacts left with nothing recent. Safe to run again or to
interrupt; --dry-run only counts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from conversations import retention


class Command(BaseCommand):
    help = "Anonymise conversations closed more than TALIA_RETENTION_DAYS days ago (see docs/deploy.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be anonymised; change nothing.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        outcome = retention.apply_retention(dry_run=dry_run)
        if not outcome.enabled:
            self.stdout.write("Retention is off (TALIA_RETENTION_DAYS is 0): nothing done.")
            return
        assert outcome.cutoff is not None
        verb = "Would anonymise" if dry_run else "Anonymised"
        self.stdout.write(
            f"{verb} {outcome.conversations} conversations closed before {outcome.cutoff:%Y-%m-%d %H:%M} UTC"
            f" and {outcome.contacts} contacts ({outcome.days} days)."
        )
        for name, count in outcome.detail.items():
            self.stdout.write(f"  {name}: {count}")
