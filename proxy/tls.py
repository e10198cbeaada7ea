"""TLS between clients and the proxy (it terminates there; the backend link is local)."""

from __future__ import annotations

import ssl
from pathlib import Path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Raises OSError/ssl.SSLError at start-up if the files are unusable."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included
        raise OSError(f"cannot load TLS certificate {cert} with key {key}: {exc}") from exc
    return context
