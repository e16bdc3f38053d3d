"""The `aurora` command line. With no command it opens the TUI on the chosen workspace.

Every failure a person can cause (a bad flag, a damaged database, a file that is not ours) ends in one line
on stderr that says what is wrong and what to do, and a non-zero exit code. Never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import get_completion_class

from aurora.app.config import Settings, load_settings
from aurora.app.entities import short_id
from aurora.app.errors import AuroraError, InvalidInputError
from aurora.app.tasks import TaskFilter
from aurora.app.workspace import MatrixPage, Workspace
from aurora.schema import Note, Quadrant, Task

_QUADRANT_NAMES = {
    "1": Quadrant.DO_FIRST, "do": Quadrant.DO_FIRST, "do-first": Quadrant.DO_FIRST,
    "2": Quadrant.SCHEDULE, "schedule": Quadrant.SCHEDULE,
    "3": Quadrant.DELEGATE, "delegate": Quadrant.DELEGATE,
    "4": Quadrant.ELIMINATE, "eliminate": Quadrant.ELIMINATE,
}  # fmt: skip


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aurora")
    except PackageNotFoundError:
        return "unknown"


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@contextmanager
def _workspace(ctx: click.Context) -> Iterator[Workspace]:
    ws = Workspace.open(_settings(ctx))
    try:
        yield ws
    finally:
        ws.close()


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _task_line(task: Task) -> str:
    due = f"  due {task.due.astimezone():%a %d %b %H:%M}" if task.due else ""
    tags = "".join(f" #{t}" for t in task.tags)
    mark = "x" if task.status == "done" else " "
    where = f"{task.quadrant.value} {task.quadrant.label:<9}"
    return f"[{mark}] {short_id(task.id)}  {where}  {task.title}{due}{tags}"


def _note_line(note: Note) -> str:
    first = note.body.splitlines()[0] if note.body else ""
    pin = "*" if note.pinned else " "
    tags = "".join(f" #{t}" for t in note.tags)
    return f"{pin} {short_id(note.id)}  {note.colour.value:<6}  {first}{tags}"


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace", "-w", metavar="NAME|PATH",
    help="Workspace to use: a name in the data dir, or a path to a .db file. [env: AURORA_WORKSPACE]",
)  # fmt: skip
@click.version_option(None, "--version", "-V", package_name="aurora", prog_name="aurora")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """Aurora, your local-first chief of staff. With no command, opens the priority matrix."""
    ctx.obj = load_settings(workspace=workspace)
    if ctx.invoked_subcommand is None:
        _run_tui(_settings(ctx))


def _run_tui(settings: Settings) -> None:
    ws = Workspace.open(settings)
    # Read the first screenful of the matrix now, before Textual is even imported: a few milliseconds
    # with the process to itself. (Read on a thread beside Textual's start-up instead, it took several
    # times longer: each SQLite step hands the GIL back and waits for the busy UI thread to release it.)
    first_page: Future[MatrixPage] = Future()
    first_page.set_result(ws.matrix_page())
    try:
        from aurora.tui.app import AuroraApp  # Textual is imported only when the TUI runs.

        app = AuroraApp(ws, theme=settings.theme, first_page=first_page)
        app.run()
    finally:
        ws.close()
    if app.crash is not None:
        raise app.crash  # main() logs it to crash.log and prints one line


@cli.command()
@click.option("--keep", is_flag=True, help="Reopen the existing demo instead of building a fresh one.")
@click.option("--no-tui", is_flag=True, help="Only build the demo workspace and print its path.")
@click.pass_context
def demo(ctx: click.Context, keep: bool, no_tui: bool) -> None:
    """Open a demo workspace with a realistic week of tasks and notes (never your own workspace)."""
    from aurora.app.demo import build_demo, demo_path

    settings = _settings(ctx)
    path = demo_path(settings)
    if not (keep and path.exists()):
        path = build_demo(settings)
    if no_tui:
        click.echo(str(path))
        return
    _run_tui(settings.model_copy(update={"workspace": str(path)}))


# Tasks ---------------------------------------------------------------------------------------------------


@cli.group()
def task() -> None:
    """Add, list, complete, move and delete tasks."""


@task.command("add")
@click.argument("text", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the new task as JSON.")
@click.pass_context
def task_add(ctx: click.Context, text: tuple[str, ...], as_json: bool) -> None:
    """Add a task with quick-add syntax: aurora task add Call Dana tomorrow 3pm !urgent #sales"""
    with _workspace(ctx) as ws:
        new = ws.tasks.add_quick(" ".join(text))
    if as_json:
        _emit(new.model_dump(mode="json"))
    else:
        click.echo(f"added {_task_line(new)}")


