"""Importers: files a person already has (mail, calendars, chat, transcripts, contacts, tasks) into records.

Each format has a pure parser module here (file in, `Record`s and `Skipped`s out, no database); the
pipeline (`aurora.app.ingest.pipeline`) detects formats and writes records to the store as operations.
The parsers are I/O-light and free of the store so the node's connectors can reuse them (DESIGN.md 1).
"""
