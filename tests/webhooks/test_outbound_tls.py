"""https through the SSRF guard: the connection goes to the address the guard checked, and
the certificate is still verified against the endpoint's host name."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from o2oloop.webhooks.outbound import Sender
from webhook_receiver import Answer, receiving


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name `localhost` only (not for 127.0.0.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert_file, key_file = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_https_to_a_checked_address_verifies_the_host_name(certificate) -> None:
    server, client = _contexts(certificate)
    sender = Sender(timeout=2.0, allow_private=True, verify=client)
    try:
        with receiving(lambda _r: Answer(200, b"tls ok"), tls=server) as receiver:
            outcome = sender.post(
                f"https://localhost:{receiver.port}/hook", body="{}", headers={"webhook-id": "m"}
            )
            (got,) = receiver.wait_for(1)
    finally:
        sender.close()
    assert (outcome.status, outcome.excerpt, outcome.error) == (200, "tls ok", None)
    assert got.headers["host"] == f"localhost:{receiver.port}"


def test_a_certificate_for_another_name_is_a_recorded_failure(certificate) -> None:
    server, client = _contexts(certificate)
    sender = Sender(timeout=2.0, allow_private=True, verify=client)
    try:
        with receiving(tls=server) as receiver:
            # The same server by address: its certificate names only `localhost`.
            outcome = sender.post(receiver.url + "/hook", body="{}", headers={})
    finally:
        sender.close()
    assert outcome.status is None and "certificate" in (outcome.error or "").lower()