@task.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include completed tasks.")
@click.option("--filter", "query", default="", metavar="QUERY", help="Words and #tags to match.")
@click.option(
    "--quadrant",
    "-q",
    type=click.Choice(sorted(_QUADRANT_NAMES), case_sensitive=False),
    help="Only this quadrant.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def task_list(ctx: click.Context, show_all: bool, query: str, quadrant: str | None, as_json: bool) -> None:
    """List tasks in matrix order."""
    with _workspace(ctx) as ws:
        ws.tasks.rescore()  # quadrants follow due dates that drew near since the last look
        tasks = ws.tasks.list(TaskFilter.parse(query, show_done=show_all))
    if quadrant:
        tasks = [t for t in tasks if t.quadrant == _QUADRANT_NAMES[quadrant.lower()]]
    if as_json:
        _emit([t.model_dump(mode="json") for t in tasks])
    else:
        for t in tasks:
            click.echo(_task_line(t))
        if not tasks:
            click.echo("no tasks (add one with `aurora task add ...`)", err=True)


@task.command("done")
@click.argument("task_id")
@click.pass_context
def task_done(ctx: click.Context, task_id: str) -> None:
    """Mark a task done (or open again, if it was done). TASK_ID is the short id `task list` shows."""
    with _workspace(ctx) as ws:
        updated = ws.tasks.toggle_done(ws.tasks.resolve_id(task_id))
    click.echo(f"{'done' if updated.status == 'done' else 'reopened'} {_task_line(updated)}")


@task.command("move")
@click.argument("task_id")
@click.argument("quadrant", type=click.Choice(sorted(_QUADRANT_NAMES), case_sensitive=False))
@click.pass_context
def task_move(ctx: click.Context, task_id: str, quadrant: str) -> None:
    """Place a task in a quadrant by hand: 1/do, 2/schedule, 3/delegate, 4/eliminate."""
    with _workspace(ctx) as ws:
        moved = ws.tasks.move(ws.tasks.resolve_id(task_id), _QUADRANT_NAMES[quadrant.lower()])
    click.echo(f"moved {_task_line(moved)}")


@task.command("delete")
@click.argument("task_id")
@click.pass_context
def task_delete(ctx: click.Context, task_id: str) -> None:
    """Delete a task. (Undo lives in the TUI, for what was done there.)"""
    with _workspace(ctx) as ws:
        title = ws.tasks.delete(ws.tasks.resolve_id(task_id))
    click.echo(f"deleted “{title}”")


# Notes ---------------------------------------------------------------------------------------------------


@cli.group()
def note() -> None:
    """Add and list sticky notes."""


@note.command("add")
@click.argument("text", nargs=-1, required=True)
@click.option("--tag", "-t", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--colour", "--color", "colour", default="yellow",
              type=click.Choice(["yellow", "pink", "blue", "green", "purple", "orange"]))  # fmt: skip
@click.option("--pin", is_flag=True, help="Pin the note to the top.")
@click.option("--json", "as_json", is_flag=True, help="Print the new note as JSON.")
@click.pass_context
def note_add(
    ctx: click.Context, text: tuple[str, ...], tags: tuple[str, ...], colour: str, pin: bool, as_json: bool
) -> None:
    """Add a sticky note."""
    from aurora.schema import NoteColour

    with _workspace(ctx) as ws:
        new = ws.notes.add(" ".join(text), colour=NoteColour(colour), pinned=pin, tags=tags)
    if as_json:
        _emit(new.model_dump(mode="json"))
    else:
        click.echo(f"added {_note_line(new)}")


@note.command("list")
@click.option("--filter", "query", default="", metavar="QUERY", help="Words and #tags to match.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def note_list(ctx: click.Context, query: str, as_json: bool) -> None:
    """List notes, pinned first."""
    with _workspace(ctx) as ws:
        notes = ws.notes.list(query)
    if as_json:
        _emit([n.model_dump(mode="json") for n in notes])
    else:
        for n in notes:
            click.echo(_note_line(n))


# Whole workspace -------------------------------------------------------------------------------------------


@cli.command("export")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@click.pass_context
def export_cmd(ctx: click.Context, output: Path | None) -> None:
    """Export everything, operation log included, as JSON."""
    from aurora.app import transfer

    with _workspace(ctx) as ws:
        doc = transfer.export_document(ws)
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    tmp = output.with_name(output.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInputError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"exported {len(doc['tasks'])} tasks, {len(doc['notes'])} notes, {len(doc['ops'])} operations "
               f"to {output}", err=True)  # fmt: skip


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", metavar="FORMAT", help="Read every path as this format (default: detect).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def import_cmd(ctx: click.Context, paths: tuple[Path, ...], fmt: str | None, as_json: bool) -> None:
    """Import mail, calendars, Slack exports, transcripts, contacts, Taskwarrior data or Aurora exports.

    Formats are detected (or given with --format); a folder is walked. Idempotent: importing the same
    file again changes nothing.
    """
    from aurora.app.ingest.pipeline import Importer

    with _workspace(ctx) as ws, _progress(quiet=as_json) as progress:
        reports = Importer(ws, progress=progress).run(list(paths), fmt)
        ws.search.drain_all()  # what was imported is searchable when the command returns
    if as_json:
        _emit([_report_json(r) for r in reports])
        return
    for r in reports:
        click.echo(f"{r.path} ({r.format}): {r.new} new, {r.updated} updated, {r.unchanged} unchanged, "
                   f"{len(r.skipped)} skipped")  # fmt: skip
        for entry in r.skipped[:10]:
            click.echo(f"  skipped {entry.where}: {entry.reason}")
        if len(r.skipped) > 10:
            click.echo(f"  ... and {len(r.skipped) - 10} more skipped (see --json)")
    if len(reports) > 1:
        total = {k: sum(getattr(r, k) for r in reports) for k in ("new", "updated", "unchanged")}
        skips = sum(len(r.skipped) for r in reports)
        click.echo(f"total: {total['new']} new, {total['updated']} updated, {total['unchanged']} unchanged, "
                   f"{skips} skipped")  # fmt: skip


def _report_json(report: Any) -> dict[str, Any]:
    skipped = [{"where": s.where, "reason": s.reason} for s in report.skipped]
    return {"path": report.path, "format": report.format, "new": report.new, "updated": report.updated,
            "unchanged": report.unchanged, "skipped": skipped}  # fmt: skip


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int], None] | None]:
    """A progress line on stderr while importing (only on a terminal, and not with --json)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("importing")

        def update(path: str, count: int) -> None:
            bar.update(task, description=f"importing {Path(path).name}: {count} records")

        yield update


def _when(text: str | None, option: str) -> datetime | None:
    """A date for --since/--until: '2026-11-01', 'last monday', '3 weeks ago'."""
    if not text:
        return None
    import dateparser

    parsed = dateparser.parse(text, languages=["en"], settings={"PREFER_DATES_FROM": "past",
                                                               "RETURN_AS_TIMEZONE_AWARE": True})  # fmt: skip
    if not isinstance(parsed, datetime):
        raise InvalidInputError(f"{option} '{text}' is not a date; try 2026-11-01 or 'last monday'")
    return parsed


@cli.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="task, note, person, item, or an item kind: mail, event, message, transcript (repeatable).",
)
@click.option("--source", metavar="SOURCE", help="Only this source: mbox, ics, slack, taskwarrior...")
@click.option("--person", metavar="NAME|EMAIL", help="Only items this person took part in.")
@click.option("--since", metavar="DATE", help="From this date on ('2026-11-01', 'last monday').")
@click.option("--until", metavar="DATE", help="Before this date.")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="At most this many."
)
@click.option(
    "--semantic",
    is_flag=True,
    help="Also match by meaning (loads the embedding model: a few seconds; run `aurora index embed` first).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.pass_context
def search_cmd(
    ctx: click.Context,
    query: tuple[str, ...],
    kinds: tuple[str, ...],
    source: str | None,
    person: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    semantic: bool,
    as_json: bool,
) -> None:
    """Search tasks, notes, people and everything imported; matches are shown between « and »."""
    with _workspace(ctx) as ws:
        if semantic:
            ws.search.enable_vectors()
        hits = ws.search.query(
            " ".join(query),
            kinds=kinds or None,
            source=source,
            person=person,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            limit=limit,
        )
    if as_json:
        _emit(
            [
                {
                    "kind": h.kind,
                    "id": h.entity_id,
                    "title": h.title,
                    "snippet": h.snippet,
                    "occurred_at": h.occurred_at,
                    "source": h.source,
                    "score": h.score,
                }
                for h in hits
            ]
        )
        return
    for h in hits:
        when = h.occurred_at[:10] if h.occurred_at else "          "
        click.echo(f"{h.kind:<6} {when}  {h.title}")
        click.echo(f"       {' '.join(h.snippet.split())}")
    if not hits:
        click.echo("nothing found", err=True)


if TYPE_CHECKING:
    from collections.abc import Mapping

    from aurora.app.assistant import AnswerDone, AnswerFailed, Personality
    from aurora.app.assistant.chat import AnswerQueued, QuestionRefused

    AskEnd = AnswerDone | AnswerFailed | AnswerQueued | QuestionRefused


@cli.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.option(
    "--personality", "-p", metavar="NAME",
    help="Who answers: Robbie (the default), Stoic, Coach, Strategist, or one of your own.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the answer, its sources and the model as JSON.")
@click.pass_context
def ask_cmd(ctx: click.Context, question: tuple[str, ...], personality: str | None, as_json: bool) -> None:
    """Ask the assistant: it answers from your own tasks, notes and imported items and cites them as [S1].
    The small local model answers (the local-llm extra); with AURORA_OLLAMA_HOST set, that Ollama first."""
    import asyncio

    from aurora.app.assistant import AnswerDone, load_personalities, user_personalities_dir
    from aurora.app.assistant.chat import AnswerQueued, QuestionRefused
    from aurora.app.paths import default_config_file

    personalities, broken = load_personalities(user_personalities_dir(default_config_file()))
    for bad in broken:
        click.echo(f"aurora: personality file {bad.path} ignored: {bad.error}", err=True)
    with _workspace(ctx) as ws:
        final, conversation = asyncio.run(
            _ask(ws, personalities, " ".join(question), personality, stream=not as_json)
        )
    if isinstance(final, AnswerQueued):
        where = f"conversation {conversation[-8:]}"
        if as_json:
            _emit({"queued": True, "message": final.message, "conversation_id": conversation})
        raise AuroraError(f"{final.message}; it waits in {where} (`aurora chat show {conversation[-8:]}`)")
    if isinstance(final, QuestionRefused):
        if as_json:
            _emit({"error": final.message, "question": final.question})
        raise AuroraError(final.message)
    if not isinstance(final, AnswerDone):
        if as_json:
            _emit({"error": final.message, "question": final.question, "partial": final.partial,
                   "personality": final.personality, "conversation_id": conversation})  # fmt: skip
        elif final.partial:
            click.echo()
        raise AuroraError(final.message)
    if as_json:
        _emit(_answer_json(final) | {"conversation_id": conversation})
        return
    cited = {s.id for s in final.cited}
    click.echo()
    if final.sources:
        click.echo("\nSources:")
        for s in final.sources:
            warn = f"  (flagged: {', '.join(s.flagged)})" if s.flagged else ""
            click.echo(f"{'*' if s.id in cited else ' '} {s.label}{warn}")
    for p in final.suggestions:
        what = "task" if p.action.kind == "create_task" else "note"
        needs = f" (needs your confirmation: {'; '.join(p.reasons)})" if p.needs_confirmation else ""
        click.echo(f"suggested {what}: {p.action.title}{needs}")
    extra = [x for x in (final.marker, final.note) if x]
    if extra:
        click.echo(f"({'; '.join(extra)})")


def _answer_json(final: AnswerDone) -> dict[str, Any]:
    cited = {s.id for s in final.cited}
    sources = [
        {"id": s.id, "kind": s.kind, "entity_id": s.entity_id, "title": s.title, "when": s.when,
         "cited": s.id in cited, "flagged": list(s.flagged)}
        for s in final.sources
    ]  # fmt: skip
    suggestions = [
        {"kind": p.action.kind, "title": p.action.title, "status": p.status, "reasons": list(p.reasons)}
        for p in final.suggestions
    ]
    return {
        "answer": final.answer, "sources": sources, "personality": final.personality, "model": final.model,
        "backend": final.backend, "local": final.local, "supported": final.supported,
        "suggestions": suggestions, "note": final.note,
    }  # fmt: skip


async def _ask(
    ws: Workspace,
    personalities: Mapping[str, Personality],
    question: str,
    personality: str | None,
    *,
    stream: bool,
) -> tuple[AskEnd, str]:
    """One question through the assistant over the default backends (Ollama first where
    AURORA_OLLAMA_HOST names one, then the local model), saved as a new conversation, its text echoed as
    it streams; returns the last event and the conversation's id."""
    import contextlib

    from aurora.app.assistant import AnswerText, Assistant, derive_mood, find_personality, workload_from
    from aurora.app.assistant.chat import chat_turn, default_backends
    from aurora.app.inference import Router

    chosen = find_personality(personalities, personality)  # an unknown name: one line, nothing saved
    mood = derive_mood(workload_from(ws, ws.now(), None))
    conversation = ws.conversations.start(chosen.name)
    async with Router(default_backends()) as router:
        assistant = Assistant(ws, router, personalities)
        turn = chat_turn(assistant, conversation, question, chosen.name, mood=mood)
        async with contextlib.aclosing(turn) as events:
            async for event in events:
                if not isinstance(event, AnswerText):
                    return event, conversation
                if stream:
                    click.echo(event.text, nl=False)
    raise AuroraError("the assistant ended without an answer; please report it")


