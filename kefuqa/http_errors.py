"""The error body every route of both apps answers with, and its OpenAPI schema.

A 4xx or 5xx body is ``{"detail": …}``: a reason (scoring and grading), a list of
reasons (request validation), a list of ``{index, reason}`` (a batch's invalid items),
or ``{"message": …}`` with extra fields (the review API). Both apps turn FastAPI's
request validation errors into the list of reasons, so one schema, published as
``ErrorBody`` for every 4xx the document lists, holds for every route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict


class ItemError(BaseModel):
    index: int
    reason: str


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. the current version on a 409
    message: str


class ErrorBody(BaseModel):
    detail: str | list[str] | list[ItemError] | Message


def error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# What every route may answer besides its own success; listed on the app, so that
# FastAPI's default 422 schema (which neither app sends) is not published.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {422: error_response("invalid request; detail says why")}


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def use_error_body(app: FastAPI) -> None:
    """Answer request validation errors with the documented ``ErrorBody``."""
    app.exception_handler(RequestValidationError)(validation_error)
