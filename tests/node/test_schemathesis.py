"""Schemathesis against the node's own OpenAPI document (`/openapi.json`), served by a real uvicorn on
loopback over a real PostgreSQL (like the other node tests, it skips without one, which CI turns into a
failure).

- Every operation, once with a paired device's access token and once without one:
  - no 5xx, and every response documented: status, content type, body schema, headers;
  - every other Schemathesis check: schema-violating requests refused, schema-valid ones not refused for
    no reason, required headers enforced (kept apart, so a lax validation cannot hide a crash).
- Each `HOSTILE` string (NUL, lone surrogates, bidi, ...) in each free-text spot a real client reaches:
  never a 5xx, always a documented answer (one sweep that reports every crash at once).
- Every method a path does not declare: 405 with an `Allow` header, never a 5xx.
- Every operation that needs a token refuses a missing, forged, expired, `alg: none`, foreign, refresh-typed
  or garbled one with 401 and its stable code (`unauthorized`, `token_expired`).

Random data alone never gets past a pairing code or an operation's validation, so some positive cases are
made realistic (`_realistic`): pairs with a real one-time code (and hostile device names), refreshes with a
real refresh token, pushes with near-valid operations (fuzzed ids, clocks, fields, hostile text).

Bounded for CI: `MAX_EXAMPLES` generated cases per operation and run, plus Schemathesis's coverage cases;
the file takes about 40 s. A failed check fails the test with Schemathesis's report: the check, the
response, and a curl line that replays the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from aurora.node import auth
from aurora.node.db import connect_pool
from aurora.schema import ENTITY_FIELDS
from aurora.sync import HybridClock, Operation, new_id
from tests.node.server import pairing_code, running_node

MAX_EXAMPLES = 50
"""Generated cases per operation and run (Schemathesis's coverage and example cases come on top)."""
BAD_TOKEN_EXAMPLES = 10
"""Requests per authenticated operation in the bad-token test, each sent with every bad token."""
AUTHENTICATED = {("POST", "/v1/ops/push"), ("GET", "/v1/ops"), ("GET", "/v1/devices")}
"""Operations known to need a token; the test finds them in the document and must find at least these."""
FRESH_CODE = "placeholder-pairing-code"
"""Put in a generated pair request's body; replaced with a real one-time code just before it is sent."""
FRESH_REFRESH = "placeholder-refresh-token"
"""Likewise for a refresh request: replaced with the refresh token of a newly paired device."""


@dataclass
class Node:
    url: str
    database_url: str
    tokens: dict[str, Any]
    """A device paired before the run."""

    def pair(self, name: str = "schemathesis") -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/v1/pair", json={"code": pairing_code(self.database_url, name)})
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens

    def secret(self) -> str:
        async def read() -> str:
            pool = await connect_pool(self.database_url, 1, 1)
            try:
                return (await auth.node_identity(pool))[1]
            finally:
                await pool.close()

        return asyncio.run(read())


@pytest.fixture
def node(pg_url: str, tmp_path: Path) -> Iterator[Node]:
    with running_node(pg_url, tmp_path / "node") as url:
        first = Node(url, pg_url, {})
        first.tokens = first.pair()
        yield first


def _load(node: Node, headers: dict[str, str], **extra: Any) -> BaseSchema:
    """The node's document as Schemathesis sees it, with `extra` config sections (`phases`, ...).
    Headers given here are sent with every request and never fuzzed (they override the documented
    `authorization` parameter)."""
    config = SchemathesisConfig.from_dict(
        {
            "headers": headers,
            "generation": {"max-examples": MAX_EXAMPLES},
            "operations": [
                {
                    # A well-formed but unknown pairing code is refused as 400 `invalid_code` by design
                    # (random codes are never known); every other refusal of valid data still fails.
                    "include-path": "/v1/pair",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429", "5xx"]
                        }
                    },
                }
            ],
            **extra,
        }
    )
    return schemathesis.openapi.from_url(f"{node.url}/openapi.json", config=config)


