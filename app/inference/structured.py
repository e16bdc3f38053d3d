"""Structured output: the model's JSON, validated by a pydantic model, with one retry that shows the model
what was wrong.

Backends constrain the output where they can (Ollama's `format`, a `json_schema` response format,
llama.cpp's grammar), but a constrained answer can still be cut short by `max_tokens`, and a schema's
limits (lengths, ranges, patterns) are beyond what a grammar enforces. So every answer is validated; an
invalid one is asked again once, with the first validation error and the answer quoted, and a second
invalid answer is a one-line `InvalidOutputError`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from aurora.app.inference.errors import InvalidOutputError, one_line
from aurora.app.inference.types import JsonSchema

M = TypeVar("M", bound=BaseModel)

_QUOTE_CHARS = 2000
"""How much of an invalid answer is quoted back to the model."""


def describe(error: ValidationError) -> str:
    """The first problem of a validation error, on one line ("age: Input should be a valid integer")."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "answer"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return one_line(f"{where}: {first.get('msg', 'invalid')}{more}", 160)


def retry_prompt(prompt: str, answer: str, problem: str, schema: JsonSchema) -> str:
    return (
        f"{prompt}\n\n"
        f"Your previous answer was not valid: {problem}.\n"
        f"Previous answer: {answer[:_QUOTE_CHARS]}\n"
        f"Answer again with only a JSON object that matches this JSON schema: {json.dumps(schema)}"
    )


async def parse_or_retry(
    ask: Callable[[str], Awaitable[str]], prompt: str, output: type[M], schema: JsonSchema
) -> M:
    answer = await ask(prompt)
    try:
        return output.model_validate_json(answer)
    except ValidationError as error:
        problem = describe(error)
    answer = await ask(retry_prompt(prompt, answer, problem, schema))
    try:
        return output.model_validate_json(answer)
    except ValidationError as error:
        raise InvalidOutputError(
            f"The model's answer did not match the expected format twice ({describe(error)}): "
            "try again, or choose a larger model"
        ) from None
