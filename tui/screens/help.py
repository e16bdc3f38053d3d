"""The help screen (`?`): every key of the screen beneath it, read from its bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "full_stop": ".",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "space": "space",
}


def key_label(key: str) -> str:
    return " / ".join(_KEY_NAMES.get(k, k) for k in key.split(","))


class HelpModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, beneath: Screen[object]) -> None:
        super().__init__()
        self._beneath = beneath

    def compose(self) -> ComposeResult:
        table = Table(title=f"Keys: {self._beneath.title or 'Aurora'}", expand=True, box=None)
        table.add_column("Key", style="bold cyan", no_wrap=True)
        table.add_column("What it does")
        seen: set[str] = set()
        for binding in [*self._beneath.BINDINGS, *self.app.BINDINGS]:
            if isinstance(binding, Binding) and binding.description and binding.action not in seen:
                seen.add(binding.action)
                table.add_row(key_label(binding.key), binding.description)
        table.add_row("up / down, k / j", "Move within a list (on past its ends to the next one)")
        table.add_row("tab / shift+tab", "Next / previous list or field")
        table.add_row("ctrl+p", "Command palette: every action by name")
        with VerticalScroll(id="help-box"):
            yield Static(table)
            yield Static("[dim]escape closes this screen[/dim]")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
