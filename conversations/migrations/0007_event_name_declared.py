"""Event names are declared by the apps that record them (conversations/events.py), not a closed choice list."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0006_channels_from_registry"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="name",
            field=models.CharField(db_index=True, max_length=64, verbose_name="name"),
        ),
    ]
