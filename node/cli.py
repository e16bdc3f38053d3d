"""`aurora-node`: set up, run and administer the home server.

    aurora-node init [--owner NAME]      data dir, database, node identity and signing key
    aurora-node serve [--host H] [--port P]
    aurora-node status [--json]          database, schema, devices (last seen, pending, lag)
    aurora-node devices add NAME         a one-time pairing code for `aurora pair URL CODE`
    aurora-node devices list [--json]
    aurora-node devices revoke DEVICE    by id or name; refused at once
    aurora-node migrate                  apply pending database migrations

Settings come from `AURORA_NODE_*` variables (`aurora.node.config.NodeSettings`); `--data-dir` overrides
the data dir. Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from aurora.node import auth
from aurora.node.auth import AuthError
from aurora.node.config import NodeSettings
from aurora.node.db import Database, NodeDatabaseError
from aurora.node.oplog import PgActionLog
from aurora.node.registry import Registry
from aurora.schema.migrate import NewerSchemaError, latest_version

T = TypeVar("T")


def _settings(ctx: click.Context) -> NodeSettings:
    settings: NodeSettings = ctx.obj
    return settings


def _run(settings: NodeSettings, work: Callable[[Database], Awaitable[T]], *, migrate: bool = True) -> T:
    async def main() -> T:
        db = await Database.start(settings)
        try:
            if migrate:
                await db.migrate()
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the node keeps its data."
)
@click.version_option("0.1.0", prog_name="aurora-node")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """aurora-node: the home server Aurora's laptops sync with."""
    settings = NodeSettings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    ctx.obj = settings


@cli.command()
@click.option("--owner", default="owner", show_default=True, help="The owner's name, shown in `status`.")
@click.pass_context
def init(ctx: click.Context, owner: str) -> None:
    """Create the data dir, the database (embedded unless AURORA_NODE_DATABASE_URL is set) and the node's
    identity and signing key."""
    settings = _settings(ctx)

    async def work(db: Database) -> str:
        node_id, _ = await auth.node_identity(db.pool)
        async with db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO node_meta (key, value) VALUES ('owner', %s) ON CONFLICT (key) DO NOTHING",
                (owner,),
            )
        return node_id

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    node_id = _run(settings, work)
    click.echo(f"node {node_id} ready in {settings.data_dir}")
    click.echo("next: `aurora-node serve`, then `aurora-node devices add laptop` and `aurora pair URL CODE`")


@cli.command()
@click.option("--host", default=None, help="Address to bind (default: the setting, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: the setting, 8470)."
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the API until interrupted (and embed what the node stores, unless AURORA_NODE_EMBED=0)."""
    from aurora.node.api import serve as run_server
    from aurora.node.embed_jobs import embedding_in_background

    settings = _settings(ctx)
    update = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    with embedding_in_background(settings):  # off with AURORA_NODE_EMBED=0
        run_server(settings.model_copy(update=update))


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply pending database migrations."""

    async def work(db: Database) -> int:
        return await db.schema_version()

    version = _run(_settings(ctx), work)
    click.echo(f"database at schema version {version} (latest {latest_version('postgres')})")


def _device_rows(devices: list[Any]) -> list[dict[str, Any]]:
    return [d.model_dump(mode="json") for d in devices]


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The database, the schema and every device: last seen, version, pending operations, lag."""

    async def work(db: Database) -> dict[str, Any]:
        node_id, _ = await auth.node_identity(db.pool)
        head = await PgActionLog(db.pool).head()
        devices = await Registry(db.pool).list()
        return {
            "node_id": node_id,
            "schema_version": await db.schema_version(),
            "head": head,
            "database": db.describe(),
            "devices": _device_rows(devices),
        }

    info = _run(_settings(ctx), work)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"node {info['node_id']} · database {info['database']} · schema {info['schema_version']}")
    click.echo(f"{info['head']} operations")
    _print_devices(info["devices"])


def _print_devices(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no devices yet: `aurora-node devices add NAME`")
        return
    for d in rows:
        state = "revoked" if d.get("revoked_at") else "active"
        click.echo(
            f"{d['id']}  {d['name']:<16} {state:<7} last seen {d.get('last_seen') or 'never'}  "
            f"pending {d.get('pending_ops', 0)}  lag {d.get('lag', 0)}"
        )


@cli.group()
def devices() -> None:
    """Add, list and revoke devices."""


@devices.command("add")
@click.argument("name")
@click.pass_context
def devices_add(ctx: click.Context, name: str) -> None:
    """Print a one-time pairing code for a device called NAME."""

    async def work(db: Database) -> str:
        return await auth.new_pairing_code(db.pool, name)

    settings = _settings(ctx)
    code = _run(settings, work)
    minutes = int(auth.CODE_TTL.total_seconds() // 60)
    click.echo(f"pairing code for {name}: {code}  (single use, expires in {minutes} minutes)")
    click.echo(f"on the laptop: aurora pair http://{settings.host}:{settings.port} {code}")


@devices.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def devices_list(ctx: click.Context, as_json: bool) -> None:
    """Every device the node knows."""

    async def work(db: Database) -> list[dict[str, Any]]:
        return _device_rows(await Registry(db.pool).list())

    rows = _run(_settings(ctx), work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        _print_devices(rows)


@devices.command("revoke")
@click.argument("device")
@click.pass_context
def devices_revoke(ctx: click.Context, device: str) -> None:
    """Revoke DEVICE (its id, or its name when only one device has it): refused from its next request."""

    async def work(db: Database) -> str | None:
        found = [d for d in await Registry(db.pool).list() if device in (d.id, d.name)]
        if len(found) > 1:
            raise click.ClickException(f"{len(found)} devices are called {device!r}; revoke one by its id")
        if not found:
            return None
        await auth.revoke_device(db.pool, found[0].id)
        return found[0].id

    revoked = _run(_settings(ctx), work)
    if revoked is None:
        raise click.ClickException(f"no device {device!r}; see `aurora-node devices list`")
    click.echo(f"revoked {revoked}")


def main(argv: list[str] | None = None) -> None:
    """The console script: one line on stderr for any failure a person can act on."""
    try:
        cli.main(args=argv, prog_name="aurora-node", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except (NodeDatabaseError, NewerSchemaError, AuthError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as error:
        click.echo(
            f"error: {error.strerror or error} ({getattr(error, 'filename', '') or ''}); check the data dir",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
