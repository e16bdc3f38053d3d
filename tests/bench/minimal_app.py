"""The start-up baseline: the smallest Textual app, one Static. Run as a script in a pseudo-terminal."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

MARKER = "ready-marker"


class MinimalApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(MARKER)


if __name__ == "__main__":
    MinimalApp().run()
