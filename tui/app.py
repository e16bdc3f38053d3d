"""The Textual app: a thin shell over the workspace's services.

All disk work runs on one background thread (`AuroraApp.background`), in the order it was asked for, so a
keypress never waits for SQLite and writes never race each other. Results come back to the UI thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

from aurora.app.errors import AuroraError
from aurora.app.mood import MOOD_EVERY
from aurora.app.workspace import MatrixPage, Workspace
from aurora.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from aurora.app.assistant import Assistant, Mood, Personality
    from aurora.app.sync_service import BackgroundSync
    from aurora.app.syncer import SyncReport

T = TypeVar("T")

_INDEX_EVERY_S = 2.0
_INDEX_BATCH = 100
_EMBED_BATCH = 32
_EMBED_IDLE_S = 2.0

THEMES = {"dark": "textual-dark", "light": "textual-light"}


class ScreenCommands(Provider):
    """The command palette lists every action of the screen in front, with its key."""

    def _commands(self) -> Iterable[tuple[str, str, str]]:
        screen = self.screen
        for binding in [*screen.BINDINGS, *self.app.BINDINGS]:
            if isinstance(binding, Binding) and binding.description:
                key = binding.key_display or binding.key.split(",")[0]
                yield binding.description, binding.action, key

    async def discover(self) -> Hits:
        for description, action, key in self._commands():
            yield DiscoveryHit(description, self._runner(action), help=f"key: {key}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, action, key in self._commands():
            score = matcher.match(description)
            if score > 0:
                yield Hit(score, matcher.highlight(description), self._runner(action), help=f"key: {key}")

    def _runner(self, action: str) -> Callable[[], Any]:
        screen = self.screen

        async def run() -> None:
            await screen.run_action(action)

        return run


class AuroraApp(App[None]):
    # Absolute, so a subclass in another module (tests, benchmarks) finds it too.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "Aurora"
    COMMANDS: ClassVar = App.COMMANDS | {ScreenCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+t", "toggle_theme", "Light/dark"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        workspace: Workspace,
        theme: str = "dark",
        executor: ThreadPoolExecutor | None = None,
        first_page: Future[MatrixPage] | None = None,
        assistant: Assistant | None = None,
    ) -> None:
        """`executor` and `first_page` let the CLI start reading the matrix while Textual is still
        loading (see `aurora.tui.cli`); without them the app reads it itself once mounted. `assistant`: the
        chat's, where the caller chose its backends; else made on first use over the default ones."""
        super().__init__()
        self.workspace = workspace
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="aurora-db")
        self.first_page = first_page
        self._embedding: threading.Thread | None = None
        self._sync: BackgroundSync | None = None
        self._stopping = threading.Event()
        self.crash: Exception | None = None
        """An unexpected exception that ended the app (a bug); the CLI logs it and says so in one line."""
        self.theme = THEMES.get(theme, THEMES["dark"])
        self._assistant = assistant
        self._personalities: tuple[dict[str, Personality], list[tuple[str, str]]] | None = None
        self.mood: Mood | None = None
        """Robbie's latest mood (how the day looks), for the status bar and the chat's tone."""

    def on_mount(self) -> None:
        from aurora.tui.screens.matrix import MatrixScreen

        self.push_screen(MatrixScreen())
        # Keep the search index in step with every write (ours, the CLI's, an import's): small batches
        # on the database thread, so a keypress never waits behind a long one.
        self.set_interval(_INDEX_EVERY_S, self._index_some)
        # Robbie's mood, derived again every 20 s off the UI thread. The first comes one interval after
        # start, not before the first paint (whose reads it would compete with).
        self.set_interval(MOOD_EVERY.total_seconds(), self.refresh_mood)

    def refresh_mood(self) -> None:
        """Derive the mood again on a worker thread (it reads the store) and show it when it is ready."""
        self.run_worker(self._derive_mood, name="mood", group="mood", exclusive=True, thread=True)

    def _derive_mood(self) -> None:
        from aurora.app.assistant.mood import mood_now

        try:
            mood = mood_now(self.workspace)
        except AuroraError:
            return  # the store is busy or closing: the last mood stands until the next round
        if not self._stopping.is_set():
            with contextlib.suppress(RuntimeError):  # the app is closing: nothing left to show it on
                self.call_from_thread(self._show_mood, mood)

    def _show_mood(self, mood: Mood) -> None:
        self.mood = mood
        for screen in self.screen_stack:
            for bar in screen.query(StatusBar):
                bar.show_mood(mood)

    def _index_some(self) -> None:
        self.background(lambda: self.workspace.search.drain(_INDEX_BATCH))

    def start_embedding(self) -> None:
        """Load the model and embed what waits for vectors, on a thread of its own (torch uses one core),
        so semantic results join keyword ones as vectors arrive. Called once the matrix is on screen."""
        if not self.workspace.settings.background_embedding or self._embedding is not None:
            return
        self._embedding = threading.Thread(target=self._embed_loop, name="aurora-embed", daemon=True)
        self._embedding.start()

    def start_sync(self) -> None:
        """Sync with the node in the background when this workspace is paired (its own thread and store;
        nothing here waits for the network). Called once the matrix is on screen."""
        if self._sync is not None:
            return
        from aurora.app.sync_service import BackgroundSync

        self._sync = BackgroundSync(
            self.workspace.path,
            on_report=self._sync_reported,
            embedding_model=self.workspace.settings.embedding_model,
        )
        threading.Thread(
            target=self._start_sync, args=(self._sync,), name="aurora-sync-start", daemon=True
        ).start()

    def _start_sync(self, sync: BackgroundSync) -> None:
        if sync.start() and not self._stopping.is_set():
            self.workspace.live_status = sync.status
            self.workspace.store.on_local_change = sync.nudge
            self._sync_reported(None)

    def _sync_reported(self, report: SyncReport | None) -> None:
        """A round finished (called on the sync thread): show the new state on the UI's. The tasks are
        read again only when the round brought changes from elsewhere; otherwise only the status bar."""
        if self._stopping.is_set():
            return
        changed = report is None or report.applied > 0
        with contextlib.suppress(RuntimeError):  # the app is closing: nothing left to show it on
            self.call_from_thread(self._after_sync, changed)

    def _after_sync(self, changed: bool) -> None:
        refresh = getattr(self.screen, "refresh_after_sync", None)
        if callable(refresh):
            refresh(changed)

    def _embed_loop(self) -> None:
        search = self.workspace.search
        try:
            search.enable_vectors()
            while not self._stopping.is_set():
                if search.embed_some(_EMBED_BATCH) == 0:
                    self._stopping.wait(_EMBED_IDLE_S)
        except AuroraError as exc:
            self.call_from_thread(self.notify, f"semantic search is off: {exc}", severity="warning")

    def background(
        self,
        work: Callable[[], T],
        then: Callable[[T], None] | None = None,
        on_error: Callable[[AuroraError], None] | None = None,
    ) -> None:
        """Run `work` on the database thread; `then(result)` on the UI thread. Errors become a notice."""

        self.when_done(self._executor.submit(work), then, on_error)

    def when_done(
        self,
        future: Future[T],
        then: Callable[[T], None] | None = None,
        on_error: Callable[[AuroraError], None] | None = None,
    ) -> None:
        """Call `then(result)` on the UI thread once `future` (running on the database thread) is done."""

        async def runner() -> None:
            try:
                result = await asyncio.wrap_future(future)
            except AuroraError as exc:
                if on_error is not None:
                    on_error(exc)
                else:
                    self.notify(str(exc), severity="error", timeout=8)
                return
            if then is not None:
                then(result)

        self.run_worker(runner(), group="db")

    def _handle_exception(self, error: Exception) -> None:
        # Textual would print a full traceback with locals to the terminal on exit. A person should see
        # one line instead, and the traceback belongs in crash.log: keep the error for the CLI to report.
        self.crash = error
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        self.bell()
        self._close_messages_no_wait()

    async def run_in_db(self, work: Callable[[], T]) -> T:
        """`work` on the database thread, awaited (for async workers on the UI loop)."""
        return await asyncio.wrap_future(self._executor.submit(work))

    def personalities(self) -> tuple[dict[str, Personality], list[tuple[str, str]]]:
        """Robbie, the mentors and the person's own files (read once); broken files as (path, why)."""
        if self._personalities is None:
            from aurora.app.assistant import load_personalities, user_personalities_dir
            from aurora.app.paths import default_config_file

            found, broken = load_personalities(user_personalities_dir(default_config_file()))
            self._personalities = (found, [(str(b.path), b.error) for b in broken])
        return self._personalities

    async def assistant(self) -> Assistant:
        """The assistant over the default backends (Ollama where configured, the local model), made on
        first use: nothing about models is loaded for a person who never chats."""
        if self._assistant is None:
            from aurora.app.assistant import Assistant
            from aurora.app.assistant.chat import default_backends
            from aurora.app.inference import Router

            personalities, _ = self.personalities()
            self._assistant = Assistant(self.workspace, Router(default_backends()), personalities)
        return self._assistant

    def action_chat(self) -> None:
        from aurora.tui.screens.chat import ChatScreen

        if not isinstance(self.screen, ChatScreen):
            self.push_screen(ChatScreen())

    def action_search(self) -> None:
        from aurora.tui.screens.search import SearchScreen

        if not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen())

    def action_help(self) -> None:
        from aurora.tui.screens.help import HelpModal

        if not isinstance(self.screen, HelpModal):
            self.push_screen(HelpModal(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES["light"] if self.theme == THEMES["dark"] else THEMES["dark"]

    async def action_quit(self) -> None:
        self.exit()

    async def on_unmount(self) -> None:
        self._stopping.set()
        if self._assistant is not None:
            with contextlib.suppress(Exception):  # closing: a backend that fails to close loses nothing
                await self._assistant.router.aclose()
        self.workspace.store.on_local_change = None
        if self._sync is not None:
            self._sync.close()
        if self._embedding is not None:
            self._embedding.join(timeout=10)
        self._executor.shutdown(wait=True)
