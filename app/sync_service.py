"""A workspace's link to its node, as the CLI and the TUI use it: pair, one round, the background loop.

The background loop (`LiveSync`) runs on a thread of its own with a `Store` of its own on the same file:
SQLite's locking and the store's per-transaction clock check keep it and the UI's store apart exactly as
they keep two processes apart, and neither ever waits for the other's network round trip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aurora.app.credentials import CredentialsStore, NodeCredentials, credentials_for
from aurora.app.errors import AuroraError
from aurora.app.node_client import NodeClient, NodeError
from aurora.app.store import Store
from aurora.app.sync_log import SqliteActionLog
from aurora.app.syncer import LiveStatus, LiveSync, Syncer, SyncReport


@dataclass(frozen=True)
class SyncOverview:
    """What `aurora sync --status` shows: no network involved."""

    paired: bool
    node_url: str | None
    node_id: str | None
    device_id: str
    pending: int
    last_sync: datetime | None
    last_error: str | None
    refused: int


def pair(workspace_file: Path, store: Store, url: str, code: str) -> NodeCredentials:
    """Trade a pairing code for this workspace's tokens (kept in the keyring, or the encrypted file), under
    the device id the workspace already stamps its changes with; the push and pull cursors start over, so
    the first round sends everything made here and fetches everything the node holds."""
    credentials = credentials_for(workspace_file)
    # The device's name is the one its pairing code was made for (`aurora-node devices add NAME`).
    creds = NodeClient.pair(url, code, "", credentials, device_id=store.device_id)
    SqliteActionLog(store).reset_cursors()
    return creds


def overview(workspace_file: Path, store: Store) -> SyncOverview:
    log = SqliteActionLog(store)
    creds: NodeCredentials | None = None
    with contextlib.suppress(AuroraError):  # no keyring and no key: not paired, as far as we can tell
        creds = credentials_for(workspace_file).load()
    status = log.sync_status()
    return SyncOverview(
        paired=creds is not None,
        node_url=creds.node_url if creds else None,
        node_id=creds.node_id if creds else None,
        device_id=store.device_id,
        pending=log.pending(),
        last_sync=status.last_sync,
        last_error=status.last_error,
        refused=status.refused,
    )


def sync_once(workspace_file: Path, store: Store, embedding_model: str | None = None) -> SyncReport:
    """One round (push everything, pull everything); raises NotPairedError when there is no node. With
    `embedding_model`, a round that brought changes then takes the node's vectors for them."""
    credentials = credentials_for(workspace_file)
    with NodeClient(credentials) as client:
        report = Syncer(SqliteActionLog(store), client).sync_once()
        if embedding_model and report.applied:
            adopt_vectors(store, client, embedding_model)
        return report


def adopt_vectors(store: Store, client: NodeClient, model: str) -> int:
    """Chunks that got the node's vector of `model` (see `aurora.app.search.node_vectors`). Never raises
    for the node's sake: a node without vectors, an old one, or one gone away leaves the work to the local
    embedding worker."""
    from aurora.app.embed.model import known_dim
    from aurora.app.search.indexer import Indexer
    from aurora.app.search.node_vectors import (
        NodeChunk,
        NodeEntityVectors,
        adopt_node_vectors,
        decode_vector,
    )

    dim = known_dim(model)
    if dim is None or not store.fts5:
        return 0
    Indexer(store).drain_all()  # what the round brought, cut into chunks: what the node has vectors for

    def fetch(keys: Sequence[tuple[str, str]], wanted: str) -> list[NodeEntityVectors]:
        answer = client.vectors(keys, wanted)
        if answer.dim != dim or answer.encoding != "f32le-base64":
            return []
        out: list[NodeEntityVectors] = []
        for e in answer.entities:
            chunks: list[NodeChunk] = []
            for c in e.chunks:
                with contextlib.suppress(ValueError):  # not a vector of this size: that chunk waits
                    chunks.append(NodeChunk(c.ord, c.text_hash, decode_vector(c.vector, dim)))
            out.append(NodeEntityVectors(e.entity, e.entity_id, e.model, tuple(chunks)))
        return out

    try:
        return adopt_node_vectors(store, fetch, model, dim)
    except NodeError:
        return 0


class BackgroundSync:
    """The TUI's sync: a `LiveSync` over a store of its own. `start` does nothing for a workspace that
    is not paired (or whose credentials cannot be read: `problem` says why)."""

    def __init__(
        self,
        workspace_file: Path,
        on_report: Callable[[SyncReport], None] | None = None,
        embedding_model: str | None = None,
    ) -> None:
        """`embedding_model`: after a round that brought changes, take the node's vectors of this model
        for them (on the sync thread, before `on_report`)."""
        self._file = workspace_file
        self._on_report = on_report
        self._embedding_model = embedding_model
        self._store: Store | None = None
        self._client: NodeClient | None = None
        self._live: LiveSync | None = None
        self.problem: str | None = None

    def start(self) -> bool:
        """Open the store and the client and start the loop (reads the keyring: call it off the UI
        thread). False when the workspace is not paired."""
        try:
            credentials: CredentialsStore = credentials_for(self._file)
            if credentials.load() is None:
                return False
            self._client = NodeClient(credentials)
            self._store = Store.open(self._file)
        except AuroraError as error:
            self.problem = str(error)
            self.close()
            return False
        self._live = LiveSync(Syncer(SqliteActionLog(self._store), self._client), on_report=self._reported)
        self._live.start()
        return True

    def _reported(self, report: SyncReport) -> None:
        store, client, model = self._store, self._client, self._embedding_model
        if model and report.applied and store is not None and client is not None:
            with contextlib.suppress(AuroraError):  # the store closing under us: the next round retries
                adopt_vectors(store, client, model)
        if self._on_report is not None:
            self._on_report(report)

    def nudge(self) -> None:
        if self._live is not None:
            self._live.nudge()

    def status(self) -> LiveStatus | None:
        if self._live is None:
            return None
        try:
            return self._live.status()
        except AuroraError:
            return None

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._store is not None:
            self._store.close()
            self._store = None
