"""HTTP plumbing shared by the handlers: the resolver, its error answers, and the request guard.

Every answer that is not a success has the body ``{"message": ..., "errors"?: [...]}``
(``schemas.ErrorResponse``). Malformed requests get a 4xx; a store that keeps failing gets 503 with
Retry-After, and a store that refuses a request (a bug or misconfiguration: no retry helps) 500.
The guard runs before Powertools parses anything, because Powertools' validation runs before any
middleware: on the routes that take a body (POST) it refuses bodies over 16 KB (413), non-JSON
content types (415) and bodies that are not UTF-8 (400). Routes without a body never read one.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import pydantic_core
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel

from moodtune.emotion.readable import UnreadableText
from moodtune.errors import StoreFailure, StoreUnavailable
from moodtune.feedback.records import RecommendationNotFound, SongNotInRecommendation
from moodtune.http.schemas import ErrorResponse

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_response(
    status: int,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON error answer in the API's one error shape."""
    body = ErrorResponse.model_validate({"message": _printable(message), "errors": errors})
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(exclude_none=True),
        headers=dict(headers or {}),
    )


def _printable(text: str) -> str:
    """``text`` with lone surrogates replaced: messages and error locations may quote the request (a
    path, an unknown field's name), and a lone surrogate cannot be written as UTF-8 JSON."""
    return text.encode("utf-8", "replace").decode("utf-8")


def json_response(status: int, model: BaseModel, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON success answer from a pydantic model, serialized here, once, by pydantic's own encoder.

    The model was validated when it was built, so the routes have no return annotation: Powertools
    would validate it again, turn it into dicts and encode those with json.dumps, for the same bytes.
    Their ``responses=`` (``route_responses``) name the model for the OpenAPI document instead.
    """
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=model.model_dump_json(),
        headers=dict(headers or {}),
    )


def _serialize(obj: Any) -> str:
    # UTF-8 JSON with Korean left readable (json.dumps would write \uXXXX escapes).
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _json_loads(body: str) -> Any:
    """json.loads whose every failure is a JSONDecodeError, which Powertools answers as a 400.

    An integer of more than ``sys.get_int_max_str_digits()`` (4300) digits makes json.loads raise a
    plain ValueError, which would otherwise reach the catch-all as a 500.
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        limit = sys.get_int_max_str_digits()
        found = re.search(rf"\d{{{limit + 1},}}", body) if limit else None
        raise json.JSONDecodeError(
            f"a number has more than {limit} digits", body, found.start() if found else 0
        ) from exc


def log_json(record: Mapping[str, Any]) -> str:
    """The handlers' Logger serializer: pydantic-core's JSON encoder, about 3x faster than the
    json.dumps Powertools uses, with the same compact UTF-8 output (str() for unknown types; dates
    and times in ISO 8601); json.dumps stays the fallback for anything it refuses."""
    try:
        return pydantic_core.to_json(record, fallback=str).decode()
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False)


def log_message(message: Any) -> Any:
    """The handlers' Logger deserializer. Powertools tries to parse every log message as JSON; only
    messages that can be a JSON object or array are tried here, the rest are kept as they are
    instead of paying for a JSONDecodeError on each log line."""
    if isinstance(message, str) and message[:1] in ("{", "["):
        return json.loads(message)
    return message


def _error_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


