"""The attack battery of issue 5: every forged, broken or misused token is a 401 (or 403/404) envelope, never a 500.

The app runs with the most permissive configuration an operator might choose (HS256 with a shared secret *and*
RS256 from a real local JWKS endpoint, issuer and audience checked), so confusions between the two are exercised.
Owner scoping: another customer's resource must be a 404, not a 403. The /api/v1/streams routes were not in the tree
when this was written, so it is pinned on a probe route and on the real chat socket's stream cancel.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from joserfc.jwk import OctKey, RSAKey
from quart import Blueprint, Response
from quart.typing import TestClientProtocol

from domain.errors import NotFoundError
from entrypoints.http.app import create_app
from entrypoints.http.auth import current_auth, require_scopes
from entrypoints.http.envelope import api_ok
from entrypoints.http.serialization import json_response
from tests.support.app import TEST_SECRET, make_container, make_settings
from tests.support.jwks import (
    JwksServer,
    b64url,
    claims,
    hmac_token,
    jwks_server,
    rsa_key,
    sign,
    sign_unchecked,
)

ISSUER = "https://issuer.test"
AUDIENCE = "switchyard"
ISSUER_KEY = rsa_key("k1")
ATTACKER_KEY = rsa_key("attacker")
STREAM_OWNERS = {"stream-of-alice": "alice"}

probe = Blueprint("auth_probe", __name__)


@probe.get("/api/v1/probe/whoami")
async def whoami() -> Response:
    caller = current_auth()
    return json_response(api_ok({"customer_id": caller.customer_id, "scopes": sorted(caller.scopes)}))


@probe.get("/api/v1/probe/admin")
@require_scopes("admin")
async def admin_only() -> Response:
    return json_response(api_ok({"ok": True}))


@probe.get("/api/v1/probe/streams/<stream_id>")
async def owned_stream(stream_id: str) -> Response:
    if STREAM_OWNERS.get(stream_id) != current_auth().customer_id:
        raise NotFoundError("stream not found", context={"stream_id": stream_id})
    return json_response(api_ok({"stream_id": stream_id}))


def good_claims(subject: str = "alice", **extra: Any) -> dict[str, Any]:
    return claims(subject, iss=ISSUER, aud=AUDIENCE, **extra)


def good_token(subject: str = "alice", **extra: Any) -> str:
    return sign(ISSUER_KEY, good_claims(subject, **extra))


def unsigned(alg: str) -> str:
    return f"{b64url(json.dumps({'alg': alg, 'typ': 'JWT'}))}.{b64url(json.dumps(good_claims()))}."


def tampered() -> str:
    header, _payload, signature = good_token().split(".")
    return f"{header}.{b64url(json.dumps(good_claims('mallory')))}.{signature}"


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"n": value}
    return value


def attack_headers(attacker_url: str) -> dict[str, Callable[[], dict[str, str]]]:
    """Every attack of the battery, as a builder of request headers."""

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    rsa_public_pem = ISSUER_KEY.as_pem(private=False)
    attacker_jwk = ATTACKER_KEY.as_dict(private=False)
    return {
        "missing header": dict,
        "empty bearer": lambda: {"Authorization": "Bearer "},
        "bearer scheme only": lambda: {"Authorization": "Bearer"},
        "basic scheme": lambda: {"Authorization": f"Basic {b64url('alice:secret')}"},
        "malformed base64": lambda: bearer("!!!.@@@.###"),
        "json that is not an object": lambda: bearer(f"{b64url('[1]')}.{b64url('{}')}.c2ln"),
        "two segments": lambda: bearer(".".join(good_token().split(".")[:2])),
        "four segments": lambda: bearer(good_token() + ".extra"),
        "five segments (JWE)": lambda: bearer("a.b.c.d.e"),
        "alg none": lambda: bearer(unsigned("none")),
        "alg None": lambda: bearer(unsigned("None")),
        "alg NONE with a signature": lambda: bearer(unsigned("NONE") + "c2ln"),
        "HS256 signed with the RSA public key": lambda: bearer(
            hmac_token({"alg": "HS256", "kid": "k1"}, good_claims(), rsa_public_pem)
        ),
        "HS256 signed with the RSA public JWK": lambda: bearer(
            hmac_token({"alg": "HS256"}, good_claims(), json.dumps(ISSUER_KEY.as_dict(private=False)).encode())
        ),
        "bad signature": lambda: bearer(sign(rsa_key("k1"), good_claims())),
        "signature stripped": lambda: bearer(good_token().rsplit(".", 1)[0] + "."),
        "tampered payload": lambda: bearer(tampered()),
        "expired": lambda: bearer(sign(ISSUER_KEY, claims(iss=ISSUER, aud=AUDIENCE, ttl_s=-3600))),
        "nbf in the future": lambda: bearer(good_token(nbf=claims()["iat"] + 3600)),
        "iat in the future": lambda: bearer(good_token(iat=claims()["iat"] + 3600)),
        "wrong iss": lambda: bearer(sign(ISSUER_KEY, claims(iss="https://evil.test", aud=AUDIENCE))),
        "wrong aud": lambda: bearer(sign(ISSUER_KEY, claims(iss=ISSUER, aud="another-service"))),
        "missing exp": lambda: bearer(sign(ISSUER_KEY, {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE})),
        "missing sub": lambda: bearer(sign(ISSUER_KEY, {**good_claims(), "sub": None})),
        "unknown kid": lambda: bearer(sign(ATTACKER_KEY, good_claims())),
        "kid with a path": lambda: bearer(sign(ATTACKER_KEY, good_claims(), kid="../../../../etc/passwd")),
        "kid with SQL": lambda: bearer(sign(ATTACKER_KEY, good_claims(), kid="' OR '1'='1'; DROP TABLE keys; --")),
        "kid with a NUL byte": lambda: bearer(sign(ATTACKER_KEY, good_claims(), kid="k1\u0000")),
        "kid that is not a string": lambda: bearer(
            sign_unchecked(ISSUER_KEY, {"alg": "RS256", "kid": ["k1"]}, good_claims())
        ),
        "kid far too long": lambda: bearer(sign(ATTACKER_KEY, good_claims(), kid="k" * 5000)),
        "jku to the attacker's key set": lambda: bearer(sign(ATTACKER_KEY, good_claims(), jku=attacker_url)),
        "x5u to the attacker": lambda: bearer(sign(ATTACKER_KEY, good_claims(), x5u=attacker_url)),
        "embedded jwk": lambda: bearer(sign(ATTACKER_KEY, good_claims(), jwk=attacker_jwk)),
        "embedded jwk with the issuer's kid": lambda: bearer(
            sign(ATTACKER_KEY, good_claims(), kid="k1", jwk={**attacker_jwk, "kid": "k1"})
        ),
        "oversized token": lambda: bearer(good_token(padding="x" * 10_000)),
        "deeply nested claims": lambda: bearer(good_token(deep=nested(40))),
        "token in the query string only": dict,
    }


ATTACKS = list(attack_headers("http://unused"))
# One app for the module: wiring is global, so no other app may be created in this module.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the app logs during the test, rendered by the app's own formatter (redaction included)."""
    root = logging.getLogger()
    formatter = next(h.formatter for h in root.handlers if getattr(h, "_switchyard", False))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


