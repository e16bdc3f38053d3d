"""The aurora-node daemon: HTTP and WebSocket API, PostgreSQL store, auth, registry (DESIGN.md section 7)."""