def requires_token(operation: APIOperation[Any, Any, Any, Any]) -> bool:
    """Whether the document says the operation takes a bearer token: an `Authorization` header parameter
    (how the node declares it today) or a security requirement (if it ever declares a security scheme)."""
    raw: dict[str, Any] = operation.definition.raw
    for parameter in raw.get("parameters", []):
        if parameter.get("in") == "header" and str(parameter.get("name", "")).lower() == "authorization":
            return True
    security = raw.get("security", operation.schema.raw_schema.get("security", []))
    return any(bool(requirement) for requirement in security)


# Realistic positive data ----------------------------------------------------------------------------------

_NOW_MS = int(time.time() * 1000)
HOSTILE = (
    "\x00",
    "nul \x00 inside",
    "\u202eright to left",
    "\ufeff",
    " ",
    "\U0001f980",
    "'; DROP TABLE ops; --",
)
"""Text that has broken servers before: NUL (PostgreSQL's text cannot hold it), bidi and BOM characters,
blank, astral, SQL. Tried where only realistic requests reach (a pairing's name, a pushed operation)."""
LONE_SURROGATES = ("\ud800", "lone \udfff surrogate")
"""Valid JSON escapes that are not Unicode: fine inside a pushed operation (the node must refuse that
operation alone); not used for the documented string fields, where pydantic refuses them with 422."""
_TEXT = st.one_of(st.text(max_size=60), st.sampled_from(HOSTILE + LONE_SURROGATES))
_IDS = st.one_of(
    st.uuids().map(str), st.text(min_size=1, max_size=64), st.sampled_from(HOSTILE + LONE_SURROGATES)
)
_CLOCK_DEVICE = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(0, 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=6,
)


