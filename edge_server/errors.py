"""API errors in the contract's shape, and the middleware that renders every failure that way."""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ValidationError

from appliance.contract.errors import CodedError

log = logging.getLogger("scaiecho.edge")
M = TypeVar("M", bound=BaseModel)


class ApiError(CodedError):
    """An error the client should see, with its HTTP status: ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON document sent to the client."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> web.Response:
        """As an aiohttp response."""
        return web.json_response(self.body(), status=self.status, dumps=_dumps, headers=self.headers)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _plain(data: Any) -> Any:
    """Contract models (appliance/contract/documents.py) as JSON-ready values, optional fields left out."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", exclude_none=True)
    if isinstance(data, list):
        return [_plain(item) for item in data]
    return data


def json_response(data: Any, status: int = 200, **extra: Any) -> web.Response:
    """A success document: ``{"data": ...}`` plus any top-level extras (``next_cursor``)."""
    return web.json_response({"data": _plain(data), **extra}, status=status, dumps=_dumps)


async def json_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``: 400 when it is not a JSON object, else `validated`."""
    return validated(model, await json_object(request))


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``, or 422 `invalid_field` naming the first bad or unknown field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        reason = "is not a field of this request" if first["type"] == "extra_forbidden" else first["msg"]
        raise invalid_field(name, f"{name}: {reason}") from exc


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object; 400 otherwise."""
    try:
        body = await request.json()
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise ApiError(400, "bad_request", "the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def not_found(what: str = "resource") -> ApiError:
    """The one 404 for missing and foreign objects alike (byte-identical by construction)."""
    return ApiError(404, "not_found", f"no such {what}")


def invalid_field(field: str, message: str) -> ApiError:
    """422 naming the offending field."""
    return ApiError(422, "invalid_field", message, {"field": field})


def storage_full(exc: BaseException) -> bool:
    """True for "no space left" from the file system or SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


def insufficient_storage() -> ApiError:
    """507: the data dir's disk is full; nothing of the request was kept."""
    return ApiError(
        507,
        "insufficient_storage",
        "the appliance's disk is full, so nothing of this request was stored; "
        "free space under the data dir (or ask its operator to), then send it again",
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as the contract's error document; never a stack trace or path."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = "no such route" if exc.status == 404 else exc.reason
        return ApiError(exc.status, code, message).response()
    except Exception as exc:
        if storage_full(exc):
            log.error("disk full on %s %s: %s", request.method, request.path, exc)
            return insufficient_storage().response()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return ApiError(500, "internal_error", "the appliance hit an unexpected error; it has been logged").response()
