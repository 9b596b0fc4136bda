"""The `local` provider (optional extra: requirements-local-embeddings.txt, several GB with PyTorch).

CI does not install the extra, so these tests are skipped there; they run wherever it is installed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers", reason="the local embeddings extra is not installed")

from rag import embeddings, ingest, retrieval  # noqa: E402
from rag.models import Chunk  # noqa: E402
from rag.tests.site import page, serve_site, sitemap  # noqa: E402

# The test sites run on 127.0.0.1, which the crawler refuses unless allowed.
pytestmark = pytest.mark.usefixtures("allow_local_sites")

ROUTES = {
    "/sitemap.xml": sitemap("{site}/implants", "{site}/parking"),
    "/implants": page("Implants", "<main><h1>Implants</h1><p>A titanium implant costs 950 euros.</p></main>"),
    "/parking": page("Parking", "<main><h1>Getting here</h1><p>Patients park for free in the garage.</p></main>"),
}


def test_local_embeddings_find_a_paraphrase_offline(db, settings):
    settings.TALIA_EMBED_PROVIDER = "local"
    with serve_site(ROUTES) as site:
        job = ingest.start_ingest(site.url("/"), enqueue=False)
        assert ingest.run_ingest(str(job.pk)).indexed == 2

    assert set(Chunk.objects.values_list("embedding_space", flat=True)) == {embeddings.LocalEmbedder.space}
    # No word in common with the page: only the embeddings can find it.
    nearest = retrieval.vector_candidates("Where can I leave my car?")
    assert nearest and next(iter(nearest)) == Chunk.objects.get(document__url=site.url("/parking")).pk
