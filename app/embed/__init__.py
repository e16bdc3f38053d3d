"""Sentence embeddings for semantic search (DESIGN.md section 4).

Importing this package is cheap: torch and sentence-transformers load only when an `Embedder` first
encodes (or is asked the dimension of a model it does not know by name).
"""

from __future__ import annotations

from aurora.app.embed.model import DEFAULT_MODEL, Embedder, EmbedModelError

__all__ = ["DEFAULT_MODEL", "EmbedModelError", "Embedder"]