@pytest.fixture
def attacker() -> Iterator[JwksServer]:
    with jwks_server() as server:
        server.keys = [ATTACKER_KEY]
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TestClientProtocol]:
    """One app for the whole battery (the attacks share nothing but the JWKS cache, which they cannot poison)."""
    tmp_path = tmp_path_factory.mktemp("attacks")
    with jwks_server() as issuer:
        issuer.keys = [ISSUER_KEY]
        auth = {
            "algorithms": ("HS256", "RS256"),
            "jwks_url": issuer.url,
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "leeway_s": 5.0,
        }
        app = create_app(make_container(make_settings(tmp_path, auth=auth)))
        app.register_blueprint(probe)
        async with app.test_app():
            yield app.test_client()


async def assert_401(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = await response.get_json()
    assert response.status_code == 401, body
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert body["success"] is False
    assert body["code"] == 401
    assert body["data"]["error"] == "authentication_error"
    return body


async def test_a_good_token_passes(client: TestClientProtocol) -> None:
    """The control: an RS256 token from the issuer's JWKS with the right iss/aud is accepted."""
    response = await client.get("/api/v1/probe/whoami", headers={"Authorization": f"Bearer {good_token()}"})
    assert response.status_code == 200
    assert (await response.get_json())["data"]["customer_id"] == "alice"


@pytest.mark.parametrize("attack", ATTACKS)
async def test_attack_is_a_401_envelope(client: TestClientProtocol, attacker: JwksServer, attack: str) -> None:
    """Each attack of the battery is answered 401 with WWW-Authenticate and the envelope; the attacker's URLs are
    never fetched."""
    headers = attack_headers(attacker.url)[attack]()
    query = {"access_token": good_token()} if attack == "token in the query string only" else None
    response = await client.get("/api/v1/probe/whoami", headers=headers, query_string=query)
    body = await assert_401(response)
    assert "eyJ" not in json.dumps(body)
    assert "eyJ" not in response.headers["WWW-Authenticate"]
    assert attacker.requests == 0


async def test_missing_scope_is_403(client: TestClientProtocol) -> None:
    """Authenticated without the route's scope: 403 envelope naming the scope; with it: 200."""
    response = await client.get("/api/v1/probe/admin", headers={"Authorization": f"Bearer {good_token()}"})
    body = await response.get_json()
    assert response.status_code == 403
    assert body["data"]["error"] == "authorization_error"
    assert body["data"]["context"]["missing_scopes"] == ["admin"]
    allowed = await client.get(
        "/api/v1/probe/admin", headers={"Authorization": f"Bearer {good_token(scope='admin chat')}"}
    )
    assert allowed.status_code == 200


async def test_another_customers_stream_is_404(client: TestClientProtocol) -> None:
    """Owner scoping (probe route): bob gets 404, not 403, for alice's stream, exactly as for a missing one."""
    own = await client.get("/api/v1/probe/streams/stream-of-alice", headers={"Authorization": f"Bearer {good_token()}"})
    assert own.status_code == 200
    bob = {"Authorization": f"Bearer {good_token('bob')}"}
    foreign = await client.get("/api/v1/probe/streams/stream-of-alice", headers=bob)
    missing = await client.get("/api/v1/probe/streams/no-such-stream", headers=bob)
    assert foreign.status_code == missing.status_code == 404
    assert (await foreign.get_json())["data"]["error"] == (await missing.get_json())["data"]["error"]


async def test_another_customers_stream_is_404_on_the_chat_socket(client: TestClientProtocol) -> None:
    """Owner scoping on real routes: bob cancelling alice's stream over /api/v1/ws/chat gets not_found (404),
    exactly what a stream that never existed gets, so stream ids cannot be probed."""
    chat = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello"}]}
    alice = {"Authorization": f"Bearer {good_token('alice')}"}
    async with client.websocket("/api/v1/ws/chat", headers=alice) as ws:
        await ws.send(json.dumps({"type": "chat", "id": "r1", "request": chat}))
        accepted = json.loads(await ws.receive())
    if accepted["type"] == "error" and accepted["payload"]["code"] == "service_unavailable":
        pytest.skip("the chat socket cannot start streams in this build yet (streaming not wired)")
    assert accepted["type"] == "accepted", accepted
    replies = []
    async with client.websocket("/api/v1/ws/chat", headers={"Authorization": f"Bearer {good_token('bob')}"}) as ws:
        for stream_id in (accepted["stream_id"], "no-such-stream"):
            await ws.send(json.dumps({"type": "cancel", "id": stream_id, "stream_id": stream_id}))
            replies.append(json.loads(await ws.receive()))
    assert [r["type"] for r in replies] == ["error", "error"]
    assert [r["payload"]["status"] for r in replies] == [404, 404]
    assert replies[0]["payload"]["code"] == replies[1]["payload"]["code"] == "not_found"


async def test_failed_auth_never_logs_the_token(client: TestClientProtocol, log_output: io.StringIO) -> None:
    """The failure is logged (warning request_failed) and neither the token nor its signature appear in the logs."""
    tokens = [tampered(), sign(rsa_key("k1"), good_claims()), good_token(deep=nested(40))]
    for token in tokens:
        response = await client.get("/api/v1/probe/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    output = log_output.getvalue()
    assert "request_failed" in output
    assert "authentication_error" in output
    for token in tokens:
        _header, payload, signature = token.split(".")
        assert payload not in output
        assert signature not in output


async def test_forged_hmac_key_material_is_rsa_public_key() -> None:
    """Sanity of the battery itself: the HS/RS confusion token really is HMAC over the issuer's public PEM."""
    pem = ISSUER_KEY.as_pem(private=False)
    token = hmac_token({"alg": "HS256"}, {"sub": "x"}, pem)
    signing_input, signature = token.rsplit(".", 1)
    assert b64url(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()) == signature
    assert isinstance(ISSUER_KEY, RSAKey)
    assert OctKey.import_key(TEST_SECRET.reveal()).raw_value != pem
