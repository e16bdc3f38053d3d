"""The pull route's parameters, read without FastAPI's per-request dependency machinery.

`GET /v1/ops` is what every device calls most (each poll, each announcement), and FastAPI's general
parameter solving (declared `Query`/`Header` parameters and a `Depends`) cost the route more than all of
its own work for an idle pull. So the route takes the bare request, and this module reads it: the query
through one pydantic model (the same lax validation FastAPI applied, with the same messages), the two
headers by hand; the OpenAPI document lists the parameters from the same model, so what is documented is
what is checked.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import Headers, QueryParams

from aurora.sync.protocol import MAX_BATCH

VERSION_HEADER_MAX = 40


class PullQuery(BaseModel):
    """`?after=&limit=`: the device's cursor and how many operations it wants at most."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    after: int = Field(0, ge=0, le=2**62)
    limit: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH)


class InvalidPull(ValueError):
    """A parameter out of its documented range; the message is `where: what`, as the API's 422 says."""


def read_pull(query: QueryParams, headers: Headers) -> tuple[PullQuery, str | None]:
    """The query and the `X-Aurora-Version` header; InvalidPull naming the first bad one."""
    try:
        params = PullQuery.model_validate({name: query[name] for name in ("after", "limit") if name in query})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(["query", *(str(part) for part in first["loc"])])
        raise InvalidPull(f"{where}: {first['msg']}") from None
    version = headers.get("x-aurora-version")
    if version is not None and len(version) > VERSION_HEADER_MAX:
        raise InvalidPull(
            f"header.x-aurora-version: String should have at most {VERSION_HEADER_MAX} characters"
        )
    return params, version


def pull_parameters() -> list[dict[str, Any]]:
    """The route's parameters for its OpenAPI operation (FastAPI lists none for a bare request)."""
    schema = PullQuery.model_json_schema()
    query = [
        {"name": name, "in": "query", "required": False, "schema": prop}
        for name, prop in schema["properties"].items()
    ]
    nullable_text: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    version: dict[str, Any] = {
        "anyOf": [{"type": "string", "maxLength": VERSION_HEADER_MAX}, {"type": "null"}]
    }
    return [
        *query,
        {"name": "x-aurora-version", "in": "header", "required": False, "schema": version},
        {"name": "authorization", "in": "header", "required": False, "schema": nullable_text},
    ]
