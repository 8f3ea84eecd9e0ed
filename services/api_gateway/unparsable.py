"""Requests aiohttp answers itself: a request line or header over 8 KB, bytes
a path may not hold, a bad Content-Length or chunk size... aiohttp rejects
these while parsing, before any route or middleware runs, and its answer is
plain text. Here they get Taskcluster's JSON error body instead (a 4xx; a 500
only for an exception that escaped every handler)."""

import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_urldispatcher import _default_expect_handler

from .errors import ApiError, error_body, internal_error
from .responses import json_response

log = logging.getLogger("taskjournal.gateway")
MAX_DETAIL = 300  # aiohttp's message quotes the offending bytes


class JsonErrorHandler(RequestHandler):
    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a reply already started cannot be replaced
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        if status >= 500:
            log.error("unexpected error handling a request", exc_info=exc)
            err = internal_error()
        else:
            log.info("unparsable request: %s", message)
            err = ApiError("InvalidRequestArguments", status,
                           f"The request could not be parsed: {(message or '')[:MAX_DETAIL]}")
        response = json_response(error_body(err, "unknown", {}, {}), err.status)
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorHandler(self, loop=self._loop, **self._kwargs)


def answer_in_json(app: web.Application) -> None:
    """Make the servers built for `app` (by AppRunner or the test client) use
    JsonErrorHandler. aiohttp offers no setting for its parse-error replies, so
    the app's server factory is wrapped; the server itself is aiohttp's own."""
    make_server = app._make_handler

    def make_json_error_server(**kwargs) -> web.Server:
        server = make_server(**kwargs)
        server.__class__ = JsonErrorServer  # only __call__ differs: which RequestHandler serves a connection
        return server

    setattr(app, "_make_handler", make_json_error_server)


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """aiohttp's handling of `Expect:` (100-continue), with an unknown expectation
    answered 417 in JSON rather than aiohttp's plain text."""
    try:
        await _default_expect_handler(request)
        return None
    except web.HTTPExpectationFailed as failed:
        err = ApiError("InvalidRequestArguments", 417, failed.text or "Expectation Failed")
        return json_response(error_body(err, "unknown", {}, {}), err.status)
