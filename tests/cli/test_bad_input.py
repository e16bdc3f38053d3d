"""Bad input to the installed `aurora` CLI: damaged or foreign files, missing permissions, a full disk,
malformed commands, config and imports.

Each case runs the installed console script in a subprocess and checks the CLI's promise: a non-zero exit,
exactly one line on stderr that starts with "aurora: " and says what is wrong and what to do, never a
traceback, and the data that was there before left as it was.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import pytest

AURORA = Path(sys.executable).parent / "aurora"
NOBODY = 65534

TEMPLATE_TASKS = (
    "Call Dana tomorrow 3pm !urgent #sales",
    "Write the quarterly report !important",
    "Pay rent",
)

Result = subprocess.CompletedProcess[str]


# Helpers ----------------------------------------------------------------------------------------------


def skip_or_fail(reason: str) -> None:
    """Skip, except under AURORA_CI=1, where a test that cannot run is a failure."""
    if os.environ.get("AURORA_CI") == "1":
        pytest.fail(f"cannot run under AURORA_CI=1: {reason}")
    pytest.skip(reason)


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment (the autouse fixture's AURORA_* included), with HOME inside tmp_path so a
    crash log never lands in the real home."""
    env = dict(os.environ)
    env["HOME"] = str(Path(env["AURORA_DATA_DIR"]).parent / "home")
    for key in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env.pop(key, None)
    env.update(extra)
    return env


def aurora(
    *args: str | Path,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> Result:
    return subprocess.run(
        [*prefix, str(AURORA), *map(str, args)],
        env=env if env is not None else cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec_fn,
        check=False,
    )


def describe(result: Result) -> str:
    return (
        f"$ {shlex.join(map(str, result.args))}\nexit {result.returncode}\n"
        f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    )


def ok(result: Result) -> Result:
    assert result.returncode == 0, describe(result)
    return result


def assert_one_line_error(result: Result, *says: str, code: int = 1) -> str:
    """The CLI's contract for a failure; `says` are regexes (case-insensitive) the line must match."""
    assert "Traceback" not in result.stdout + result.stderr, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr\n{describe(result)}"
    line = lines[0]
    assert line.startswith("aurora: "), describe(result)
    assert "unexpected error" not in line, f"a crash, not an error in words\n{describe(result)}"
    assert result.returncode == code, f"expected exit {code}\n{describe(result)}"
    for pattern in says:
        assert re.search(pattern, line, re.IGNORECASE), (
            f"message does not match {pattern!r}\n{describe(result)}"
        )
    return line


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def list_tasks(db: Path, *extra: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = json.loads(
        ok(aurora("-w", db, "task", "list", "--json", *extra, env=env)).stdout
    )
    return tasks


def integrity(db: Path) -> list[tuple[Any, ...]]:
    conn = apsw.Connection(str(db))
    try:
        return [tuple(row) for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


# A real workspace, made once with the CLI and copied for each test -----------------------------------------


@dataclass(frozen=True)
class Template:
    db: Path
    export: Path
    tasks: list[dict[str, Any]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("template")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AURORA_") or k == "AURORA_CI"}
    env.update(
        AURORA_DATA_DIR=str(root / "data"),
        AURORA_CONFIG=str(root / "config.toml"),
        HOME=str(root / "home"),
        TZ="UTC",
    )
    db = root / "workspace.db"
    for text in TEMPLATE_TASKS:
        ok(aurora("-w", db, "task", "add", text, env=env))
    export = root / "export.json"
    ok(aurora("-w", db, "export", "-o", export, env=env))
    tasks = list_tasks(db, env=env)
    assert len(tasks) == len(TEMPLATE_TASKS)
    # Closed cleanly: everything is in the main file, so copying that one file copies the workspace.
    assert not db.with_name(db.name + "-wal").exists()
    return Template(db, export, tasks)


@pytest.fixture
def workspace_db(template: Template, tmp_path: Path) -> Path:
    db = tmp_path / "ws" / "workspace.db"
    db.parent.mkdir()
    shutil.copyfile(template.db, db)
    return db


def assert_untouched(db: Path, digest: str, template: Template) -> None:
    assert sha256(db) == digest, f"{db} was changed"
    assert list_tasks(db) == template.tasks


# Damaged databases ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(range(256)) * 64 + os.urandom(4096), id="random-bytes"),
        pytest.param(b"shopping list\n- milk\n- eggs\n" * 50, id="text-file"),
    ],
)
@pytest.mark.parametrize("command", [["task", "list"], ["task", "add", "Buy milk"]], ids=" ".join)
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, command: list[str]
) -> None:
    db = tmp_path / "workspace.db"
    db.write_bytes(content)

    result = aurora("--workspace", db, *command)

    assert_one_line_error(result, re.escape(str(db)), r"damaged|not an aurora database|corrupt",
                          r"restore|backup|--workspace")  # fmt: skip
    assert db.read_bytes() == content


@pytest.mark.parametrize("command", [["task", "list"], ["task", "add", "Buy milk"], ["export"]], ids=" ".join)
def test_a_truncated_database_is_refused_and_left_alone(workspace_db: Path, command: list[str]) -> None:
    with workspace_db.open("r+b") as f:
        f.truncate(workspace_db.stat().st_size // 2)
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, *command)

    assert_one_line_error(result, re.escape(str(workspace_db)), r"damaged|corrupt|integrity",
                          r"restore|backup|--workspace")  # fmt: skip
    assert sha256(workspace_db) == before


@pytest.fixture
def newer_db(workspace_db: Path) -> Path:
    conn = apsw.Connection(str(workspace_db))
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) "
        "VALUES (999, 'from_the_future', '2030-01-01')"
    )
    conn.close()
    assert not workspace_db.with_name(workspace_db.name + "-wal").exists()
    return workspace_db