def _operation(device_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """A near-valid operation: every field well-typed but fuzzed (ids, clock, device, field values), so
    some are accepted and stored and some refused one by one, as a real laptop's might be."""
    me = st.just(device_id)
    clock = st.builds(
        lambda ms, n, who: f"{ms:013d}.{n:06x}.{who}",
        st.integers(0, _NOW_MS + 10 * 60 * 1000),  # some too far ahead (`clock_ahead`)
        st.integers(0, 0xFFFFFF),
        st.one_of(me, _CLOCK_DEVICE),
    )

    def of(entity: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {
                "op_id": _IDS,
                "device_id": st.one_of(me, me, _IDS),
                "hlc": clock,
                "entity": st.just(entity),
                "entity_id": _IDS,
                "fields": st.dictionaries(
                    st.sampled_from(sorted(ENTITY_FIELDS[entity])), _JSON, min_size=1, max_size=4
                ),
            }
        )

    return st.sampled_from(sorted(ENTITY_FIELDS)).flatmap(of)


def _realistic(schema: BaseSchema, device_id: str) -> None:
    ops = st.lists(_operation(device_id), max_size=5)

    @schema.hook
    def flatmap_case(context: HookContext, case: Case[Any]) -> st.SearchStrategy[Case[Any]]:
        body = case.body
        if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
            return st.just(case)  # negative cases stay as Schemathesis made them
        if not isinstance(body, dict):
            return st.just(case)
        route = (case.method.upper(), case.path)

        def with_body(changes: dict[str, Any]) -> Case[Any]:
            case.body = {**body, **changes}
            return case

        if route == ("POST", "/v1/pair"):
            names = st.sampled_from(HOSTILE).map(lambda name: {"code": FRESH_CODE, "name": name})
            return st.one_of(st.just({}), st.just({"code": FRESH_CODE}), names).map(with_body)
        if route == ("POST", "/v1/token/refresh"):
            return st.sampled_from([{}, {"refresh_token": FRESH_REFRESH}]).map(with_body)
        raw = body.get("ops")
        if route == ("POST", "/v1/ops/push") and isinstance(raw, list):
            return ops.map(lambda made: with_body({"ops": [*made, *raw][:500]}))
        return st.just(case)


def _fill_placeholders(case: Case[Any], node: Node) -> None:
    """Swap the placeholders `_realistic` put in for real credentials, made just before the call."""
    if not isinstance(case.body, dict):
        return
    if case.body.get("code") == FRESH_CODE:
        case.body = {**case.body, "code": pairing_code(node.database_url, "schemathesis")}
    if case.body.get("refresh_token") == FRESH_REFRESH:
        case.body = {**case.body, "refresh_token": node.pair("refreshing")["refresh_token"]}


# Every operation, with and without a token ----------------------------------------------------------------


@pytest.fixture(params=["with_token", "without_token"])
def token(request: pytest.FixtureRequest, node: Node) -> dict[str, str]:
    """The headers of the run: a paired device's access token, or nothing."""
    if request.param == "without_token":
        return {}
    headers = {"Authorization": f"Bearer {node.tokens['access_token']}"}
    assert httpx.get(f"{node.url}/v1/devices", headers=headers).status_code == 200
    return headers


@pytest.fixture
def api_schema(node: Node, token: dict[str, str]) -> BaseSchema:
    schema = _load(node, token)
    _realistic(schema, node.tokens["device_id"])
    return schema


api = schemathesis.pytest.from_fixture("api_schema")


def _undeclared_method(case: Case[Any]) -> bool:
    """Whether the case is one of the coverage phase's requests with a method the document does not list
    for the path (TRACE, PUT, OPTIONS, ...)."""
    return str(case.method).upper() != str(case.operation.method).upper()


RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
"""What the node answers: never a 5xx, and only what the document says (status, content type, body,
headers). Checked apart from how it judges requests, so a lax validation cannot hide a crash."""


@api.parametrize()
def test_no_server_errors_and_every_response_is_documented(
    case: Case[Any], node: Node, token: dict[str, str]
) -> None:
    if _undeclared_method(case):
        return  # `test_undeclared_methods_are_refused_properly` covers these
    _fill_placeholders(case, node)
    response = case.call_and_validate(checks=RESPONSE_CHECKS)
    if token and requires_token(case.operation):
        # The run with a token must reach the handlers, or it would pass on documented 401s alone.
        assert response.status_code not in (401, 403), f"the token was refused: {response.text[:300]}"


@api.parametrize()
def test_requests_are_accepted_or_refused_as_documented(case: Case[Any], node: Node) -> None:
    """Every other Schemathesis check: schema-violating requests refused (4xx), schema-valid ones not
    refused for no reason, required headers enforced, documented auth not ignored."""
    if _undeclared_method(case):
        return
    _fill_placeholders(case, node)
    case.call_and_validate(excluded_checks=[*RESPONSE_CHECKS, unsupported_method, allow_header_conformance])


# Hostile text, every kind in every free-text spot ---------------------------------------------------------


def test_hostile_text_never_breaks_the_node(node: Node) -> None:
    """The fuzzing above tries `HOSTILE` text at random; this tries each string in each free-text spot a
    real client reaches (a pairing's name, a refresh token, a pushed operation's ids, device, fields), one
    request each, and reports every crash or undocumented answer at once."""
    token = {"Authorization": f"Bearer {node.tokens['access_token']}"}
    schema = _load(node, token)
    pair, refresh, push = (
        schema["/v1/pair"]["POST"],
        schema["/v1/token/refresh"]["POST"],
        schema["/v1/ops/push"]["POST"],
    )
    me = node.tokens["device_id"]
    clock = HybridClock(me)

    def op(**changes: Any) -> dict[str, Any]:
        made = Operation(
            op_id=new_id(), device_id=me, hlc=clock.now().encode(), entity="task", entity_id=new_id(),
            fields={"title": "hostile"},
        ).model_dump(mode="json")  # fmt: skip
        return {**made, **changes}

    cases: list[Case[Any]] = []
    for text in HOSTILE + LONE_SURROGATES:
        code = pairing_code(node.database_url, "hostile")
        cases.append(pair.Case(body={"code": code, "name": text}))
        cases.append(refresh.Case(body={"refresh_token": text}))
        for spot in ({"op_id": text}, {"entity_id": text}, {"device_id": text}):
            cases.append(push.Case(body={"ops": [op(**spot)]}))
        for fields in ({"title": text}, {"notes": text}, {"tags": [text]}, {text: "x"}):
            cases.append(push.Case(body={"ops": [op(fields=fields)]}))
    failures = []
    for case in cases:
        try:
            case.call_and_validate(checks=RESPONSE_CHECKS, headers=token)
        except FailureGroup as error:
            failures.append(str(error))
    assert not failures, f"{len(failures)} of {len(cases)} requests failed:\n\n" + "\n\n".join(failures)


# Methods the document does not declare ---------------------------------------------------------------------


@pytest.fixture
def methods_schema(node: Node) -> BaseSchema:
    only_coverage = {"examples": {"enabled": False}, "fuzzing": {"enabled": False}}
    return _load(node, {}, phases=only_coverage)


methods = schemathesis.pytest.from_fixture("methods_schema")


@methods.parametrize()
def test_undeclared_methods_are_refused_properly(case: Case[Any]) -> None:
    """405 with an `Allow` header (RFC 9110), never a 5xx, for each method a path does not declare."""
    if _undeclared_method(case):
        case.call_and_validate(checks=[not_a_server_error, unsupported_method, allow_header_conformance])


# Bad tokens on every authenticated operation ---------------------------------------------------------------


@pytest.fixture
def auth_schema(node: Node) -> BaseSchema:
    schema = _load(node, {}, generation={"mode": "positive", "max-examples": BAD_TOKEN_EXAMPLES})
    found = {
        (method.upper(), path)
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
        if requires_token(schema[path][method])
    }
    assert found >= AUTHENTICATED, f"the document no longer marks these as needing a token: {found}"
    return schema


@pytest.fixture
def bad_tokens(node: Node) -> dict[str, tuple[str | None, str]]:
    """Name: (Authorization header or None for none, the error code the node must answer with)."""
    device, node_id, secret = node.tokens["device_id"], node.tokens["node_id"], node.secret()
    now = int(time.time())
    claims = {"sub": device, "iss": node_id, "iat": now, "exp": now + 600, "typ": "access"}
    forged = jwt.encode(claims, "not the node's secret, though just as long: 32+ bytes", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]  # no key for "none"
    expired = auth.issue_access(secret, node_id, device, ttl=timedelta(seconds=-5))
    foreign = auth.issue_access(secret, "another-node", device)
    refresh_typed = jwt.encode({**claims, "typ": "refresh"}, secret, algorithm="HS256")
    return {
        "missing": (None, "unauthorized"),
        "forged": (f"Bearer {forged}", "unauthorized"),
        "expired": (f"Bearer {expired}", "token_expired"),
        "alg_none": (f"Bearer {unsigned}", "unauthorized"),
        "alg_none_no_signature_dot": (f"Bearer {unsigned.rstrip('.')}", "unauthorized"),
        "other_node": (f"Bearer {foreign}", "unauthorized"),
        "not_an_access_token": (f"Bearer {refresh_typed}", "unauthorized"),
        "garbage": ("Bearer not.a.jwt", "unauthorized"),
        "not_bearer": (f"Basic {node.tokens['access_token']}", "unauthorized"),
    }


bad_auth = schemathesis.pytest.from_fixture("auth_schema").include(lambda ctx: requires_token(ctx.operation))


@bad_auth.parametrize()
def test_bad_tokens_are_refused_on_every_authenticated_operation(
    case: Case[Any], bad_tokens: dict[str, tuple[str | None, str]]
) -> None:
    """A schema-valid request with each bad token: 401 with the expected code, and a documented answer."""
    for name, (header, code) in bad_tokens.items():
        case.headers.pop("Authorization", None)  # case-insensitive: drops the generated one too
        if header is not None:
            case.headers["Authorization"] = header
        response = case.call()
        case.validate_response(response, checks=RESPONSE_CHECKS)
        got = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
        assert (response.status_code, got) == (401, code), (
            f"{case.method} {case.path} with the {name!r} token answered {response.status_code}: "
            f"{response.text[:300]}"
        )
