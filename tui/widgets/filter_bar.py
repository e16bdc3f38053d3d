"""The `/` filter line: free text and #tags; escape clears it."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input


class FilterBar(Input):
    """The `/` filter: free text and #tags; escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear_filter", "Clear filter")]

    def action_clear_filter(self) -> None:
        self.value = ""
        self.display = False
        self.screen.focus_next()
