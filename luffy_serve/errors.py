"""OpenAI-style error bodies, the shape the official client turns into typed exceptions."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

# The type names vLLM and the openai client use; other statuses get their HTTP phrase ("MethodNotAllowedError").
ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    413: "RequestTooLargeError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


def error_type(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "Error"
    return "".join(word.capitalize() for word in phrase.replace("-", " ").split()) + "Error"


def error_payload(status: int, message: str, type_: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_ or error_type(status), "param": param, "code": status}}


def error_response(status: int, message: str, type_: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_payload(status, message, type_, param), status_code=status)


def openai_error_body(status: int, body: bytes, keep_detail: bool = False) -> bytes | None:
    """``body`` of an error response as OpenAI error JSON, or None when it already is.

    Reads FastAPI's ``{"detail": "..."}`` and ``{"detail": [validation errors]}``, Gradio's
    ``{"detail": {"error": ...}}`` and plain text; ``keep_detail`` keeps ``detail`` beside ``error``.
    """
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and "message" in data["error"]:
        return None
    message, param = _message(data, body, status)
    payload = error_payload(status, message, param=param)
    if keep_detail and isinstance(data, dict) and "detail" in data:
        payload["detail"] = data["detail"]
    return json.dumps(payload).encode()


def _message(data: Any, body: bytes, status: int) -> tuple[str, str | None]:
    detail = data.get("detail", data.get("error")) if isinstance(data, dict) else None
    if isinstance(detail, str) and detail:
        return detail, None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):  # validation errors
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        return str(first.get("msg") or "invalid request"), where
    if isinstance(detail, dict) and detail.get("error"):
        return str(detail["error"]), None
    text = body.decode("utf-8", "replace").strip() if data is None else ""
    if text and len(text) <= 500:
        return text, None
    try:
        return HTTPStatus(status).phrase, None
    except ValueError:
        return "error", None
