"""The laptop core: the SQLite store, the services the UI calls, and pure domain logic.

Nothing here imports Textual; the TUI and the CLI are thin layers over `aurora.app.workspace.Workspace`.
"""
