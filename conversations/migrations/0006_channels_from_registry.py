"""Channels come from conversations.registry.channel_specs, not a closed choice list in the core.

Drops the choices of the `channel` fields (state only: no SQL, no data change) and adds the provider
delivery statuses `queued` and `undelivered` used by delivery.record_status.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0005_assistantrun_queued_at_nullable"),
    ]

    operations = [
        migrations.AlterField(
            model_name="contactidentity",
            name="channel",
            field=models.CharField(max_length=16, verbose_name="channel"),
        ),
        migrations.AlterField(
            model_name="conversation",
            name="channel",
            field=models.CharField(max_length=16, verbose_name="channel"),
        ),
        migrations.AlterField(
            model_name="message",
            name="channel",
            field=models.CharField(max_length=16, verbose_name="channel"),
        ),
        migrations.AlterField(
            model_name="message",
            name="delivery_status",
            field=models.CharField(
                blank=True,
                choices=[
                    ("received", "Received"),
                    ("pending", "Pending"),
                    ("queued", "Queued by the provider"),
                    ("sent", "Sent"),
                    ("delivered", "Delivered"),
                    ("read", "Read"),
                    ("failed", "Failed"),
                    ("undelivered", "Undelivered"),
                ],
                max_length=16,
                verbose_name="delivery status",
            ),
        ),
    ]
