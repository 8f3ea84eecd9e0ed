"""Taskcluster's error body: a code, a message with a footer, and the request."""

import json
import uuid

from taskjournal.shared.domain.errors import DomainError
from taskjournal.shared.domain.time import format_ms, now_ms

# The HTTP status of each kind of domain rejection (Taskcluster's codes).
DOMAIN_STATUS = {"InputError": 400, "ResourceNotFound": 404, "RequestConflict": 409, "ResourceExpired": 410}


class ApiError(Exception):
    def __init__(self, code: str, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.code, self.status, self.message, self.headers = code, status, message, headers or {}


def from_domain(err: DomainError) -> ApiError:
    return ApiError(err.code, DOMAIN_STATUS.get(err.code, 500), err.message)


def malformed(message: str) -> ApiError:
    return ApiError("MalformedPayload", 400, message)


def invalid_arguments(message: str) -> ApiError:
    return ApiError("InvalidRequestArguments", 400, message)


def internal_error() -> ApiError:
    return ApiError("InternalServerError", 500, f"Internal Server Error, incidentId {uuid.uuid4()}.")


def error_body(err: ApiError, method: str, params: dict, payload) -> dict:
    time = format_ms(now_ms())
    footer = (f"\n\n---\n\n* method:     {method}\n* errorCode:  {err.code}\n"
              f"* statusCode: {err.status}\n* time:       {time}")
    return {"code": err.code, "message": err.message + footer,
            "requestInfo": {"method": method, "params": params, "payload": payload, "time": time}}


def schema_message(schema_id: str, error: str) -> str:
    return f"\nSchema Validation Failed!\nRejecting Schema: {schema_id}\nErrors:\n  * {error}"


def pattern_message(param: str, value: str, pattern: str) -> str:
    return f"URL parameter '{param}' given as '{value}' must match regular expression: '/{pattern}/'"


def dumps_pretty(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2)
