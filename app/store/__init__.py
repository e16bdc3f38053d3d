"""The laptop's SQLite store: one writer connection, operations written with every change."""

from aurora.app.store.database import DatabaseInfo, probe_extensions
from aurora.app.store.store import Store

__all__ = ["DatabaseInfo", "Store", "probe_extensions"]
