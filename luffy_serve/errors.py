"""OpenAI-style error bodies, the shape the official client turns into typed exceptions."""

from __future__ import annotations

from starlette.responses import JSONResponse


def error_response(status: int, message: str, type_: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": status}},
        status_code=status,
    )
