"""The shapes facetopt needs of Braintrust's replies, checked before anything is read from them.

A reply of another shape (a `/btql` page without `data`, `"data": "x"`, a list without
`objects`) is a BraintrustError naming the route and what was missing, never an empty result
or an AttributeError. Fields facetopt does not read are allowed and kept.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from facetopt.errors import BraintrustError

REPLY_HINT = (
    "Braintrust (or a proxy in front of it) answered in a shape facetopt does not know; "
    "check BRAINTRUST_API_URL / BRAINTRUST_APP_URL, and run the command again"
)

M = TypeVar("M", bound=BaseModel)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


class BtqlPage(_Reply):
    """POST /btql: one page of rows."""

    data: list[dict[str, Any]]
    cursor: str | None = None


class ObjectList(_Reply):
    """GET /v1/project, /v1/dataset, /v1/experiment, /v1/function: a list of objects."""

    objects: list[dict[str, Any]]


class Named(_Reply):
    """One project, dataset or experiment (GET /v1/<kind>/{id}, POST /v1/project)."""

    id: str
    name: str = ""


class NamedList(_Reply):
    objects: list[Named]


class DatasetFetchPage(_Reply):
    """POST /v1/dataset/{id}/fetch: one page of events."""

    events: list[dict[str, Any]]
    cursor: str | None = None


class RegisteredProject(_Reply):
    """POST /api/project/register."""

    project: Named


class InsertedFunctions(_Reply):
    """POST /insert-functions."""

    functions: list[dict[str, Any]]


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the reply"
    if first.get("type") == "missing":
        return f"`{where}` is missing"
    if where == "the reply":
        return f"the reply is {type(first.get('input')).__name__}, not an object"
    found = type(first.get("input")).__name__
    return f"`{where}` is not what it should be ({first.get('msg', 'invalid')}; got {found})"


def checked(model: type[M], reply: Any, route: str, what: str) -> M:
    """`reply` as `model`, or a BraintrustError naming the route, what was asked and what is wrong."""
    try:
        return model.model_validate(reply)
    except ValidationError as error:
        raise BraintrustError(
            f"Braintrust's reply to {route} ({what}) cannot be used: {_problem(error)}", hint=REPLY_HINT
        ) from None
