"""A pending turn whose enqueue failed or was skipped (Redis down) is marked by queued_at = NULL.

Only drops NOT NULL: every stored row keeps its value; nothing is rewritten.
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_worker_holders"),
    ]

    operations = [
        migrations.AlterField(
            model_name="assistantrun",
            name="queued_at",
            field=models.DateTimeField(
                blank=True, default=django.utils.timezone.now, null=True, verbose_name="queued at"
            ),
        ),
    ]
