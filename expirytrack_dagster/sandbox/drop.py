"""Dropping a request without an answer: an HTTP/2 stream reset, or a cut HTTP/1.1 connection.

ASGI has no message for "abort this request", so the HTTP/2 case reaches through the ``send``
callable into hypercorn's stream and protocol objects (hypercorn 0.17-0.18) and resets the
stream the way hypercorn does when a client resets it. If those internals are not there, the
fallback starts a response and abandons it, which hypercorn turns into a closed connection on
HTTP/1.1 (on HTTP/2 the client then sees its read timeout instead of an immediate error).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import Scope, Send

from expirytrack_dagster.sandbox.inprocess import IN_PROCESS_SCOPE_KEY, DroppedRequest

log = logging.getLogger(__name__)


async def _reset_h2_stream(send: Send) -> bool:
    stream: Any = getattr(send, "__self__", None)
    protocol: Any = getattr(getattr(stream, "send", None), "__self__", None)
    connection = getattr(protocol, "connection", None)
    stream_id = getattr(stream, "stream_id", None)
    if connection is None or stream_id is None or not hasattr(connection, "reset_stream"):
        return False
    try:
        import h2.errors

        connection.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
        await protocol._flush()
        await protocol._close_stream(stream_id)  # marks the stream closed: nothing more is sent
        await protocol._window_updated(stream_id)  # lets hypercorn's sender drop its buffer
    except Exception:  # internals changed: fall back to the portable way
        log.debug("could not reset the HTTP/2 stream", exc_info=True)
        return False
    return True


async def drop_request(scope: Scope, send: Send) -> None:
    """End the request so that the client gets a transport error and no HTTP answer."""
    if scope.get(IN_PROCESS_SCOPE_KEY):
        raise DroppedRequest  # the in-process transport turns it into httpx.ReadError
    if scope.get("http_version") == "2" and await _reset_h2_stream(send):
        return
    # Headers announcing a body that never comes: hypercorn closes the connection.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
