"""The node's HTTP and WebSocket API, served by a real uvicorn on loopback over a real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from aurora.node import auth
from aurora.node.api import AccessTokens
from aurora.sync import HybridClock, Operation, new_id
from aurora.sync.protocol import MAX_BATCH
from tests.node.server import pairing_code, running_node


@pytest.fixture
def node(pg_url: str, tmp_path: Path) -> Iterator[str]:
    with running_node(pg_url, tmp_path / "node") as url:
        yield url


def _pair(node: str, pg_url: str, name: str = "laptop") -> dict[str, Any]:
    code = pairing_code(pg_url, name)
    answer = httpx.post(f"{node}/v1/pair", json={"code": code, "name": name})
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _op(device_id: str, clock: HybridClock, title: str, entity_id: str | None = None) -> dict[str, Any]:
    return Operation(
        op_id=new_id(), device_id=device_id, hlc=clock.now().encode(), entity="task",
        entity_id=entity_id or new_id(), fields={"title": title},
    ).model_dump(mode="json")  # fmt: skip


def _error(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_health_ready_metrics_and_openapi(node: str) -> None:
    health = httpx.get(f"{node}/healthz").json()
    assert health["status"] == "ok" and health["node_id"]
    assert httpx.get(f"{node}/v1/healthz").json()["node_id"] == health["node_id"]
    ready = httpx.get(f"{node}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    paths = httpx.get(f"{node}/openapi.json").json()["paths"]
    assert {"/v1/pair", "/v1/ops/push", "/v1/ops", "/v1/devices", "/v1/token/refresh"} <= set(paths)
    metrics = httpx.get(f"{node}/metrics").text
    assert "aurora_node_requests_total" in metrics and "aurora_node_devices_online" in metrics


def test_pairing_then_push_and_pull_between_two_devices(node: str, pg_url: str) -> None:
    a, b = _pair(node, pg_url, "a"), _pair(node, pg_url, "b")
    assert a["node_id"] == b["node_id"] and a["device_id"] != b["device_id"]
    clock = HybridClock(a["device_id"])
    ops = [_op(a["device_id"], clock, f"task {n}") for n in range(5)]
    pushed = httpx.post(f"{node}/v1/ops/push", json={"ops": ops, "pending": 0}, headers=_bearer(a)).json()
    assert pushed["accepted"] == [o["op_id"] for o in ops] and pushed["head"] == 5
    again = httpx.post(f"{node}/v1/ops/push", json={"ops": ops}, headers=_bearer(a)).json()
    assert again["accepted"] == pushed["accepted"] and again["head"] == 5  # a retry changes nothing
    pulled = httpx.get(f"{node}/v1/ops", params={"after": 0, "limit": 3}, headers=_bearer(b)).json()
    assert [p["op"]["op_id"] for p in pulled["ops"]] == [o["op_id"] for o in ops[:3]] and pulled["more"]
    rest = httpx.get(f"{node}/v1/ops", params={"after": pulled["cursor"]}, headers=_bearer(b)).json()
    assert len(rest["ops"]) == 2 and not rest["more"]
    own = httpx.get(f"{node}/v1/ops", params={"after": 0}, headers=_bearer(a)).json()
    assert own["ops"] == [] and own["cursor"] == 5  # a device's own operations are not sent back
    devices = httpx.get(f"{node}/v1/devices", headers=_bearer(a)).json()
    assert {d["name"] for d in devices} == {"a", "b"}


def test_a_corrupt_operation_is_refused_alone(node: str, pg_url: str) -> None:
    a, b = _pair(node, pg_url, "a"), _pair(node, pg_url, "b")
    clock = HybridClock(a["device_id"])
    good = [_op(a["device_id"], clock, "one"), _op(a["device_id"], clock, "two")]
    bad = {**good[0], "op_id": new_id(), "fields": {"no_such_field": 1}}
    posing = _op(b["device_id"], HybridClock(b["device_id"]), "as if b made it")
    imported = _op("an-unpaired-laptop", HybridClock("an-unpaired-laptop"), "from an export file")
    batch = [good[0], bad, posing, imported, good[1]]
    answer = httpx.post(f"{node}/v1/ops/push", json={"ops": batch}, headers=_bearer(a)).json()
    assert answer["accepted"] == [good[0]["op_id"], imported["op_id"], good[1]["op_id"]]
    refused = [(r["index"], r["code"]) for r in answer["rejected"]]
    assert refused == [(1, "invalid_operation"), (2, "wrong_device")]


def test_a_laptop_pairs_under_its_own_device_id(node: str, pg_url: str) -> None:
    mine = "a1b2c3d4e5f60718"
    code = pairing_code(pg_url, "laptop")
    tokens = httpx.post(f"{node}/v1/pair", json={"code": code, "name": "laptop", "device_id": mine}).json()
    assert tokens["device_id"] == mine
    again = httpx.post(f"{node}/v1/pair", json={"code": pairing_code(pg_url), "device_id": mine})
    assert again.status_code == 409 and _error(again) == "device_exists"
    wrong = httpx.post(f"{node}/v1/pair", json={"code": code, "device_id": "bad id!"})
    assert _error(wrong) == "invalid_request"


def test_requests_without_valid_tokens_are_refused(node: str, pg_url: str) -> None:
    a = _pair(node, pg_url)
    assert _error(httpx.get(f"{node}/v1/ops")) == "unauthorized"
    claims = {"sub": a["device_id"], "iss": a["node_id"], "iat": 1, "exp": 2**40, "typ": "access"}
    forged = jwt.encode(claims, "not the node's secret, but 32 bytes long", algorithm="HS256")
    assert (
        _error(httpx.get(f"{node}/v1/ops", headers={"Authorization": f"Bearer {forged}"})) == "unauthorized"
    )
    unsigned = jwt.encode(claims, None, algorithm="none")
    refused = httpx.get(f"{node}/v1/ops", headers={"Authorization": f"Bearer {unsigned}"})
    assert refused.status_code == 401 and _error(refused) == "unauthorized"
    secret = _secret(pg_url)
    expired = auth.issue_access(secret, a["node_id"], a["device_id"], ttl=timedelta(seconds=-5))
    late = httpx.get(f"{node}/v1/ops", headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401 and _error(late) == "token_expired"
    other_node = auth.issue_access(secret, "another-node", a["device_id"])
    assert (
        _error(httpx.get(f"{node}/v1/ops", headers={"Authorization": f"Bearer {other_node}"}))
        == "unauthorized"
    )
    assert "Traceback" not in late.text


def _secret(pg_url: str) -> str:
    import asyncio

    from aurora.node.db import connect_pool

    async def read() -> str:
        pool = await connect_pool(pg_url, 1, 1)
        try:
            return (await auth.node_identity(pool))[1]
        finally:
            await pool.close()

    return asyncio.run(read())


def test_codes_are_single_use_and_expire(node: str, pg_url: str) -> None:
    code = pairing_code(pg_url, "laptop")
    assert httpx.post(f"{node}/v1/pair", json={"code": code.lower()}).status_code == 200  # any case
    again = httpx.post(f"{node}/v1/pair", json={"code": code})
    assert again.status_code == 400 and _error(again) == "invalid_code"
    stale = pairing_code(pg_url, "laptop", ttl=timedelta(seconds=-1))
    assert "expired" in httpx.post(f"{node}/v1/pair", json={"code": stale}).json()["error"]["message"]
    assert _error(httpx.post(f"{node}/v1/pair", json={"code": "nonsense!"})) == "invalid_code"
    assert _error(httpx.post(f"{node}/v1/pair", json={"code": ""})) == "invalid_request"


def _refresh(node: str, token: str) -> httpx.Response:
    return httpx.post(f"{node}/v1/token/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_a_reused_token_revokes_the_family(node: str, pg_url: str) -> None:
    first = _pair(node, pg_url)
    second = _refresh(node, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and second["device_id"] == first["device_id"]
    assert httpx.get(f"{node}/v1/ops", headers=_bearer(second)).status_code == 200
    third = _refresh(node, second["refresh_token"]).json()
    fourth = _refresh(node, third["refresh_token"]).json()  # the rotation went on past `second`
    reuse = _refresh(node, second["refresh_token"])  # so `second` again is a copy, not a retry
    assert reuse.status_code == 401 and _error(reuse) == "token_reused"
    # The whole family is gone: the token issued in the rotation no longer works either.
    assert _refresh(node, fourth["refresh_token"]).status_code == 401


def test_a_refresh_whose_answer_was_lost_can_be_retried(node: str, pg_url: str) -> None:
    first = _pair(node, pg_url)
    lost = _refresh(node, first["refresh_token"]).json()  # the laptop was killed before it saved these
    retried = _refresh(node, first["refresh_token"])
    assert retried.status_code == 200
    assert _refresh(node, retried.json()["refresh_token"]).status_code == 200  # and the rotation goes on
    # The lost tokens were voided by the retry: showing up now, they can only be a copy (revoking all).
    assert _error(_refresh(node, lost["refresh_token"])) == "token_reused"


def test_a_revoked_device_pairs_again_with_a_fresh_code(node: str, pg_url: str) -> None:
    mine = "0011223344556677"
    first = httpx.post(f"{node}/v1/pair", json={"code": pairing_code(pg_url, "laptop"), "device_id": mine})
    assert first.status_code == 200
    twice = httpx.post(f"{node}/v1/pair", json={"code": pairing_code(pg_url, "laptop"), "device_id": mine})
    assert _error(twice) == "device_exists" and "revoke" in twice.json()["error"]["message"]
    _revoke(pg_url, mine)
    again = httpx.post(f"{node}/v1/pair", json={"code": pairing_code(pg_url, "laptop"), "device_id": mine})
    assert (
        again.status_code == 200
        and httpx.get(f"{node}/v1/ops", headers=_bearer(again.json())).status_code == 200
    )
    assert (
        httpx.get(f"{node}/v1/ops", headers=_bearer(first.json())).status_code == 200
    )  # same device, active


def _revoke(pg_url: str, device_id: str) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aurora.node.db import connect_pool

    async def revoke() -> None:
        pool = await connect_pool(pg_url, 1, 1)
        try:
            await auth.revoke_device(pool, device_id)
        finally:
            await pool.close()

    with ThreadPoolExecutor(1) as runner:
        runner.submit(asyncio.run, revoke()).result()


def test_a_revoked_device_is_refused_at_once(node: str, pg_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    a = _pair(node, pg_url, "stolen")
    assert httpx.get(f"{node}/v1/ops", headers=_bearer(a)).status_code == 200
    env = {"AURORA_NODE_DATABASE_URL": pg_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "aurora.node.cli", "devices", "revoke", "stolen"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    refused = httpx.get(f"{node}/v1/ops", headers=_bearer(a))  # the access token has not expired yet
    assert refused.status_code == 403 and _error(refused) == "device_revoked"
    pushed = httpx.post(f"{node}/v1/ops/push", json={"ops": []}, headers=_bearer(a))
    assert pushed.status_code == 403 and _error(pushed) == "device_revoked"
    assert _error(httpx.get(f"{node}/v1/devices", headers=_bearer(a))) == "device_revoked"
    assert (
        httpx.post(f"{node}/v1/token/refresh", json={"refresh_token": a["refresh_token"]}).status_code == 403
    )


def test_oversized_and_malformed_bodies(node: str, pg_url: str) -> None:
    a = _pair(node, pg_url)
    huge = httpx.post(f"{node}/v1/ops/push", content=b"x" * (9 * 1024 * 1024), headers=_bearer(a))
    assert huge.status_code == 413 and _error(huge) == "too_large"
    broken = httpx.post(
        f"{node}/v1/ops/push",
        content=b"{not json",
        headers={**_bearer(a), "content-type": "application/json"},
    )
    assert broken.status_code == 422 and _error(broken) == "invalid_request"
    many = {"ops": [{}] * (MAX_BATCH + 1)}
    assert _error(httpx.post(f"{node}/v1/ops/push", json=many, headers=_bearer(a))) == "invalid_request"
    assert _error(httpx.get(f"{node}/v1/nowhere")) == "not_found"


def test_the_websocket_announces_new_operations(node: str, pg_url: str) -> None:
    a, b = _pair(node, pg_url, "a"), _pair(node, pg_url, "b")
    ws_url = node.replace("http://", "ws://") + "/v1/events"
    with connect(ws_url, additional_headers=_bearer(b), open_timeout=5) as socket:
        assert json.loads(socket.recv(timeout=5)) == {"type": "head", "head": 0}
        clock = HybridClock(a["device_id"])
        httpx.post(f"{node}/v1/ops/push", json={"ops": [_op(a["device_id"], clock, "x")]}, headers=_bearer(a))
        assert json.loads(socket.recv(timeout=5)) == {"type": "head", "head": 1}
    with pytest.raises(InvalidStatus):  # no token: refused before the socket opens
        with connect(ws_url, open_timeout=5) as socket:
            socket.recv(timeout=5)


def test_two_node_processes_on_one_database_serve_the_same_devices(pg_url: str, tmp_path: Path) -> None:
    with running_node(pg_url, tmp_path / "n1") as one, running_node(pg_url, tmp_path / "n2") as two:
        a, b = _pair(one, pg_url, "a"), _pair(two, pg_url, "b")
        assert httpx.get(f"{one}/healthz").json()["node_id"] == httpx.get(f"{two}/healthz").json()["node_id"]
        ws_url = two.replace("http://", "ws://") + "/v1/events"
        with connect(ws_url, additional_headers=_bearer(b), open_timeout=5) as socket:
            socket.recv(timeout=5)
            clock = HybridClock(a["device_id"])
            ops = [_op(a["device_id"], clock, f"t{n}") for n in range(3)]
            httpx.post(
                f"{one}/v1/ops/push", json={"ops": ops}, headers=_bearer(a)
            )  # a token from node one...
            assert json.loads(socket.recv(timeout=5))["head"] == 3  # ...announced by node two
        pulled = httpx.get(f"{two}/v1/ops", params={"after": 0}, headers=_bearer(b)).json()
        assert [p["op"]["op_id"] for p in pulled["ops"]] == [o["op_id"] for o in ops]
        assert httpx.get(f"{two}/v1/ops", headers=_bearer(a)).status_code == 200  # tokens work on both
    _ = time


def test_a_push_on_one_node_process_is_pulled_at_once_from_the_other(pg_url: str, tmp_path: Path) -> None:
    """Idle pulls are answered from a statement read after they arrive, not from what the process was
    told: a pull sent the moment another process acknowledged a push gets it, announcement or not."""
    with running_node(pg_url, tmp_path / "n1") as one, running_node(pg_url, tmp_path / "n2") as two:
        a, b = _pair(one, pg_url, "a"), _pair(two, pg_url, "b")
        clock = HybridClock(a["device_id"])
        cursor = 0
        for round_ in range(20):
            op = _op(a["device_id"], clock, f"t{round_}")
            pushed = httpx.post(f"{one}/v1/ops/push", json={"ops": [op]}, headers=_bearer(a))
            assert pushed.json()["accepted"] == [op["op_id"]]
            page = httpx.get(f"{two}/v1/ops", params={"after": cursor}, headers=_bearer(b)).json()
            assert [p["op"]["op_id"] for p in page["ops"]] == [op["op_id"]], round_
            cursor = page["cursor"]
            idle = httpx.get(f"{two}/v1/ops", params={"after": cursor}, headers=_bearer(b)).json()
            assert idle == {"ops": [], "cursor": cursor, "head": cursor, "more": False}


def test_pull_parameters_are_checked_as_documented(node: str, pg_url: str) -> None:
    a = _pair(node, pg_url)
    documented = httpx.get(f"{node}/openapi.json").json()["paths"]["/v1/ops"]["get"]["parameters"]
    assert {(p["in"], p["name"]) for p in documented} == {
        ("query", "after"), ("query", "limit"), ("header", "x-aurora-version"), ("header", "authorization"),
    }  # fmt: skip
    for params, where in (
        ({"after": -1}, "query.after"),
        ({"after": "soon"}, "query.after"),
        ({"limit": 0}, "query.limit"),
        ({"limit": MAX_BATCH + 1}, "query.limit"),
    ):
        refused = httpx.get(f"{node}/v1/ops", params=params, headers=_bearer(a))
        assert refused.status_code == 422 and _error(refused) == "invalid_request", params
        assert refused.json()["error"]["message"].startswith(where), refused.text
    long_version = {**_bearer(a), "X-Aurora-Version": "9" * 41}
    refused = httpx.get(f"{node}/v1/ops", headers=long_version)
    assert refused.status_code == 422 and "x-aurora-version" in refused.json()["error"]["message"]
    assert httpx.get(f"{node}/v1/ops", params={"after": 0, "limit": 1}, headers=_bearer(a)).json() == {
        "ops": [], "cursor": 0, "head": 0, "more": False,
    }  # fmt: skip
    assert _error(httpx.get(f"{node}/v1/ops", params={"after": "x"})) == "unauthorized"  # the token first


def test_the_registry_shows_what_a_device_reported_and_metrics_count_each_route(
    node: str, pg_url: str
) -> None:
    """A pull only notes the device's version and cursor (written within seconds, off the request's
    path); this node's own devices list flushes first, so it shows them at once."""
    a = _pair(node, pg_url, "a")
    headers = {**_bearer(a), "X-Aurora-Version": "7.7.7"}
    assert httpx.get(f"{node}/v1/ops", params={"after": 0}, headers=headers).status_code == 200
    [device] = httpx.get(f"{node}/v1/devices", headers=_bearer(a)).json()
    assert (device["version"], device["cursor"]) == ("7.7.7", 0) and device["last_seen"]
    metrics = httpx.get(f"{node}/metrics").text
    assert 'aurora_node_requests_total{route="/v1/ops",status="200"} 1.0' in metrics
    assert 'aurora_node_requests_total{route="/v1/devices",status="200"} 1.0' in metrics
    httpx.get(f"{node}/v1/nowhere")
    assert 'route="unmatched",status="404"' in httpx.get(f"{node}/metrics").text


