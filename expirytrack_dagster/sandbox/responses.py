"""Upstox-shaped JSON bodies: the success envelope and the error envelope with both key spellings."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

JSON = "application/json"


class ApiError(Exception):
    """An error answer: HTTP status plus the Upstox error code, message and offending input."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        property_path: str | None = None,
        invalid_value: Any = None,
    ):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.property_path = property_path
        self.invalid_value = invalid_value

    def response(self) -> Response:
        return error_response(
            self.status, self.code, self.message, self.property_path, self.invalid_value
        )


def error_body(
    code: str, message: str, property_path: str | None = None, invalid_value: Any = None
) -> bytes:
    """The error envelope, with camelCase and snake_case keys as real Upstox bodies carry."""
    error = {
        "errorCode": code,
        "message": message,
        "propertyPath": property_path,
        "invalidValue": invalid_value,
        "error_code": code,
        "property_path": property_path,
        "invalid_value": invalid_value,
    }
    return json.dumps({"status": "error", "errors": [error]}, separators=(",", ":")).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    property_path: str | None = None,
    invalid_value: Any = None,
) -> Response:
    return Response(
        error_body(code, message, property_path, invalid_value), status, media_type=JSON
    )


def success_response(data: Any) -> Response:
    body = json.dumps({"status": "success", "data": data}, separators=(",", ":"))
    return Response(body.encode(), 200, media_type=JSON)


def success_raw(data_json: str) -> Response:
    """A success envelope around ``data`` that is already JSON text (the candle fast path)."""
    return Response(f'{{"status":"success","data":{data_json}}}'.encode(), 200, media_type=JSON)


# The error codes the sandbox answers with (Upstox's own codes where they are documented).
INVALID_TOKEN = (401, "UDAPI100050", "Invalid token used to access API")
TOO_MANY_REQUESTS = (429, "UDAPI10005", "Too Many Request Sent")
SERVER_ERROR_CODE = "UDAPI100500"
SERVER_ERROR_MESSAGE = "Something went wrong. Please try again later."
NOT_FOUND = (404, "UDAPI100060", "Resource not Found.")
INVALID_KEY_CODE = "UDAPI100011"
INVALID_KEY_MESSAGE = "Invalid Instrument key"
# ../shared/upstox-api.md records the code UDAPI100011 for an invalid instrument key but no HTTP
# status. Upstox answers its other input errors (UDAPI100036, UDAPI100038, UDAPI1148) with 400,
# so an unknown key, well-formed or not, gets 400 too rather than a guessed 404.
INVALID_KEY_STATUS = 400
INVALID_INPUT_CODE = "UDAPI100036"
INVALID_RANGE_ORDER_CODE = "UDAPI100038"
INVALID_DATE_RANGE = (400, "UDAPI1148", "Invalid date range")
# The status of UDAPI1149 is open in ../shared/upstox-api.md, with one report of 401; the plan
# check belongs with authorisation, which Upstox answers with 401, so the sandbox uses 401. The
# message is the documented one (the notes quote it up to "subscription").
PLAN_REQUIRED = (
    401,
    "UDAPI1149",
    "This API is available exclusively with an Upstox Plus plan subscription.",
)
