"""Real embeddings for the loopback servers: SmolLM2 run by llama.cpp in embedding mode, mean-pooled.

Checked with llama-cpp-python 0.3 and this GGUF: `Llama(..., embedding=True)` with the model's default
pooling returns one vector per token; with `pooling_type=LLAMA_POOLING_TYPE_MEAN` it returns one
576-dimensional vector per text, which `embed(..., normalize=True)` scales to unit length, as Ollama's
`/api/embed` does. A 135M chat model's pooled states are weak for search, but they are real vectors from
a real model: similar texts do come out closer (the tests check that).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from aurora.app.inference import default_model_path

if TYPE_CHECKING:
    from llama_cpp import Llama


class Embedder:
    def __init__(self, n_ctx: int = 512, n_threads: int = 2) -> None:
        self._n_ctx = n_ctx
        self._threads = n_threads
        self._llm: Llama | None = None
        self._lock = threading.Lock()
        self.dims = 576

    def _embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            if self._llm is None:
                import llama_cpp

                self._llm = llama_cpp.Llama(
                    model_path=str(default_model_path()),
                    n_ctx=self._n_ctx,
                    n_threads=self._threads,
                    embedding=True,
                    pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                    verbose=False,
                )
            vectors = self._llm.embed(texts, normalize=True, truncate=True)
        return [[float(x) for x in v] for v in vectors]  # type: ignore[union-attr]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._embed, texts)

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
