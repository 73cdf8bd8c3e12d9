"""The sandbox's TLS files: a strict client that trusts only the CA completes a real handshake."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from expirytrack_dagster.sandbox.tls import make_tls_files


def _handshake(files_dir: Path, server_hostname: str) -> str:
    """Serve one TLS connection on loopback with the files; return the client's TLS version."""
    files = make_tls_files(files_dir)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.cert, files.key)
    client_ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    client_ctx.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            assert tls.recv(2) == b"ok"
            version = tls.version() or ""
        thread.join(timeout=10)
    assert not errors, errors
    return version


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_a_strict_client_trusting_the_ca_accepts_the_server(tmp_path: Path, name: str) -> None:
    assert _handshake(tmp_path / "tls", name).startswith("TLS")


def test_another_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path / "tls", "api.upstox.com")


def test_the_certificate_is_short_lived_and_names_the_sandbox(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path / "tls", valid_days=2)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now <= dt.timedelta(days=2)
    (org,) = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    assert "synthetic data" in str(org.value)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_server_key_is_private(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path / "tls")
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
