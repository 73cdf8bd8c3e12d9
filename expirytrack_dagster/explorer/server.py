"""Serving the explorer: hypercorn (already the sandbox's server) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from expirytrack_dagster.explorer.app import create_app
from expirytrack_dagster.explorer.links import DEFAULT_PORT

HOST = "127.0.0.1"
__all__ = ["DEFAULT_PORT", "HOST", "running", "serve"]


def _config(sock: socket.socket) -> Config:
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    config.include_server_header = False
    return config


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve(database: Path, port: int = DEFAULT_PORT) -> None:
    """Serve the explorer over ``database`` on 127.0.0.1:``port`` until Ctrl-C."""
    sock = _bind(port)
    print(f"explorer: http://{HOST}:{sock.getsockname()[1]}/ (read-only over {database})")
    with suppress(KeyboardInterrupt):
        asyncio.run(hypercorn_serve(create_app(database), _config(sock), mode="asgi"))  # type: ignore[arg-type]


@contextmanager
def running(database: Path, port: int = 0) -> Iterator[str]:
    """The explorer served in a daemon thread (port 0: a free one); yields its base URL."""
    sock = _bind(port)
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    config = _config(sock)

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(
                hypercorn_serve(
                    create_app(database), config, shutdown_trigger=stop.wait, mode="asgi"
                )  # type: ignore[arg-type]
            )
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="explorer", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)
