"""Test helper: signing keys, token signing, and a real JWKS endpoint on 127.0.0.1 whose answers a test controls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

__all__ = [
    "JwksServer",
    "b64url",
    "claims",
    "ec_key",
    "hmac_token",
    "jwks_server",
    "okp_key",
    "rsa_key",
    "sign",
    "sign_unchecked",
]


def rsa_key(kid: str) -> RSAKey:
    """A fresh 2048-bit RSA signing key with ``kid``."""
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def ec_key(kid: str) -> ECKey:
    """A fresh P-256 signing key with ``kid``."""
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def okp_key(kid: str) -> OKPKey:
    """A fresh Ed25519 signing key with ``kid``."""
    return OKPKey.generate_key("Ed25519", parameters={"kid": kid})


def claims(subject: str = "alice", *, ttl_s: int = 3600, **extra: Any) -> dict[str, Any]:
    """Typical claims: ``sub``, ``iat``, ``exp`` (now + ``ttl_s``) and ``extra``."""
    now = int(time.time())
    return {"sub": subject, "iat": now, "exp": now + ttl_s, **extra}


def sign(key: Key, payload: Mapping[str, Any], *, alg: str = "RS256", **header: Any) -> str:
    """A compact JWS of ``payload`` signed with ``key`` (its kid in the header unless ``kid`` is given)."""
    fields: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if key.kid is not None:
        fields["kid"] = key.kid
    fields.update(header)
    return jwt.encode(fields, dict(payload), key, algorithms=[alg])


def b64url(data: bytes | str) -> str:
    """Unpadded base64url, as JOSE writes it."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hmac_token(header: Mapping[str, Any], payload: Mapping[str, Any], secret: bytes) -> str:
    """An HS256 JWS over any header and payload, MACed with raw ``secret`` bytes (e.g. an RSA public key PEM)."""
    signing_input = f"{b64url(json.dumps(dict(header)))}.{b64url(json.dumps(dict(payload)))}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def sign_unchecked(key: RSAKey, header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """An RS256 JWS with any header at all (joserfc refuses to write malformed headers, attackers do not)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{b64url(json.dumps(dict(header)))}.{b64url(json.dumps(dict(payload)))}"
    private = key.private_key
    assert private is not None, "sign with a private key"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


class JwksServer:
    """A JWKS endpoint: ``keys`` is served at ``url``; ``status``/``delay_s``/``body`` simulate a failing issuer."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.status = 200
        self.delay_s = 0.0
        self.body: bytes | None = None
        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Where the key set is served."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def document(self) -> bytes:
        """The JWKS document as served now."""
        if self.body is not None:
            return self.body
        return json.dumps({"keys": [key.as_dict(private=False) for key in self.keys]}).encode()

    def stop(self) -> None:
        """Stop answering: the port refuses connections from now on."""
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                body = owner.document() if owner.status == 200 else b'{"error": "down"}'
                try:
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout tests)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    """A running ``JwksServer``, stopped afterwards."""
    server = JwksServer()
    try:
        yield server
    finally:
        if server._thread.is_alive():
            server.stop()