@pytest.mark.parametrize(
    "command",
    [
        ["task", "list"],
        ["task", "add", "Buy milk"],
        ["task", "done", "abcdef12"],
        ["note", "list"],
        ["note", "add", "a note"],
        ["export"],
        ["import", "{export}"],
    ],
    ids=lambda c: " ".join(c).replace("{export}", "FILE"),
)
def test_a_database_from_a_newer_aurora_is_refused_untouched(
    newer_db: Path, template: Template, command: list[str]
) -> None:
    before = sha256(newer_db)
    args = [str(template.export) if a == "{export}" else a for a in command]

    result = aurora("-w", newer_db, *args)

    assert_one_line_error(result, re.escape(str(newer_db)), r"newer|version 999", r"upgrad")
    assert sha256(newer_db) == before


# Where the workspace cannot be written ------------------------------------------------------------------


@dataclass(frozen=True)
class Unprivileged:
    """Runs the CLI as a user that a 0o500 folder stops: the current one, or `nobody` when we are root."""

    prefix: tuple[str, ...]
    base: Path
    env: dict[str, str]
    as_root: bool

    def lock(self, folder: Path) -> None:
        """Make `folder` (and anything in it) owned by the runner, then read-only for it."""
        if self.as_root:
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
        folder.chmod(0o500)


def _setpriv_prefix(base: Path) -> tuple[str, ...]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        skip_or_fail("tests run as root, where chmod does not stop writes, and setpriv is not installed to "
                     "run the CLI as nobody")  # fmt: skip
    prefix = (str(setpriv), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    for probe in (["test", "-x", str(base)], [str(AURORA), "--version"]):
        try:
            done = subprocess.run([*prefix, *probe], capture_output=True, text=True, timeout=60, check=False)
        except OSError as exc:
            skip_or_fail(f"tests run as root and `setpriv` cannot drop to nobody: {exc}")
        if done.returncode != 0:
            skip_or_fail(f"tests run as root and `{shlex.join(probe)}` fails as nobody via setpriv: "
                         f"{(done.stderr or done.stdout).strip()}")  # fmt: skip
    return prefix


def _unlock(base: Path) -> None:
    for path in [base, *base.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)


@pytest.fixture
def unprivileged(tmp_path: Path) -> Iterator[Unprivileged]:
    if os.geteuid() != 0:
        try:
            yield Unprivileged((), tmp_path, cli_env(), as_root=False)
        finally:
            _unlock(tmp_path)
        return
    # tmp_path lies under a 0o700 folder of root's; nobody needs a folder it can reach.
    base = Path(tempfile.mkdtemp(prefix="aurora-ro-"))
    try:
        base.chmod(0o755)
        prefix = _setpriv_prefix(base)
        env = cli_env(
            AURORA_DATA_DIR=str(base / "data"),
            AURORA_CONFIG=str(base / "config.toml"),
            HOME=str(base / "home"),
        )
        yield Unprivileged(prefix, base, env, as_root=True)
    finally:
        _unlock(base)
        shutil.rmtree(base)


@pytest.mark.parametrize("where", ["ro/workspace.db", "ro/sub/workspace.db"])
def test_a_new_workspace_in_a_read_only_folder_is_refused(unprivileged: Unprivileged, where: str) -> None:
    folder = unprivileged.base / "ro"
    folder.mkdir()
    unprivileged.lock(folder)
    db = unprivileged.base / where

    result = aurora("-w", db, "task", "add", "Buy milk", env=unprivileged.env, prefix=unprivileged.prefix)

    assert_one_line_error(result, re.escape(str(db)), r"cannot write|permission|read-only|read only",
                          r"permission|--workspace")  # fmt: skip
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", [["task", "add", "Buy milk"], ["import", "{export}"]],
                         ids=lambda c: " ".join(c).replace("{export}", "FILE"))  # fmt: skip
