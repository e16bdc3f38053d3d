"""`aurora-node` as a person runs it: the installed console script, in subprocesses, on real PostgreSQL
(a test server's database by URL, and the embedded server it starts itself in its data dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aurora.schema.migrate import latest_version
from tests.node.server import running_node

NODE = Path(sys.executable).parent / "aurora-node"


def _run(*args: str, url: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AURORA_NODE_")}
    if url is not None:
        env["AURORA_NODE_DATABASE_URL"] = url
    result = subprocess.run([str(NODE), *args], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_devices_and_status_by_url(pg_url: str, tmp_path: Path) -> None:
    status = json.loads(_run("status", "--json", url=pg_url).stdout)
    assert status["schema_version"] == latest_version("postgres")
    assert status["devices"] == [] and status["head"] == 0
    added = _run("devices", "add", "laptop", url=pg_url).stdout
    code = added.split("pairing code for laptop: ")[1].split()[0]
    assert "expires in 10 minutes" in added
    with running_node(pg_url, tmp_path / "node") as url:
        tokens = httpx.post(f"{url}/v1/pair", json={"code": code}).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "X-Aurora-Version": "9.9.9"}
        httpx.get(f"{url}/v1/ops", headers=headers)
    [device] = json.loads(_run("devices", "list", "--json", url=pg_url).stdout)
    assert device["name"] == "laptop" and device["version"] == "9.9.9" and device["last_seen"]
    assert "laptop" in _run("status", url=pg_url).stdout
    assert "revoked" in _run("devices", "revoke", "laptop", url=pg_url).stdout
    assert json.loads(_run("devices", "list", "--json", url=pg_url).stdout)[0]["revoked_at"]
    unknown = _run("devices", "revoke", "nobody", url=pg_url, check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no device 'nobody'")


def test_init_starts_and_stops_an_embedded_postgresql(tmp_path: Path) -> None:
    data = tmp_path / "node-data"
    out = _run("--data-dir", str(data), "init", "--owner", "dana").stdout
    assert out.startswith("node ") and "aurora-node serve" in out
    assert (data / "pg" / "PG_VERSION").exists()
    # Stopped cleanly on exit: no postmaster left holding the folder.
    deadline = time.monotonic() + 10
    while (data / "pg" / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (data / "pg" / "postmaster.pid").exists()
    again = json.loads(_run("--data-dir", str(data), "status", "--json").stdout)
    assert again["node_id"] == out.split()[1] and again["schema_version"] == latest_version("postgres")


def test_a_database_that_cannot_be_reached_is_one_line() -> None:
    refused = _run("status", url="postgresql://nobody@127.0.0.1:9/none?connect_timeout=2", check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "AURORA_NODE_DATABASE_URL" in refused.stderr
    bad_flag = _run("serve", "--port", "99999", check=False)
    assert bad_flag.returncode != 0 and "Traceback" not in bad_flag.stderr
