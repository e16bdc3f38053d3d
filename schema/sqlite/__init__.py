"""SQLite migrations, applied in order by `aurora.schema.migrate`."""