def test_an_existing_workspace_in_a_read_only_folder_is_refused_untouched(
    unprivileged: Unprivileged, template: Template, command: list[str]
) -> None:
    folder = unprivileged.base / "ro"
    folder.mkdir()
    db = folder / "workspace.db"
    shutil.copyfile(template.db, db)
    db.chmod(0o600)
    export = unprivileged.base / "export.json"
    shutil.copyfile(template.export, export)
    export.chmod(0o644)
    unprivileged.lock(folder)
    before = sha256(db)
    args = [str(export) if a == "{export}" else a for a in command]

    result = aurora("-w", db, *args, env=unprivileged.env, prefix=unprivileged.prefix)

    assert_one_line_error(result, re.escape(str(db)), r"cannot write|permission|read-only|read only",
                          r"permission|--workspace")  # fmt: skip
    assert sha256(db) == before
    assert sorted(p.name for p in folder.iterdir()) == ["workspace.db"]


@pytest.mark.parametrize("where", ["blocker/workspace.db", "blocker/sub/workspace.db"])
def test_a_workspace_whose_folder_is_a_file_is_refused(tmp_path: Path, where: str) -> None:
    # Works as root too: no permission bit is involved, the folder simply cannot be made.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    db = tmp_path / where

    result = aurora("-w", db, "task", "add", "Buy milk")

    assert_one_line_error(result, re.escape(str(blocker)), r"not a (folder|directory)",
                          r"--workspace|remove|rename|move")  # fmt: skip
    assert blocker.read_text() == "not a folder\n"


# A full disk, simulated with RLIMIT_FSIZE -------------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # Without SIG_IGN the kernel kills the process with SIGXFSZ; ignored, write() fails with EFBIG,
        # which is what SQLite sees on a full disk too (a failed write).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


DISK_FULL = r"disk.*full|full.*disk|no space|cannot write|write failed|could not write|failed to write"


def test_a_full_disk_during_task_add_fails_in_words_and_keeps_every_earlier_task(
    workspace_db: Path, template: Template
) -> None:
    limited = _file_size_limit(workspace_db.stat().st_size + 16 * 1024)
    added: list[str] = []
    result = None
    for i in range(30):
        result = aurora("-w", workspace_db, "task", "add", "--json", f"Long task {i} " + "word " * 90,
                        preexec_fn=limited)  # fmt: skip
        if result.returncode != 0:
            break
        added.append(json.loads(result.stdout)["id"])
    else:
        pytest.fail("30 tasks fitted under the file size limit; the limit never bit")
    assert result is not None

    assert_one_line_error(result, DISK_FULL, r"free|space|try again")
    ids = [t["id"] for t in list_tasks(workspace_db)]
    assert set(ids) == {t["id"] for t in template.tasks} | set(added)
    assert integrity(workspace_db) == [("ok",)]