@cli.group("chat")
def chat() -> None:
    """Conversations with the assistant (the chat screen's, and `aurora ask`'s): list, read, export."""


@chat.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the conversations as JSON.")
@click.pass_context
def chat_list(ctx: click.Context, as_json: bool) -> None:
    """Conversations, the most recent first, with how many answers still wait for a model."""
    with _workspace(ctx) as ws:
        found = ws.conversations.recent()
    if as_json:
        _emit([{"id": c.id, "title": c.title, "personality": c.personality, "updated_at": c.updated_at,
                "waiting": c.waiting} for c in found])  # fmt: skip
        return
    if not found:
        click.echo("no conversations yet: press c in Aurora, or `aurora ask QUESTION`", err=True)
    for c in found:
        waiting = f"  ({c.waiting} waiting for a model)" if c.waiting else ""
        click.echo(
            f"{c.id[-8:]}  {c.updated_at.astimezone():%d %b %H:%M}  {c.personality:<10}  {c.title}{waiting}"
        )


@chat.command("show")
@click.argument("conversation")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
@click.pass_context
def chat_show(ctx: click.Context, conversation: str, as_json: bool) -> None:
    """One conversation (the id's last 8 characters will do), as Markdown."""
    with _workspace(ctx) as ws:
        conversation_id = ws.conversations.resolve_id(conversation)
        if as_json:
            messages = ws.conversations.messages(conversation_id)
            _emit([{"id": m.id, "role": m.role.value, "text": m.text, "status": m.status.value,
                    "error": m.error, "personality": m.personality, "model": m.model, "local": m.local,
                    "sources": [x.model_dump() for x in m.sources]} for m in messages])  # fmt: skip
            return
        click.echo(ws.conversations.export_markdown(conversation_id), nl=False)


