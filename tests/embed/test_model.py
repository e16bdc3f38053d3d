"""The embedder with the real packaged all-MiniLM-L6-v2 model, loaded offline on the CPU (no mocks)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from aurora.app.embed import DEFAULT_MODEL, Embedder, EmbedModelError
from aurora.app.embed import model as model_module
from aurora.app.errors import AuroraError


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_encode_gives_normalised_float32_rows(embedder: Embedder) -> None:
    vectors = embedder.encode(["Buy milk", "Quarterly planning review with the design team", ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    assert embedder.dim == 384
    assert embedder.loaded


def test_close_meanings_score_higher_than_unrelated(embedder: Embedder) -> None:
    move, reschedule, invoice = embedder.encode(
        [
            "Can we move our meeting to Thursday?",
            "Let's reschedule the call for later this week",
            "The invoice total is 4,200 euros",
        ]
    )
    close = float(move @ reschedule)
    assert close > float(move @ invoice) + 0.2
    assert close > float(reschedule @ invoice) + 0.2


def test_encode_query_equals_first_row(embedder: Embedder) -> None:
    query = "when is the dentist appointment"
    vector = embedder.encode_query(query)
    assert vector.shape == (384,)
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, embedder.encode([query])[0], atol=1e-6)


def test_rows_keep_the_callers_order_whatever_the_batch_size(embedder: Embedder) -> None:
    texts = [f"note {i}: " + "word " * (i * 7 % 23) for i in range(20)]
    whole = embedder.encode(texts)
    small_batches = embedder.encode(texts, batch_size=3)
    one_by_one = np.stack([embedder.encode_query(text) for text in texts])
    np.testing.assert_allclose(small_batches, whole, atol=1e-5)
    np.testing.assert_allclose(one_by_one, whole, atol=1e-5)


def test_empty_list_gives_no_rows_without_loading_the_model() -> None:
    fresh = Embedder()
    vectors = fresh.encode([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert fresh.dim == 384
    assert not fresh.loaded


def test_one_string_is_refused_by_encode(embedder: Embedder) -> None:
    with pytest.raises(TypeError):
        embedder.encode("not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["missing", "empty folder", "hub name"])
def test_a_model_that_cannot_load_offline_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    name = {
        "missing": str(tmp_path / "no-such-model"),
        "empty folder": str(tmp_path),
        "hub name": "sentence-transformers/all-mpnet-base-v2",
    }[kind]
    bad = Embedder(name)
    assert bad.name == name
    with pytest.raises(EmbedModelError) as caught:
        bad.encode(["hello"])
    assert isinstance(caught.value, AuroraError)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(name) in message
    assert DEFAULT_MODEL in message  # says what to set instead
    with pytest.raises(EmbedModelError):  # and says so again, without retrying the load
        bad.encode_query("hello")


def test_the_model_loads_once_when_threads_race(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = model_module._load

    def counting_load(name: str, threads: int) -> object:
        loads.append(name)
        return real_load(name, threads)

    monkeypatch.setattr(model_module, "_load", counting_load)
    fresh = Embedder()
    texts = ["call the plumber", "renew the passport", "book flights to Lisbon"]
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(fresh.encode(texts, batch_size=2))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert loads == [DEFAULT_MODEL]
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], atol=1e-6)


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, aurora.app.embed as e; e.Embedder(); "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_query_uses_only_the_cores_the_load_leaves_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    from aurora.app.embed.model import QUERY_THREADS, query_threads

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert query_threads(load=0.1) == QUERY_THREADS  # idle: every core, up to the cap
    assert query_threads(load=5.8) == 2
    assert query_threads(load=12.0) == 1  # overloaded: one thread, never none
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert query_threads(load=0.3) == 2
    assert query_threads(load=1.2) == 1  # the other core is busy: two threads would wait on each other