def _big_export(template: Template, dest: Path, count: int) -> Path:
    doc = json.loads(template.export.read_text(encoding="utf-8"))
    model = doc["ops"][0]
    wall, _, device = model["hlc"].split(".")
    ops = []
    for i in range(count):
        op = copy.deepcopy(model)
        op["op_id"] = str(uuid.uuid4())
        op["entity_id"] = str(uuid.uuid4())
        op["hlc"] = f"{int(wall) + 1000 + i}.000000.{device}"
        op["fields"]["title"] = f"Imported task {i} " + "x" * 400
        op["fields"]["notes"] = "n" * 10_000
        ops.append(op)
    doc["ops"] = ops
    dest.write_text(json.dumps(doc), encoding="utf-8")
    return dest


def test_a_full_disk_during_import_fails_in_words_and_imports_nothing(
    workspace_db: Path, template: Template, tmp_path: Path
) -> None:
    big = _big_export(template, tmp_path / "big.json", count=200)
    limited = _file_size_limit(workspace_db.stat().st_size + 64 * 1024)

    result = aurora("-w", workspace_db, "import", big, preexec_fn=limited)

    assert_one_line_error(result, DISK_FULL, r"free|space|try again")
    assert list_tasks(workspace_db) == template.tasks
    assert integrity(workspace_db) == [("ok",)]


# Malformed commands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("!urgent", [r"title"], id="no-title"),
        pytest.param("Do it !bogus", [r"!bogus", r"!urgent|!important"], id="unknown-flag"),
    ],
)
def test_a_malformed_quick_add_names_the_problem(
    workspace_db: Path, template: Template, text: str, says: list[str]
) -> None:
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, "task", "add", text)

    assert_one_line_error(result, *says)
    assert_untouched(workspace_db, before, template)


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--frob"], "--frob"), (["task", "list", "--nope"], "--nope")],
    ids=["aurora --frob", "task list --nope"],
)
def test_an_unknown_option_exits_2_in_one_line(
    workspace_db: Path, template: Template, args: list[str], flag: str
) -> None:
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, *args)

    assert_one_line_error(result, re.escape(flag), r"--help", code=2)
    assert_untouched(workspace_db, before, template)


# Import ---------------------------------------------------------------------------------------------------


def _corrupt_op(doc: dict[str, Any], **fields: Any) -> None:
    """Append an operation that is well formed but sets impossible values on a new task."""
    op = copy.deepcopy(doc["ops"][0])
    wall, _, device = op["hlc"].split(".")
    op.update(op_id=str(uuid.uuid4()), entity_id=str(uuid.uuid4()), hlc=f"{int(wall) + 1}.000000.{device}")
    op["fields"].update(fields)
    doc["ops"].append(op)


CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bad-hlc": lambda d: d["ops"][1].update(hlc="garbage"),
    "unknown-entity": lambda d: d["ops"][1].update(entity="planet"),
    "missing-op-id": lambda d: d["ops"][1].pop("op_id"),
    "unknown-field": lambda d: d["ops"][1]["fields"].update(colour_of_sky="blue"),
    "op-not-an-object": lambda d: d["ops"].__setitem__(1, "op"),
    "ops-not-a-list": lambda d: d.update(ops="nope"),
    "quadrant-out-of-range": lambda d: _corrupt_op(d, quadrant=9),
    "status-unknown": lambda d: _corrupt_op(d, status="bogus"),
    "due-not-a-date": lambda d: _corrupt_op(d, due="not a date"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_an_export_with_a_corrupt_operation_imports_nothing(
    workspace_db: Path, template: Template, tmp_path: Path, corruption: str
) -> None:
    doc = json.loads(template.export.read_text(encoding="utf-8"))
    CORRUPTIONS[corruption](doc)
    bad = tmp_path / "corrupt.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, "import", bad)

    assert_one_line_error(result, re.escape(bad.name), r"operation|\bops?\b", r"nothing imported")
    assert_untouched(workspace_db, before, template)
    # A workspace still usable in every way, not only the default listing.
    assert [t["id"] for t in list_tasks(workspace_db, "--all")] == [t["id"] for t in template.tasks]


IMPORT_FILES: dict[str, tuple[bytes | None, list[str]]] = {
    "not-json": (b"title,due\nCall Dana,tomorrow\n", [r"not (an aurora export|json)", r"aurora export"]),
    "binary": (b"\xff\xfe\x00\x01garbage" * 10, [r"not (an aurora export|json)", r"aurora export"]),
    "json-not-ours": (b'{"hello": 1}', [r"not an aurora export", r"nothing imported"]),
    "json-array": (b"[1, 2, 3]", [r"not an aurora export", r"nothing imported"]),
    "future-version": (
        json.dumps({"format": "aurora-export", "version": 99, "ops": []}).encode(),
        [r"version", r"upgrade"],
    ),
    "missing": (None, [r"no such file|not found|does not exist|missing"]),
}


@pytest.mark.parametrize("case", list(IMPORT_FILES))
def test_importing_a_file_that_is_not_a_usable_export_changes_nothing(
    workspace_db: Path, template: Template, tmp_path: Path, case: str
) -> None:
    content, says = IMPORT_FILES[case]
    path = tmp_path / f"{case}.json"
    if content is not None:
        path.write_bytes(content)
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, "import", path)

    assert_one_line_error(result, re.escape(path.name), *says)
    assert_untouched(workspace_db, before, template)


