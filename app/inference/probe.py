"""The health probe the HTTP backends share: list the models, within a bound, and time it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aurora.app.inference.errors import InferenceError, ModelNotFoundError
from aurora.app.inference.types import BackendHealth


async def probe(models: Callable[[], Awaitable[list[str]]], limit: float, who: str) -> BackendHealth:
    """`models()` bounded by `limit` seconds (a probe is a small answer or nothing); `who` names the
    server in the message ("Ollama at http://…")."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            listed = await models()
    except TimeoutError:
        return BackendHealth(ok=False, error=f"{who} did not answer a health check within {limit:g} s")
    except InferenceError as error:
        return BackendHealth(ok=False, error=str(error))
    return BackendHealth(ok=True, models=listed, latency_ms=(time.perf_counter() - start) * 1000)


async def choose_model(
    model: str | None,
    default: str | None,
    known: list[str],
    listed: Callable[[], Awaitable[list[str]]],
    none_there: str,
) -> str:
    """The model a request goes to: the one asked for, else the backend's default, else the first the
    server lists (`known`, or asked now with `listed`); `ModelNotFoundError(none_there)` if it lists none."""
    if model:
        return model
    if default:
        return default
    models = known or await listed()
    if not models:
        raise ModelNotFoundError(none_there)
    return models[0]