@chat.command("export")
@click.argument("conversation")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.pass_context
def chat_export(ctx: click.Context, conversation: str, output: Path | None) -> None:
    """Export one conversation to a Markdown file: questions, answers, their sources."""
    with _workspace(ctx) as ws:
        text = ws.conversations.export_markdown(ws.conversations.resolve_id(conversation))
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AuroraError(
            f"cannot write {output}: {exc.strerror}; choose another file with --output"
        ) from None
    click.echo(f"exported to {output}", err=True)


@cli.group("index")
def index() -> None:
    """The search index: its state, and rebuilding it."""


@index.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def index_status(ctx: click.Context, as_json: bool) -> None:
    """Chunks indexed, changes waiting to be indexed, chunks embedded and with which model."""
    with _workspace(ctx) as ws:
        status = ws.search.status()
        embedded, total = ws.search.embed_progress()
        model = ws.search.embedding_model
    if as_json:
        _emit({"chunks": status.chunks, "queued": status.queued, "embedded": embedded, "model": model})
    else:
        click.echo(
            f"{status.chunks} chunks indexed, {status.queued} changes waiting to be indexed, "
            f"{embedded} of {total} chunks embedded with {model}"
        )


@index.command("embed")
@click.pass_context
def index_embed(ctx: click.Context) -> None:
    """Embed every chunk still waiting for its vector (the TUI also does this in the background)."""
    with _workspace(ctx) as ws, _progress(quiet=False) as progress:
        ws.search.drain_all()
        ws.search.enable_vectors()
        done = 0
        while (n := ws.search.embed_some(64)) > 0:
            done += n
            if progress:
                progress("embedding", done)
        embedded, total = ws.search.embed_progress()
    click.echo(f"embedded {done} chunks; {embedded} of {total} now have vectors")


