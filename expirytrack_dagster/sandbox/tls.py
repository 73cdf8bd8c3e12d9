"""Throwaway TLS material for the loopback server: a private CA and a server certificate it signs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme

from expirytrack_dagster.atomic_write import write_bytes_atomically

ORGANIZATION = "ExpiryTrack sandbox (synthetic data)"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``ca_cert`` is what clients trust; ``cert`` and ``key`` are the server's."""

    ca_cert: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, valid_days: int = 30) -> TlsFiles:
    """Create a CA and a server certificate for 127.0.0.1 / localhost in ``directory``.

    trustme issues them: a separate CA rather than one self-signed leaf, with the extensions that
    strict verifiers (e.g. Python 3.13's default ``VERIFY_X509_STRICT``) require, and P-256 keys,
    generated in milliseconds. The server's key file is mode 0600.
    """
    now = dt.datetime.now(dt.UTC)
    ca = trustme.CA(organization_name=ORGANIZATION)
    leaf = ca.issue_cert(
        "localhost",
        "127.0.0.1",
        common_name="localhost",
        organization_name=ORGANIZATION,
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=valid_days),
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca_cert.write_bytes(ca.cert_pem.bytes())
    files.cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    write_bytes_atomically(files.key, leaf.private_key_pem.bytes(), private=True)
    return files
