from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """The knowledge base stores embeddings in pgvector columns; the extension comes first."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [VectorExtension()]