def test_an_accepted_access_token_is_checked_in_full_again_once_it_expires() -> None:
    tokens = AccessTokens("a node secret of at least thirty-two bytes", "node-1")
    token = auth.issue_access(
        "a node secret of at least thirty-two bytes", "node-1", "dev-1", timedelta(seconds=1)
    )
    assert tokens.verify(token) == tokens.verify(token) == "dev-1"
    time.sleep(2.1)
    with pytest.raises(auth.AuthError) as refused:
        tokens.verify(token)
    assert refused.value.code == "token_expired"
    with pytest.raises(auth.AuthError):
        tokens.verify(token + "x")


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_body_that_says_one_length_and_streams_more_is_still_refused(
    pg_url: str, tmp_path: Path, http: str
) -> None:
    """Content-Length and Transfer-Encoding both: h11 reads the chunks whatever the length says, so the
    limit counts what arrives (a stranger's endless body must not reach the node's memory)."""
    import socket

    with running_node(pg_url, tmp_path / "node", http=http) as url:
        port = int(url.rsplit(":", 1)[1])
        chunk = b"x" * (1024 * 1024)
        lines = [b"POST /v1/pair HTTP/1.1", b"Host: x", b"Content-Length: 10", b"Transfer-Encoding: chunked"]
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(head)
            try:
                for _ in range(12):  # 12 MiB, over the node's 8 MiB limit
                    client.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                client.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the node stopped reading and closed: refused
            answer = client.recv(65536)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 413), answer[:300]  # httptools refuses the framing; with h11 the limit does
