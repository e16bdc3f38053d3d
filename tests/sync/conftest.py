"""The node's session PostgreSQL (`tests.node.conftest.pg_server`), for the suites here that run the same
checks against the laptop's SQLite log and the node's PostgreSQL log."""

from tests.node.conftest import pg_server

__all__ = ["pg_server"]