@index.command("rebuild")
@click.pass_context
def index_rebuild(ctx: click.Context) -> None:
    """Index everything again from the workspace's own rows (the index is derived, so always rebuildable)."""
    with _workspace(ctx) as ws:
        queued = ws.search.rebuild()
        done = ws.search.drain_all()
    click.echo(f"re-indexed {done} of {queued} entities")


def _changes(n: int) -> str:
    return f"{n} change{'' if n == 1 else 's'}"


@cli.command("pair")
@click.argument("url")
@click.argument("code")
@click.pass_context
def pair_cmd(ctx: click.Context, url: str, code: str) -> None:
    """Pair this workspace with a node: URL is the node's address, CODE a one-time code from
    `aurora-node devices add NAME` (NAME is what the node calls this laptop). Tokens go to the OS keyring
    (or, with no keyring, to an encrypted file keyed by AURORA_CREDENTIALS_KEY)."""
    from aurora.app import sync_service

    with _workspace(ctx) as ws:
        creds = sync_service.pair(ws.path, ws.store, url, code)
    click.echo(f"paired with node {creds.node_id} at {creds.node_url} as device {creds.device_id}")
    click.echo("run `aurora sync` to send and fetch changes now; the TUI syncs by itself")


@cli.command("sync")
@click.option("--status", "status_only", is_flag=True, help="Show the sync state; do not contact the node.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def sync_cmd(ctx: click.Context, status_only: bool, as_json: bool) -> None:
    """One sync round with the paired node: push every change made here, pull every change made
    elsewhere. Exits 1 if the node could not be reached or refused; nothing is lost either way."""
    from dataclasses import asdict

    from aurora.app import sync_service

    with _workspace(ctx) as ws:
        if status_only:
            view = sync_service.overview(ws.path, ws.store)
            if as_json:
                _emit(asdict(view))
            elif not view.paired:
                click.echo(f"not paired; {_changes(view.pending)} waiting. Pair with `aurora pair URL CODE`")
            else:
                last = view.last_sync.strftime("%Y-%m-%d %H:%M:%S") if view.last_sync else "never"
                click.echo(f"paired with node {view.node_id} at {view.node_url} as device {view.device_id}")
                click.echo(f"{_changes(view.pending)} waiting · last sync {last}")
                if view.last_error:
                    click.echo(f"last error: {view.last_error}")
            return
        report = sync_service.sync_once(ws.path, ws.store, ws.settings.embedding_model)
        pending = ws.store.pending_ops()
    if as_json:
        _emit({**asdict(report), "pending": pending})
    else:
        refused = f", {report.refused} refused" if report.refused else ""
        click.echo(
            f"pushed {report.pushed}{refused}, pulled {report.pulled} ({report.applied} new); "
            f"{_changes(pending)} waiting"
        )
    if not report.ok:
        raise AuroraError("; ".join(report.errors))


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool) -> None:
    """Report versions, extensions and what is missing. Exits 1 if something is."""
    from aurora.app import doctor

    checks = doctor.run_checks(_settings(ctx))
    if as_json:
        _emit([{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
    else:
        for c in checks:
            click.echo(f"{'ok ' if c.ok else 'BAD'}  {c.name:<12} {c.detail}")
    if not all(c.ok for c in checks):
        ctx.exit(1)


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell-completion script: eval "$(aurora completion bash)"."""
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "aurora", "_AURORA_COMPLETE").source())


def _crash_log(exc: BaseException) -> Path | None:
    try:
        from aurora.app.paths import default_data_dir

        data_dir = os.environ.get("AURORA_DATA_DIR")
        path = (Path(data_dir) if data_dir else default_data_dir()) / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now().isoformat()} aurora {_version()}\n")
            log.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `aurora` console script."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="aurora",
                          standalone_mode=False)  # fmt: skip
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "aurora"
        click.echo(f"aurora: {exc.format_message().rstrip('.')} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"aurora: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aurora: interrupted", err=True)
        sys.exit(130)
    except AuroraError as exc:
        click.echo(f"aurora: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        log = _crash_log(exc)
        where = f"; details in {log}" if log else ""
        click.echo(f"aurora: unexpected error ({exc.__class__.__name__}: {exc}){where}; please report it",
                   err=True)  # fmt: skip
        sys.exit(70)
    sys.exit(result if isinstance(result, int) else 0)
