"""A real aurora-node on loopback for tests: uvicorn serving `create_app` in a thread, on a free port."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from aurora.node import auth
from aurora.node.api import create_app
from aurora.node.config import NodeSettings
from aurora.node.db import connect_pool


@contextmanager
def running_node(database_url: str, data_dir: Path, port: int = 0, http: str = "auto") -> Iterator[str]:
    """Serve a node on `database_url` (already migrated) until the block ends; yields its base URL. Port 0:
    a free one. `http`: uvicorn's HTTP implementation ("h11", "httptools", or "auto" as the node does)."""
    settings = NodeSettings(database_url=database_url, data_dir=data_dir, host="127.0.0.1")
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", http=http
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="aurora-node test server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test node did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)


def pairing_code(database_url: str, name: str = "laptop", **kwargs: Any) -> str:
    """A one-time pairing code, made as `aurora-node devices add` makes it (through the database)."""

    async def make() -> str:
        pool = await connect_pool(database_url, 1, 1)
        try:
            return await auth.new_pairing_code(pool, name, **kwargs)
        finally:
            await pool.close()

    # A thread of its own, so async tests (already inside an event loop) can call it too.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()
