"""The `/` filter line: free text and #tags; escape clears it."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """The `/` filter: free text and #tags. Enter keeps it (`Submitted`), escape clears it (`Closed`);
    either way the screen puts focus back where it was."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear_filter", "Clear filter")]

    class Closed(Message):
        """The filter was cleared with escape."""

    def action_clear_filter(self) -> None:
        self.value = ""
        self.display = False
        self.post_message(self.Closed())
