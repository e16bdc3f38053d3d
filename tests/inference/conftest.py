"""Fixtures of the inference tests: the real SmolLM2 model (llama.cpp, in process), and loopback servers that
speak Ollama's and OpenAI's APIs answering with it. Nothing is mocked: tokens, grammars, sockets and
cancellations are real.

The servers start once per session (each loads its own copy of the model: about 0.2 s and 150 MB); each
test gets them with their fault switches reset and their request logs emptied.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from aurora.app.inference import (
    LocalLlamaBackend,
    OllamaBackend,
    OpenAICompatibleBackend,
    Timeouts,
)
from tests.inference.embedder import Embedder
from tests.inference.loopback import SilentServer, free_port
from tests.inference.ollama_server import OllamaServer
from tests.inference.openai_server import OpenAIServer
from tests.local_model import warmed

THREADS = 2
"""llama.cpp threads per model: the test machines have two cores."""
FAST = Timeouts(connect=1.0, read=5.0, write=2.0, pool=2.0)


@pytest.fixture(scope="session")
def local_backend() -> Iterator[LocalLlamaBackend]:
    """One in-process model for the session (its worker thread outlives each test's event loop)."""
    backend = warmed(LocalLlamaBackend(n_threads=THREADS))
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture(scope="session")
def embedder() -> Iterator[Embedder]:
    e = Embedder(n_threads=THREADS)
    yield e
    e.close()


@pytest.fixture(scope="session")
def _ollama_server(embedder: Embedder) -> Iterator[OllamaServer]:
    server = OllamaServer(warmed(LocalLlamaBackend(n_threads=THREADS, name="ollama-model")), embedder).start()
    yield server
    server.stop()
    asyncio.run(server.backend.aclose())


@pytest.fixture
def ollama_server(_ollama_server: OllamaServer) -> Iterator[OllamaServer]:
    _ollama_server.reset()
    yield _ollama_server
    _ollama_server.reset()
    assert _ollama_server.backend.wait_idle(5), "the stand-in's model was still generating after the test"


@pytest.fixture(scope="session")
def _openai_server(embedder: Embedder) -> Iterator[OpenAIServer]:
    server = OpenAIServer(warmed(LocalLlamaBackend(n_threads=THREADS, name="openai-model")), embedder).start()
    yield server
    server.stop()
    asyncio.run(server.backend.aclose())


@pytest.fixture
def openai_server(_openai_server: OpenAIServer) -> Iterator[OpenAIServer]:
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()
    assert _openai_server.backend.wait_idle(5)


@pytest.fixture
async def ollama(ollama_server: OllamaServer) -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend(ollama_server.url, timeouts=FAST, name="ollama")
    yield backend
    await backend.aclose()


@pytest.fixture
async def openai(openai_server: OpenAIServer) -> AsyncIterator[OpenAICompatibleBackend]:
    backend = OpenAICompatibleBackend(
        openai_server.url + "/v1", timeouts=FAST, name="openai", api_key="sk-test"
    )
    yield backend
    await backend.aclose()


@pytest.fixture
def local(local_backend: LocalLlamaBackend) -> Iterator[LocalLlamaBackend]:
    yield local_backend
    assert local_backend.wait_idle(5), "the local model was still generating after the test"


@pytest.fixture
def refused_url() -> str:
    """An address where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """An address that accepts connections and never answers."""
    server = SilentServer()
    yield server.url
    server.stop()
