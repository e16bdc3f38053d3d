"""Errors a person may see. Each message is one line that says what is wrong and what to do.

The CLI and the TUI print `str(error)` and nothing else: no traceback ever reaches a person.
"""

from __future__ import annotations


class AuroraError(Exception):
    """Base of every error meant for a person's eyes."""


class StoreError(AuroraError):
    """The workspace database cannot be used as it is."""


class CorruptDatabaseError(StoreError):
    pass


class NewerDatabaseError(StoreError):
    pass


class ReadOnlyError(StoreError):
    pass


class DiskFullError(StoreError):
    pass


class NotFoundError(AuroraError):
    pass


class InvalidInputError(AuroraError):
    """Something a person typed or passed cannot be used (a malformed quick-add, a bad flag value)."""


class ImportFormatError(AuroraError):
    """A file given to `aurora import` is not in a format Aurora reads."""


class ConfigError(AuroraError):
    pass
