"""A test-only certificate authority, for clients that only speak HTTPS.

Flyte's Databricks connector and prefect-databricks build ``https://<instance>/api/...`` from a
bare host name: there is no way to give them ``http://``. The harness, not lakegate, handles
that: ``TestTls`` issues a server certificate for 127.0.0.1 and localhost from a ``trustme``
CA, gives the server side an ``ssl.SSLContext`` for ``web.TCPSite``, and writes the CA as a PEM
file that a client's environment trusts through SSL_CERT_FILE / REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TestTls:
    ca_file: Path
    server_context: ssl.SSLContext

    @classmethod
    def issue(cls, directory: Path) -> TestTls:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        ca_file = directory / "client-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        return cls(ca_file=ca_file, server_context=context)

    def client_environment(self) -> dict[str, str]:
        """What makes requests, httpx, aiohttp and urllib in a client's venv trust the CA."""
        path = str(self.ca_file)
        return {"SSL_CERT_FILE": path, "REQUESTS_CA_BUNDLE": path, "CURL_CA_BUNDLE": path}