def test_importing_an_export_twice_applies_it_once(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    ids = [
        json.loads(ok(aurora("-w", source, "task", "add", "--json", text)).stdout)["id"]
        for text in (*TEMPLATE_TASKS, "Book dentist #health", "Old idea")
    ]
    ok(aurora("-w", source, "task", "done", ids[2][-8:]))
    ok(aurora("-w", source, "task", "delete", ids[4][-8:]))
    ok(aurora("-w", source, "note", "add", "Dana prefers mornings", "--tag", "sales", "--pin"))
    export = tmp_path / "f.json"
    ok(aurora("-w", source, "export", "-o", export))
    op_count = len(json.loads(export.read_text(encoding="utf-8"))["ops"])
    target = tmp_path / "target.db"

    first = json.loads(ok(aurora("-w", target, "import", "--json", export)).stdout)
    second = json.loads(ok(aurora("-w", target, "import", "--json", export)).stdout)
    plain = ok(aurora("-w", target, "import", export))

    summary = {"path": str(export), "format": "aurora-export", "updated": 0, "skipped": []}
    assert first == [{**summary, "new": op_count, "unchanged": 0}]
    assert second == [{**summary, "new": 0, "unchanged": op_count}]
    assert f"0 new, 0 updated, {op_count} unchanged" in plain.stdout
    assert list_tasks(target) == list_tasks(source)
    assert list_tasks(target, "--all") == list_tasks(source, "--all")
    notes = [json.loads(ok(aurora("-w", db, "note", "list", "--json")).stdout) for db in (source, target)]
    assert notes[0] == notes[1]


# Configuration -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"theme = \n", id="no-value"),
        pytest.param(b"[ui\ntheme = 'dark'\n", id="unclosed-table"),
        pytest.param(b'theme = "dark"\ntheme = "light"\n', id="duplicate-key"),
        pytest.param(b"\xff\xfetheme = 'dark'\n", id="not-utf8"),
    ],
)
def test_a_malformed_config_file_is_named(workspace_db: Path, template: Template, content: bytes) -> None:
    config = Path(os.environ["AURORA_CONFIG"])
    config.write_bytes(content)
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, "task", "list")

    assert_one_line_error(result, re.escape(str(config)), r"toml|config", r"fix|remove")
    assert config.read_bytes() == content
    config.unlink()
    assert_untouched(workspace_db, before, template)


def test_an_invalid_setting_in_the_environment_is_named(workspace_db: Path, template: Template) -> None:
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, "task", "list", env=cli_env(AURORA_THEME="purple"))

    assert_one_line_error(result, r"theme", r"dark|light")
    assert_untouched(workspace_db, before, template)


def test_an_invalid_setting_in_the_config_file_is_named(workspace_db: Path, template: Template) -> None:
    config = Path(os.environ["AURORA_CONFIG"])
    config.write_text('theme = "purple"\n', encoding="utf-8")
    before = sha256(workspace_db)

    result = aurora("-w", workspace_db, "task", "list")

    assert_one_line_error(result, r"theme", r"dark|light", re.escape(str(config)))
    config.unlink()
    assert_untouched(workspace_db, before, template)
