"""A lead card's channel is any registered channel (conversations.registry.channel_specs).

Drops the field's closed choices: state only, no SQL, no data change.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="leadcard",
            name="channel",
            field=models.CharField(blank=True, max_length=16, verbose_name="channel"),
        ),
    ]