# OpenAPI descriptions of the error answers, for the routes' ``responses=``. 405 (a known path with
# another method) belongs to no route, so the API's description documents it (see the handlers).
ERROR_DOCS: dict[int, dict[str, Any]] = {
    400: _error_doc("Malformed request: invalid JSON, not UTF-8, wrong or missing or unknown fields"),
    404: _error_doc("No such resource"),
    413: _error_doc(f"Request body over {MAX_BODY_BYTES} bytes"),
    415: _error_doc("Content type is not application/json"),
    422: _error_doc(
        "Well formed, but not processable: the text has nothing moodtune can read, no Korean (Hangul), "
        "Korean chat mark or known emoji (emotions, recommendations; errors[].type text_unreadable); "
        "the song_id is not one of the songs of this recommendation (feedback; the schema cannot say "
        "which songs a recommendation holds; nothing is recorded)"
    ),
    429: _error_doc(
        'Throttled by the HTTP API (route throttling, body {"message": "Too Many Requests"}); retry later'
    ),
    500: _error_doc("Internal error: a bug, or a data store refusing the request; retrying will not help"),
    503: {
        **_error_doc("The data store is unavailable after retries; retry after the Retry-After seconds"),
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}


def route_responses(
    status: int,
    description: str,
    model: type[BaseModel] | None,
    *errors: int,
    links: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses=`` of a route: its success answer (``model``'s schema, and the OpenAPI
    ``links`` from it to the operations that take its values), the ERROR_DOCS entries of the error
    statuses it can answer, and 429 and 500, which every route can."""
    success: dict[str, Any] = {"description": description}
    if model is not None:
        success["content"] = {content_types.APPLICATION_JSON: {"model": model}}
    if links:
        success["links"] = {name: dict(link) for name, link in links.items()}
    return {status: success, **{error: ERROR_DOCS[error] for error in sorted({*errors, 429, 500})}}


def tidy_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Drop the 422 "Validation Error" that Powertools adds to every validated route (this API
    answers validation errors with 400, see ERROR_DOCS; 422 only where a route documents its own),
    then every component schema that nothing in the paths refers to, directly or through other
    schemas (Powertools' HTTPValidationError, ValidationError, ResponseValidationError), so that
    no ``$ref`` is left pointing at a schema that was removed."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.get("422", {}).get("description") == "Validation Error":
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    prefix = "#/components/schemas/"
    used: set[str] = set()
    pending = [document.get("paths", {})]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] not in used:
                used.add(ref[len(prefix) :])
                pending.append(schemas.get(ref[len(prefix) :], {}))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for name in set(schemas) - used:
        del schemas[name]
    return document


def _errors_from(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc/type/msg: pydantic's ``input`` would echo the user's text back (and into logs).
    errors = []
    for error in exc.errors():
        loc = [
            _printable(part) if isinstance(part, str) else part
            for part in error.get("loc", ())
            if isinstance(part, str | int)
        ]
        msg = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid":
            ctx = error.get("ctx") or {}
            position = next((part for part in loc if isinstance(part, int)), None)
            where = f" at character {position}" if position is not None else ""
            msg = f"request body is not valid JSON ({ctx.get('error', 'decode error')}{where})"
            loc = ["body"]
        elif loc == ["body"] and error.get("type") == "missing":
            msg = "request body is required"
        errors.append({"loc": loc, "type": str(error.get("type", "invalid")), "msg": msg})
    return errors


def _summary(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"] if part != "body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid request: {where + ': ' if where else ''}{first['msg']}{more}"


def _guard(event: Mapping[str, Any]) -> Response | None:
    """Refuse, before any parsing, a body that is too large, not JSON, or not UTF-8 (POST, PUT, PATCH:
    the methods whose routes read a body; a GET's body is never read, so it is not judged)."""
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    body = event.get("body")
    if not body or method not in _BODY_METHODS:
        return None
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return error_response(400, "request body is not valid base64")
    else:
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        return error_response(413, f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type", "application/json")).split(";")[0].strip().lower()
    if media_type != "application/json":
        return error_response(415, f"content type {media_type or '(empty)'!r} is not application/json")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return error_response(400, "request body is not valid UTF-8")
    return None


class MoodtuneResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver with validation, the API's error answers and the request guard."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("enable_validation", True)
        kwargs.setdefault("serializer", _serialize)
        kwargs.setdefault("json_body_deserializer", _json_loads)
        super().__init__(**kwargs)
        self._paths: list[tuple[re.Pattern[str], set[str]]] = []
        _register_error_handlers(self)

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Callable:
        """Register a route (Powertools), remembering its path and methods to tell 405 from 404."""
        methods = {method} if isinstance(method, str) else set(method)
        # Powertools' own pattern: a path its router cannot match is a 404, never a false 405.
        self._paths.append((self._compile_regex(rule), {m.upper() for m in methods}))
        return super().route(rule, method, *args, **kwargs)

    def allowed_methods(self, path: str) -> set[str]:
        """Methods registered for ``path`` (empty when no route matches the path)."""
        return {m for pattern, methods in self._paths if pattern.match(path) for m in methods}

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Guard the request, then let Powertools route and validate it."""
        rejection = _guard(event)
        if rejection is not None:
            return _to_http_api(rejection)
        return super().resolve(event, context)


def _to_http_api(response: Response) -> dict[str, Any]:
    headers = {k: v if isinstance(v, str) else ", ".join(v) for k, v in response.headers.items()}
    return {
        "statusCode": response.status_code,
        "headers": headers,
        "body": response.body,
        "isBase64Encoded": False,
    }


def _register_error_handlers(app: MoodtuneResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        errors = _errors_from(exc)
        return error_response(400, _summary(errors), errors)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        return error_response(415, "content type is not application/json")

    @app.exception_handler([UnicodeDecodeError, binascii.Error])
    def _undecodable(exc: Exception) -> Response:
        return error_response(400, "request body is not valid UTF-8")

    @app.exception_handler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        return error_response(400, "request body is nested too deeply")

    @app.exception_handler(RecommendationNotFound)
    def _no_recommendation(exc: RecommendationNotFound) -> Response:
        return error_response(404, str(exc))

    @app.exception_handler(UnreadableText)
    def _unreadable(exc: UnreadableText) -> Response:
        errors = [{"loc": ["body", "text"], "type": "text_unreadable", "msg": str(exc)}]
        return error_response(422, str(exc), errors)

    @app.exception_handler(SongNotInRecommendation)
    def _song_not_in(exc: SongNotInRecommendation) -> Response:
        return error_response(422, str(exc))

    @app.exception_handler(StoreUnavailable)
    def _unavailable(exc: StoreUnavailable) -> Response:
        return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(StoreFailure)
    def _refused(exc: StoreFailure) -> Response:
        # Already logged where it happened, with the error code; the client learns no internals.
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    @app.exception_handler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        return error_response(exc.status_code, str(exc.msg))

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        event = app.current_event
        allowed = app.allowed_methods(event.path)
        if allowed:
            return error_response(
                405,
                f"method {event.http_method} is not allowed on {event.path}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        return error_response(404, f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


__all__ = [
    "ERROR_DOCS",
    "MAX_BODY_BYTES",
    "MoodtuneResolver",
    "error_response",
    "json_response",
    "log_json",
    "log_message",
    "route_responses",
    "tidy_openapi",
]
