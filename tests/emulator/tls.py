"""Test double (vendor emulator): a self-signed certificate for ``127.0.0.1``, so the emulator can also listen on TLS.

google-genai opens Gemini Live as ``wss://`` whatever the base URL's scheme (``_websocket_base_url`` replaces it), so
the emulator serves its routes on a second, TLS port as well; a client trusts it through ``client_context()`` (or
``SSL_CERT_FILE`` pointing at ``certificate()``'s file, which is what google-genai reads when building its context).
The key pair is made once per process in a temporary directory.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
import tempfile
from pathlib import Path

from attrs import frozen
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Certificate", "certificate", "client_context"]


@frozen
class Certificate:
    """PEM files: the certificate (also the CA a client trusts) and its private key."""

    certfile: Path
    keyfile: Path


@functools.cache
def certificate() -> Certificate:
    """The emulator's certificate for ``127.0.0.1`` and ``localhost`` (made on first use)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switchyard vendor emulator")])
    now = datetime.datetime.now(datetime.UTC)
    names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(names, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="switchyard-emulator-tls-"))
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(certfile, keyfile)


def client_context() -> ssl.SSLContext:
    """A client context that trusts the emulator's certificate (and only it)."""
    return ssl.create_default_context(cafile=str(certificate().certfile))
