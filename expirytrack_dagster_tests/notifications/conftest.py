"""Real receivers on loopback: an SMTP server (aiosmtpd) and a threaded HTTP webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-pass-9f3a1c"
WEBHOOK_TOKEN = "T0001/B0002/xoxb-secret-4c7d"
BOT_TOKEN = "123456:bot-secret-e81f"


@dataclass
class Receiver:
    """Records every POST (path and JSON body); answers ``status`` with ``reply``."""

    url: str
    posts: list[tuple[str, Any]] = field(default_factory=list)
    status: int = 200
    reply: str = "ok"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recv = state["receiver"]
            recv.posts.append((self.path, json.loads(body)))
            payload = recv.reply.encode()
            self.send_response(recv.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """Messages the SMTP server accepted, and the port it listens on."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == SMTP_USER
        and data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False)


def start_smtp(tls_files: Any = None) -> tuple[Controller, Mailbox]:
    """An SMTP server on loopback requiring login; with ``tls_files`` it also offers STARTTLS."""
    import ssl

    mailbox = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mailbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            mailbox.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted"

    options: dict[str, Any] = {"authenticator": _authenticate, "auth_required": True}
    if tls_files is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_files.cert, tls_files.key)
        options |= {"tls_context": context, "require_starttls": True}
    else:
        options |= {"auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=mailbox.port, **options)
    controller.start()
    return controller, mailbox


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    controller, mailbox = start_smtp()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_tls_server(tmp_path: Path) -> Iterator[tuple[Mailbox, Path]]:
    from expirytrack_dagster.sandbox.tls import make_tls_files

    files = make_tls_files(tmp_path / "tls")
    controller, mailbox = start_smtp(files)
    try:
        yield mailbox, files.ca_cert
    finally:
        controller.stop()


SECRETS = (SMTP_PASSWORD, WEBHOOK_TOKEN, BOT_TOKEN)
ENV = {
    "ET_SLACK_TOKEN": WEBHOOK_TOKEN,
    "ET_DISCORD_TOKEN": WEBHOOK_TOKEN,
    "ET_BOT_TOKEN": BOT_TOKEN,
    "ET_SMTP_PASSWORD": SMTP_PASSWORD,
}
