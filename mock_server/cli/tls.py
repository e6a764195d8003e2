"""``serve --tls``: HTTPS as ``api.wavespeed.ai``, from a local CA kept in the data folder.

The CA is made once (``<data>/tls/ca.pem`` and its key, readable by the owner
only) and reused on every start, so a client that trusts it keeps trusting the
server; the server's own certificate, for ``api.wavespeed.ai``, ``localhost``,
the loopback addresses and the served host names, is issued at each start.
Built on trustme (the well-kept library for test certificate authorities), an
optional dependency: ``pip install 'wavespeed-mock[tls]'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..settings import Settings, SettingsError

__all__ = ["API_HOST", "TlsFiles", "prepare_tls"]

API_HOST = "api.wavespeed.ai"
"""The host name the certificate is for, so clients with the real URL accept it."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    """The CA certificate a client trusts (REQUESTS_CA_BUNDLE, SSL_CERT_FILE,
    NODE_EXTRA_CA_CERTS)."""
    cert: Path
    key: Path


def prepare_tls(settings: Settings) -> TlsFiles:
    """The CA (made once) and this start's server certificate, as files.

    Raises:
        SettingsError: trustme is not installed.
    """
    try:
        import trustme
    except ImportError:
        raise SettingsError(
            "--tls needs the trustme package: pip install 'wavespeed-mock[tls]'"
        ) from None
    folder = Path(settings.data_dir) / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key = folder / "ca.pem", folder / "ca.key"
    if ca_pem.is_file() and ca_key.is_file():
        ca = trustme.CA.from_pem(ca_pem.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="wavespeed-mock local CA")
        _write(ca_key, ca.private_key_pem.bytes(), 0o600)
        _write(ca_pem, ca.cert_pem.bytes(), 0o644)
    names = [API_HOST, "localhost", "127.0.0.1", "::1"]
    if settings.host not in ("0.0.0.0", "::", ""):
        names.append(settings.host)
    if settings.public_url:
        names.append(urlsplit(settings.public_url).hostname or "")
    names.extend(h for h in settings.allowed_hosts if h != "*")
    leaf = ca.issue_cert(*dict.fromkeys(n for n in names if n))
    cert, key = folder / "server.pem", folder / "server.key"
    _write(cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems), 0o644)
    _write(key, leaf.private_key_pem.bytes(), 0o600)
    return TlsFiles(ca=ca_pem, cert=cert, key=key)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def trust_lines(files: TlsFiles) -> list[str]:
    """What the banner says about trusting the CA."""
    ca = files.ca
    return [
        f"  TLS: answering as https://{API_HOST} too (point the name at this "
        "address: /etc/hosts, a compose network alias); trust the local CA with",
        f"    REQUESTS_CA_BUNDLE={ca}  SSL_CERT_FILE={ca}  NODE_EXTRA_CA_CERTS={ca}",
    ]
