"""Event.published_at, the integrations outbox marker.

Events recorded before this migration count as published (set to now): the first deploy of the publisher
sends only new events, not the whole history, to the sinks.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0015_retention"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="published_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="published at"),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(("published_at__isnull", True)), fields=["id"], name="event_unpublished"
            ),
        ),
        migrations.RunSQL(
            "UPDATE conversations_event SET published_at = now() WHERE published_at IS NULL",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
